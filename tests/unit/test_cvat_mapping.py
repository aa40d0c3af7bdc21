"""CVAT deliveries mapped to ledger events: every fixture, every field of every event."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.domain.envelope import validate_event
from ledger.webhooks import cvat
from ledger.webhooks.model import (
    AnnotationState,
    Delivery,
    Mapped,
    Source,
    SourceConfig,
    Unmappable,
    UnsupportedAction,
    tool_stamp,
)
from tests import webhook_fixtures

RECEIVED = datetime(2022, 10, 9, 7, 0, 0, 250000, tzinfo=UTC)
USERS = {"1": "mgr-1", "6": "ann-6", "7": "rev-7", "9": "phy-9"}
CONFIG = SourceConfig(users=USERS, guideline_id="gl-chest-xray", guideline_version="v3")
SOURCE = Source(
    name="cvat-main",
    kind="cvat",
    tenant="acme",
    config=CONFIG,
    created_at=datetime(2022, 10, 1, tzinfo=UTC),
)
DATASET = "cvat-main-project-7"
ITEM = "task-15"
JOB = "cvat-main-job-19"
# What CVAT's user objects hold besides the id: none of it may reach an event or a refusal.
PERSONAL = (
    "admin1",
    "worker1",
    "worker2",
    "worker4",
    "Admin",
    "Worker",
    "First",
    "Second",
    "Fourth",
    "localhost",
)


@dataclass
class MemoryLookup:
    """The ledger's state as a mapping sees it, held in memory, changed by ``apply`` as the projections
    would change it."""

    places: dict[str, tuple[str, str]] = field(default_factory=dict)
    annotations: list[AnnotationState] = field(default_factory=list)
    guidelines: set[tuple[str, str]] = field(default_factory=set)

    def place(self, ref: str) -> tuple[str, str] | None:
        return self.places.get(ref)

    def annotations_on(self, dataset: str, item: str) -> Sequence[AnnotationState]:
        return [a for a in self.annotations if (a.dataset, a.item) == (dataset, item)]

    def guideline_published(self, guideline_id: str, version: str) -> bool:
        return (guideline_id, version) in self.guidelines

    def apply(self, mapped: Mapped) -> None:
        for ref, dataset, item in mapped.places:
            self.places[ref] = (dataset, item)
        for event in mapped.events:
            d, time = event["data"], datetime.fromisoformat(event["time"])
            if event["type"] in ("annotation.created", "annotation.updated", "annotation.deleted"):
                self.annotations = [a for a in self.annotations if a.annotation_id != d["annotation_id"]]
                self.annotations.append(
                    AnnotationState(
                        annotation_id=d["annotation_id"],
                        dataset=d["dataset"],
                        item=d["item"],
                        version=d["version"],
                        status="deleted" if event["type"] == "annotation.deleted" else "submitted",
                        label_class=d.get("label_class", cvat.LABEL_CLASS),
                        geometry=d.get("geometry", {"kind": "classification"}),
                        origin="human",
                        updated_at=time,
                    )
                )
            elif event["type"] == "review.submitted":
                self.annotations = [
                    replace(a, status="reviewed", updated_at=time)
                    if a.annotation_id == d["annotation_id"]
                    else a
                    for a in self.annotations
                ]


def job_annotation(version: int, updated_at: str, status: str = "submitted", **kw: Any) -> AnnotationState:
    values: dict[str, Any] = {
        "annotation_id": JOB,
        "dataset": DATASET,
        "item": ITEM,
        "version": version,
        "status": status,
        "label_class": cvat.LABEL_CLASS,
        "geometry": {"kind": "classification"},
        "origin": "human",
        "updated_at": datetime.fromisoformat(updated_at),
    }
    return AnnotationState(**{**values, **kw})


def deliver(payload: Any, lookup: MemoryLookup, source: Source = SOURCE) -> Mapped:
    """Map ``payload``; every event must be one the ledger accepts, and name no person but by actor id."""
    mapped = cvat.map_delivery(Delivery(source=source, payload=payload, received_at=RECEIVED), lookup)
    for event in mapped.events:
        validate_event(event, received_at=RECEIVED)
    text = json.dumps([mapped.events, mapped.summary, mapped.unchanged])
    assert not [p for p in PERSONAL if p in text]
    assert {e["id"] for e in mapped.events} <= set(mapped.candidates)
    return mapped


def fixture(name: str, lookup: MemoryLookup) -> Mapped:
    return deliver(webhook_fixtures.load("cvat", name), lookup)


def refused(payload: Any, lookup: MemoryLookup, kind: type[Exception] = Unmappable) -> Any:
    with pytest.raises(kind) as caught:
        cvat.map_delivery(Delivery(source=SOURCE, payload=payload, received_at=RECEIVED), lookup)
    assert not [p for p in PERSONAL if p in str(caught.value)]
    return caught.value


def event(type_: str, ident: str, time: str, actor: str, role: str, data: dict[str, Any]) -> dict[str, Any]:
    """The whole CloudEvent the mapping must produce."""
    return {
        "specversion": "1.0",
        "id": ident,
        "source": "urn:ledger:webhook:cvat:cvat-main",
        "type": type_,
        "time": tool_stamp(datetime.fromisoformat(time)),  # as model.envelope writes it
        "datacontenttype": "application/json",
        "tenant": "acme",
        "actor": actor,
        "actorrole": role,
        "data": data,
    }


def written(version: int, stamp: str, actor: str = "ann-6") -> dict[str, Any]:
    change = "created" if version == 1 else "updated"
    data: dict[str, Any] = {
        "dataset": DATASET,
        "item": ITEM,
        "annotation_id": JOB,
        "version": version,
        "label_class": "cvat-job",
        "geometry": {"kind": "classification"},
        "origin": "human",
        "guideline_id": "gl-chest-xray",
        "guideline_version": "v3",
    }
    if version > 1:
        data["previous_version"] = version - 1
    ident = f"cvat-main:job/19/annotation:{change}@{stamp}"
    return event(f"annotation.{change}", ident, stamp, actor, "annotator", data)


def review(
    decision: str, level: int, version: int, stamp: str, actor: str, role: str, meaning: str
) -> dict[str, Any]:
    data = {
        "dataset": DATASET,
        "item": ITEM,
        "annotation_id": JOB,
        "annotation_version": version,
        "level": level,
        "decision": decision,
        "signature_meaning": meaning,
    }
    return event(
        "review.submitted", f"cvat-main:job/19:review-{decision}-{level}@{stamp}", stamp, actor, role, data
    )


def assignment(
    change: str,
    obj: str,
    who: str,
    role: str,
    stamp: str,
    since: str | None,
    *,
    items: Sequence[str] = (ITEM,),
) -> dict[str, Any]:
    kind, number = obj.split("/")
    verb = "assigned" if change == "created" else "unassigned"
    data = {
        "assignment_id": f"cvat-main-{kind}-{number}-{who}" + (f"@{since}" if since else ""),
        "dataset": DATASET if obj != "job/16" else "cvat-main-project-2",
        "items": list(items),
        "assignee": who,
        "role": role,
    }
    return event(
        f"assignment.{change}", f"cvat-main:{obj}:{verb}-{who}@{stamp}", stamp, "mgr-1", "data_manager", data
    )


JOB_PLACES = [("job/19", DATASET, ITEM), ("task/15", DATASET, ITEM)]


# ---- ping, tasks, projects ----------------------------------------------------------------------------


def test_ping_records_nothing() -> None:
    mapped = fixture("ping", MemoryLookup())
    assert mapped == Mapped(events=[], candidates=[], summary="CVAT ping of webhook 7", unchanged="ping")


def test_create_task_imports_the_task_as_an_item() -> None:
    mapped = fixture("create-task", MemoryLookup())
    data = {"dataset": DATASET, "item": ITEM, "source_ref": "cvat:cvat-main/task/15"}
    imported = event(
        "item.imported",
        "cvat-main:task/15:imported",
        "2022-10-04T08:05:50.419259Z",
        "mgr-1",
        "data_manager",
        data,
    )
    assert mapped.events == [imported]
    assert mapped.candidates == ["cvat-main:task/15:imported"]
    assert mapped.places == [("task/15", DATASET, ITEM)]
    assert mapped.unchanged is None
    assert mapped.summary == "CVAT task 15: item.imported"


def test_a_task_created_with_an_assignee_is_assigned_too() -> None:
    payload = webhook_fixtures.load("cvat", "create-task")
    payload["task"]["assignee"] = payload["task"]["owner"] | {"id": 6}
    payload["task"]["assignee_updated_date"] = "2022-10-04T08:05:50.422917Z"
    mapped = deliver(payload, MemoryLookup())
    created = "2022-10-04T08:05:50.419259Z"
    assert [e["type"] for e in mapped.events] == ["item.imported", "assignment.created"]
    assert mapped.events[1] == assignment(
        "created", "task/15", "ann-6", "annotator", created, "2022-10-04T08:05:50.422917Z"
    )
    assert mapped.candidates == [e["id"] for e in mapped.events]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_assignment_date_without_a_utc_is_refused_naming_it(when: str) -> None:
    payload = webhook_fixtures.load("cvat", "create-task")
    payload["task"]["assignee"] = payload["task"]["owner"] | {"id": 6}
    payload["task"]["assignee_updated_date"] = when
    assert refused(payload, MemoryLookup()).errors[0].field == "task.assignee_updated_date"


def test_create_task_places_by_config_project_or_task_and_counts_frames_when_known() -> None:
    payload = webhook_fixtures.load("cvat", "create-task")
    configured = replace(SOURCE, config=replace(CONFIG, dataset="chest-xray-2022"))
    assert deliver(payload, MemoryLookup(), configured).events[0]["data"]["dataset"] == "chest-xray-2022"
    payload["task"]["project_id"] = None
    payload["task"]["size"] = 40
    data = deliver(payload, MemoryLookup()).events[0]["data"]
    assert data == {
        "dataset": "cvat-main-task-15",
        "item": ITEM,
        "source_ref": "cvat:cvat-main/task/15",
        "frames": 40,
    }
    remembered = MemoryLookup(places={"task/15": ("earlier-dataset", "task-15")})
    assert deliver(payload, remembered).events[0]["data"]["dataset"] == "earlier-dataset"


def test_a_task_renamed_changes_nothing_the_ledger_holds() -> None:
    mapped = fixture("update-task", MemoryLookup())
    assert mapped.events == []
    assert mapped.candidates == []
    assert mapped.unchanged == "task 15: name changed; of a task the ledger records its assignee"
    assert mapped.places == [("task/15", DATASET, ITEM)]


def test_a_task_reassigned_revokes_the_old_assignee_and_assigns_the_new() -> None:
    mapped = fixture("update-task-assignee", MemoryLookup())
    stamp = "2022-10-04T11:20:03.118204Z"
    assert mapped.events == [
        assignment("revoked", "task/15", "ann-6", "annotator", stamp, None),
        assignment("created", "task/15", "rev-7", "annotator", stamp, None),
    ]
    assert mapped.candidates == [e["id"] for e in mapped.events]
    assert mapped.summary == "CVAT task 15: assignment.revoked, assignment.created"


def test_delete_task_removes_the_item_and_deletes_its_job_annotations() -> None:
    other_source = job_annotation(1, "2022-10-05T15:30:12Z", annotation_id="cvat-main-job-2-x")
    lookup = MemoryLookup(
        places={"task/15": (DATASET, ITEM)},
        annotations=[
            job_annotation(2, "2022-10-07T09:45:00Z"),
            job_annotation(3, "2022-10-06T09:00:00Z", status="deleted", annotation_id="cvat-main-job-20"),
            other_source,
            job_annotation(1, "2022-10-05T15:30:12Z", annotation_id="cvat-main-job-21"),
        ],
    )
    mapped = fixture("delete-task", lookup)
    received = "2022-10-09T07:00:00.250000Z"
    deleted = [
        event(
            "annotation.deleted",
            f"cvat-main:job/{job}/annotation:deleted",
            received,
            "mgr-1",
            "data_manager",
            {
                "dataset": DATASET,
                "item": ITEM,
                "annotation_id": f"cvat-main-job-{job}",
                "version": v + 1,
                "previous_version": v,
            },
        )
        for job, v in ((19, 2), (21, 1))
    ]
    data = {"dataset": DATASET, "item": ITEM, "source_ref": "cvat:cvat-main/task/15"}
    removed = event("item.removed", "cvat-main:task/15:removed", received, "mgr-1", "data_manager", data)
    assert mapped.events == [*deleted, removed]
    assert mapped.candidates == [e["id"] for e in mapped.events]


def test_delete_of_a_task_never_imported_records_nothing() -> None:
    mapped = fixture("delete-task", MemoryLookup())
    assert mapped.events == []
    assert mapped.unchanged == "task 15 was never imported into the ledger"


def test_delete_project_records_nothing_of_its_own() -> None:
    mapped = fixture("delete-project", MemoryLookup())
    assert mapped.events == []
    assert mapped.candidates == []
    assert mapped.unchanged is not None
    assert mapped.unchanged.startswith("project 7 deleted:")


def test_any_other_event_is_unsupported_and_named() -> None:
    error = refused(webhook_fixtures.load("cvat", "create-issue"), MemoryLookup(), UnsupportedAction)
    assert str(error).startswith("CVAT event create:issue is not mapped")
    assert "update:job" in str(error)
    assert error.errors[0].field == "event"
    error = refused({"event": "<script>alert(1)</script>"}, MemoryLookup(), UnsupportedAction)
    assert "<script>" not in str(error)
    assert str(error).startswith("the event is not mapped")
    refused({"task": {}}, MemoryLookup(), UnsupportedAction)
    assert refused([1, 2], MemoryLookup()).errors[0].field == "$"


# ---- jobs -----------------------------------------------------------------------------------------------


def test_a_job_through_annotation_review_rejection_and_resubmission() -> None:
    lookup = MemoryLookup()
    a1, a2, a3 = "2022-10-05T09:00:00.000000Z", "2022-10-06T08:00:00.000000Z", "2022-10-06T11:00:00.000000Z"
    expected = {
        "update-job-assignee": [assignment("created", "job/19", "ann-6", "annotator", a1, a1)],
        "update-job-completed": [written(1, "2022-10-05T15:30:12.504210Z")],
        "update-job-validation": [
            assignment("revoked", "job/19", "ann-6", "annotator", a2, a1),
            assignment("created", "job/19", "rev-7", "reviewer", a2, a2),
        ],
        "update-job-rejected": [
            review("reject", 2, 1, "2022-10-06T10:12:00.000000Z", "rev-7", "reviewer", "review")
        ],
        # Assigned to the annotator again: a new assignment, not the revoked one.
        "update-job-returned": [
            assignment("revoked", "job/19", "rev-7", "reviewer", a3, a2),
            assignment("created", "job/19", "ann-6", "annotator", a3, a3),
        ],
        "update-job-resubmitted": [written(2, "2022-10-07T09:45:00.000000Z")],
    }
    for name, events in expected.items():
        mapped = fixture(name, lookup)
        assert mapped.events == events, name
        assert mapped.places == JOB_PLACES
        assert mapped.unchanged is None
        lookup.apply(mapped)
    assert [(a.annotation_id, a.version) for a in lookup.annotations] == [(JOB, 2)]


def test_completion_offers_both_the_creation_and_the_update_as_repeats() -> None:
    mapped = fixture("update-job-completed", MemoryLookup())
    stamp = "2022-10-05T15:30:12.504210Z"
    assert mapped.candidates == [
        f"cvat-main:job/19/annotation:created@{stamp}",
        f"cvat-main:job/19/annotation:updated@{stamp}",
    ]
    assert mapped.summary == "CVAT job 19: annotation.created"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "update-job-validation-completed",
            [review("accept", 2, 2, "2022-10-07T14:00:00.000000Z", "rev-7", "reviewer", "review")],
        ),
        (
            "update-job-accepted",
            [
                review("accept", 2, 2, "2022-10-08T08:00:00.000000Z", "rev-7", "reviewer", "review"),
                assignment(
                    "revoked",
                    "job/19",
                    "rev-7",
                    "reviewer",
                    "2022-10-08T08:00:00.000000Z",
                    "2022-10-06T08:00:00.000000Z",
                ),
                assignment(
                    "created",
                    "job/19",
                    "phy-9",
                    "physician_reviewer",
                    "2022-10-08T08:00:00.000000Z",
                    "2022-10-08T08:00:00.000000Z",
                ),
            ],
        ),
        (
            "update-job-acceptance-completed",
            [
                review(
                    "accept", 3, 2, "2022-10-08T12:00:00.000000Z", "phy-9", "physician_reviewer", "approval"
                )
            ],
        ),
    ],
)
def test_reviews_name_the_version_on_record(name: str, expected: list[dict[str, Any]]) -> None:
    lookup = MemoryLookup(annotations=[job_annotation(2, "2022-10-07T09:45:00Z")])
    mapped = fixture(name, lookup)
    assert mapped.events == expected
    assert mapped.candidates == [e["id"] for e in expected]
    assert mapped.places == JOB_PLACES


def test_a_rejection_at_acceptance_is_level_3_with_the_meaning_review() -> None:
    payload = webhook_fixtures.load("cvat", "update-job-acceptance-completed")
    payload["job"]["state"] = "rejected"
    mapped = deliver(payload, MemoryLookup(annotations=[job_annotation(2, "2022-10-07T09:45:00Z")]))
    stamp = "2022-10-08T12:00:00.000000Z"
    assert mapped.events == [review("reject", 3, 2, stamp, "phy-9", "physician_reviewer", "review")]


def test_a_job_assigned_where_cvat_sends_no_assignment_date() -> None:
    mapped = fixture("update-job-assignee-2023", MemoryLookup())
    stamp = "2022-06-22T09:18:45.296000Z"
    assert mapped.events == [
        assignment("revoked", "job/16", "ann-6", "annotator", stamp, None, items=["task-11"]),
        assignment("created", "job/16", "rev-7", "annotator", stamp, None, items=["task-11"]),
    ]
    assert mapped.places == [
        ("job/16", "cvat-main-project-2", "task-11"),
        ("task/11", "cvat-main-project-2", "task-11"),
    ]


def test_a_save_of_the_jobs_annotations_is_a_draft() -> None:
    # What CVAT sends when annotations are saved (cvat-ai/cvat issue 8819): the job, and its old updated_date.
    payload = webhook_fixtures.load("cvat", "update-job-completed")
    payload["before_update"] = {"updated_date": "2022-10-05T15:00:00.000000Z"}
    mapped = deliver(payload, MemoryLookup())
    assert mapped.events == []
    assert mapped.unchanged is not None
    assert mapped.unchanged.startswith("job 19: updated_date changed;")


def test_a_job_change_the_ledger_does_not_hold_is_unchanged() -> None:
    mapped = fixture("update-job-other", MemoryLookup())
    assert mapped.events == []
    assert mapped.candidates == []
    assert mapped.unchanged is not None
    assert mapped.unchanged.startswith("job 19: bug_tracker changed;")
    assert mapped.places == JOB_PLACES


def test_a_job_remembered_elsewhere_stays_there() -> None:
    lookup = MemoryLookup(places={"job/19": ("earlier", "task-15-old")})
    mapped = fixture("update-job-completed", lookup)
    assert mapped.events[0]["data"]["dataset"] == "earlier"
    assert mapped.places == [("job/19", "earlier", "task-15-old"), ("task/15", "earlier", "task-15-old")]


def test_delete_job_deletes_its_annotation_on_record() -> None:
    lookup = MemoryLookup(annotations=[job_annotation(2, "2022-10-08T12:00:00Z", status="reviewed")])
    mapped = fixture("delete-job", lookup)
    data = {"dataset": DATASET, "item": ITEM, "annotation_id": JOB, "version": 3, "previous_version": 2}
    ident = "cvat-main:job/19/annotation:deleted"
    assert mapped.events == [
        event("annotation.deleted", ident, "2022-10-09T07:00:00.250000Z", "mgr-1", "data_manager", data)
    ]
    assert mapped.candidates == [ident]
    lookup.apply(mapped)
    again = fixture("delete-job", lookup)  # a retry, or the deletion its task's deletion recorded
    assert again.events == []
    assert again.candidates == [ident]
    assert fixture("delete-job", MemoryLookup()).unchanged == "job 19 has no annotation on record to delete"


# ---- the table ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "steps"),
    [
        (("annotation", "in progress"), ("annotation", "completed"), [("submit", None)]),
        (("annotation", "rejected"), ("annotation", "completed"), [("submit", None)]),
        (("annotation", "new"), ("annotation", "in progress"), []),
        (("annotation", "completed"), ("annotation", "in progress"), []),
        (("annotation", "completed"), ("validation", "new"), []),
        (("annotation", "in progress"), ("validation", "new"), [("submit", None)]),
        (("annotation", "in progress"), ("acceptance", "new"), [("submit", None)]),
        (("validation", "new"), ("validation", "in progress"), []),
        (("validation", "in progress"), ("validation", "completed"), [("accept", 2)]),
        (("validation", "new"), ("validation", "rejected"), [("reject", 2)]),
        (("validation", "rejected"), ("annotation", "new"), []),
        (("validation", "completed"), ("acceptance", "new"), []),
        (("validation", "in progress"), ("acceptance", "new"), [("accept", 2)]),
        (("validation", "in progress"), ("annotation", "new"), [("reject", 2)]),
        (("validation", "in progress"), ("annotation", "rejected"), [("reject", 2)]),
        (("acceptance", "new"), ("acceptance", "completed"), [("accept", 3)]),
        (("acceptance", "in progress"), ("acceptance", "rejected"), [("reject", 3)]),
        (("acceptance", "new"), ("validation", "new"), [("reject", 3)]),
        (("acceptance", "completed"), ("annotation", "new"), []),
        # CVAT's "Finish the job": the annotator hands the work in; nobody accepted it.
        (("annotation", "in progress"), ("acceptance", "completed"), [("submit", None)]),
        (("annotation", "completed"), ("acceptance", "completed"), []),
        (("validation", "in progress"), ("acceptance", "completed"), [("accept", 2)]),
    ],
)
def test_transitions(old: tuple[str, str], new: tuple[str, str], steps: list[tuple[str, int | None]]) -> None:
    assert cvat.transitions(*old, *new) == steps


def test_every_transition_decides_only_what_happened_in_the_stage_left() -> None:
    for old in itertools.product(cvat.STAGE_ROLE, cvat.STATES):
        for new in itertools.product(cvat.STAGE_ROLE, cvat.STATES):
            steps = cvat.transitions(*old, *new)
            assert len(steps) == len(set(steps)) <= 2, (old, new)
            if old == new:
                assert steps == [], old
            if ("submit", None) in steps:
                assert old[0] == "annotation", (old, new)
            for _, level in steps:
                # A review is of the stage the job was in: never of one it has only just entered.
                assert level is None or level == cvat.REVIEW_LEVEL.get(old[0]), (old, new)


def test_handing_in_without_completing_records_the_annotation_by_the_former_assignee() -> None:
    payload = webhook_fixtures.load("cvat", "update-job-validation")
    payload["before_update"]["state"] = "in progress"
    mapped = deliver(payload, MemoryLookup())
    assert [e["type"] for e in mapped.events] == [
        "annotation.created",
        "assignment.revoked",
        "assignment.created",
    ]
    assert mapped.events[0] == written(1, "2022-10-06T08:00:00.000000Z")


# ---- refusals -------------------------------------------------------------------------------------------


def test_an_annotation_needs_the_configured_guideline() -> None:
    for config in (replace(CONFIG, guideline_id=None), replace(CONFIG, guideline_version=None)):
        payload = webhook_fixtures.load("cvat", "update-job-completed")
        with pytest.raises(Unmappable) as caught:
            cvat.map_delivery(Delivery(replace(SOURCE, config=config), payload, RECEIVED), MemoryLookup())
        assert caught.value.errors[0].field == "[guideline]"
        assert "ledger sources configure" in str(caught.value)


def test_an_unmapped_user_is_named_by_id_and_field_only() -> None:
    payload = webhook_fixtures.load("cvat", "update-job-completed")
    payload["job"]["assignee"]["id"] = 77
    error = refused(payload, MemoryLookup())
    assert error.errors[0].field == "job.assignee"
    assert "tool user 77 is not mapped" in str(error)
    payload = webhook_fixtures.load("cvat", "update-job-validation")
    payload["before_update"]["assignee"]["id"] = 78
    assert refused(payload, MemoryLookup()).errors[0].field == "before_update.assignee"
    payload = webhook_fixtures.load("cvat", "create-task")
    payload["sender"]["id"] = 79
    assert refused(payload, MemoryLookup()).errors[0].field == "sender"


def test_a_job_completed_with_nobody_assigned_is_refused() -> None:
    payload = webhook_fixtures.load("cvat", "update-job-completed")
    payload["job"]["assignee"] = None
    assert refused(payload, MemoryLookup()).errors[0].field == "job.assignee"


def test_a_review_of_an_annotation_never_recorded_is_refused() -> None:
    error = refused(webhook_fixtures.load("cvat", "update-job-rejected"), MemoryLookup())
    assert error.errors[0].field == "job.state"
    assert "not on record" in str(error)


def test_an_older_change_never_rewinds_a_newer_version() -> None:
    lookup = MemoryLookup(annotations=[job_annotation(2, "2022-10-07T09:45:00Z")])
    error = refused(webhook_fixtures.load("cvat", "update-job-completed"), lookup)
    assert error.errors[0].field == "job.updated_date"
    assert "newer version" in str(error)


def test_a_deleted_job_annotation_is_not_written_again() -> None:
    lookup = MemoryLookup(annotations=[job_annotation(3, "2022-10-01T00:00:00Z", status="deleted")])
    assert refused(webhook_fixtures.load("cvat", "update-job-completed"), lookup).errors[0].field == "job.id"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: p.pop("before_update"), "before_update"),
        (lambda p: p.__setitem__("before_update", None), "before_update"),
        (lambda p: p.pop("job"), "job"),
        (lambda p: p["job"].__setitem__("id", "19"), "job.id"),
        (lambda p: p["job"].__setitem__("task_id", True), "job.task_id"),
        (lambda p: p["job"].__setitem__("project_id", -1), "job.project_id"),
        (lambda p: p["job"].__setitem__("stage", "review"), "job.stage"),
        (lambda p: p["job"].__setitem__("state", "done"), "job.state"),
        (lambda p: p["before_update"].__setitem__("state", 3), "before_update.state"),
        (lambda p: p["job"].__setitem__("updated_date", "yesterday"), "job.updated_date"),
        (lambda p: p["job"].__setitem__("updated_date", "2022-10-05T15:30:12"), "job.updated_date"),
        # Times at the edge of the calendar have no UTC (OverflowError): refused, naming the field.
        (lambda p: p["job"].__setitem__("updated_date", "0001-01-01T00:00:00+01:00"), "job.updated_date"),
        (lambda p: p["job"].__setitem__("updated_date", "9999-12-31T23:59:59-01:00"), "job.updated_date"),
    ],
)
def test_malformed_job_fields_are_named(change: Any, where: str) -> None:
    payload = webhook_fixtures.load("cvat", "update-job-completed")
    change(payload)
    error = refused(payload, MemoryLookup())
    assert error.errors[0].field == where


# ---- retries and determinism ----------------------------------------------------------------------------

NAMES = sorted(
    p.stem for p in webhook_fixtures.FIXTURES.joinpath("cvat").glob("*.json") if p.stem != "create-issue"
)


@pytest.mark.parametrize("name", NAMES)
def test_a_retry_after_recording_is_a_repeat(name: str) -> None:
    """Mapped again once its events are recorded, a payload offers among its candidates an id it recorded
    (the service then answers a repeat), whatever it would map to now (``annotation.created`` v1 would
    be ``updated`` v2)."""
    lookup = MemoryLookup(
        places={"task/15": (DATASET, ITEM)}, annotations=[job_annotation(1, "2022-10-05T15:30:12Z")]
    )
    if name in ("update-job-completed", "update-job-assignee"):
        lookup.annotations = []
    first = fixture(name, lookup)
    assert deliver(webhook_fixtures.load("cvat", name), lookup) == first  # the same state: the same mapping
    lookup.apply(first)
    retried = cvat.map_delivery(
        Delivery(SOURCE, webhook_fixtures.load("cvat", name), RECEIVED + timedelta(hours=1)), lookup
    )
    recorded = {e["id"] for e in first.events}
    if recorded:
        assert recorded & set(retried.candidates)
    assert {e["id"] for e in retried.events} <= set(retried.candidates)


def test_every_fixture_names_where_it_came_from() -> None:
    for path in sorted(webhook_fixtures.FIXTURES.joinpath("cvat").glob("*.json")):
        source = json.loads(path.read_text())["_source"]
        assert "cvat" in source.lower(), path.name
        assert len(source) > 40, path.name


def test_the_payload_is_not_changed_by_mapping() -> None:
    for name in NAMES:
        payload = webhook_fixtures.load("cvat", name)
        kept = copy.deepcopy(payload)
        deliver(payload, MemoryLookup(annotations=[job_annotation(1, "2022-10-05T15:30:12Z")]))
        assert payload == kept, name
