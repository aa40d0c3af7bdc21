"""Per-item agreement under a QC-policy application (pure: no database).

An item's readers are the human actors with an annotation of it under the application; each reader's
rating is their first annotation id of the item (the earliest created, ties by id), at its latest
non-deleted version (shared contract of issue 10, "Tasks, readers, ratings"). A repeat read by the same
reader is test-retest data, not a second reader, and is left out here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ledger.agreement import Overlap, overlap
from ledger.quality.policy import Application

MAX_INLINE_POINTS = 1000
"""Polygons with more points are not compared here (method ``"too_large"``, no IoU or Dice): item quality is
computed inline in the append transaction, and two jagged valid rings of 1,000 points intersect in ~12 ms,
of 2,000 in ~45 ms, of 10,000 (the schema's maximum) in up to ~1 s. The lineage report compares them."""

Version = tuple[str, int]  # annotation id, version
Overlaps = MutableMapping[tuple[Version, Version], Overlap]


@dataclass(frozen=True)
class Read:
    """One reader's first read of an item."""

    reader: str
    annotation_id: str
    label_class: str
    geometry: Mapping[str, Any]
    event_id: str
    """The event of the read's version (its ``annotation.created`` or latest applied ``annotation.updated``):
    the geometry and class compared, so the evidence the read rests on."""
    version: int = 0


@dataclass(frozen=True)
class ItemQuality:
    """The agreement among an item's readers, and whether it falls below its application's thresholds."""

    readers: int
    pairs: int
    min_iou: float | None
    min_dice: float | None
    class_agreement: float | None
    """Share of reader pairs giving the item the same class (None with fewer than two readers)."""
    below_policy: bool
    reasons: tuple[str, ...]
    """One per threshold missed: the metric, its value and the threshold."""
    evidence: tuple[str, ...]


def first_reads(annotations: Iterable[Mapping[str, Any]]) -> list[Read]:
    """Each human reader's first read among ``annotations`` (rows shaped as ``proj_annotations``), by reader;
    a row's ``version_event_id``, when given, is the event of its version (else ``created_event_id``)."""
    first: dict[str, Mapping[str, Any]] = {}
    for row in annotations:
        if row["origin"] != "human":
            continue
        reader = row["created_by"]
        held = first.get(reader)
        if held is None or _creation(row) < _creation(held):
            first[reader] = row
    return [
        Read(
            r,
            row["annotation_id"],
            row["label_class"],
            row["geometry"],
            row.get("version_event_id") or row["created_event_id"],
            row["version"],
        )
        for r, row in sorted(first.items())
    ]


def _overlap(a: Read, b: Read, cache: Overlaps) -> Overlap:
    key = ((a.annotation_id, a.version), (b.annotation_id, b.version))
    found = cache.get(key)
    if found is None:
        found = cache[key] = overlap(a.geometry, b.geometry, max_points=MAX_INLINE_POINTS)
    return found


def _creation(row: Mapping[str, Any]) -> tuple[Any, str]:
    return row["created_at"], row["annotation_id"]


def item_quality(reads: list[Read], app: Application, cache: Overlaps | None = None) -> ItemQuality:
    """The agreement of ``reads`` (one per reader) held to ``app``'s item thresholds; geometry is compared
    only between readers giving the same class (a box of another class is not the same finding), and only
    for polygons of up to ``MAX_INLINE_POINTS`` points. ``cache`` holds overlaps by the two annotations'
    (id, version), so a batch touching an item many times compares each pair of versions once."""
    pairs = list(itertools.combinations(reads, 2))
    same = [(a, b) for a, b in pairs if a.label_class == b.label_class]
    cache = {} if cache is None else cache
    overlaps = [_overlap(a, b, cache) for a, b in same]
    ious = [o.iou for o in overlaps if o.iou is not None]
    dices = [o.dice for o in overlaps if o.dice is not None]
    min_iou, min_dice = (min(ious) if ious else None), (min(dices) if dices else None)
    agreement = len(same) / len(pairs) if pairs else None
    reasons = tuple(
        f"{metric} {value:.4f} is below {name} {threshold}"
        for metric, value, name, threshold in (
            ("min IoU", min_iou, "item_iou_min", app.item_iou_min),
            ("min Dice", min_dice, "item_dice_min", app.item_dice_min),
            ("class agreement", agreement, "item_agreement_min", app.item_agreement_min),
        )
        if value is not None and threshold is not None and value < threshold
    )
    return ItemQuality(
        readers=len(reads),
        pairs=len(pairs),
        min_iou=min_iou,
        min_dice=min_dice,
        class_agreement=agreement,
        below_policy=bool(reasons),
        reasons=reasons,
        evidence=tuple(r.event_id for r in reads),
    )
