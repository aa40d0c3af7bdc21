"""The item-quality projection over a real PostgreSQL: readers' agreement under the QC policy, one
needs_expert_review flag per item below it, and the same rows after a rebuild whatever the batching."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.projections.quality import flag_id_of
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors, rebuilt_together
from ledger.projections.tables import fetch_rows
from ledger.quality.policy import Application, QcPolicy
from ledger.runtime import Ledger, wire
from tests.stories import DATASET, Story, at

TENANT = "qc"
POLICY = QcPolicy(
    applications={
        "nodule-detection": Application(guideline="chest-ct", item_iou_min=0.5, item_agreement_min=1.0)
    },
    sha256="5" * 64,
    source="test",
)


@pytest.fixture
def qc(ledger: Ledger) -> Ledger:
    """The test's ledger with the QC policy in force."""
    return wire(dataclasses.replace(ledger.settings, qc_policy=POLICY), ledger.db)


def read(story: Story, who: str, item: str, ann: str, when: datetime, *, x: float = 0, label: str = "nodule",
         version: int = 1, guideline_id: str = "chest-ct") -> str:  # fmt: skip
    """A reader's annotation of ``item``: a 10 x 10 box at ``x``."""
    data: dict[str, Any] = {"dataset": DATASET, "item": item, "annotation_id": ann, "version": version,
                            "label_class": label, "geometry": {"kind": "bbox", "x": x, "y": 0, "width": 10, "height": 10},
                            "origin": "human", "guideline_id": guideline_id, "guideline_version": "1.0"}  # fmt: skip
    if version > 1:
        data["previous_version"] = version - 1
    return story.add("annotation.updated" if version > 1 else "annotation.created", when, who, data)


def quality_rows(ledger: Ledger) -> list[dict[str, Any]]:
    with ledger.db.connect() as conn:
        return fetch_rows(conn, "SELECT * FROM proj_item_quality WHERE tenant = %s ORDER BY item", (TENANT,))


def review_flags(ledger: Ledger) -> list[dict[str, Any]]:
    return ledger.projections.flags(TENANT, kind="needs_expert_review", limit=1000)["flags"]


def disagreeing(story: Story) -> dict[str, str]:
    """item-1: two readers whose boxes overlap with IoU 1/3 (below 0.5); item-2: two identical boxes."""
    return {
        "r1": read(story, "r1", "item-1", "a1", at(1)),
        "r2": read(story, "r2", "item-1", "a2", at(2), x=5),
        "ok1": read(story, "r1", "item-2", "b1", at(3)),
        "ok2": read(story, "r2", "item-2", "b2", at(4)),
    }


def test_an_item_below_policy_gets_one_flag_with_evidence_and_one_above_gets_none(qc: Ledger) -> None:
    story = Story(TENANT)
    ids = disagreeing(story)
    qc.appender.append(story.events)
    [below, above] = quality_rows(qc)
    assert (below["item"], below["readers"], below["pairs"], below["below_policy"]) == ("item-1", 2, 1, True)
    assert abs(below["min_iou"] - 1 / 3) < 1e-12
    assert below["reasons"] == ["min IoU 0.3333 is below item_iou_min 0.5"]
    assert below["evidence"] == [ids["r1"], ids["r2"]]
    assert below["policy_sha256"] == POLICY.sha256
    assert (above["item"], above["below_policy"], above["min_iou"], above["class_agreement"]) == (
        "item-2",
        False,
        1.0,
        1.0,
    )

    [flag] = review_flags(qc)
    assert flag["flag_id"] == flag_id_of(TENANT, DATASET, "item-1", "nodule-detection")
    assert (flag["dataset"], flag["item"], flag["actor"]) == (DATASET, "item-1", "r2")
    assert flag["evidence"] == [ids["r2"], ids["r1"]]  # the event that put it below, then the readers' reads
    for part in ("min IoU 0.3333", "item_iou_min 0.5", POLICY.sha256, "nodule-detection", "level-4"):
        assert part in flag["detail"]


