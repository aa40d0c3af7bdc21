"""The annotation workflow projection: label state and lineage, final labels, credentials over time,
guidelines, assignments, and the compliance flags that follow from them (DESIGN §5).

One projector, because the flags need all of it at once: was the annotator qualified *at that moment*,
was the guideline version in effect, did the annotation exist when it was reviewed. State for a batch
is loaded in a few queries, events are applied in log order in memory, and changed rows are written
back in bulk, so the same code serves the inline path and ``ledger projections rebuild``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ledger.domain.upcasting import upcast
from ledger.projections.qualification import ROLE_FOR_REVIEW_LEVEL, Period, qualifying
from ledger.projections.tables import Connection, Row, parse_time, select_by_pairs, upsert
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


@dataclass
class _Event:
    """One recorded event, upcast, with the fields every handler needs."""

    rec: Recorded
    body: dict[str, Any]

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.body["data"])

    @property
    def tenant(self) -> str:
        return str(self.body["tenant"])

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def actor(self) -> str:
        return str(self.body["actor"])

    @property
    def time(self) -> datetime:
        return parse_time(self.body["time"])

    def stamp(self) -> dict[str, Any]:
        return {"log": self.rec.log, "position": self.rec.position}


@dataclass
class _State:
    annotations: dict[tuple[str, str], Row] = field(default_factory=dict)
    periods: dict[tuple[str, str], list[Row]] = field(default_factory=dict)  # by (tenant, annotator)
    guidelines: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    assignments: dict[tuple[str, str], Row] = field(default_factory=dict)
    dirty: dict[str, set[Any]] = field(default_factory=dict)
    revisions: list[Row] = field(default_factory=list)
    finals: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    trainings: list[Row] = field(default_factory=list)
    flags: list[Row] = field(default_factory=list)

    def touch(self, table: str, key: tuple[str, ...]) -> None:
        self.dirty.setdefault(table, set()).add(key)


class WorkflowProjector:
    """Label state, lineage, credentials, guidelines, assignments and compliance flags."""

    name: str = "workflow"
    tables: tuple[str, ...] = TABLES

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Project ``events`` (in log order within each log) in the caller's transaction."""
        batch = [_Event(r, upcast(r.event)) for r in events if str(r.event.get("type")) in _HANDLERS]
        if not batch:
            return
        st = _load(conn, batch)
        for ev in batch:
            _HANDLERS[str(ev.body["type"])](st, ev)
        _save(conn, st)


# ---- loading and saving ----------------------------------------------------------------------------------


def _load(conn: Connection, batch: list[_Event]) -> _State:
    st = _State()
    ann_keys, people, tenants, assignment_keys = set(), set(), set(), set()
    for ev in batch:
        tenants.add(ev.tenant)
        people.add((ev.tenant, ev.actor))
        d = ev.body["data"]
        for key in ("annotation_id", "resulting_annotation_id", "final_annotation_id"):
            if isinstance(d.get(key), str):
                ann_keys.add((ev.tenant, d[key]))
        for ann in d.get("annotation_ids") or []:
            ann_keys.add((ev.tenant, ann))
        if isinstance(d.get("annotator"), str):
            people.add((ev.tenant, d["annotator"]))
        if isinstance(d.get("assignment_id"), str):
            assignment_keys.add((ev.tenant, d["assignment_id"]))
    for row in select_by_pairs(
        conn,
        f"SELECT p.* FROM proj_annotations p JOIN {_PAIRS} ON p.tenant = u.a AND p.annotation_id = u.b",
        ann_keys,
    ):
        st.annotations[(row["tenant"], row["annotation_id"])] = row
    for row in select_by_pairs(
        conn,
        f"SELECT p.* FROM proj_credentials p JOIN {_PAIRS} ON p.tenant = u.a AND p.annotator = u.b"
        " ORDER BY p.credential_id, p.period",
        people,
    ):
        st.periods.setdefault((row["tenant"], row["annotator"]), []).append(row)
    for row in select_by_pairs(
        conn, f"SELECT p.* FROM proj_guidelines p JOIN {_PAIRS} ON p.tenant = u.a", ((t, "") for t in tenants)
    ):
        st.guidelines[(row["tenant"], row["guideline_id"], row["version"])] = row
    for row in select_by_pairs(
        conn, f"SELECT p.* FROM proj_assignments p JOIN {_PAIRS} ON p.tenant = u.a AND p.assignment_id = u.b",
        assignment_keys,
    ):  # fmt: skip
        st.assignments[(row["tenant"], row["assignment_id"])] = row
    return st


