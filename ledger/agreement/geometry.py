"""Overlap of two readers' geometries (the ``geometry`` of ``annotation.written``): IoU and Dice.

Boxes by closed-form arithmetic; polygons (and a box against a polygon) with shapely (GEOS); masks live
outside the ledger, so only their digests can be compared.

A self-intersecting ring is repaired by ``shapely.make_valid`` only up to ``MAX_REPAIR_POINTS`` points: its
cost grows steeply with the ring's crossings (a random ring of 64 points took up to 0.5 s, of 250 points
21 s, of 10,000 points, the schema's maximum, minutes), and the quality projector compares inline in the
append transaction. A larger invalid ring is not compared: method ``"invalid"``. Valid rings are compared
whatever their size (two jagged valid 10,000-point rings: up to ~1 s); a caller with a time budget passes
``max_points`` and gets method ``"too_large"`` above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import shapely
from shapely.geometry.base import BaseGeometry

Method = Literal["exact", "shapely", "digest", "none", "invalid", "too_large"]
AREAL = frozenset({"bbox", "polygon"})
MAX_REPAIR_POINTS = 16
"""The largest self-intersecting ring repaired: ``make_valid`` of a random ring of 16 points took at most
~15 ms (median 3 ms) on a loaded 2-core machine; 24 points up to 150 ms, 32 points up to 100 ms."""


@dataclass(frozen=True)
class Overlap:
    """IoU and Dice of two geometries (``None`` when they cannot be compared or are both empty)."""

    iou: float | None
    dice: float | None
    method: Method


def overlap(a: Mapping[str, Any], b: Mapping[str, Any], *, max_points: int | None = None) -> Overlap:
    """IoU and Dice of two geometries of the event model. Geometries on different frames (both frames
    given and different; a geometry without a frame is on every frame) do not overlap at all: IoU and Dice
    0, or ``None`` when neither has an area, as on one frame.

    ``max_points``: a polygon with more points is not compared (method ``"too_large"``); a
    self-intersecting ring of more than ``MAX_REPAIR_POINTS`` points is not compared either (``"invalid"``).
    """
    kinds = {a["kind"], b["kind"]}
    if kinds == {"mask"}:
        same = a["digest"] == b["digest"]
        return Overlap(1.0 if same else None, 1.0 if same else None, "digest")
    if not kinds <= AREAL:
        return Overlap(None, None, "none")
    method: Method = "exact" if kinds == {"bbox"} else "shapely"
    apart = a.get("frame") is not None and b.get("frame") is not None and a["frame"] != b["frame"]
    if method == "exact":
        return _ratios(_box_area(a), _box_area(b), 0.0 if apart else _box_intersection(a, b), method)
    if max_points is not None and any(
        len(g["points"]) > max_points for g in (a, b) if g["kind"] == "polygon"
    ):
        return Overlap(None, None, "too_large")
    first, second = _shape(a), _shape(b)
    if first is None or second is None:
        return Overlap(None, None, "invalid")
    intersection = 0.0 if apart else shapely.intersection(first, second).area
    return _ratios(first.area, second.area, intersection, method)


def _ratios(area_a: float, area_b: float, intersection: float, method: Method) -> Overlap:
    total = area_a + area_b
    # GEOS may return an intersection a few ulps larger than the smaller shape: IoU and Dice stay <= 1
    intersection = min(intersection, area_a, area_b)
    if total == 0:
        return Overlap(None, None, method)
    return Overlap(intersection / (total - intersection), 2 * intersection / total, method)


def _box_area(box: Mapping[str, Any]) -> float:
    return float(box["width"]) * float(box["height"])


def _box_intersection(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return float(max(width, 0.0) * max(height, 0.0))


def _shape(geometry: Mapping[str, Any]) -> BaseGeometry | None:
    """A valid shapely geometry: a box, or the polygon with a small self-intersecting ring repaired; ``None``
    for a larger invalid ring (``MAX_REPAIR_POINTS``)."""
    if geometry["kind"] == "bbox":
        x, y = float(geometry["x"]), float(geometry["y"])
        return shapely.box(x, y, x + float(geometry["width"]), y + float(geometry["height"]))
    polygon = shapely.Polygon([(float(x), float(y)) for x, y in geometry["points"]])
    if polygon.is_valid:
        return polygon
    if len(geometry["points"]) > MAX_REPAIR_POINTS:
        return None
    # a Polygon, MultiPolygon or collection (with the lines a bow-tie leaves); only its area counts
    return shapely.make_valid(polygon)