def test_later_annotations_of_a_flagged_item_raise_no_second_flag(qc: Ledger) -> None:
    story = Story(TENANT)
    disagreeing(story)
    qc.appender.append(story.events)
    later = Story(TENANT)
    read(later, "r3", "item-1", "a3", at(10), x=9, label="mass")
    read(later, "r1", "item-1", "a1", at(11), x=1, version=2)
    qc.appender.append(later.events)
    assert len(review_flags(qc)) == 1
    [below, _] = quality_rows(qc)
    assert (below["readers"], below["pairs"]) == (3, 3)
    assert below["class_agreement"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("batches", [1, 2])
def test_the_evidence_names_the_events_of_the_versions_compared(qc: Ledger, batches: int) -> None:
    # two readers agree at v1; r2's v2 moves the box (IoU 1/3): the flag rests on r1's creation and r2's update,
    # whether the update is applied in the batch of the creations or loaded from the database in a later one
    story = Story(TENANT)
    first = read(story, "r1", "item-1", "a1", at(1))
    read(story, "r2", "item-1", "a2", at(2))
    later = story if batches == 1 else Story(TENANT)
    if batches == 2:
        qc.appender.append(story.events)
    moved = read(later, "r2", "item-1", "a2", at(3), x=5, version=2)
    qc.appender.append(later.events)
    [flag] = review_flags(qc)
    assert flag["evidence"] == [moved, first]
    assert quality_rows(qc)[0]["evidence"] == [first, moved]
    again = Story(TENANT)
    read(again, "r3", "item-1", "a3", at(4), label="mass")
    qc.appender.append(again.events)  # a later batch loads a2 at v2 from the database: still its update
    assert quality_rows(qc)[0]["evidence"][:2] == [first, moved]


def test_an_annotation_outside_every_application_or_by_a_model_is_not_held_to_the_policy(qc: Ledger) -> None:
    story = Story(TENANT)
    read(story, "r1", "item-9", "c1", at(1), guideline_id="other")
    read(story, "r2", "item-9", "c2", at(2), x=5, guideline_id="other")
    qc.appender.append(story.events)
    assert quality_rows(qc) == []
    assert review_flags(qc) == []


def test_without_a_policy_nothing_is_projected(ledger: Ledger) -> None:
    story = Story(TENANT)
    disagreeing(story)
    ledger.appender.append(story.events)
    assert quality_rows(ledger) == []
    assert review_flags(ledger) == []


def snapshot(ledger: Ledger) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return quality_rows(ledger), review_flags(ledger)


def test_rebuild_gives_the_inline_rows_whatever_the_batching(qc: Ledger) -> None:
    story = Story(TENANT)
    disagreeing(story)
    # item-3 falls below policy and back above within one batch: its flag stays raised, at the same event
    read(story, "r1", "item-3", "d1", at(5))
    read(story, "r2", "item-3", "d2", at(6), x=8)
    read(story, "r2", "item-3", "d2", at(7), x=0, version=2)
    for event in story.events:  # one event per batch inline; rebuild reads them in one chunk
        qc.appender.append([event])
    inline = snapshot(qc)
    assert [r["item"] for r in inline[1]] == ["item-1", "item-3"]
    assert [r["below_policy"] for r in inline[0]] == [True, False, False]

    rebuild(qc.db, all_projectors(qc_policy=POLICY))
    assert snapshot(qc) == inline

    rebuild(qc.db, rebuilt_together("quality", all_projectors(qc_policy=POLICY)))
    assert snapshot(qc) == inline


def test_quality_and_workflow_are_rebuilt_together() -> None:
    assert {p.name for p in rebuilt_together("quality", all_projectors())} == {"quality", "workflow"}
    assert {p.name for p in rebuilt_together("workflow", all_projectors())} == {"quality", "workflow"}
    assert [p.name for p in rebuilt_together("access", all_projectors())] == ["access"]


# ---- random histories: rebuilding gives the inline rows and flags, whatever the batch boundaries --------

_stories = itertools.count()
steps = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3"]),
        st.sampled_from(["item-1", "item-2"]),
        st.sampled_from(["a1", "a2", "a3", "a4"]),
        st.integers(
            min_value=1, max_value=3
        ),  # version: 1 creates, more updates (a gap or a repeat is flagged)
        st.sampled_from([0, 3, 9]),
        st.sampled_from(["nodule", "mass"]),
        st.booleans(),  # delete instead
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(script=steps, cuts=st.lists(st.integers(min_value=1, max_value=25), max_size=4))
def test_random_histories_rebuild_to_the_inline_rows(
    qc: Ledger, script: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    story = Story(f"{TENANT}-{next(_stories)}")
    for n, (who, item, ann, version, x, label, delete) in enumerate(script):
        if delete:
            story.delete(who, item, ann, at(n), version=version + 1)
        else:
            read(story, who, item, ann, at(n), x=x, label=label, version=version)
    bounds = sorted({0, len(story.events), *(c for c in cuts if c < len(story.events))})
    for start, end in itertools.pairwise(bounds):
        qc.appender.append(story.events[start:end])
    tenant = story.tenant

    def rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with qc.db.connect() as conn:
            return (
                fetch_rows(
                    conn, "SELECT * FROM proj_item_quality WHERE tenant = %s ORDER BY item", (tenant,)
                ),
                fetch_rows(
                    conn,
                    "SELECT * FROM proj_flags WHERE tenant = %s AND kind = %s ORDER BY flag_id",
                    (tenant, "needs_expert_review"),
                ),
            )

    inline = rows()
    rebuild(qc.db, all_projectors(qc_policy=POLICY))
    assert rows() == inline
