"""The per-item QC rule (pure): first reads per reader, agreement among them, and the thresholds missed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.agreement import Overlap
from ledger.quality.items import MAX_INLINE_POINTS, first_reads, item_quality
from ledger.quality.policy import Application

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def box(x: float, width: float = 10.0) -> dict[str, Any]:
    return {"kind": "bbox", "x": x, "y": 0, "width": width, "height": 10}


def row(ann: str, who: str, label: str = "nodule", geometry: dict[str, Any] | None = None, *,
        hour: int = 0, origin: str = "human") -> dict[str, Any]:  # fmt: skip
    return {"annotation_id": ann, "created_by": who, "label_class": label, "geometry": geometry or box(0),
            "origin": origin, "created_at": T0 + timedelta(hours=hour), "created_event_id": f"evt-{ann}", "version": 1}  # fmt: skip


APP = Application(guideline="chest-ct", item_iou_min=0.5, item_dice_min=0.6, item_agreement_min=1.0)


def test_a_readers_first_annotation_is_their_read_and_a_repeat_is_not_a_second_reader() -> None:
    reads = first_reads(
        [
            row("a2", "r1", hour=5),
            row("a1", "r1", hour=1),
            row("b1", "r2"),
            row("m1", "model-x", origin="model"),
        ]
    )
    assert [(r.reader, r.annotation_id) for r in reads] == [("r1", "a1"), ("r2", "b1")]


def test_identical_boxes_of_the_same_class_are_within_policy() -> None:
    quality = item_quality(first_reads([row("a", "r1"), row("b", "r2")]), APP)
    assert (quality.readers, quality.pairs, quality.min_iou, quality.min_dice, quality.class_agreement) == (
        2,
        1,
        1.0,
        1.0,
        1.0,
    )
    assert not quality.below_policy
    assert quality.reasons == ()
    assert quality.evidence == ("evt-a", "evt-b")


def test_boxes_overlapping_less_than_the_minimum_put_the_item_below_policy_naming_metric_value_threshold() -> (
    None
):
    # boxes [0,10] and [5,15]: intersection 50, union 150 -> IoU 1/3, Dice 1/2
    quality = item_quality(
        first_reads([row("a", "r1", geometry=box(0)), row("b", "r2", geometry=box(5))]), APP
    )
    assert abs(quality.min_iou - 1 / 3) < 1e-12  # type: ignore[operator]
    assert quality.below_policy
    assert quality.reasons == (
        "min IoU 0.3333 is below item_iou_min 0.5",
        "min Dice 0.5000 is below item_dice_min 0.6",
    )


def test_readers_giving_different_classes_miss_the_agreement_threshold_and_their_boxes_are_not_compared() -> (
    None
):
    quality = item_quality(
        first_reads([row("a", "r1", "nodule", box(0)), row("b", "r2", "mass", box(50))]), APP
    )
    assert (quality.class_agreement, quality.min_iou) == (0.0, None)
    assert quality.reasons == ("class agreement 0.0000 is below item_agreement_min 1.0",)


def test_the_smallest_overlap_among_three_readers_counts() -> None:
    reads = first_reads(
        [row("a", "r1", geometry=box(0)), row("b", "r2", geometry=box(0)), row("c", "r3", geometry=box(1))]
    )
    quality = item_quality(reads, Application(guideline="chest-ct", item_iou_min=0.9))
    assert quality.pairs == 3
    assert abs(quality.min_iou - 90 / 110) < 1e-12  # type: ignore[operator]
    assert quality.below_policy


def test_one_reader_or_no_threshold_is_never_below_policy() -> None:
    assert not item_quality(first_reads([row("a", "r1")]), APP).below_policy
    assert item_quality(first_reads([row("a", "r1")]), APP).class_agreement is None
    spread = first_reads([row("a", "r1", geometry=box(0)), row("b", "r2", geometry=box(9))])
    assert not item_quality(spread, Application(guideline="chest-ct")).below_policy


def test_a_pair_of_versions_is_compared_once_per_cache_and_huge_polygons_not_inline() -> None:
    square = {"kind": "polygon", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}
    reads = first_reads([row("a", "r1", geometry=square), row("b", "r2", geometry=box(0))])
    cache: dict = {}
    assert item_quality(reads, APP, cache).min_iou == 1.0
    assert list(cache) == [(("a", 1), ("b", 1))]
    # a cached overlap is what the next recomputation of the same versions uses
    cache[(("a", 1), ("b", 1))] = Overlap(0.25, 0.4, "shapely")
    assert item_quality(reads, APP, cache).min_iou == 0.25
    # a valid ring above MAX_INLINE_POINTS is not compared inline: no IoU, so no IoU reason
    ring = [
        [
            500 + 300 * math.cos(2 * math.pi * i / (MAX_INLINE_POINTS + 1)),
            300 * math.sin(2 * math.pi * i / (MAX_INLINE_POINTS + 1)),
        ]
        for i in range(MAX_INLINE_POINTS + 1)
    ]
    huge = first_reads([row("a", "r1", geometry={"kind": "polygon", "points": ring}), row("b", "r2")])
    quality = item_quality(huge, APP)
    assert (quality.min_iou, quality.min_dice, quality.below_policy) == (None, None, False)
