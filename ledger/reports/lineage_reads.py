"""Readers, ratings and repeat reads of released items (contract "Tasks, readers, ratings"), from the events.

A reader is a human actor with an annotation of the item under the task; their rating is the label class
of their first annotation id on that item under that task, at its latest version that is not deleted; a
second, later annotation id of theirs is a repeat read. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledger.reports.lineage_data import Event
from ledger.reports.lineage_items import TaskOf


@dataclass
class Read:
    """One reader's annotation id of one item under one task, at its latest version that is not deleted."""

    task: str
    item: str
    reader: str
    annotation_id: str
    first_event: Event
    """The annotation's first version."""
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

    def ratings(self, task: str, which: str = "first") -> dict[str, dict[str, str]]:
        """item -> reader -> label class (``which``: first or repeat reads)."""
        reads = self.first if which == "first" else self.repeat
        return {
            item: {r: read.label_class for r, read in by_reader.items() if read.label_class is not None}
            for item, by_reader in reads.get(task, {}).items()
        }


def collect_reads(events: Iterable[Event], task_of: TaskOf) -> Reads:
    """The reads in ``events`` (annotation events in log order, any items)."""
    by_id: dict[str, Read] = {}
    order: list[Read] = []
    for ev in events:
        d = ev.data
        if ev.type in ("annotation.created", "annotation.updated"):
            key = str(d["annotation_id"])
            read = by_id.get(key)
            if read is None:
                if d.get("origin") != "human":
                    continue
                read = Read(
                    task_of(str(d["dataset"]), str(d["guideline_id"])), str(d["item"]), ev.actor, key, ev
                )
                by_id[key] = read
                order.append(read)
            read.label_class, read.geometry, read.deleted = str(d["label_class"]), d.get("geometry"), False
        elif ev.type == "annotation.deleted" and (read := by_id.get(str(d["annotation_id"]))) is not None:
            read.deleted = True  # the rating stays the latest version that is not deleted
    reads = Reads()
    for read in order:  # first creation first
        first = reads.first.setdefault(read.task, {}).setdefault(read.item, {})
        if read.reader not in first:
            first[read.reader] = read
        else:
            reads.repeat.setdefault(read.task, {}).setdefault(read.item, {}).setdefault(read.reader, read)
    return reads
