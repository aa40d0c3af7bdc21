"""IoU and Dice of two readers' geometries: boxes exactly, polygons as shapely computes them, masks by digest."""

from __future__ import annotations

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.agreement import Overlap, overlap
from ledger.agreement.geometry import MAX_REPAIR_POINTS

FAST = settings(max_examples=200, deadline=None)
# sub-pixel coordinates on a 1/64 grid: repeated points, collinear runs and crossings are common, while
# GEOS is spared the 1e-300 coordinates on which no two overlay computations agree (nor matter to a reader)
coordinate = st.integers(0, 6400).map(lambda v: v / 64)
extent = st.integers(1, 3840).map(lambda v: v / 64)


def box(x: float, y: float, width: float, height: float, frame: int | None = None) -> dict:
    return {"kind": "bbox", "x": x, "y": y, "width": width, "height": height, "frame": frame}


boxes = st.builds(box, coordinate, coordinate, extent, extent)
# random rings: many of them cross themselves and are repaired before they are compared
polygons = st.lists(st.tuples(coordinate, coordinate), min_size=3, max_size=MAX_REPAIR_POINTS).map(
    lambda points: {"kind": "polygon", "points": [list(p) for p in points]}
)


def shapely_geometry(g: dict) -> shapely.Geometry:
    if g["kind"] == "bbox":
        return shapely.box(g["x"], g["y"], g["x"] + g["width"], g["y"] + g["height"])
    return shapely.make_valid(shapely.Polygon(g["points"]))


def shapely_overlap(a: dict, b: dict) -> tuple[float | None, float | None]:
    first, second = shapely_geometry(a), shapely_geometry(b)
    total = first.area + second.area
    if total == 0:
        return None, None
    intersection = shapely.intersection(first, second).area
    return intersection / shapely.union(first, second).area, 2 * intersection / total


@FAST
@given(boxes, boxes)
def test_box_overlap_is_exact_and_equals_shapely(a: dict, b: dict) -> None:
    result = overlap(a, b)
    iou, dice = shapely_overlap(a, b)
    assert result.method == "exact"
    assert result.iou == pytest.approx(iou, rel=1e-9, abs=1e-12)
    assert result.dice == pytest.approx(dice, rel=1e-9, abs=1e-12)
    assert overlap(b, a) == result


@FAST
@given(polygons, st.one_of(polygons, boxes))
def test_polygon_overlap_equals_shapely_with_invalid_rings_repaired(a: dict, b: dict) -> None:
    result = overlap(a, b)
    iou, dice = shapely_overlap(a, b)
    assert result.method == "shapely"
    if iou is None:
        assert result == Overlap(None, None, "shapely")
        return
    assert result.iou == pytest.approx(iou, rel=1e-9, abs=1e-9)
    assert result.dice == pytest.approx(dice, rel=1e-9, abs=1e-9)
    assert 0 <= result.iou <= result.dice <= 1 + 1e-12


