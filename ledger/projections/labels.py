"""Rules for label state: annotation versions, reviews, adjudications, and the checks on the work itself
(was the actor qualified then, was the guideline version in effect).

An annotation moves only forward: a version applies when it is newer than the one on record, and an
event that would rewind or overwrite what is recorded is flagged and left out of the state (it stays in
the log, in provenance and, for reviews, on the lineage). See ``flags.FLAG_KINDS`` for each flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ledger.projections.qualification import ROLE_FOR_REVIEW_LEVEL, Period, qualifying
from ledger.projections.state import Event, Row, State, flag


def annotation_written(st: State, ev: Event) -> None:
    """``annotation.created`` / ``annotation.updated``: a new version, if it follows the one on record."""
    d = ev.data
    key = (ev.tenant, d["annotation_id"])
    if d["origin"] == "human":
        check_qualified(st, ev, "annotator", "annotation", d)
    _check_guideline(st, ev, d)
    existing = st.annotations.get(key)
    created = ev.type == "annotation.created"
    if not _follows(st, ev, existing, d, created=created):
        return
    st.annotations[key] = {
        "tenant": ev.tenant,
        "annotation_id": d["annotation_id"],
        "dataset": d["dataset"],
        "item": d["item"],
        "version": d["version"],
        "label_class": d["label_class"],
        "geometry": d["geometry"],
        "origin": d["origin"],
        "model_name": d.get("model_name"),
        "model_version": d.get("model_version"),
        "guideline_id": d["guideline_id"],
        "guideline_version": d["guideline_version"],
        "status": "draft" if d["origin"] == "model" else "submitted",
        "review_level": None,
        "reviewers": [],
        "created_by": existing["created_by"] if existing else ev.actor,
        "created_at": existing["created_at"] if existing else ev.time,
        "updated_at": ev.time,
        "created_event_id": ev.id if created or existing is None else existing["created_event_id"],
        **ev.stamp(),
    }
    st.touch("proj_annotations", key)
    _revision(
        st,
        ev,
        d["annotation_id"],
        "created" if created else "updated",
        version=d["version"],
        label_class=d["label_class"],
        guideline_version=d["guideline_version"],
    )


def annotation_deleted(st: State, ev: Event) -> None:
    """``annotation.deleted``: the annotation is withdrawn, if the deletion follows the version on record."""
    d = ev.data
    key = (ev.tenant, d["annotation_id"])
    row = st.annotations.get(key)
    if row is None:
        flag(
            st,
            ev,
            "review_before_annotation",
            f"deletion of annotation {d['annotation_id']}, which does not exist",
            [],
            dataset=d["dataset"],
            item=d["item"],
        )
        return
    if not _follows(st, ev, row, d, created=False):
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


Step = Literal["first", "first_without_creation", "next", "gap", "recreated", "out_of_sequence"]
APPLIED_STEPS = frozenset({"first", "first_without_creation", "next", "gap"})
"""The steps that move an annotation forward: its version is applied (a gap is applied, and flagged)."""


def annotation_step(row: Row | None, d: dict[str, Any], *, created: bool) -> Step:
    """How a versioned annotation event (``d`` its data) relates to the annotation on record, ``row``
    (only its ``version`` and ``status`` are read). Pure: the projection and the lineage report both ask it.

    A creation applies to a new or a deleted annotation (with a newer version); an update or deletion to
    a live annotation with a newer version. A newer version whose ``previous_version`` is not the one on
    record applies too, as a gap: refusing it would freeze the annotation at a version the producer has
    moved past.
    """
    if row is None:
        return "first" if created else "first_without_creation"
    if created and row["status"] != "deleted":
        return "recreated"
    if (not created and row["status"] == "deleted") or d["version"] <= row["version"]:
        return "out_of_sequence"
    if not created and d.get("previous_version") != row["version"]:
        return "gap"
    return "next"


def _follows(st: State, ev: Event, row: Row | None, d: dict[str, Any], *, created: bool) -> bool:
    """Whether a versioned annotation event applies to ``row`` (``annotation_step``), flagging every step
    that is not a plain next version."""
    where = {"dataset": d["dataset"], "item": d["item"]}
    name = f"annotation {d['annotation_id']}"
    step = annotation_step(row, d, created=created)
    if step == "first_without_creation":
        flag(
            st,
            ev,
            "annotation_version_gap",
            f"{ev.type} of {name} to v{d['version']}, of which no earlier"
            " version is on record; applied as its first version",
            [],
            **where,
        )
    elif step == "recreated" and row is not None:
        flag(
            st,
            ev,
            "annotation_recreated",
            f"annotation.created for {name}, which exists at v{row['version']}"
            f" ({row['status']}); not applied",
            [row["created_event_id"]],
            **where,
        )
    elif step == "out_of_sequence" and row is not None:
        flag(
            st,
            ev,
            "annotation_out_of_sequence",
            f"{ev.type} of {name} to v{d['version']}, but it is at"
            f" v{row['version']} ({row['status']}); not applied",
            [row["created_event_id"]],
            **where,
        )
    elif step == "gap" and row is not None:
        flag(
            st,
            ev,
            "annotation_version_gap",
            f"{ev.type} of {name} to v{d['version']} after v{d.get('previous_version')},"
            f" but v{row['version']} is on record; applied",
            [row["created_event_id"]],
            **where,
        )
    return step in APPLIED_STEPS


def review_submitted(st: State, ev: Event) -> None:
    """``review.submitted``: the decision changes the annotation only when it reviews the current version."""
    d = ev.data
    key = (ev.tenant, d["annotation_id"])
    role = ROLE_FOR_REVIEW_LEVEL.get(d["level"])
    if role is not None:
        check_qualified(st, ev, role, f"level-{d['level']} review", d)
    row = st.annotations.get(key)
    where = {"dataset": d["dataset"], "item": d["item"]}
    reviewed = f"review of annotation {d['annotation_id']} v{d['annotation_version']}"
    if row is None:
        flag(st, ev, "review_before_annotation", f"{reviewed}, which does not exist yet", [], **where)
        return
    if row["version"] < d["annotation_version"] or ev.time < row["created_at"]:
        flag(
            st,
            ev,
            "review_before_annotation",
            f"{reviewed}, which was at version {row['version']}, created {row['created_at'].isoformat()}",
            [],
            **where,
        )
    # Every review of an existing annotation is on its lineage, whichever version it reviewed.
    _revision(
        st,
        ev,
        d["annotation_id"],
        "reviewed",
        version=d["annotation_version"],
        review_level=d["level"],
        decision=d["decision"],
    )
    if row["version"] != d["annotation_version"] or row["status"] == "deleted":
        # A review of another version, or of a deleted annotation, says nothing about the current one:
        # the current state is left as it is.
        if row["version"] > d["annotation_version"] or row["status"] == "deleted":
            flag(
                st,
                ev,
                "review_of_other_version",
                f"{reviewed}, but it is at v{row['version']} ({row['status']})",
                [],
                **where,
            )
        return
    decided = {"accept": "reviewed", "reject": "rejected", "modify": "modified"}[d["decision"]]
    level = max(row["review_level"] or 0, d["level"]) if decided == "reviewed" else row["review_level"]
    # A review after the adjudication is on the lineage; it does not undo the adjudication.
    status = "adjudicated" if row["status"] == "adjudicated" else decided
    reviewers = [*row["reviewers"], ev.actor] if ev.actor not in row["reviewers"] else row["reviewers"]
    st.annotations[key] = {
        **row,
        "status": status,
        "review_level": level,
        "reviewers": reviewers,
        "updated_at": ev.time,
        **ev.stamp(),
    }
    st.touch("proj_annotations", key)


def adjudication_completed(st: State, ev: Event) -> None:
    """``adjudication.completed``: the item's final label, and the selected annotation marked adjudicated."""
    d = ev.data
    role = ROLE_FOR_REVIEW_LEVEL.get(d["level"])
    if role is not None:
        check_qualified(st, ev, role, f"level-{d['level']} adjudication", d)
    where = {"dataset": d["dataset"], "item": d["item"]}
    referenced = [*d["annotation_ids"], d["final_annotation_id"]]
    missing = sorted({a for a in referenced if (ev.tenant, a) not in st.annotations})
    if missing:
        flag(
            st,
            ev,
            "review_before_annotation",
            f"adjudication of {d['item']} refers to annotations that do not exist yet: {', '.join(missing)}",
            [],
            **where,
        )
    st.finals[(ev.tenant, d["dataset"], d["item"])] = {
        "tenant": ev.tenant,
        "dataset": d["dataset"],
        "item": d["item"],
        "annotation_id": d["final_annotation_id"],
        "label_class": d["final_label_class"],
        "method": d["method"],
        "level": d["level"],
        "decided_by": ev.actor,
        "decided_at": ev.time,
        "event_id": ev.id,
        **ev.stamp(),
    }
    final_key = (ev.tenant, d["final_annotation_id"])
    row = st.annotations.get(final_key)
    if row is not None and row["status"] == "deleted":
        flag(
            st,
            ev,
            "review_of_other_version",
            f"adjudication of {d['item']} selects annotation"
            f" {d['final_annotation_id']}, which was deleted at v{row['version']}; it stays deleted",
            [],
            **where,
        )
    elif row is not None:
        st.annotations[final_key] = {**row, "status": "adjudicated", "updated_at": ev.time, **ev.stamp()}
        st.touch("proj_annotations", final_key)
    for ann in sorted(set(referenced) - set(missing)):
        _revision(
            st,
            ev,
            ann,
            "adjudicated",
            review_level=d["level"],
            decision="selected" if ann == d["final_annotation_id"] else "not_selected",
        )