def _save(conn: Connection, st: _State) -> None:
    annotations = [dict(st.annotations[k], geometry=Jsonb(st.annotations[k]["geometry"]))
                   for k in sorted(st.dirty.get("proj_annotations", ()))]  # fmt: skip
    upsert(conn, "proj_annotations", ("tenant", "annotation_id"), annotations)
    upsert(conn, "proj_annotation_revisions", ("tenant", "annotation_id", "log", "position"), st.revisions)
    upsert(conn, "proj_final_labels", ("tenant", "dataset", "item"), st.finals.values())
    periods = [p for rows in st.periods.values() for p in rows
               if (p["tenant"], p["credential_id"], str(p["period"])) in st.dirty.get("proj_credentials", ())]  # fmt: skip
    upsert(conn, "proj_credentials", ("tenant", "credential_id", "period"), periods)
    upsert(conn, "proj_trainings", ("tenant", "event_id"), st.trainings, update=False)
    upsert(conn, "proj_guidelines", ("tenant", "guideline_id", "version"),
           [st.guidelines[k] for k in sorted(st.dirty.get("proj_guidelines", ()))])  # fmt: skip
    upsert(conn, "proj_assignments", ("tenant", "assignment_id"),
           [st.assignments[k] for k in sorted(st.dirty.get("proj_assignments", ()))])  # fmt: skip
    upsert(conn, "proj_flags", ("tenant", "flag_id"), st.flags, update=False)


# ---- rules -----------------------------------------------------------------------------------------------


def _periods(st: _State, tenant: str, person: str) -> list[Period]:
    return [
        Period(p["credential_id"], p["period"], p["annotator"], p["kind"], p["level"], p["valid_from"],
               p["valid_until"], p["ended_at"], p["event_id"])
        for p in st.periods.get((tenant, person), [])
    ]  # fmt: skip


def _flag(
    st: _State, ev: _Event, kind: str, rule: str, detail: str, evidence: list[str], **where: str | None
) -> None:
    st.flags.append({
        "tenant": ev.tenant, "flag_id": f"{kind}:{ev.id}", "kind": kind, "rule": rule, "actor": ev.actor,
        "dataset": where.get("dataset"), "item": where.get("item"), "detail": detail,
        "evidence": [ev.id, *evidence], "occurred_at": ev.time, **ev.stamp(),
    })  # fmt: skip


def _check_qualified(st: _State, ev: _Event, role: str, what: str, d: dict[str, Any]) -> None:
    periods = _periods(st, ev.tenant, ev.actor)
    if qualifying(periods, role, ev.time):
        return
    # Sorted, so the evidence reads the same however the credentials were batched (inline or rebuild).
    held = [p.event_id for p in sorted(periods, key=lambda p: (p.credential_id, p.period))]
    detail = f"{what} by {ev.actor} at {ev.time.isoformat()} with no valid {role} credential" + (
        " (credentials on record were not valid then)" if held else " (no credential on record)"
    )
    _flag(
        st,
        ev,
        f"unqualified_{role}",
        "21 CFR 11.10(d),(g)",
        detail,
        held,
        dataset=d.get("dataset"),
        item=d.get("item"),
    )


