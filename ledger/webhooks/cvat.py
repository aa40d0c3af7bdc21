"""CVAT webhook deliveries as ledger events.

CVAT posts ``{"event": "<action>:<resource>", "<resource>": {...}, "before_update": {...}, "webhook_id",
"sender"}`` (``before_update`` on updates only: the changed fields' old values). It sends no annotations:
shapes and tags stay in CVAT, and what a webhook reports is the work on them, a job moving through its
stages (annotation, validation, acceptance) and states (new, in progress, completed, rejected). So the
ledger records each job's annotation work as one annotation per job, ``<source>-job-<job id>``, of class
``cvat-job`` with a whole-image Classification geometry, and the stage and state changes as its versions
and reviews:

===========================================  ================================================================
CVAT job change (``update:job``)             ledger event (by the job's assignee before the change)
===========================================  ================================================================
state → completed in stage annotation        ``annotation.created`` v1, or ``annotation.updated`` v+1 when
                                             the job's annotation is on record (a resubmission)
stage annotation → a review stage, state     the same (the work is handed in without being marked completed)
not completed before
state → completed, stage validation or       ``review.submitted`` accept, level 2 / 3 (meaning review /
acceptance unchanged                         approval)
state → rejected, stage validation or        ``review.submitted`` reject, level 2 / 3 (meaning review)
acceptance unchanged
stage validation → acceptance, undecided     ``review.submitted`` accept at level 2
stage moved back (to annotation, or          ``review.submitted`` reject at the level it left
acceptance → validation), undecided
assignee changed                             ``assignment.revoked`` of the old, ``assignment.created`` of the
                                             new (role by stage: annotator, reviewer, physician_reviewer)
===========================================  ================================================================

"Undecided": the job's state before the change was neither completed nor rejected (a decision already
recorded is not recorded twice). A move into a review stage with a decided state at once (CVAT's "Finish
the job": stage acceptance, state completed) hands the annotation in and decides nothing. CVAT also sends
``update:job`` on every save of a job's annotations (``before_update`` holds ``updated_date`` alone):
those are drafts, and record nothing. ``create:task`` is ``item.imported`` (item ``task-<id>``), ``update:task``
an assignment change of the task (role annotator) or nothing, ``delete:task`` ``item.removed`` with
``annotation.deleted`` of the task's job annotations, ``delete:job`` ``annotation.deleted`` of the job's,
``delete:project`` nothing (its tasks' deletions arrive as ``delete:task``), ``ping`` nothing; any other
event is refused as unsupported, on the record.

A user CVAT names is mapped by id through the source's ``[users]``: a username, a name or an e-mail
address never enters an event or a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ledger.domain.errors import FieldError
from ledger.webhooks import cvat_payload as payload_fields
from ledger.webhooks.model import (
    AnnotationState,
    Delivery,
    Lookup,
    Mapped,
    Source,
    UnsupportedAction,
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
_EVENT_NAME = re.compile(r"^[a-z_]{1,30}(?::[a-z_\[\]:]{1,60})?$")


def map_delivery(delivery: Delivery, lookup: Lookup) -> Mapped:
    """The ledger events of one CVAT delivery (see the module's table); ``Unmappable`` when a supported
    event cannot be mapped, ``UnsupportedAction`` for any other event."""
    payload = delivery.payload
    if not isinstance(payload, dict):
        raise unmappable("$", "a CVAT delivery is a JSON object")
    event = payload.get("event")
    handler = _HANDLERS.get(event) if isinstance(event, str) else None
    if handler is None:
        named = f"CVAT event {event}" if isinstance(event, str) and _EVENT_NAME.match(event) else "the event"
        msg = (
            f"{named} is not mapped to ledger events; the CVAT adapter maps "
            f"{', '.join(sorted(_HANDLERS))} (subscribe the webhook to those only)"
        )
        raise UnsupportedAction(msg, errors=[FieldError("event", "not a mapped CVAT event")])
    return handler(_Context(delivery.source, lookup, delivery.received_at), payload)


Event = dict[str, Any]
Step = tuple[Literal["submit", "accept", "reject"], int | None]
"""One thing a job change records: its annotation handed in, or a review decision at a level."""


@dataclass(frozen=True, slots=True)
class _Context:
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


# ---- ping, projects -----------------------------------------------------------------------------------


def _ping(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    webhook = payload.get("webhook")
    ident = webhook.get("id") if isinstance(webhook, dict) else None
    which = f" of webhook {ident}" if payload_fields.is_id(ident) else ""
    return Mapped(events=[], candidates=[], summary=f"CVAT ping{which}", unchanged="ping")


def _delete_project(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    project_id = payload_fields.object_id(payload_fields.resource(payload, "project"), "project", "id")
    return Mapped(
        events=[],
        candidates=[],
        summary=f"CVAT project {project_id} deleted",
        unchanged=(
            f"project {project_id} deleted: the ledger records the removal of each of its tasks from its "
            "delete:task delivery, and the guideline the source cites is its config's, not the project's"
        ),
    )


# ---- tasks ----------------------------------------------------------------------------------------------


def _create_task(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    task = payload_fields.resource(payload, "task")
    task_id = payload_fields.object_id(task, "task", "id")
    dataset, item = ctx.task_place(task_id, payload_fields.optional_id(task, "task", "project_id"))
    created = payload_fields.tool_time(task, "task", "created_date")
    actor = ctx.source.config.actor(payload.get("sender"), "sender")
    data: dict[str, Any] = {
        "dataset": dataset,
        "item": item,
        "source_ref": f"cvat:{ctx.source.name}/task/{task_id}",
    }
    size = task.get("size")
    if (
        payload_fields.is_id(size) and size > 0
    ):  # CVAT creates a task before its data: size is usually not known yet
        data["frames"] = size
    ident = event_id(ctx.source, f"task/{task_id}", "imported")
    events = [ctx.event("item.imported", ident, created, data, actor, MANAGER_ROLE)]
    # A task created with an assignee: the assignment a later change of assignee will revoke.
    changes = _Assignment(ctx, f"task/{task_id}", f"{ctx.source.name}-task-{task_id}", dataset, [item])
    events += changes.events(payload, task, {"assignee": None}, "task", "annotator", "annotator", created)
    return Mapped(
        events=events,
        candidates=[e["id"] for e in events],
        summary=f"CVAT task {task_id}: {_types(events)}",
        places=[(f"task/{task_id}", dataset, item)],
    )


def _update_task(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    task = payload_fields.resource(payload, "task")
    before = payload_fields.before_update(payload)
    task_id = payload_fields.object_id(task, "task", "id")
    dataset, item = ctx.task_place(task_id, payload_fields.optional_id(task, "task", "project_id"))
    time = payload_fields.tool_time(task, "task", "updated_date")
    places = [(f"task/{task_id}", dataset, item)]
    changes = _Assignment(ctx, f"task/{task_id}", f"{ctx.source.name}-task-{task_id}", dataset, [item])
    events = changes.events(payload, task, before, "task", "annotator", "annotator", time)
    if not events:
        return Mapped(
            events=[],
            candidates=[],
            summary=f"CVAT task {task_id} updated",
            places=places,
            unchanged=f"task {task_id}: {payload_fields.changed_fields(before)} changed; of a task the ledger records its assignee",
        )
    return Mapped(
        events=events,
        candidates=[e["id"] for e in events],
        summary=f"CVAT task {task_id}: {_types(events)}",
        places=places,
    )


def _delete_task(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    task = payload_fields.resource(payload, "task")
    task_id = payload_fields.object_id(task, "task", "id")
    known = ctx.lookup.place(f"task/{task_id}") is not None
    dataset, item = ctx.task_place(task_id, payload_fields.optional_id(task, "task", "project_id"))
    own = re.compile(rf"^{re.escape(ctx.source.name)}-job-(\d+)$")
    live = {
        int(found[1]): a
        for a in ctx.lookup.annotations_on(dataset, item)
        if (found := own.match(a.annotation_id)) is not None and a.status != "deleted"
    }
    if not known and not live:
        return Mapped(
            events=[],
            candidates=[],
            summary=f"CVAT task {task_id} deleted",
            unchanged=f"task {task_id} was never imported into the ledger",
        )
    actor = ctx.source.config.actor(payload.get("sender"), "sender")
    events = [_deleted(ctx, live[job_id], job_id, actor) for job_id in sorted(live)]
    removed = event_id(ctx.source, f"task/{task_id}", "removed")
    data = {"dataset": dataset, "item": item, "source_ref": f"cvat:{ctx.source.name}/task/{task_id}"}
    events.append(ctx.event("item.removed", removed, ctx.received_at, data, actor, MANAGER_ROLE))
    return Mapped(
        events=events,
        candidates=[e["id"] for e in events],
        summary=f"CVAT task {task_id}: {_types(events)}",
    )


# ---- jobs -----------------------------------------------------------------------------------------------


def _update_job(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    job = payload_fields.resource(payload, "job")
    before = payload_fields.before_update(payload)
    job_id = payload_fields.object_id(job, "job", "id")
    task_id = payload_fields.object_id(job, "job", "task_id")
    dataset, item = ctx.job_place(job_id, task_id, payload_fields.optional_id(job, "job", "project_id"))
    time = payload_fields.tool_time(job, "job", "updated_date")
    stage = payload_fields.choice(job, "job", "stage", tuple(STAGE_ROLE))
    state = payload_fields.choice(job, "job", "state", STATES)
    old_stage = (
        payload_fields.choice(before, "before_update", "stage", tuple(STAGE_ROLE))
        if "stage" in before
        else stage
    )
    old_state = (
        payload_fields.choice(before, "before_update", "state", STATES) if "state" in before else state
    )
    places = [(f"job/{job_id}", dataset, item), (f"task/{task_id}", dataset, item)]

    work = _Work(ctx, job_id, dataset, item, time)
    steps = transitions(old_stage, old_state, stage, state)
    if steps:
        who, where = _worker(job, before)
        work.record(steps, ctx.source.config.actor(who, where))
    changes = _Assignment(ctx, f"job/{job_id}", ctx.annotation_id(job_id), dataset, [item])
    assignments = changes.events(payload, job, before, "job", STAGE_ROLE[old_stage], STAGE_ROLE[stage], time)
    events = [*work.events, *assignments]
    if not events:
        return Mapped(
            events=[],
            candidates=[],
            summary=f"CVAT job {job_id} updated",
            places=places,
            unchanged=(
                f"job {job_id}: {payload_fields.changed_fields(before)} changed; of a job the ledger records its assignee and the "
                "stage and state changes that hand in or decide its annotation"
            ),
        )
    return Mapped(
        events=events,
        candidates=[*work.candidates, *(e["id"] for e in assignments)],
        summary=f"CVAT job {job_id}: {_types(events)}",
        places=places,
    )


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


def _delete_job(ctx: _Context, payload: dict[str, Any]) -> Mapped:
    job = payload_fields.resource(payload, "job")
    job_id = payload_fields.object_id(job, "job", "id")
    task_id = payload_fields.object_id(job, "job", "task_id")
    dataset, item = ctx.job_place(job_id, task_id, payload_fields.optional_id(job, "job", "project_id"))
    state = ctx.job_annotation(dataset, item, job_id)
    if state is None or state.status == "deleted":
        # A deletion on record (by this delivery before, or by its task's) is the same event: a repeat.
        return Mapped(
            events=[],
            candidates=[] if state is None else [_deletion_id(ctx, job_id)],
            summary=f"CVAT job {job_id} deleted",
            unchanged=f"job {job_id} has no annotation on record to delete",
        )
    event = _deleted(ctx, state, job_id, ctx.source.config.actor(payload.get("sender"), "sender"))
    return Mapped(events=[event], candidates=[event["id"]], summary=f"CVAT job {job_id}: annotation.deleted")


def _deletion_id(ctx: _Context, job_id: int) -> str:
    return event_id(ctx.source, f"job/{job_id}/annotation", "deleted")


def _deleted(ctx: _Context, state: AnnotationState, job_id: int, actor: str) -> Event:
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
        "annotation.deleted", _deletion_id(ctx, job_id), ctx.received_at, data, actor, MANAGER_ROLE
    )


class _Work:
    """The annotation and review events of one job change, versions taken from the ledger's state."""

    def __init__(self, ctx: _Context, job_id: int, dataset: str, item: str, time: datetime) -> None:
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
class _Assignment:
    """The assignment of one CVAT task or job to one user.

    Its id is ``<source>-<task|job>-<id>-<actor>``, followed by ``@<assignee_updated_date>`` where CVAT sends
    that field (the time the assignee was set): an assignment revoked stays revoked in the ledger, so
    assigning the same user again must be a new assignment, and that date is what CVAT gives both the
    assignment's start (the object's ``assignee_updated_date``) and its end (``before_update``'s)."""

    ctx: _Context
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


def _worker(job: dict[str, Any], before: dict[str, Any]) -> tuple[object, str]:
    """Who did the work a stage or state change hands in or decides: the job's assignee before the change."""
    for key in ("assignee", "assignee_id"):
        if key in before:
            return before[key], f"before_update.{key}"
    return job.get("assignee"), "job.assignee"


def _types(events: Sequence[Event]) -> str:
    return ", ".join(str(e["type"]) for e in events)


_Handler = Callable[[_Context, dict[str, Any]], Mapped]
_HANDLERS: dict[str, _Handler] = {
    "ping": _ping,
    "create:task": _create_task,
    "update:task": _update_task,
    "delete:task": _delete_task,
    "update:job": _update_job,
    "delete:job": _delete_job,
    "delete:project": _delete_project,
}
