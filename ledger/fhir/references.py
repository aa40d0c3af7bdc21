"""What every exported resource shares: the stored event it comes from, its stable id, and the
identifier systems that name the ledger's actors, resources and annotations.

Pure: a ``Source`` is built from a stored row (``ledger.fhir.export``) or, in tests, from a dict.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

from ledger.domain.fields import in_time_range, parse_rfc3339

RESOURCE_NAMESPACE = uuid.UUID("5f0c4a52-7d1e-4c47-9a0e-6b2d1f3c8e91")
"""UUIDv5 namespace of exported resource ids: the same event always exports under the same id."""

LEDGER_URN = "urn:ledger"
ACTOR_SYSTEM = "urn:ledger:actor"
ROLE_SYSTEM = "urn:ledger:role"
RESOURCE_SYSTEM = "urn:ledger:resource"
ANNOTATION_SYSTEM = "urn:ledger:annotation"
MODEL_SYSTEM = "urn:ledger:model"
MAX_INTEGER = 2**31 - 1
EVENT_EXTENSION = "urn:ledger:fhir:StructureDefinition:ledger-event"
"""The extension naming the stored event a resource was made from (id, type, log, position, hash)."""


@dataclass(frozen=True)
class Source:
    """One stored event as the mapping reads it: the CloudEvent (sealed values still sealed, upcast)
    and its receipt."""

    event: dict[str, Any]
    log: str
    position: int
    recorded_at: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        """The event's ``data``."""
        value: dict[str, Any] = self.event.get("data") or {}
        return value


def resource_id(tenant: str, event_id: str) -> str:
    """The stable FHIR id of the resource made from event ``event_id`` of ``tenant`` (a UUID: it fits
    FHIR's id pattern whatever the event id holds, and serves as the Bundle entry's ``urn:uuid``)."""
    return str(uuid.uuid5(RESOURCE_NAMESPACE, f"{tenant}\x00{event_id}"))


def event_extension(source: Source) -> dict[str, Any]:
    """The ``ledger-event`` extension: where the resource's evidence sits in the log."""
    return {
        "url": EVENT_EXTENSION,
        "extension": [
            {"url": "id", "valueString": str(source.event["id"])},
            {"url": "type", "valueString": str(source.event["type"])},
            {"url": "log", "valueString": source.log},
            # R4's integer is 32-bit: a later position is written as a decimal (exact, no fraction).
            {"url": "position", "valueInteger": source.position}
            if source.position <= MAX_INTEGER
            else {"url": "position", "valueDecimal": source.position},
            {"url": "hash", "valueString": source.hash},
        ],
    }


def actor_reference(actor: str, *, kind: str | None = None) -> dict[str, Any]:
    """A logical reference to a ledger actor (a person or service named by its pseudonymous id)."""
    ref: dict[str, Any] = {"identifier": {"system": ACTOR_SYSTEM, "value": actor}, "display": actor}
    if kind is not None:
        ref["type"] = kind
    return ref


def role_concept(role: str) -> dict[str, Any]:
    """The role the actor acted in, as the ledger names it (token role or producer's ``actorrole``)."""
    return {"coding": [{"system": ROLE_SYSTEM, "code": role}], "text": role}


def annotation_reference(dataset: str, item: str, annotation: str, version: int | None) -> dict[str, Any]:
    """A logical reference to an annotation (``DATASET/ITEM/annotations/ID``, the contract's resource
    name), at one version (``/_history/N``, FHIR's version convention) when ``version`` is given."""
    value = f"{dataset}/{item}/annotations/{annotation}"
    if version is not None:
        value += f"/_history/{version}"
    return {"identifier": {"system": ANNOTATION_SYSTEM, "value": value}, "display": value}


def uri_part(value: str) -> str:
    """``value`` percent-encoded for one segment of a URI (identifiers may hold any printable text)."""
    return quote(value, safe="")


def instant(value: str, *, otherwise: str | None = None) -> str:
    """An RFC 3339 time as an R4 ``instant``/``dateTime`` in UTC: whatever offset or precision the
    producer wrote (accepted at the door), one form FHIR's pattern holds (fraction only when not zero).

    A producer's time outside the ledger's time range (older versions accepted e.g.
    ``0001-01-01T00:00:00+01:00``, which ``astimezone(UTC)`` overflows on) is replaced by ``otherwise``,
    the recorded time, as the projections do (``State.Event.occurred_at``)."""
    try:
        when = parse_rfc3339(value)
        holdable = in_time_range(when)
    except ValueError:
        holdable = False
    if not holdable:
        if otherwise is None:
            msg = f"{value!r} is not a time in the ledger's range"
            raise ValueError(msg)
        return instant(otherwise)
    when = when.astimezone(UTC)
    return when.isoformat(timespec="microseconds" if when.microsecond else "seconds").replace("+00:00", "Z")
