"""Signed checkpoints and their witnesses' cosignatures, one row per log and tree size (issue 8).

``ledger.checkpoint_signed`` starts a row with the note as the log signed it; each
``ledger.checkpoint_cosigned`` adds its ``cosignature/v1`` line to the row of the checkpoint it cosigns
(a line already there is not added twice). The events were checked when they were written
(``ledger.checkpoints``); this only files them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.domain.internal import CHECKPOINT_COSIGNED, CHECKPOINT_SIGNED
from ledger.projections.bulk import Rows, save_rows
from ledger.projections.tables import Connection, select_by_pairs
from ledger.storage.append import Recorded

TABLE = "proj_checkpoints"


class CheckpointProjector:
    """Files each checkpoint and the cosignatures recorded for it."""

    name: str = "checkpoints"
    tables: tuple[str, ...] = (TABLE,)

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Add the checkpoints of ``events`` and the cosignatures on them."""
        mine = [r for r in events if r.event["type"] in (CHECKPOINT_SIGNED, CHECKPOINT_COSIGNED)]
        if not mine:
            return
        rows = _load(conn, [_key(r) for r in mine if r.event["type"] == CHECKPOINT_COSIGNED])
        changed: set[tuple[str, int]] = set()
        for r in mine:
            key = _key(r)
            if r.event["type"] == CHECKPOINT_SIGNED:
                rows[key] = _signed(r)
            elif key in rows:
                line = str(r.event["data"]["cosignature"])
                if line not in rows[key]["cosignatures"]:
                    rows[key]["cosignatures"] = [*rows[key]["cosignatures"], line]
            else:
                continue  # a cosignature of no checkpoint on the record: the service refuses those
            changed.add(key)
        save_rows(conn, Rows(TABLE, ("log", "tree_size"), [rows[k] for k in sorted(changed)]))


def _key(r: Recorded) -> tuple[str, int]:
    data = r.event["data"]
    return str(data["log"]), int(data["tree_size"])


def _signed(r: Recorded) -> dict[str, Any]:
    data = r.event["data"]
    return {
        "log": str(data["log"]),
        "tree_size": int(data["tree_size"]),
        "tenant": str(r.event["tenant"]),
        "root_hash": bytes.fromhex(data["root_hash"]),
        "note": str(data["note"]),
        "signed_at": r.recorded_at,
        "event_id": str(r.event["id"]),
        "position": r.position,
        "cosignatures": [],
    }


def _load(conn: Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    found = select_by_pairs(
        conn,
        f"SELECT c.* FROM {TABLE} c JOIN unnest(%s::text[], %s::text[]) AS u(a, b)"
        " ON c.log = u.a AND c.tree_size = u.b::bigint",
        [(log, str(size)) for log, size in keys],
    )
    return {
        (row["log"], int(row["tree_size"])): {**row, "root_hash": bytes(row["root_hash"])} for row in found
    }
