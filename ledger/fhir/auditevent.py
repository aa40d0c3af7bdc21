"""Access and sign-in events as FHIR R4 ``AuditEvent``, after the IHE Basic Audit Log Patterns (BALP).

A read of one named thing follows BALP *Read* (type ``rest``, subtype ``read``, action R, a
``System Object`` entity in role ``Domain Resource``); a read of a filtered list follows *Query* (subtype
``search``, action E, the client as Source Role ID and the server as Destination, a ``Query`` entity
holding the parameters base64-encoded); an export is DICOM *Export* (110106) with subtype ISO 21089
``disclose`` and the exported thing in role ``Report``. Refusals and failed reads keep the pattern of
what was attempted with a failure outcome (FHIR core "Access Denied"); sign-ins are DICOM *User
Authentication* / *Login*. The observer is always the ledger, which recorded the event.

Sealed values (source address, user agent, a refusal's or break-glass reason) are not exported, so the
client's ``network`` element BALP asks for is absent and no ``meta.profile`` is claimed (docs/fhir.md).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from ledger.fhir.references import (
    LEDGER_URN,
    RESOURCE_SYSTEM,
    Source,
    actor_reference,
    event_extension,
    instant,
    resource_id,
    role_concept,
)

VIEWED, EXPORTED, DENIED, BREAK_GLASS = (
    "access.data_viewed",
    "access.data_exported",
    "access.denied",
    "access.break_glass",
)
LOGIN_SUCCEEDED, LOGIN_FAILED = "auth.login_succeeded", "auth.login_failed"
AUDITED_TYPES = (VIEWED, EXPORTED, DENIED, BREAK_GLASS, LOGIN_SUCCEEDED, LOGIN_FAILED)

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
OUTCOME_SUCCESS, OUTCOME_MINOR_FAILURE = "0", "4"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSE_SYSTEM = "urn:ledger:purpose-of-use"

REST = {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"}
EXPORT = {"system": DCM, "code": "110106", "display": "Export"}
AUTHENTICATION = {"system": DCM, "code": "110114", "display": "User Authentication"}
LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
READ = {"system": RESTFUL, "code": "read", "display": "read"}
SEARCH = {"system": RESTFUL, "code": "search", "display": "search"}
DISCLOSE = {"system": LIFECYCLE, "code": "disclose", "display": "Disclose Record Lifecycle Event"}
SOURCE_ROLE = {"system": DCM, "code": "110153", "display": "Source Role ID"}
DESTINATION_ROLE = {"system": DCM, "code": "110152", "display": "Destination Role ID"}
RECIPIENT = {"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}
SYSTEM_OBJECT = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
DOMAIN_RESOURCE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
REPORT = {"system": OBJECT_ROLE, "code": "3", "display": "Report"}
QUERY = {"system": OBJECT_ROLE, "code": "24", "display": "Query"}
APPLICATION_SERVER = {"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}
BREAK_THE_GLASS = {"system": ACT_REASON, "code": "BTG", "display": "break the glass"}

PURPOSES = {
    # The ledger's purposes of use with their HL7 v3 PurposeOfUse (ActReason) code where one means the same.
    "treatment": ("TREAT", "treatment"),
    "research": ("HRESCH", "healthcare research"),
    "operations": ("HOPERAT", "healthcare operations"),
    "quality_assurance": ("HQUALIMP", "health quality improvement"),
    "security": ("HSYSADMIN", "health system administration"),
}


def audit_event(source: Source) -> dict[str, Any]:
    """The ``AuditEvent`` of one access or sign-in event (a JSON-ready dict of the R4 resource)."""
    event, data = source.event, source.data
    kind = str(event["type"])
    failed = data.get("outcome") == "failure" or kind in (DENIED, LOGIN_FAILED)
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": resource_id(str(event["tenant"]), str(event["id"])),
        "extension": [event_extension(source)],
        **_pattern(kind, data),
        "period": {
            "start": instant(str(event["time"]), otherwise=source.recorded_at),
            "end": instant(str(event["time"]), otherwise=source.recorded_at),
        },
        "recorded": instant(source.recorded_at),
        "outcome": OUTCOME_MINOR_FAILURE if failed else OUTCOME_SUCCESS,
        "source": {
            "site": source.log,
            "observer": {
                "identifier": {"system": "urn:ietf:rfc:3986", "value": LEDGER_URN},
                "display": "ledger",
            },
            "type": [APPLICATION_SERVER],
        },
    }
    description = _outcome_description(kind, data, failed=failed)
    if description:
        resource["outcomeDesc"] = description
    purposes = _purposes(kind, data)
    if purposes:
        resource["purposeOfEvent"] = purposes
    resource["agent"] = _agents(kind, event, purposes)
    entities = _entities(kind, data)
    if entities:
        resource["entity"] = entities
    return resource


def _pattern(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """type, subtype and action of the BALP (or DICOM) pattern the event follows."""
    if kind in (LOGIN_SUCCEEDED, LOGIN_FAILED):
        return {"type": AUTHENTICATION, "subtype": [LOGIN], "action": "E"}
    if kind == EXPORTED:
        return {"type": EXPORT, "subtype": [DISCLOSE, SEARCH if _is_query(data) else READ], "action": "R"}
    if _is_query(data):
        return {"type": REST, "subtype": [SEARCH], "action": "E"}
    return {"type": REST, "subtype": [READ], "action": "R"}


def _is_query(data: dict[str, Any]) -> bool:
    """A read of a filtered list (BALP Query) rather than of one named thing (BALP Read): a ledger route
    without a path parameter (``GET /v1/events``, ``GET /v1/anomalies``). A producer's access event names
    one resource, a read."""
    route = data.get("route")
    return isinstance(route, str) and "{" not in route


def _outcome_description(kind: str, data: dict[str, Any], *, failed: bool) -> str | None:
    if kind == LOGIN_FAILED:
        return f"sign-in failed: {data.get('failure_reason') or 'unknown'}"
    if not failed:
        return None
    status = data.get("status")
    what = "refused" if kind == DENIED else "failed"
    return f"{what}" + (f" with HTTP status {status}" if status is not None else "")


def _purposes(kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    purpose = data.get("purpose_of_use")
    out: list[dict[str, Any]] = []
    if kind == BREAK_GLASS:
        out.append({"coding": [BREAK_THE_GLASS], "text": "break-glass access"})
    if isinstance(purpose, str):
        coding: list[dict[str, Any]] = [{"system": PURPOSE_SYSTEM, "code": purpose}]
        if purpose in PURPOSES:
            code, display = PURPOSES[purpose]
            coding.insert(0, {"system": ACT_REASON, "code": code, "display": display})
        out.append({"coding": coding, "text": purpose})
    return out


def _agents(kind: str, event: dict[str, Any], purposes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The user (information recipient, the requestor) and the ledger as server. In BALP Query the
    client is the Source Role ID and the server the Destination; in Read the reverse."""
    user: dict[str, Any] = {
        "type": {"coding": [RECIPIENT]},
        "who": actor_reference(str(event["actor"])),
        "name": str(event["actor"]),
        "requestor": True,
        "role": [role_concept(str(event["actorrole"]))],
    }
    if purposes:
        user["purposeOfUse"] = purposes
    query = kind not in (LOGIN_SUCCEEDED, LOGIN_FAILED) and _is_query(event.get("data") or {})
    server = {
        "type": {"coding": [DESTINATION_ROLE if query else SOURCE_ROLE]},
        "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": LEDGER_URN}, "display": "ledger"},
        "requestor": False,
    }
    return [user, server]


def _entities(kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """What was read (``resource``, and the item when named), and the query parameters of a Query."""
    if kind in (LOGIN_SUCCEEDED, LOGIN_FAILED):
        return []
    resource = str(data.get("resource", ""))
    details = [
        {"type": name, "valueString": str(data[name])}
        for name in ("route", "status", "record_count", "dataset", "item")
        if data.get(name) is not None
    ]
    thing: dict[str, Any] = {
        "what": {"identifier": {"system": RESOURCE_SYSTEM, "value": resource}, "display": resource},
        "type": SYSTEM_OBJECT,
        "role": REPORT if kind == EXPORTED else DOMAIN_RESOURCE,
        "name": resource,
    }
    if details:
        thing["detail"] = details
    entities = [thing]
    if _is_query(data):
        parameters = urlencode(sorted((data.get("query") or {}).items()))
        request = f"{data['route']}" + (f"?{parameters}" if parameters else "")
        # BALP: the request as made, base64 (never empty: it holds the route); readable in description.
        query = {
            "type": SYSTEM_OBJECT,
            "role": QUERY,
            "description": request,
            "query": base64.b64encode(request.encode()).decode("ascii"),
        }
        entities.append(query)
    return entities