def _check_guideline(st: _State, ev: _Event, d: dict[str, Any]) -> None:
    key = (ev.tenant, d["guideline_id"], d["guideline_version"])
    guideline = st.guidelines.get(key)
    name = f"{d['guideline_id']} {d['guideline_version']}"
    if guideline is None:
        detail = f"annotation under guideline {name}, which was never published"
    elif ev.time < guideline["effective_from"]:
        detail = f"annotation under guideline {name} before it took effect ({guideline['effective_from'].isoformat()})"
    elif guideline["effective_until"] is not None and ev.time >= guideline["effective_until"]:
        detail = f"annotation under guideline {name} after it left effect ({guideline['effective_until'].isoformat()})"
    else:
        return
    _flag(st, ev, "guideline_not_in_effect", "21 CFR 820.30 / labelling protocol", detail, [],
          dataset=d["dataset"], item=d["item"])  # fmt: skip


# ---- handlers --------------------------------------------------------------------------------------------


def _annotation_written(st: _State, ev: _Event) -> None:
    d = ev.data
    key = (ev.tenant, d["annotation_id"])
    if d["origin"] == "human":
        _check_qualified(st, ev, "annotator", "annotation", d)
    _check_guideline(st, ev, d)
    existing = st.annotations.get(key)
    st.annotations[key] = {
        "tenant": ev.tenant, "annotation_id": d["annotation_id"], "dataset": d["dataset"], "item": d["item"],
        "version": d["version"], "label_class": d["label_class"], "geometry": d["geometry"], "origin": d["origin"],
        "model_name": d.get("model_name"), "model_version": d.get("model_version"),
        "guideline_id": d["guideline_id"], "guideline_version": d["guideline_version"],
        "status": "draft" if d["origin"] == "model" else "submitted", "review_level": None, "reviewers": [],
        "created_by": existing["created_by"] if existing else ev.actor,
        "created_at": existing["created_at"] if existing else ev.time, "updated_at": ev.time, **ev.stamp(),
    }  # fmt: skip
    st.touch("proj_annotations", key)
    change = "created" if ev.body["type"] == "annotation.created" else "updated"
    _revision(st, ev, d["annotation_id"], change, version=d["version"], label_class=d["label_class"],
              guideline_version=d["guideline_version"])  # fmt: skip


def _annotation_deleted(st: _State, ev: _Event) -> None:
    d = ev.data
    key = (ev.tenant, d["annotation_id"])
    row = st.annotations.get(key)
    if row is None:
        _flag(st, ev, "review_before_annotation", "21 CFR 11.10(f)",
              f"deletion of annotation {d['annotation_id']}, which does not exist", [],
              dataset=d["dataset"], item=d["item"])  # fmt: skip
        return
    st.annotations[key] = {
        **row,
        "status": "deleted",
        "version": d["version"],
        "updated_at": ev.time,
        **ev.stamp(),
    }
    st.touch("proj_annotations", key)
    _revision(st, ev, d["annotation_id"], "deleted", version=d["version"])


def _review_submitted(st: _State, ev: _Event) -> None:
    d = ev.data
    key = (ev.tenant, d["annotation_id"])
    role = ROLE_FOR_REVIEW_LEVEL.get(d["level"])
    if role is not None:
        _check_qualified(st, ev, role, f"level-{d['level']} review", d)
    row = st.annotations.get(key)
    if row is None or row["version"] < d["annotation_version"] or ev.time < row["created_at"]:
        what = (
            "does not exist yet"
            if row is None
            else f"was at version {row['version']}, created {row['created_at'].isoformat()}"
        )
        _flag(st, ev, "review_before_annotation", "21 CFR 11.10(f)",
              f"review of annotation {d['annotation_id']} v{d['annotation_version']}, which {what}", [],
              dataset=d["dataset"], item=d["item"])  # fmt: skip
        if row is None:
            return
    elif row["version"] != d["annotation_version"] or row["status"] == "deleted":
        # A review of an earlier version, or of a deleted annotation, says nothing about the current one:
        # it stays on the lineage, and the current state is left as it is.
        _flag(st, ev, "review_of_other_version", "21 CFR 11.10(f)",
              f"review of annotation {d['annotation_id']} v{d['annotation_version']}, but it is at "
              f"v{row['version']} ({row['status']})", [], dataset=d["dataset"], item=d["item"])  # fmt: skip
        _revision(st, ev, d["annotation_id"], "reviewed", version=d["annotation_version"], review_level=d["level"],
                  decision=d["decision"])  # fmt: skip
        return
    status = {"accept": "reviewed", "reject": "rejected", "modify": "modified"}[d["decision"]]
    level = max(row["review_level"] or 0, d["level"]) if status == "reviewed" else row["review_level"]
    reviewers = [*row["reviewers"], ev.actor] if ev.actor not in row["reviewers"] else row["reviewers"]
    st.annotations[key] = {**row, "status": status, "review_level": level, "reviewers": reviewers,
                           "updated_at": ev.time, **ev.stamp()}  # fmt: skip
    st.touch("proj_annotations", key)
    _revision(st, ev, d["annotation_id"], "reviewed", version=d["annotation_version"], review_level=d["level"],
              decision=d["decision"])  # fmt: skip


