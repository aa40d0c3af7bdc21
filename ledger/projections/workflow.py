"""The annotation workflow projection: label state and lineage, final labels, credentials over time,
guidelines, assignments, and the compliance flags that follow from them (DESIGN §5).

One projector, because the flags need all of it at once: was the annotator qualified *at that moment*,
was the guideline version in effect, did the annotation exist when it was reviewed. State for a batch
is loaded in a few queries, events are applied in log order in memory (``apply_events``, pure), and
changed rows are written back in bulk, so the same code serves the inline path and
``ledger projections rebuild``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from psycopg.rows import dict_row

from ledger.domain.upcasting import upcast
from ledger.projections.admissible import ACCEPTED, foreign_hold_log, unholdable
from ledger.projections.bulk import Rows, save_rows
from ledger.projections.credentials import credential_ended, credential_issued, training_completed
from ledger.projections.guidelines import assignment_changed, guideline_published, guideline_retired
from ledger.projections.labels import (
    adjudication_completed,
    annotation_deleted,
    annotation_written,
    review_submitted,
)
from ledger.projections.state import Event, State, flag
from ledger.projections.tables import Connection, Row, select_by_pairs
from ledger.storage.append import Recorded

TABLES = (
    "proj_annotations",
    "proj_annotation_revisions",
    "proj_final_labels",
    "proj_credentials",
    "proj_trainings",
    "proj_guidelines",
    "proj_assignments",
    "proj_flags",
)
_PAIRS = "unnest(%s::text[], %s::text[]) AS u(a, b)"

HANDLERS: dict[str, Callable[[State, Event], None]] = {
    "annotation.created": annotation_written,
    "annotation.updated": annotation_written,
    "annotation.deleted": annotation_deleted,
    "review.submitted": review_submitted,
    "adjudication.completed": adjudication_completed,
    "credential.granted": credential_issued,
    "credential.renewed": credential_issued,
    "credential.revoked": credential_ended,
    "credential.expired": credential_ended,
    "training.completed": training_completed,
    "guideline.published": guideline_published,
    "guideline.retired": guideline_retired,
    "assignment.created": assignment_changed,
    "assignment.revoked": assignment_changed,
}


class WorkflowProjector:
    """Label state, lineage, credentials, guidelines, assignments and compliance flags."""

    name: str = "workflow"
    tables: tuple[str, ...] = TABLES

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Project ``events`` (in log order within each log) in the caller's transaction."""
        batch = [Event(r, upcast(r.event)) for r in events]
        st = _load(conn, [ev for ev in batch if ev.type in HANDLERS])
        apply_events(st, batch)
        _save(conn, st)


def apply_events(st: State, batch: Iterable[Event]) -> None:
    """Apply ``batch`` in order to ``st``: each event either changes the state by its type's rule or is
    flagged as one the projections cannot apply (a value they cannot hold, a hold on another tenant)."""
    for ev in batch:
        if problems := unholdable(ev.body):
            d = ev.body.get("data") or {}
            values = "; ".join(f"{name} = {value!r}" for name, value in problems)
            flag(
                st,
                ev,
                "unprojectable_event",
                f"{ev.type} {ev.id} holds {values}, outside what the ledger"
                f" accepts ({ACCEPTED}); {_left_out(ev.type)}",
                [],
                dataset=_text(d.get("dataset")),
                item=_text(d.get("item")),
            )
        elif log := foreign_hold_log(ev.body):
            flag(
                st,
                ev,
                "hold_outside_tenant",
                f"legal hold {ev.body['data'].get('hold_id')} of tenant"
                f" {ev.tenant} names log {log!r}, which is not its own; it holds nothing",
                [],
            )
        elif (handler := HANDLERS.get(ev.type)) is not None:
            handler(st, ev)


def _left_out(type_name: str) -> str:
    if type_name == "retention.hold_released":
        return "the release is not applied, so the hold stays"
    if type_name.startswith(("retention.", "erasure.")):
        return "the retention index keeps it at its recorded time"
    return "it stays in the log and provenance, and is left out of label, credential and guideline state"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# ---- loading and saving ----------------------------------------------------------------------------------


