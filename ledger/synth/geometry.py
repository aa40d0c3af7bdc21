"""Readers' boxes of one finding: each item has a true box, and a reader draws a small jitter of it.

Each edge moves by a Gaussian share of the box's size, cut at ``LIMIT``: two readers' boxes then overlap
with an IoU of about 0.7-0.95, and never below 0.56 (both boxes at the limit in opposite directions), so
an item below a QC policy of ``item_iou_min = 0.5`` is one that was planted there (``displaced``).
"""

from __future__ import annotations

import random
from typing import Any

SIGMA = 0.035
"""The standard deviation of an edge's move, as a share of the box's width or height."""
LIMIT = 0.07
"""The most an edge moves, as a share of the size: (1 - 2·0.07)² / (1 + 2·0.07)² ≈ 0.57 at worst."""
DISPLACEMENT = 0.75
"""How far a displaced box is moved sideways, in widths: its IoU with any reader's box is below 0.45."""


def true_box(rng: random.Random) -> dict[str, Any]:
    """The finding's box on one frame of the series, inside a 512 x 512 image with room for jitter."""
    return {
        "kind": "bbox",
        "x": round(rng.uniform(12.0, 250.0), 1),  # a displaced box stays inside too
        "y": round(rng.uniform(12.0, 340.0), 1),
        "width": round(rng.uniform(40.0, 140.0), 1),
        "height": round(rng.uniform(40.0, 140.0), 1),
        "frame": rng.randint(0, 180),
    }


def jittered(rng: random.Random, box: dict[str, Any], sigma: float = SIGMA) -> dict[str, Any]:
    """A reader's (or a model's) drawing of ``box``: each edge moved a little, the frame the same."""

    def move(size: float) -> float:
        return max(-LIMIT, min(LIMIT, rng.gauss(0.0, sigma))) * size

    left, right = box["x"] + move(box["width"]), box["x"] + box["width"] + move(box["width"])
    top, bottom = box["y"] + move(box["height"]), box["y"] + box["height"] + move(box["height"])
    return {
        "kind": "bbox",
        "x": round(max(left, 0.0), 1),
        "y": round(max(top, 0.0), 1),
        "width": round(right - left, 1),
        "height": round(bottom - top, 1),
        "frame": box["frame"],
    }


def displaced(box: dict[str, Any]) -> dict[str, Any]:
    """``box`` moved sideways by ``DISPLACEMENT`` widths: a reader who drew the finding in the wrong place."""
    return {**box, "x": round(box["x"] + DISPLACEMENT * box["width"], 1)}
