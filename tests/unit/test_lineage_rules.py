"""The pure rules of the lineage report: what an access shows, how a released label is traced, independence."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.reports.lineage import bundle_commands, covering_ranges
from ledger.reports.lineage_data import Event, evidence_digest
from ledger.reports.lineage_items import Shown, shown_by, trace
from ledger.reports.lineage_reads import collect_reads
from ledger.reports.lineage_summary import adjudication, independence
from ledger.storage.bundles import ReleaseScope

T = datetime(2026, 3, 2, tzinfo=UTC)
V1 = {"version": 1, "origin": "human", "guideline_id": "g"}


def ev(position: int, type_: str, actor: str, **data: Any) -> Event:
    return Event("L", position, T, f"e{position}", type_, T, actor, "annotator", {"dataset": "D", **data})


def test_an_access_shows_one_annotation_or_every_label_of_its_item() -> None:
    assert shown_by("D/i1/annotations/a7", "D", "i1") == Shown("a7")
    assert shown_by("D/i1/labels", "D", "i1") == Shown(None)
    assert shown_by("D/i1", "D", "i1") is None
    assert shown_by("D/i10/labels", "D", "i1") is None
    assert shown_by("D/i1/annotations/a7/extra", "D", "i1") is None


def test_a_released_label_is_traced_to_its_annotation_and_adjudication() -> None:
    events = [ev(1, "annotation.created", "r1", item="i", annotation_id="a", label_class="x", **V1),
              ev(2, "adjudication.completed", "e", item="i", final_annotation_id="a", final_label_class="x")]  # fmt: skip
    assert trace({"label_class": "x", "annotation_id": "a"}, events)["status"] == "traced"
    assert trace({"label_class": "y", "annotation_id": "a"}, events)["status"] == "label_differs"
    assert trace({"label_class": "x", "annotation_id": "zz"}, events)["status"] == "not_found"
    assert trace({"label_class": "x", "annotation_id": None}, events)["adjudication_event_id"] == "e2"


def test_a_deleted_annotation_does_not_carry_a_release() -> None:
    events = [ev(1, "annotation.created", "r1", item="i", annotation_id="a", label_class="x", **V1),
              ev(2, "annotation.deleted", "r1", item="i", annotation_id="a", version=2)]  # fmt: skip
    assert trace({"label_class": "x", "annotation_id": "a"}, events)["status"] == "deleted"


def test_seeing_another_readers_label_before_ones_own_is_a_breach_and_after_is_not() -> None:
    base = [ev(1, "annotation.created", "r1", item="i", annotation_id="a1", origin="human")]
    view = ev(2, "access.data_viewed", "r2", item="i", resource="D/i/labels", outcome="success")
    own = ev(3, "annotation.created", "r2", item="i", annotation_id="a2", origin="human")
    (breach,) = independence([*base, view, own], "D")
    assert breach["seen_annotation_ids"] == ["a1"]
    late = ev(4, "access.data_viewed", "r2", item="i", resource="D/i/labels", outcome="success")
    assert independence([*base, own, late], "D") == []
    denied = ev(2, "access.data_viewed", "r2", item="i", resource="D/i/labels", outcome="failure")
    assert independence([*base, denied, own], "D") == []
    model = [ev(1, "annotation.created", "m", item="i", annotation_id="m1", origin="model")]
    assert independence([*model, view, own], "D") == []


def test_the_evidence_digest_ignores_order() -> None:
    assert evidence_digest(["b", "a"]) == evidence_digest(["a", "b"]) != evidence_digest(["a"])


def test_a_late_older_version_or_a_reposted_creation_does_not_move_the_trace() -> None:
    """The projection refuses both (``labels.annotation_step``): the released label stays on v2."""
    v = {"item": "i", "annotation_id": "a", "origin": "human", "guideline_id": "g"}
    events = [ev(1, "annotation.created", "r1", **v, version=1, label_class="x"),
              ev(2, "annotation.updated", "r1", **v, version=2, previous_version=1, label_class="y"),
              ev(3, "annotation.updated", "r1", **v, version=1, previous_version=None, label_class="x"),
              ev(4, "annotation.created", "r1", **v, version=3, label_class="x")]  # fmt: skip
    traced = trace({"label_class": "y", "annotation_id": "a"}, events)
    assert (traced["status"], traced["annotation_event_id"]) == ("traced", "e2")
    assert trace({"label_class": "x", "annotation_id": "a"}, events)["status"] == "label_differs"


def _task(dataset: str, guideline_id: str) -> str:
    return guideline_id


def test_first_reads_follow_the_quality_rule_earliest_created_and_the_creator_reads() -> None:
    """One rule with ``below_policy`` (``quality.items.first_reads``): the earliest created annotation, not
    the first in log order; a model's annotation a person later updated is read as its creator's."""
    v = {"item": "i", "guideline_id": "g", "version": 1}
    later = ev(1, "annotation.created", "r1", **v, annotation_id="a", origin="human", label_class="x")
    earlier = dataclasses.replace(
        ev(2, "annotation.created", "r1", **v, annotation_id="b", origin="human", label_class="y"),
        time=T - timedelta(hours=1),
    )
    model = ev(3, "annotation.created", "svc", **v, annotation_id="m", origin="model", label_class="x")
    edited = ev(4, "annotation.updated", "r2", **{**v, "version": 2}, annotation_id="m", origin="human",
                previous_version=1, label_class="z")  # fmt: skip
    reads = collect_reads([later, earlier, model, edited], _task)
    assert {r: x.annotation_id for r, x in reads.first["g"]["i"].items()} == {"r1": "b", "svc": "m"}
    assert reads.ratings("g") == {"i": {"r1": "y", "svc": "z"}}
    assert reads.repeat["g"]["i"]["r1"].annotation_id == "a"


def test_an_adjudication_is_compared_with_the_readers_of_its_own_task() -> None:
    """Two readers agree on the detection; their grades of the same item are another task's reads."""
    events = [ev(n, "annotation.created", r, item="i", annotation_id=a, label_class=c, version=1, origin="human",
                 guideline_id=g) for n, r, a, c, g in ((1, "r1", "a1", "nodule", "det"), (2, "r2", "a2", "nodule", "det"),
                                                    (3, "r1", "g1", "3", "grade"), (4, "r2", "g2", "4", "grade"))]  # fmt: skip
    shown = [
        {"type": e.type, "annotation_id": e.data["annotation_id"], "task": e.data["guideline_id"]}
        for e in events
    ]
    adjudicated = {"type": "adjudication.completed", "method": "expert", "level": 4,
                   "final_annotation_id": "a1", "final_label_class": "nodule"}  # fmt: skip
    items = [{"item": "i", "adjudicated": True, "events": [*shown, adjudicated]}]
    assert adjudication(items, collect_reads(events, _task))["outcomes"] == {"readers_unanimous": 1}


def test_evidence_over_the_bundle_limit_is_covered_by_consecutive_log_ranges() -> None:
    positions = [("L", p) for p in (3, 4, 9, 12, 13, 30)] + [("M", 1)]
    ranges = covering_ranges(positions, 10)
    assert ranges == [("L", 3, 12), ("L", 13, 13), ("L", 30, 30), ("M", 1, 1)]
    assert all(last - first + 1 <= 10 for _, first, last in ranges)
    assert all(any(log == x and first <= p <= last for x, first, last in ranges) for log, p in positions)


def test_the_report_names_range_bundles_when_the_release_bundle_would_be_refused() -> None:
    scope = ReleaseScope("D", "r1")
    fits = bundle_commands(scope, [("L", 1), ("L", 5)], limit=2)
    assert fits == {"bundle_commands": ["ledger bundle --release D@r1"], "note": None}
    over = bundle_commands(scope, [("L", 1), ("L", 5), ("L", 6)], limit=2)
    assert over["bundle_commands"] == [
        "ledger bundle --log L --from 1 --to 1",
        "ledger bundle --log L --from 5 --to 6",
    ]
    assert "MAX_BUNDLE_EVENTS" in over["note"]
