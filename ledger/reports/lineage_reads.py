"""Readers, ratings and repeat reads of released items (contract "Tasks, readers, ratings"), from the events.

A reader is a human actor with an annotation of the item under the task; their rating is the label class
of their first annotation id on that item under that task, at its latest version that is not deleted; a
second, later annotation id of theirs is a repeat read. "First" is the quality package's rule, the one
``below_policy`` rests on (``ledger.quality.items.first_reads``), so the two never name different
readers. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger.quality.items import Read as QualityRead
from ledger.quality.items import first_reads
from ledger.reports.lineage_data import Event, Row
from ledger.reports.lineage_items import TaskOf
from ledger.reports.lineage_versions import annotation_states


@dataclass
class Read:
    """One reader's annotation id of one item under one task, at its latest version that is not deleted."""

    task: str
    item: str
    reader: str
    annotation_id: str
    first_event: Event
    """The event that created the annotation (its first version)."""
    label_class: str | None = None
    geometry: dict[str, Any] | None = None
    deleted: bool = False


@dataclass
class Reads:
    """Every read of the released items of one split: first reads and repeat reads, by task."""

    first: dict[str, dict[str, dict[str, Read]]] = field(default_factory=dict)
    """task -> item -> reader -> their first read."""
    repeat: dict[str, dict[str, dict[str, Read]]] = field(default_factory=dict)
    """task -> item -> reader -> their second (later) read."""
    quality: dict[str, dict[str, list[QualityRead]]] = field(default_factory=dict)
    """task -> item -> the first reads as ``ledger.quality.items`` holds them (for ``item_quality``)."""

    def ratings(self, task: str, which: str = "first") -> dict[str, dict[str, str]]:
        """item -> reader -> label class (``which``: first or repeat reads)."""
        reads = self.first if which == "first" else self.repeat
        return {
            item: {r: read.label_class for r, read in by_reader.items() if read.label_class is not None}
            for item, by_reader in reads.get(task, {}).items()
        }


def collect_reads(events: Iterable[Event], task_of: TaskOf) -> Reads:
    """The reads in ``events`` (log order, any items): each annotation at the version the projection holds
    (``lineage_versions``), its readers' first reads chosen by the quality package's rule
    (``ledger.quality.items.first_reads``: earliest created, ties by id, reader = creator, origin of the
    version on record), and a reader's first read among the rest as their repeat read."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in annotation_states(events).values():
        task = task_of(row["dataset"], row["guideline_id"])
        groups.setdefault((task, row["item"]), []).append(row)
    reads = Reads()
    for (task, item), rows in sorted(groups.items()):
        by_id = {row["annotation_id"]: row for row in rows}
        first = first_reads(rows)
        reads.quality.setdefault(task, {})[item] = first
        taken = {r.annotation_id for r in first}
        repeat = first_reads([row for row in rows if row["annotation_id"] not in taken])
        for which, chosen in ((reads.first, first), (reads.repeat, repeat)):
            if chosen:
                which.setdefault(task, {})[item] = {
                    r.reader: _read(task, by_id[r.annotation_id]) for r in chosen
                }
    return reads


def _read(task: str, row: Row) -> Read:
    return Read(
        task=task,
        item=row["item"],
        reader=row["created_by"],
        annotation_id=row["annotation_id"],
        first_event=row["created_event"],
        label_class=row["label_class"],
        geometry=row["geometry"],
        deleted=row["status"] == "deleted",
    )
