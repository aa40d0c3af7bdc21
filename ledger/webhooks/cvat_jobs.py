"""The work on a CVAT job as ledger events: the context of a delivery, how a stage and state change becomes
submissions and reviews (``transitions``), the job annotation's versions (``Work``) and assignments
(``Assignment``). ``ledger.webhooks.cvat`` maps the deliveries with them (its module docstring has the table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ledger.webhooks import cvat_payload as payload_fields
from ledger.webhooks.model import (
    AnnotationState,
    Lookup,
    Source,
    envelope,
    event_id,
    tool_stamp,
    unmappable,
)

LABEL_CLASS = "cvat-job"
"""The label class of a job's annotation: CVAT's webhooks carry no labels, so the class names the kind of
work, not an answer."""
MANAGER_ROLE = "data_manager"
"""The ``actorrole`` of the CVAT user (the delivery's ``sender``) who created or deleted a task or job, or
changed an assignment."""
STAGE_ROLE = {"annotation": "annotator", "validation": "reviewer", "acceptance": "physician_reviewer"}
REVIEW_LEVEL = {"validation": 2, "acceptance": 3}
REVIEW_ROLE = {level: STAGE_ROLE[stage] for stage, level in REVIEW_LEVEL.items()}
SIGNATURE_MEANING = {2: "review", 3: "approval"}
"""The meaning of an accepting review's signature by level; a rejection's is always ``review``."""
STATES = ("new", "in progress", "completed", "rejected")
_DECIDED = ("completed", "rejected")

Event = dict[str, Any]
Step = tuple[Literal["submit", "accept", "reject"], int | None]
"""One thing a job change records: its annotation handed in, or a review decision at a level."""


@dataclass(frozen=True, slots=True)
class Context:
    """One delivery's source, its lookup of the ledger's state and its arrival: where its objects go and
    how its events are built."""

    source: Source
    lookup: Lookup
    received_at: datetime

    def dataset(self, task_id: int, project_id: int | None) -> str:
        if self.source.config.dataset is not None:
            return self.source.config.dataset
        if project_id is not None:
            return f"{self.source.name}-project-{project_id}"
        return f"{self.source.name}-task-{task_id}"

    def task_place(self, task_id: int, project_id: int | None) -> tuple[str, str]:
        """Where task ``task_id`` was placed before (a later config or a move to another project does not
        move its history), else where it belongs now."""
        known = self.lookup.place(f"task/{task_id}")
        return known if known is not None else (self.dataset(task_id, project_id), f"task-{task_id}")

    def job_place(self, job_id: int, task_id: int, project_id: int | None) -> tuple[str, str]:
        known = self.lookup.place(f"job/{job_id}")
        return known if known is not None else self.task_place(task_id, project_id)

    def annotation_id(self, job_id: int) -> str:
        return f"{self.source.name}-job-{job_id}"

    def job_annotation(self, dataset: str, item: str, job_id: int) -> AnnotationState | None:
        ident = self.annotation_id(job_id)
        return next((a for a in self.lookup.annotations_on(dataset, item) if a.annotation_id == ident), None)

    def event(
        self, type_: str, ident: str, time: datetime, data: dict[str, Any], actor: str, role: str
    ) -> Event:
        return envelope(self.source, type_, ident, time, data, actor=actor, actorrole=role)


def transitions(old_stage: str, old_state: str, stage: str, state: str) -> list[Step]:
    """What a job's move from (``old_stage``, ``old_state``) to (``stage``, ``state``) records: ``("submit",
    None)`` for its annotation handed in, ``("accept"|"reject", level)`` for a review decision (the table of
    the module's docstring). Whatever is decided is of the stage the job was in before the change."""
    if old_stage == stage:
        if old_state == state:
            return []
        if stage == "annotation" and state == "completed":
            return [("submit", None)]
        if stage in REVIEW_LEVEL and state in _DECIDED:
            return [("accept" if state == "completed" else "reject", REVIEW_LEVEL[stage])]
        return []
    # The job left its stage. A decided state it arrives with is not a review of the stage it enters
    # (CVAT's "Finish the job" moves an annotation job to acceptance and completed at once).
    if old_stage == "annotation":
        return [("submit", None)] if old_state != "completed" else []
    if old_state in _DECIDED:
        return []
    forward = stage in REVIEW_LEVEL and REVIEW_LEVEL[stage] > REVIEW_LEVEL[old_stage]
    return [("accept" if forward else "reject", REVIEW_LEVEL[old_stage])]


def deletion_id(ctx: Context, job_id: int) -> str:
    """The id of the deletion of job ``job_id``'s annotation (one per job: it has no later versions)."""
    return event_id(ctx.source, f"job/{job_id}/annotation", "deleted")


def deleted(ctx: Context, state: AnnotationState, job_id: int, actor: str) -> Event:
    """``annotation.deleted`` of job ``job_id``'s annotation. CVAT's deletion payload is the object as it
    was, with no time of deletion: the event's time is when the delivery arrived, and its id has no stamp
    (a job is deleted once), so a retry arriving later is still the same event."""
    data = {
        "dataset": state.dataset,
        "item": state.item,
        "annotation_id": state.annotation_id,
        "version": state.version + 1,
        "previous_version": state.version,
    }
    return ctx.event(
        "annotation.deleted", deletion_id(ctx, job_id), ctx.received_at, data, actor, MANAGER_ROLE
    )


class Work:
    """The annotation and review events of one job change, versions taken from the ledger's state."""

    def __init__(self, ctx: Context, job_id: int, dataset: str, item: str, time: datetime) -> None:
        self.ctx, self.job_id, self.dataset, self.item, self.time = ctx, job_id, dataset, item, time
        self.stamp = tool_stamp(time)
        self.events: list[Event] = []
        self.candidates: list[str] = []

    def record(self, steps: Sequence[Step], actor: str) -> None:
        state = self.ctx.job_annotation(self.dataset, self.item, self.job_id)
        if state is not None and state.updated_at > self.time:
            raise unmappable(
                "job.updated_date",
                f"a newer version of job {self.job_id}'s annotation is on record than this change of "
                f"{self.stamp}; an older delivery does not rewind it",
            )
        if state is not None and state.status == "deleted":
            raise unmappable("job.id", f"job {self.job_id}'s annotation is deleted on record")
        version = state.version if state is not None else None
        for kind, level in steps:
            if level is None:
                version = self._written(version, actor)
            else:
                self._reviewed(kind, level, version, actor)

    def _written(self, version: int | None, actor: str) -> int:
        config = self.ctx.source.config
        if config.guideline_id is None or config.guideline_version is None:
            raise unmappable(
                "[guideline]",
                "CVAT sends no labelling guideline, so the source's config must name the one its "
                "annotators follow: set [guideline] id and version and run `ledger sources configure`",
            )
        ref = f"job/{self.job_id}/annotation"
        created = event_id(self.ctx.source, ref, "created", self.stamp)
        updated = event_id(self.ctx.source, ref, "updated", self.stamp)
        self.candidates += [created, updated]
        data: dict[str, Any] = {
            "dataset": self.dataset,
            "item": self.item,
            "annotation_id": self.ctx.annotation_id(self.job_id),
            "version": 1 if version is None else version + 1,
            "label_class": LABEL_CLASS,
            "geometry": {"kind": "classification"},
            "origin": "human",
            "guideline_id": config.guideline_id,
            "guideline_version": config.guideline_version,
        }
        if version is None:
            event = self.ctx.event("annotation.created", created, self.time, data, actor, "annotator")
        else:
            data = {**data, "previous_version": version}
            event = self.ctx.event("annotation.updated", updated, self.time, data, actor, "annotator")
        self.events.append(event)
        return int(data["version"])

    def _reviewed(self, decision: str, level: int, version: int | None, actor: str) -> None:
        if version is None:
            raise unmappable(
                "job.state",
                f"job {self.job_id} was reviewed, but its annotation is not on record (its completion in the "
                "annotation stage reached no ledger), so the review cannot name the version it decided on",
            )
        ident = event_id(self.ctx.source, f"job/{self.job_id}", f"review-{decision}-{level}", self.stamp)
        self.candidates.append(ident)
        data = {
            "dataset": self.dataset,
            "item": self.item,
            "annotation_id": self.ctx.annotation_id(self.job_id),
            "annotation_version": version,
            "level": level,
            "decision": decision,
            "signature_meaning": SIGNATURE_MEANING[level] if decision == "accept" else "review",
        }
        self.events.append(
            self.ctx.event("review.submitted", ident, self.time, data, actor, REVIEW_ROLE[level])
        )


@dataclass(frozen=True, slots=True)
class Assignment:
    """The assignment of one CVAT task or job to one user.

    Its id is ``<source>-<task|job>-<id>-<actor>``, followed by ``@<assignee_updated_date>`` where CVAT sends
    that field (the time the assignee was set): an assignment revoked stays revoked in the ledger, so
    assigning the same user again must be a new assignment, and that date is what CVAT gives both the
    assignment's start (the object's ``assignee_updated_date``) and its end (``before_update``'s)."""

    ctx: Context
    ref: str
    prefix: str
    dataset: str
    items: list[str]

    def events(
        self,
        payload: dict[str, Any],
        obj: dict[str, Any],
        before: dict[str, Any],
        name: str,
        old_role: str,
        new_role: str,
        time: datetime,
    ) -> list[Event]:
        key = "assignee" if "assignee" in before else "assignee_id" if "assignee_id" in before else None
        if key is None:
            return []
        old, new = before[key], obj.get("assignee")
        if payload_fields.user_id(old) == payload_fields.user_id(new):
            return []
        config = self.ctx.source.config
        by = config.actor(payload.get("sender"), "sender")
        stamp = tool_stamp(time)
        events: list[Event] = []
        if old is not None:
            who = config.actor(old, f"before_update.{key}")
            since = payload_fields.since(before, "before_update")
            ident = event_id(self.ctx.source, self.ref, f"unassigned-{who}", stamp)
            data = self._data(who, old_role, since)
            events.append(self.ctx.event("assignment.revoked", ident, time, data, by, MANAGER_ROLE))
        if new is not None:
            who = config.actor(new, f"{name}.assignee")
            ident = event_id(self.ctx.source, self.ref, f"assigned-{who}", stamp)
            data = self._data(who, new_role, payload_fields.since(obj, name))
            events.append(self.ctx.event("assignment.created", ident, time, data, by, MANAGER_ROLE))
        return events

    def _data(self, assignee: str, role: str, since: str | None) -> dict[str, Any]:
        ident = f"{self.prefix}-{assignee}" + (f"@{since}" if since else "")
        return {
            "assignment_id": ident,
            "dataset": self.dataset,
            "items": self.items,
            "assignee": assignee,
            "role": role,
        }


def worker(job: dict[str, Any], before: dict[str, Any]) -> tuple[object, str]:
    """Who did the work a stage or state change hands in or decides: the job's assignee before the change."""
    for key in ("assignee", "assignee_id"):
        if key in before:
            return before[key], f"before_update.{key}"
    return job.get("assignee"), "job.assignee"
