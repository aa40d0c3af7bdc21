"""The item index: which events touch which item, so an item's provenance is one index range away.

The ledger's records of reads of its own API are not indexed: an item's provenance is what happened to the
item (producers' access events included), and reading it must not change it. Those records stay in the log,
its checkpoints and the anomaly rules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ledger.domain.internal import recorded_read
from ledger.projections.bulk import Rows, save_rows
from ledger.projections.tables import Connection
from ledger.storage.append import Recorded

TABLES = ("proj_item_events",)
_COLUMNS = ("tenant", "dataset", "item", "log", "position")


def items_of(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The (dataset, item) pairs an event is about."""
    data = event.get("data")
    if not isinstance(data, dict):
        return
    dataset = data.get("dataset")
    if not isinstance(dataset, str):
        return
    if isinstance(data.get("item"), str):
        yield dataset, data["item"]
    for entry in data.get("items") or []:
        item = entry.get("item") if isinstance(entry, dict) else entry
        if isinstance(item, str):
            yield dataset, item


class ProvenanceProjector:
    """Maintains ``proj_item_events``: (tenant, dataset, item) → the (log, position) of each event."""

    name: str = "provenance"
    tables: tuple[str, ...] = TABLES

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Index the items of ``events``."""
        rows = sorted(
            {
                (str(r.event["tenant"]), dataset, item, r.log, r.position)
                for r in events
                if not recorded_read(r.event)
                for dataset, item in items_of(r.event)
            }
        )
        save_rows(
            conn,
            Rows(
                "proj_item_events",
                _COLUMNS,
                [dict(zip(_COLUMNS, row, strict=True)) for row in rows],
                update=False,
            ),
        )