@FAST
@given(boxes)
def test_a_box_and_the_polygon_of_its_corners_agree_completely(b: dict) -> None:
    x0, y0, x1, y1 = b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]
    ring = {"kind": "polygon", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
    result = overlap(b, ring)
    assert result.iou == pytest.approx(1.0)
    assert result.dice == pytest.approx(1.0)


def test_box_overlap_by_hand() -> None:
    # two 2x2 boxes sharing a 1x1 corner: IoU 1/7, Dice 1/4; one inside the other: IoU = area ratio
    assert overlap(box(0, 0, 2, 2), box(1, 1, 2, 2)) == Overlap(1 / 7, 0.25, "exact")
    assert overlap(box(0, 0, 4, 4), box(1, 1, 2, 2)) == Overlap(0.25, 0.4, "exact")
    assert overlap(box(0, 0, 1, 1), box(5, 5, 1, 1)) == Overlap(0.0, 0.0, "exact")


def test_a_bow_tie_is_repaired_into_its_two_triangles() -> None:
    # (0,0)-(2,2)-(2,0)-(0,2) crosses itself at (1,1): two triangles of area 1 each, half the square
    bow_tie = {"kind": "polygon", "points": [[0, 0], [2, 2], [2, 0], [0, 2]]}
    square = {"kind": "polygon", "points": [[0, 0], [2, 0], [2, 2], [0, 2]]}
    assert overlap(bow_tie, square) == Overlap(0.5, 2 / 3, "shapely")


def zigzag_bow_tie(points: int) -> dict:
    """A bow-tie of ``points`` points: the bottom and top edges zigzag, the two sides cross at (1, 1)."""
    bottom = [[2 * i / (points // 2 - 1), (i % 2) / 100] for i in range(points // 2)]
    top = [[x, 2 - y] for x, y in bottom]
    return {"kind": "polygon", "points": [*bottom, *top][:points]}


def test_a_self_intersecting_ring_is_repaired_up_to_the_bound_and_not_compared_above_it() -> None:
    square = {"kind": "polygon", "points": [[0, 0], [2, 0], [2, 2], [0, 2]]}
    small = zigzag_bow_tie(MAX_REPAIR_POINTS)
    assert not shapely.Polygon(small["points"]).is_valid
    assert overlap(small, square).method == "shapely"
    assert overlap(small, square).iou is not None
    assert overlap(zigzag_bow_tie(MAX_REPAIR_POINTS + 2), square) == Overlap(None, None, "invalid")
    # the schema's largest ring, crossing itself: classified without repair (make_valid would take minutes)
    assert overlap(square, zigzag_bow_tie(10_000)) == Overlap(None, None, "invalid")


def test_polygons_above_max_points_are_not_compared() -> None:
    square = {"kind": "polygon", "points": [[0, 0], [2, 0], [2, 2], [0, 2]]}
    assert overlap(square, square, max_points=4) == Overlap(1.0, 1.0, "shapely")
    assert overlap(square, box(0, 0, 2, 2), max_points=3) == Overlap(None, None, "too_large")


def test_geometries_on_different_frames_do_not_overlap() -> None:
    assert overlap(box(0, 0, 2, 2, frame=3), box(0, 0, 2, 2, frame=4)) == Overlap(0.0, 0.0, "exact")
    ring = {"kind": "polygon", "points": [[0, 0], [2, 0], [2, 2]], "frame": 1}
    assert overlap(ring, box(0, 0, 2, 2, frame=2)) == Overlap(0.0, 0.0, "shapely")
    assert overlap(box(0, 0, 2, 2, frame=3), box(0, 0, 2, 2, frame=3)) == Overlap(1.0, 1.0, "exact")


def test_a_geometry_without_a_frame_is_on_every_frame() -> None:
    assert overlap(box(0, 0, 2, 2), box(0, 0, 2, 2, frame=0)) == Overlap(1.0, 1.0, "exact")
    assert overlap(box(0, 0, 2, 2, frame=None), box(0, 0, 2, 2, frame=7)) == Overlap(1.0, 1.0, "exact")
    ring = {"kind": "polygon", "points": [[0, 0], [2, 0], [2, 2], [0, 2]]}
    assert overlap(ring, box(0, 0, 2, 2, frame=0)) == Overlap(1.0, 1.0, "shapely")


def test_geometries_without_area_are_not_compared_on_any_frame() -> None:
    line = {"kind": "polygon", "points": [[0, 0], [1, 1], [2, 2]]}
    assert overlap({**line, "frame": 1}, {**line, "frame": 2}) == Overlap(None, None, "shapely")
    assert overlap(box(0, 0, 0, 2, frame=1), box(0, 0, 2, 0, frame=2)) == Overlap(None, None, "exact")
    assert overlap(box(0, 0, 0, 2, frame=1), box(0, 0, 2, 2, frame=2)) == Overlap(0.0, 0.0, "exact")


def test_polygons_without_area_are_not_compared() -> None:
    line = {"kind": "polygon", "points": [[0, 0], [1, 1], [2, 2]]}
    assert overlap(line, line) == Overlap(None, None, "shapely")
    assert overlap(line, box(0, 0, 1, 1)) == Overlap(0.0, 0.0, "shapely")


def test_masks_are_compared_by_digest_only() -> None:
    mask = {"kind": "mask", "digest": "a" * 64, "encoding": "rle"}
    same_mask_elsewhere = {**mask, "uri": "s3://other/copy.rle"}
    other = {"kind": "mask", "digest": "b" * 64, "encoding": "rle"}
    assert overlap(mask, same_mask_elsewhere) == Overlap(1.0, 1.0, "digest")
    # different bytes may still be nearly the same mask: the ledger cannot tell, so it says nothing
    assert overlap(mask, other) == Overlap(None, None, "digest")


def test_classifications_and_mixed_kinds_have_no_overlap() -> None:
    label = {"kind": "classification", "confidence": 0.9}
    mask = {"kind": "mask", "digest": "a" * 64, "encoding": "png"}
    assert overlap(label, label) == Overlap(None, None, "none")
    assert overlap(mask, box(0, 0, 1, 1)) == Overlap(None, None, "none")
    assert overlap(label, box(0, 0, 1, 1)) == Overlap(None, None, "none")
