"""``ledger export fhir`` and ``GET /v1/export/fhir``: select a tenant's events of a time range, map
them, and pack them as a Bundle or NDJSON; the export is recorded before it is handed over.

Events are read as stored (sealed values stay sealed; no mapping reads a sensitive field) and upcast.
At most ``MAX_EXPORT_EVENTS`` events go in one export, so the body stays within memory; a range holding
more is refused naming ``until``, asking for a narrower range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.domain.envelope import ReceivedEvent
from ledger.domain.errors import FieldError, ParameterInvalid
from ledger.domain.internal import ledger_event
from ledger.domain.upcasting import upcast
from ledger.fhir.auditevent import AUDITED_TYPES, audit_event
from ledger.fhir.bundle import BUNDLE_MEDIA_TYPE, NDJSON_MEDIA_TYPE, bundle_bytes, ndjson_bytes
from ledger.fhir.provenance import PROVENANCE_TYPES, Model, provenance
from ledger.fhir.references import Source, resource_id
from ledger.projections.tables import fetch_rows
from ledger.storage.database import Database

MAX_EXPORT_EVENTS = 50_000
"""Events one export may hold (about 100 MB of JSON at most)."""
EXPORTED_TYPES = (*AUDITED_TYPES, *PROVENANCE_TYPES)
REPORT = "fhir_export"
EXPORTED_ACCESS = "access.data_exported"
FORMATS = ("bundle", "ndjson")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Window:
    """What an export covers: a tenant's events with ``since <= time < until`` (the producer's time)."""

    tenant: str
    since: datetime
    until: datetime

    def check(self, since_name: str = "since", until_name: str = "until") -> Window:
        """``self`` when ``since`` is before ``until``; else ``ParameterInvalid`` naming both."""
        if self.since >= self.until:
            msg = f"{since_name} must be before {until_name}"
            raise ParameterInvalid(msg, errors=[FieldError(since_name, msg), FieldError(until_name, msg)])
        return self


@dataclass(frozen=True)
class FhirExport:
    """An export's bytes and what its records say about it."""

    window: Window
    format: str
    body: bytes
    resources: int
    sha256: str

    @property
    def media_type(self) -> str:
        """``application/fhir+json`` for a Bundle, ``application/fhir+ndjson`` for NDJSON."""
        return NDJSON_MEDIA_TYPE if self.format == "ndjson" else BUNDLE_MEDIA_TYPE


def select(
    db: Database, window: Window, *, limit: int = MAX_EXPORT_EVENTS, until_name: str = "until"
) -> list[Source]:
    """The exported events of ``window`` in log order, upcast; ``ParameterInvalid`` when there are more
    than ``limit``."""
    with db.connect() as conn, conn.transaction():
        rows = conn.execute(
            "SELECT log, position, hash, canonical FROM ledger_events WHERE tenant = %s AND type = ANY(%s)"
            " AND event_time >= %s AND event_time < %s ORDER BY log, position LIMIT %s",
            (window.tenant, list(EXPORTED_TYPES), window.since, window.until, limit + 1),
        ).fetchall()
    if len(rows) > limit:
        msg = (
            f"more than {limit:,} events to export between {window.since.isoformat()} and "
            f"{window.until.isoformat()}: narrow the range (an earlier {until_name}) and export the rest separately"
        )
        raise ParameterInvalid(msg, errors=[FieldError(until_name, msg)])
    sources = []
    for log, position, digest, canonical in rows:
        doc = json.loads(bytes(canonical))
        sources.append(
            Source(
                upcast(doc["event"]), str(log), int(position), str(doc["recorded_at"]), bytes(digest).hex()
            )
        )
    return sources