def _adjudication_completed(st: _State, ev: _Event) -> None:
    d = ev.data
    role = ROLE_FOR_REVIEW_LEVEL.get(d["level"])
    if role is not None:
        _check_qualified(st, ev, role, f"level-{d['level']} adjudication", d)
    referenced = [*d["annotation_ids"], d["final_annotation_id"]]
    missing = sorted({a for a in referenced if (ev.tenant, a) not in st.annotations})
    if missing:
        _flag(st, ev, "review_before_annotation", "21 CFR 11.10(f)",
              f"adjudication of {d['item']} refers to annotations that do not exist yet: {', '.join(missing)}", [],
              dataset=d["dataset"], item=d["item"])  # fmt: skip
    st.finals[(ev.tenant, d["dataset"], d["item"])] = {
        "tenant": ev.tenant, "dataset": d["dataset"], "item": d["item"], "annotation_id": d["final_annotation_id"],
        "label_class": d["final_label_class"], "method": d["method"], "level": d["level"], "decided_by": ev.actor,
        "decided_at": ev.time, "event_id": ev.id, **ev.stamp(),
    }  # fmt: skip
    final_key = (ev.tenant, d["final_annotation_id"])
    if final_key in st.annotations:
        row = st.annotations[final_key]
        st.annotations[final_key] = {**row, "status": "adjudicated", "updated_at": ev.time, **ev.stamp()}
        st.touch("proj_annotations", final_key)
    for ann in sorted(set(referenced) - set(missing)):
        _revision(st, ev, ann, "adjudicated", review_level=d["level"],
                  decision="selected" if ann == d["final_annotation_id"] else "not_selected")  # fmt: skip


def _revision(st: _State, ev: _Event, annotation_id: str, change: str, **values: Any) -> None:
    st.revisions.append({
        "tenant": ev.tenant, "annotation_id": annotation_id, **ev.stamp(), "event_id": ev.id, "change": change,
        "version": values.get("version"), "actor": ev.actor, "label_class": values.get("label_class"),
        "guideline_version": values.get("guideline_version"), "review_level": values.get("review_level"),
        "decision": values.get("decision"), "occurred_at": ev.time,
    })  # fmt: skip


def _credential_issued(st: _State, ev: _Event) -> None:
    d = ev.data
    rows = st.periods.setdefault((ev.tenant, d["annotator"]), [])
    period = 1 + max((r["period"] for r in rows if r["credential_id"] == d["credential_id"]), default=0)
    rows.append({
        "tenant": ev.tenant, "credential_id": d["credential_id"], "period": period, "annotator": d["annotator"],
        "kind": d["kind"], "level": d.get("level"), "specialty": d.get("specialty"), "issuer": d["issuer"],
        "valid_from": parse_time(d["valid_from"]),
        "valid_until": parse_time(d["valid_until"]) if d.get("valid_until") else None,
        "ended_at": None, "ended_by": None, "event_id": ev.id, **ev.stamp(),
    })  # fmt: skip
    st.touch("proj_credentials", (ev.tenant, d["credential_id"], str(period)))


