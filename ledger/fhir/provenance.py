"""Annotations, reviews and adjudications as FHIR R4 ``Provenance`` (W3C PROV as FHIR holds it).

The target is the annotation version the event made or acted on; the agents say who (a person as
author, verifier or attester, in the role they acted in; a model as the author ``Device`` of an AI
pre-annotation, with its name and version); the entities say what it came from (``revision`` of the
previous version, ``derivation`` of a reviewed version, ``source`` for an AI pre-annotation a person
revised and for the readers' annotations an adjudication chose among); the policy is the guideline
version; a review's or adjudication's electronic signature carries its 21 CFR 11.50 meaning.

Free-text comments and reasons are sealed at ingest and are not exported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.fhir.references import (
    MODEL_SYSTEM,
    Source,
    actor_reference,
    annotation_reference,
    event_extension,
    instant,
    resource_id,
    role_concept,
    uri_part,
)

CREATED, UPDATED, DELETED = "annotation.created", "annotation.updated", "annotation.deleted"
REVIEWED, ADJUDICATED = "review.submitted", "adjudication.completed"
PROVENANCE_TYPES = (CREATED, UPDATED, DELETED, REVIEWED, ADJUDICATED)

DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
MEANING_SYSTEM = "urn:ledger:signature-meaning"
LEVEL_SYSTEM = "urn:ledger:review-level"
GUIDELINE_URN = "urn:ledger:guideline"

ACTIVITIES = {
    CREATED: {"system": DATA_OPERATION, "code": "CREATE", "display": "create"},
    UPDATED: {"system": DATA_OPERATION, "code": "UPDATE", "display": "revise"},
    DELETED: {"system": DATA_OPERATION, "code": "DELETE", "display": "delete"},
    REVIEWED: {"system": LIFECYCLE, "code": "verify", "display": "Verify Record Lifecycle Event"},
    ADJUDICATED: {"system": LIFECYCLE, "code": "attest", "display": "Attest Record Lifecycle Event"},
}
AUTHOR = {"system": PARTICIPANT, "code": "author", "display": "Author"}
ENTERER = {"system": PARTICIPANT, "code": "enterer", "display": "Enterer"}
VERIFIER = {"system": PARTICIPANT, "code": "verifier", "display": "Verifier"}
ATTESTER = {"system": PARTICIPANT, "code": "attester", "display": "Attester"}
LEVELS = {1: "AI pre-annotation", 2: "annotator review", 3: "physician review", 4: "expert review"}

SIGNATURE_MEANINGS = {
    # 21 CFR 11.50(a)(3) meanings as ASTM E1762-95 signature types (the R4 Signature.type value set).
    "authorship": ("1.2.840.10065.1.12.1.1", "Author's Signature"),
    "responsibility": ("1.2.840.10065.1.12.1.5", "Verification Signature"),
    "approval": ("1.2.840.10065.1.12.1.6", "Validation Signature"),
    "review": ("1.2.840.10065.1.12.1.13", "Review Signature"),
}

Model = tuple[str, str | None]
"""An AI pre-annotation's model: name and version."""
Origins = Callable[[str, str, str, int], Model | None]
"""The model that made annotation (dataset, item, id) at a version, when a model did (else ``None``)."""


def provenance(source: Source, models: Origins | None = None) -> dict[str, Any]:
    """The ``Provenance`` of one annotation, review or adjudication event (a JSON-ready R4 dict).
    ``models`` tells which earlier annotation versions a model made (an update of one by a person is
    then the revision of an AI pre-annotation, entity role ``source``)."""
    event, data = source.event, source.data
    kind = str(event["type"])
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": resource_id(str(event["tenant"]), str(event["id"])),
        "extension": [event_extension(source)],
        "occurredDateTime": instant(str(event["time"]), otherwise=source.recorded_at),
        "recorded": instant(source.recorded_at),
        "activity": {"coding": [ACTIVITIES[kind]]},
    }
    if kind in (CREATED, UPDATED, DELETED):
        resource |= _annotation(event, data, models)
    elif kind == REVIEWED:
        resource |= _review(event, data, resource["occurredDateTime"])
    else:
        resource |= _adjudication(event, data, resource["occurredDateTime"])
    return resource


