"""Each annotation of a release's lineage at the version the projection holds: the events replayed by the
projection's own rule for what moves an annotation forward (``labels.annotation_step``), so a late older
version or a re-posted creation the projection refuses is refused here too. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.projections.labels import APPLIED_STEPS, annotation_step
from ledger.reports.lineage_data import Event, Row

ANNOTATION_TYPES = frozenset({"annotation.created", "annotation.updated", "annotation.deleted"})


def annotation_states(events: Iterable[Event]) -> dict[str, Row]:
    """Annotation id -> its state after ``events`` (log order), shaped as its ``proj_annotations`` row
    (``status`` is ``deleted`` or ``live``), with ``event``: the event of the version on record, and
    ``created_event``: the event that created it (a creation after a deletion creates it anew)."""
    rows: dict[str, Row] = {}
    for ev in events:
        if ev.type not in ANNOTATION_TYPES:
            continue
        d = ev.data
        key = str(d["annotation_id"])
        row = rows.get(key)
        if ev.type == "annotation.deleted":
            # A deletion of an annotation not on record changes nothing (``labels.annotation_deleted``).
            if row is not None and annotation_step(row, d, created=False) in APPLIED_STEPS:
                rows[key] = {**row, "status": "deleted", "version": d["version"], "event": ev}
            continue
        created = ev.type == "annotation.created"
        if annotation_step(row, d, created=created) not in APPLIED_STEPS:
            continue
        creation = ev if created or row is None else row["created_event"]
        rows[key] = {
            "annotation_id": key,
            "dataset": str(d["dataset"]),
            "item": str(d["item"]),
            "version": d["version"],
            "label_class": str(d["label_class"]),
            "geometry": d.get("geometry"),
            "origin": d.get("origin"),
            "guideline_id": str(d["guideline_id"]),
            "status": "live",
            "created_by": row["created_by"] if row is not None else ev.actor,
            "created_at": row["created_at"] if row is not None else ev.time,
            "created_event": creation,
            "created_event_id": creation.id,
            "event": ev,
        }
    return rows