def resources(
    sources: Iterable[Source],
    models: dict[tuple[str, str, str, int], Model],
    *,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """The FHIR resource of each event (``AuditEvent`` or ``Provenance``), in the events' order."""
    out = []
    for source in sources:
        kind = source.event["type"]
        if kind in AUDITED_TYPES:
            out.append(audit_event(source))
        else:
            out.append(provenance(source, lambda d, i, a, v: models.get((d, i, a, v))))
        if progress is not None:
            progress(1)
    return out


AnnotationVersion = tuple[str, str, str, int]
"""dataset, item, annotation id, version."""


def model_versions(db: Database, tenant: str, sources: list[Source]) -> dict[AnnotationVersion, Model]:
    """The annotation versions a model made, among the export's own and the earlier versions its
    updates revise (read from their events through the revisions projection): a person's update of one
    is the revision of an AI pre-annotation."""
    made: dict[AnnotationVersion, Model] = {}
    revised: set[AnnotationVersion] = set()
    for source in sources:
        if source.event["type"] in ("annotation.created", "annotation.updated"):
            _note_model(source.data, made)
            previous = source.data.get("previous_version")
            if previous is not None:
                revised.add((*_annotation_key(source.data)[:3], int(previous)))
    earlier = sorted({(k[2], k[3]) for k in revised - made.keys()})
    if earlier:
        with db.connect() as conn, conn.transaction():
            rows = fetch_rows(
                conn,
                "SELECT e.canonical FROM unnest(%s::text[], %s::int[]) AS u(annotation_id, version)"
                " JOIN proj_annotation_revisions r ON r.tenant = %s AND r.annotation_id = u.annotation_id"
                " AND r.version = u.version AND r.change IN ('created', 'updated')"
                " JOIN ledger_events e ON e.log = r.log AND e.position = r.position",
                ([a for a, _ in earlier], [v for _, v in earlier], tenant),
            )
        for row in rows:
            _note_model(upcast(json.loads(bytes(row["canonical"]))["event"])["data"], made)
    return made


def _annotation_key(data: dict[str, Any]) -> AnnotationVersion:
    return (str(data["dataset"]), str(data["item"]), str(data["annotation_id"]), int(data["version"]))


def _note_model(data: dict[str, Any], made: dict[AnnotationVersion, Model]) -> None:
    if data.get("origin") == "model":
        version = data.get("model_version")
        made[_annotation_key(data)] = (
            str(data.get("model_name") or "unnamed model"),
            None if version is None else str(version),
        )


def export(db: Database, window: Window, fmt: str) -> FhirExport:
    """Select, map and pack the export of ``window`` as ``fmt`` (``bundle`` or ``ndjson``)."""
    return pack(db, window, select(db, window), fmt)


def pack(
    db: Database, window: Window, sources: list[Source], fmt: str, *, progress: Progress | None = None
) -> FhirExport:
    """Map the selected ``sources`` and pack them as ``fmt``; ``progress`` counts the events mapped."""
    made = model_versions(db, window.tenant, sources)
    mapped = resources(sources, made, progress=progress)
    if fmt == "ndjson":
        body = ndjson_bytes(mapped)
    else:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        name = f"fhir-export:{window.since.isoformat()}/{window.until.isoformat()}@{now}"
        body = bundle_bytes(mapped, bundle_id=resource_id(window.tenant, name), timestamp=now)
    return FhirExport(window, fmt, body, len(mapped), hashlib.sha256(body).hexdigest())


def parameters(produced: FhirExport, *, requested_by: str) -> dict[str, str]:
    """What the export's records say it covered."""
    return {
        "since": produced.window.since.isoformat(),
        "until": produced.window.until.isoformat(),
        "format": produced.format,
        "resource_count": str(produced.resources),
        "requested_by": requested_by,
    }


def report_generated(produced: FhirExport, *, requested_by: str) -> ReceivedEvent:
    """The export's ``ledger.report_generated`` event: its SHA-256 pins the exact bytes handed over."""
    data = {
        "report": REPORT,
        "sha256": produced.sha256,
        "parameters": parameters(produced, requested_by=requested_by),
    }
    return ledger_event("ledger.report_generated", produced.window.tenant, data)


def exported(produced: FhirExport, *, actor: str, purpose: str) -> ReceivedEvent:
    """The ``access.data_exported`` event of an export made outside the HTTP API (``ledger export fhir``),
    in the ledger's own envelope: who ran it, what it covered, how many resources left."""
    resource = f"fhir:{produced.window.since.isoformat()}/{produced.window.until.isoformat()}"
    data: dict[str, Any] = {
        "resource": resource,
        "purpose_of_use": purpose,
        "outcome": "success",
        "record_count": produced.resources,
        "query": {k: v for k, v in parameters(produced, requested_by=actor).items() if k != "requested_by"},
    }
    return ledger_event(EXPORTED_ACCESS, produced.window.tenant, data, subject=resource, actor=actor,
                        actorrole="cli")  # fmt: skip