def _annotation(event: dict[str, Any], data: dict[str, Any], models: Origins | None) -> dict[str, Any]:
    dataset, item, ident = str(data["dataset"]), str(data["item"]), str(data["annotation_id"])
    version = int(data["version"])
    out: dict[str, Any] = {"target": [annotation_reference(dataset, item, ident, version)]}
    if data.get("guideline_id") is not None:
        out["policy"] = [_guideline(str(data["guideline_id"]), str(data["guideline_version"]))]
    actor = actor_reference(str(event["actor"]))
    role = [role_concept(str(event["actorrole"]))]
    if data.get("origin") == "model":
        model = _model_reference(str(data.get("model_name") or "unnamed model"), data.get("model_version"))
        out["agent"] = [
            {"type": {"coding": [AUTHOR]}, "who": model},
            {"type": {"coding": [ENTERER]}, "who": actor, "role": role},
        ]
    else:
        out["agent"] = [{"type": {"coding": [AUTHOR]}, "who": actor, "role": role}]
    previous = data.get("previous_version")
    if previous is not None:
        prior = annotation_reference(dataset, item, ident, int(previous))
        made_by = models(dataset, item, ident, int(previous)) if models is not None else None
        entity: dict[str, Any] = {"role": "revision", "what": prior}
        if made_by is not None and data.get("origin") != "model":
            entity = {"role": "source", "what": prior, "agent": [
                {"type": {"coding": [AUTHOR]}, "who": _model_reference(*made_by)}
            ]}  # fmt: skip
        out["entity"] = [entity]
    return out


def _review(event: dict[str, Any], data: dict[str, Any], when: str) -> dict[str, Any]:
    dataset, item = str(data["dataset"]), str(data["item"])
    reviewed = annotation_reference(
        dataset, item, str(data["annotation_id"]), int(data["annotation_version"])
    )
    level = int(data["level"])
    out: dict[str, Any] = {
        "target": [reviewed],
        "reason": [{"coding": [{"system": LEVEL_SYSTEM, "code": str(level), "display": LEVELS.get(level, str(level))}],
                    "text": f"level {level} review: {data['decision']}"}],
        "agent": [_signer(event, VERIFIER if level < 4 else ATTESTER, level)],
        "signature": [_signature(event, str(data["signature_meaning"]), when)],
    }  # fmt: skip
    resulting = data.get("resulting_annotation_id")
    if resulting is not None:
        version = data.get("resulting_version")
        made = annotation_reference(dataset, item, str(resulting), None if version is None else int(version))
        out["target"] = [made, reviewed]
        out["entity"] = [{"role": "derivation", "what": reviewed}]
    return out


def _adjudication(event: dict[str, Any], data: dict[str, Any], when: str) -> dict[str, Any]:
    dataset, item = str(data["dataset"]), str(data["item"])
    level = int(data["level"])
    return {
        "target": [annotation_reference(dataset, item, str(data["final_annotation_id"]), None)],
        "reason": [{"coding": [{"system": LEVEL_SYSTEM, "code": str(level), "display": LEVELS.get(level, str(level))}],
                    "text": f"adjudication by {data['method']}: final label {data['final_label_class']}"}],
        "agent": [_signer(event, ATTESTER, level)],
        "entity": [{"role": "source", "what": annotation_reference(dataset, item, str(a), None)}
                   for a in data["annotation_ids"]],
        "signature": [_signature(event, str(data["signature_meaning"]), when)],
    }  # fmt: skip


def _signer(event: dict[str, Any], kind: dict[str, str], level: int) -> dict[str, Any]:
    role = role_concept(str(event["actorrole"]))
    level_role = {"coding": [{"system": LEVEL_SYSTEM, "code": str(level)}], "text": f"review level {level}"}
    return {
        "type": {"coding": [kind]},
        "who": actor_reference(str(event["actor"])),
        "role": [role, level_role],
    }


def _signature(event: dict[str, Any], meaning: str, when: str) -> dict[str, Any]:
    """The signature of the event's actor with its 21 CFR 11.50 meaning (the ASTM type and the meaning
    itself). The signed record is the hashed event; no signature bytes are carried (``data`` absent)."""
    types = [{"system": MEANING_SYSTEM, "code": meaning, "display": f"21 CFR 11.50 meaning: {meaning}"}]
    if meaning in SIGNATURE_MEANINGS:
        code, display = SIGNATURE_MEANINGS[meaning]
        types.insert(0, {"system": SIGNATURE_TYPE, "code": code, "display": display})
    return {"type": types, "when": when, "who": actor_reference(str(event["actor"]))}


def _model_reference(name: str, version: object) -> dict[str, Any]:
    label = name if version is None else f"{name} {version}"
    value = name if version is None else f"{name}@{version}"
    return {"type": "Device", "identifier": {"system": MODEL_SYSTEM, "value": value}, "display": label}


def _guideline(guideline: str, version: str) -> str:
    """The guideline version an annotation was made under, as a URI."""
    return f"{GUIDELINE_URN}:{uri_part(guideline)}:{uri_part(version)}"
