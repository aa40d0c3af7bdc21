"""Overlap of two readers' geometries (the ``geometry`` of ``annotation.written``): IoU and Dice.

Boxes by closed-form arithmetic; polygons (and a box against a polygon) with shapely (GEOS), invalid rings
repaired by ``shapely.make_valid``; masks live outside the ledger, so only their digests can be compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import shapely
from shapely.geometry.base import BaseGeometry

Method = Literal["exact", "shapely", "digest", "none"]
AREAL = frozenset({"bbox", "polygon"})


@dataclass(frozen=True)
class Overlap:
    """IoU and Dice of two geometries (``None`` when they cannot be compared or are both empty)."""

    iou: float | None
    dice: float | None
    method: Method


def overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> Overlap:
    """IoU and Dice of two geometries of the event model; different frames do not overlap at all."""
    kinds = {a["kind"], b["kind"]}
    if kinds == {"mask"}:
        same = a["digest"] == b["digest"]
        return Overlap(1.0 if same else None, 1.0 if same else None, "digest")
    if not kinds <= AREAL:
        return Overlap(None, None, "none")
    method: Method = "exact" if kinds == {"bbox"} else "shapely"
    if a.get("frame") != b.get("frame"):
        return Overlap(0.0, 0.0, method)
    if method == "exact":
        return _ratios(_box_area(a), _box_area(b), _box_intersection(a, b), method)
    first, second = _shape(a), _shape(b)
    return _ratios(first.area, second.area, shapely.intersection(first, second).area, method)


def _ratios(area_a: float, area_b: float, intersection: float, method: Method) -> Overlap:
    total = area_a + area_b
    if total == 0:
        return Overlap(None, None, method)
    return Overlap(intersection / (total - intersection), 2 * intersection / total, method)


def _box_area(box: Mapping[str, Any]) -> float:
    return float(box["width"]) * float(box["height"])


def _box_intersection(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return float(max(width, 0.0) * max(height, 0.0))


def _shape(geometry: Mapping[str, Any]) -> BaseGeometry:
    """A valid shapely geometry: a box, or the polygon with a self-intersecting ring repaired."""
    if geometry["kind"] == "bbox":
        x, y = float(geometry["x"]), float(geometry["y"])
        return shapely.box(x, y, x + float(geometry["width"]), y + float(geometry["height"]))
    polygon = shapely.Polygon([(float(x), float(y)) for x, y in geometry["points"]])
    if polygon.is_valid:
        return polygon
    # a Polygon, MultiPolygon or collection (with the lines a bow-tie leaves); only its area counts
    return shapely.make_valid(polygon)