def _revision(st: State, ev: Event, annotation_id: str, change: str, **values: Any) -> None:
    st.revisions.append(
        {
            "tenant": ev.tenant,
            "annotation_id": annotation_id,
            **ev.stamp(),
            "event_id": ev.id,
            "change": change,
            "version": values.get("version"),
            "actor": ev.actor,
            "label_class": values.get("label_class"),
            "guideline_version": values.get("guideline_version"),
            "review_level": values.get("review_level"),
            "decision": values.get("decision"),
            "occurred_at": ev.time,
        }
    )


# ---- checks on the work --------------------------------------------------------------------------------


def _periods(st: State, tenant: str, person: str) -> list[Period]:
    return [Period.from_row(p) for p in st.periods.get((tenant, person), [])]


def check_qualified(st: State, ev: Event, role: str, what: str, d: dict[str, Any]) -> None:
    """Flag ``unqualified_<role>`` unless the actor held a credential qualifying for ``role`` at the event's time."""
    periods = _periods(st, ev.tenant, ev.actor)
    if qualifying(periods, role, ev.time):
        return
    # Sorted, so the evidence reads the same however the credentials were batched (inline or rebuild).
    held = [p.event_id for p in sorted(periods, key=lambda p: (p.credential_id, p.period))]
    detail = f"{what} by {ev.actor} at {ev.time.isoformat()} with no valid {role} credential" + (
        " (credentials on record were not valid then)" if held else " (no credential on record)"
    )
    flag(st, ev, f"unqualified_{role}", detail, list(held), dataset=d.get("dataset"), item=d.get("item"))


def _check_guideline(st: State, ev: Event, d: dict[str, Any]) -> None:
    guideline = st.guidelines.get((ev.tenant, d["guideline_id"], d["guideline_version"]))
    detail = guideline_not_in_effect(guideline, f"{d['guideline_id']} {d['guideline_version']}", ev.time)
    if detail is not None:
        flag(st, ev, "guideline_not_in_effect", detail, [], dataset=d["dataset"], item=d["item"])


def guideline_not_in_effect(guideline: Row | None, name: str, when: datetime) -> str | None:
    """Why an annotation at ``when`` under ``guideline`` (its ``proj_guidelines`` row, ``None`` when never
    published; ``name`` is how to call it) was not under a version in effect, or ``None`` when it was."""
    if guideline is None:
        return f"annotation under guideline {name}, which was never published"
    if when < guideline["effective_from"]:
        return f"annotation under guideline {name} before it took effect ({guideline['effective_from'].isoformat()})"
    if guideline["effective_until"] is not None and when >= guideline["effective_until"]:
        return f"annotation under guideline {name} after it left effect ({guideline['effective_until'].isoformat()})"
    return None