def _credential_ended(st: _State, ev: _Event) -> None:
    d = ev.data
    rows = [
        r for r in st.periods.get((ev.tenant, d["annotator"]), []) if r["credential_id"] == d["credential_id"]
    ]
    open_rows = [r for r in rows if r["ended_at"] is None]
    if not open_rows:
        return  # ending a credential never granted, or twice: nothing to close; the event stays on the record
    latest = open_rows[-1]
    latest.update(
        ended_at=parse_time(d["effective_at"]), ended_by=ev.body["type"].split(".")[1], **ev.stamp()
    )
    st.touch("proj_credentials", (ev.tenant, d["credential_id"], str(latest["period"])))


def _training_completed(st: _State, ev: _Event) -> None:
    d = ev.data
    st.trainings.append({
        "tenant": ev.tenant, "event_id": ev.id, "annotator": d["annotator"], "course": d["course_title"],
        "completed_at": parse_time(d["completed_at"]),
        "valid_until": parse_time(d["valid_until"]) if d.get("valid_until") else None,
        "guideline_id": d.get("guideline_id"), "guideline_version": d.get("guideline_version"), **ev.stamp(),
    })  # fmt: skip


def _guideline_published(st: _State, ev: _Event) -> None:
    d = ev.data
    effective_from = parse_time(d["effective_from"])
    key = (ev.tenant, d["guideline_id"], d["version"])
    st.guidelines[key] = {
        "tenant": ev.tenant, "guideline_id": d["guideline_id"], "version": d["version"], "title": d["title"],
        "document_sha256": d["document_sha256"], "effective_from": effective_from, "effective_until": None,
        "supersedes": d.get("supersedes"), "superseded_by": None, **ev.stamp(),
    }  # fmt: skip
    st.touch("proj_guidelines", key)
    old_key = (ev.tenant, d["guideline_id"], d.get("supersedes") or "")
    if old_key in st.guidelines:
        old = st.guidelines[old_key]
        until = old["effective_until"] if old["effective_until"] is not None else effective_from
        st.guidelines[old_key] = {
            **old,
            "superseded_by": d["version"],
            "effective_until": until,
            **ev.stamp(),
        }
        st.touch("proj_guidelines", old_key)


def _guideline_retired(st: _State, ev: _Event) -> None:
    d = ev.data
    key = (ev.tenant, d["guideline_id"], d["version"])
    if key in st.guidelines:
        until = parse_time(d["effective_until"])
        current = st.guidelines[key]["effective_until"]
        st.guidelines[key] = {**st.guidelines[key], "effective_until": min(until, current) if current else until,
                              **ev.stamp()}  # fmt: skip
        st.touch("proj_guidelines", key)


def _assignment_changed(st: _State, ev: _Event) -> None:
    d = ev.data
    key = (ev.tenant, d["assignment_id"])
    created = ev.body["type"] == "assignment.created"
    existing = st.assignments.get(key)
    st.assignments[key] = {
        "tenant": ev.tenant, "assignment_id": d["assignment_id"], "dataset": d["dataset"], "items": list(d["items"]),
        "assignee": d["assignee"], "role": d["role"], "active": created,
        "created_at": existing["created_at"] if existing else ev.time,
        "revoked_at": None if created else ev.time, **ev.stamp(),
    }  # fmt: skip
    st.touch("proj_assignments", key)


_HANDLERS: dict[str, Callable[[_State, _Event], None]] = {
    "annotation.created": _annotation_written,
    "annotation.updated": _annotation_written,
    "annotation.deleted": _annotation_deleted,
    "review.submitted": _review_submitted,
    "adjudication.completed": _adjudication_completed,
    "credential.granted": _credential_issued,
    "credential.renewed": _credential_issued,
    "credential.revoked": _credential_ended,
    "credential.expired": _credential_ended,
    "training.completed": _training_completed,
    "guideline.published": _guideline_published,
    "guideline.retired": _guideline_retired,
    "assignment.created": _assignment_changed,
    "assignment.revoked": _assignment_changed,
}
