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
from typing import Any

from ledger.domain.errors import FieldError
from ledger.webhooks import cvat_payload as payload_fields
from ledger.webhooks.cvat_jobs import (
    LABEL_CLASS,
    MANAGER_ROLE,
    REVIEW_LEVEL,
    STAGE_ROLE,
    STATES,
    Assignment,
    Context,
    Event,
    Work,
    deleted,
    deletion_id,
    transitions,
    worker,
)
from ledger.webhooks.model import Delivery, Lookup, Mapped, UnsupportedAction, event_id, unmappable

__all__ = ["LABEL_CLASS", "REVIEW_LEVEL", "STAGE_ROLE", "STATES", "map_delivery", "transitions"]

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
    return handler(Context(delivery.source, lookup, delivery.received_at), payload)


# ---- ping, projects -----------------------------------------------------------------------------------


def _ping(ctx: Context, payload: dict[str, Any]) -> Mapped:
    webhook = payload.get("webhook")
    ident = webhook.get("id") if isinstance(webhook, dict) else None
    which = f" of webhook {ident}" if payload_fields.is_id(ident) else ""
    return Mapped(events=[], candidates=[], summary=f"CVAT ping{which}", unchanged="ping")


def _delete_project(ctx: Context, payload: dict[str, Any]) -> Mapped:
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


def _create_task(ctx: Context, payload: dict[str, Any]) -> Mapped:
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
    changes = Assignment(ctx, f"task/{task_id}", f"{ctx.source.name}-task-{task_id}", dataset, [item])
    events += changes.events(payload, task, {"assignee": None}, "task", "annotator", "annotator", created)
    return Mapped(
        events=events,
        candidates=[e["id"] for e in events],
        summary=f"CVAT task {task_id}: {_types(events)}",
        places=[(f"task/{task_id}", dataset, item)],
    )


def _update_task(ctx: Context, payload: dict[str, Any]) -> Mapped:
    task = payload_fields.resource(payload, "task")
    before = payload_fields.before_update(payload)
    task_id = payload_fields.object_id(task, "task", "id")
    dataset, item = ctx.task_place(task_id, payload_fields.optional_id(task, "task", "project_id"))
    time = payload_fields.tool_time(task, "task", "updated_date")
    places = [(f"task/{task_id}", dataset, item)]
    changes = Assignment(ctx, f"task/{task_id}", f"{ctx.source.name}-task-{task_id}", dataset, [item])
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


def _delete_task(ctx: Context, payload: dict[str, Any]) -> Mapped:
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
    events = [deleted(ctx, live[job_id], job_id, actor) for job_id in sorted(live)]
    removed = event_id(ctx.source, f"task/{task_id}", "removed")
    data = {"dataset": dataset, "item": item, "source_ref": f"cvat:{ctx.source.name}/task/{task_id}"}
    events.append(ctx.event("item.removed", removed, ctx.received_at, data, actor, MANAGER_ROLE))
    return Mapped(
        events=events,
        candidates=[e["id"] for e in events],
        summary=f"CVAT task {task_id}: {_types(events)}",
    )


# ---- jobs -----------------------------------------------------------------------------------------------


def _update_job(ctx: Context, payload: dict[str, Any]) -> Mapped:
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

    work = Work(ctx, job_id, dataset, item, time)
    steps = transitions(old_stage, old_state, stage, state)
    if steps:
        who, where = worker(job, before)
        work.record(steps, ctx.source.config.actor(who, where))
    changes = Assignment(ctx, f"job/{job_id}", ctx.annotation_id(job_id), dataset, [item])
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


def _delete_job(ctx: Context, payload: dict[str, Any]) -> Mapped:
    job = payload_fields.resource(payload, "job")
    job_id = payload_fields.object_id(job, "job", "id")
    task_id = payload_fields.object_id(job, "job", "task_id")
    dataset, item = ctx.job_place(job_id, task_id, payload_fields.optional_id(job, "job", "project_id"))
    state = ctx.job_annotation(dataset, item, job_id)
    if state is None or state.status == "deleted":
        # A deletion on record (by this delivery before, or by its task's) is the same event: a repeat.
        return Mapped(
            events=[],
            candidates=[] if state is None else [deletion_id(ctx, job_id)],
            summary=f"CVAT job {job_id} deleted",
            unchanged=f"job {job_id} has no annotation on record to delete",
        )
    event = deleted(ctx, state, job_id, ctx.source.config.actor(payload.get("sender"), "sender"))
    return Mapped(events=[event], candidates=[event["id"]], summary=f"CVAT job {job_id}: annotation.deleted")


def _types(events: Sequence[Event]) -> str:
    return ", ".join(str(e["type"]) for e in events)


_Handler = Callable[[Context, dict[str, Any]], Mapped]
_HANDLERS: dict[str, _Handler] = {
    "ping": _ping,
    "create:task": _create_task,
    "update:task": _update_task,
    "delete:task": _delete_task,
    "update:job": _update_job,
    "delete:job": _delete_job,
    "delete:project": _delete_project,
}
