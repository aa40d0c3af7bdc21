"""Each released item's lineage: its events as the report shows them, and how its final label was reached.

Pure: the events and projection rows of ``lineage_data.Collected`` in, JSON-ready dicts out. Sealed values
(comments, license numbers, source addresses) are never copied: every field shown is named here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.projections.labels import guideline_not_in_effect
from ledger.projections.qualification import ROLE_FOR_REVIEW_LEVEL
from ledger.projections.queries import Standings
from ledger.reports.lineage_data import Event, Row
from ledger.reports.lineage_versions import ANNOTATION_TYPES, annotation_states

SHOWING_ACCESS = frozenset({"access.data_viewed", "access.data_exported", "access.break_glass"})
"""Accesses that show what they name (a denied access shows nothing)."""
TaskOf = Callable[[str, str], str]
"""``(dataset, guideline_id) -> task name``."""


@dataclass(frozen=True)
class Shown:
    """What an access to an item showed: one annotation, or every annotation the item had then."""

    annotation_id: str | None
    """``None``: the item's labels, all of them."""


def shown_by(resource: str, dataset: str, item: str) -> Shown | None:
    """What an access's ``resource`` shows of ``dataset``/``item`` (contract: "Access events that show a label")."""
    prefix = f"{dataset}/{item}/"
    if not resource.startswith(prefix):
        return None
    rest = resource[len(prefix) :]
    if rest == "labels":
        return Shown(None)
    kind, slash, annotation = rest.partition("/")
    if kind == "annotations" and slash and annotation and "/" not in annotation:
        return Shown(annotation)
    return None


def role_of(ev: Event) -> str | None:
    """The workflow role an event's work needs (``qualification.ROLE_REQUIREMENTS``), or ``None``."""
    if ev.type in ("annotation.created", "annotation.updated"):
        return "annotator" if ev.data.get("origin") == "human" else None
    if ev.type in ("review.submitted", "adjudication.completed"):
        return ROLE_FOR_REVIEW_LEVEL.get(ev.data.get("level", 0))
    return None


NO_CREDENTIALS = Standings([])


def standings_of(periods: Mapping[str, list[Row]]) -> dict[str, Standings]:
    """Each actor's ``Standings`` from their ``proj_credentials`` rows (``Collected.periods``)."""
    return {actor: Standings(rows) for actor, rows in periods.items()}


def actor_standing(ev: Event, standings: Mapping[str, Standings]) -> Row | None:
    """The actor's credential standing at the event's time, and whether it qualified for the work's role."""
    role = role_of(ev)
    if role is None:
        return None
    held = standings.get(ev.actor, NO_CREDENTIALS).at(ev.time)
    return {"role": role, "qualified": role in held["qualified_for"], **held}


def shown_event(
    ev: Event,
    standings: Mapping[str, Standings],
    guidelines: Mapping[tuple[str, str], Row],
    task_of: TaskOf,
) -> Row:
    """One item event as the report lists it."""
    d = ev.data
    out: Row = {
        "event_id": ev.id,
        "type": ev.type,
        "log": ev.log,
        "position": ev.position,
        "time": ev.time,
        "recorded_at": ev.recorded_at,
        "actor": ev.actor,
        "actorrole": ev.actorrole,
    }
    if ev.type in ANNOTATION_TYPES:
        out.update(_pick(d, "annotation_id", "version", "previous_version"))
    if ev.type in ("annotation.created", "annotation.updated"):
        guideline = (str(d["guideline_id"]), str(d["guideline_version"]))
        note = guideline_not_in_effect(guidelines.get(guideline), " ".join(guideline), ev.time)
        geometry = d.get("geometry")
        out.update(
            _pick(
                d, "label_class", "origin", "model_name", "model_version", "guideline_id", "guideline_version"
            ),
            geometry=geometry.get("kind") if isinstance(geometry, dict) else None,
            task=task_of(str(d["dataset"]), guideline[0]),
            guideline_in_effect=note is None,
            guideline_note=note,
        )
    elif ev.type == "review.submitted":
        out.update(
            _pick(
                d,
                "annotation_id",
                "annotation_version",
                "level",
                "decision",
                "resulting_annotation_id",
                "resulting_version",
                "signature_meaning",
            )
        )
    elif ev.type == "adjudication.completed":
        out.update(
            _pick(
                d,
                "annotation_ids",
                "final_annotation_id",
                "final_label_class",
                "level",
                "method",
                "signature_meaning",
            )
        )
    elif ev.type.startswith("access."):
        out.update(_pick(d, "resource", "purpose_of_use", "outcome", "record_count"))
    elif ev.type.startswith("assignment."):
        out.update(_pick(d, "assignment_id", "assignee", "role"))
    held = actor_standing(ev, standings)
    if held is not None:
        out["standing"] = held
    return out


def _pick(d: Mapping[str, Any], *keys: str) -> Row:
    return {k: d.get(k) for k in keys}


def trace(final: Row, events: Iterable[Event]) -> Row:
    """How the released label was reached: the annotation version that carries it (the one the projection
    holds, ``lineage_versions``) and the adjudication that selected it, or why it cannot be traced
    (``status``: traced, label_differs, deleted, not_found)."""
    label, wanted = final["label_class"], final.get("annotation_id")
    events = list(events)
    versions: dict[str, Event] = {a: row["event"] for a, row in annotation_states(events).items()}
    adjudications = [ev for ev in events if ev.type == "adjudication.completed"]
    chosen = wanted
    adjudication = None
    if chosen is None:
        adjudication = next(
            (a for a in reversed(adjudications) if a.data["final_label_class"] == label), None
        )
        if adjudication is not None:
            chosen = str(adjudication.data["final_annotation_id"])
        else:
            chosen = next(
                (
                    a
                    for a, v in versions.items()
                    if v.data.get("label_class") == label and v.type != "annotation.deleted"
                ),
                None,
            )
    else:
        adjudication = next(
            (a for a in reversed(adjudications) if a.data["final_annotation_id"] == chosen), None
        )
    latest = versions.get(chosen) if chosen is not None else None
    if latest is None:
        status = "not_found"
    elif latest.type == "annotation.deleted":
        status = "deleted"
    elif latest.data.get("label_class") != label and (
        adjudication is None or adjudication.data["final_label_class"] != label
    ):
        status = "label_differs"
    else:
        status = "traced"
    return {
        "status": status,
        "annotation_id": chosen,
        "annotation_event_id": latest.id if latest is not None else None,
        "annotation_label_class": latest.data.get("label_class") if latest is not None else None,
        "adjudication_event_id": adjudication.id if adjudication is not None else None,
    }