def _load(conn: Connection, batch: list[Event]) -> State:
    """The rows ``batch`` may read: four queries, none when a batch names nothing of a kind."""
    st = State()
    ann_keys: set[tuple[str, str]] = set()
    people: set[tuple[str, str]] = set()
    credentials: set[tuple[str, str]] = set()
    assignment_keys: set[tuple[str, str]] = set()
    tenants: set[str] = set()
    for ev in batch:
        tenant, d = ev.tenant, ev.data
        tenants.add(tenant)
        people.add((tenant, ev.actor))
        for key in ("annotation_id", "resulting_annotation_id", "final_annotation_id"):
            if isinstance(value := d.get(key), str):
                ann_keys.add((tenant, value))
        for ann in d.get("annotation_ids") or ():
            ann_keys.add((tenant, ann))
        for key, keys in (
            ("annotator", people),
            ("credential_id", credentials),
            ("assignment_id", assignment_keys),
        ):
            if isinstance(value := d.get(key), str):
                keys.add((tenant, value))
    for row in select_by_pairs(
        conn,
        f"SELECT p.* FROM proj_annotations p JOIN {_PAIRS} ON p.tenant = u.a AND p.annotation_id = u.b",
        ann_keys,
    ):
        st.annotations[(row["tenant"], row["annotation_id"])] = row
    # Every period of everyone acting or credentialed in the batch, and of whoever holds a credential
    # id it names (a credential id belongs to one annotator).
    for row in _select_periods(conn, people, credentials):
        st.periods.setdefault((row["tenant"], row["annotator"]), []).append(row)
        st.holders[(row["tenant"], row["credential_id"])] = row["annotator"]
    for row in select_by_pairs(
        conn, f"SELECT p.* FROM proj_guidelines p JOIN {_PAIRS} ON p.tenant = u.a", ((t, "") for t in tenants)
    ):
        st.guidelines[(row["tenant"], row["guideline_id"], row["version"])] = row
    for row in select_by_pairs(
        conn,
        f"SELECT p.* FROM proj_assignments p JOIN {_PAIRS} ON p.tenant = u.a AND p.assignment_id = u.b",
        assignment_keys,
    ):
        st.assignments[(row["tenant"], row["assignment_id"])] = row
    return st


def _select_periods(
    conn: Connection, people: set[tuple[str, str]], credentials: set[tuple[str, str]]
) -> list[Row]:
    if not people and not credentials:
        return []
    person, credential = sorted(people), sorted(credentials)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "WITH holders AS (SELECT c.tenant, c.annotator FROM proj_credentials c"
            " JOIN unnest(%s::text[], %s::text[]) AS u(a, b) ON c.tenant = u.a AND c.credential_id = u.b)"
            " SELECT p.* FROM proj_credentials p WHERE (p.tenant, p.annotator) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[]) UNION SELECT * FROM holders)"
            " ORDER BY p.credential_id, p.period",
            (
                [t for t, _ in credential],
                [c for _, c in credential],
                [t for t, _ in person],
                [a for _, a in person],
            ),
        )
        return list(cur.fetchall())


def _save(conn: Connection, st: State) -> None:
    def changed(table: str, rows: dict[Any, Row]) -> list[Row]:
        return [rows[k] for k in sorted(st.dirty.get(table, ()))]

    periods = {
        (p["tenant"], p["credential_id"], str(p["period"])): p for rows in st.periods.values() for p in rows
    }
    save_rows(
        conn,
        Rows("proj_annotations", ("tenant", "annotation_id"), changed("proj_annotations", st.annotations)),
        Rows("proj_annotation_revisions", ("tenant", "annotation_id", "log", "position"), st.revisions),
        Rows("proj_final_labels", ("tenant", "dataset", "item"), list(st.finals.values())),
        Rows("proj_credentials", ("tenant", "credential_id", "period"), changed("proj_credentials", periods)),
        Rows("proj_trainings", ("tenant", "event_id"), st.trainings, update=False),
        Rows(
            "proj_guidelines",
            ("tenant", "guideline_id", "version"),
            changed("proj_guidelines", st.guidelines),
        ),
        Rows("proj_assignments", ("tenant", "assignment_id"), changed("proj_assignments", st.assignments)),
        Rows("proj_flags", ("tenant", "flag_id"), st.flags, update=False),
    )
