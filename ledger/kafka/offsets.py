"""Consumed Kafka offsets, kept in PostgreSQL next to the events they produced (``ledger_consumer_offsets``).

The fence is a compare-and-set run first inside the append transaction: for each partition of a batch it
moves ``next_offset`` from the value the consumer started the batch at to the offset after its last
message, or inserts the row when the consumer started from the beginning with no row. If the stored
value is not the expected one, another consumer (or an earlier attempt of this one whose commit was
reported lost) got there first: ``OffsetConflict`` rolls the whole batch back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.domain.errors import FieldError, OffsetConflict
from ledger.storage.append import Fence
from ledger.storage.database import Database


@dataclass(frozen=True)
class Advance:
    """One partition's move in a batch: from ``expected`` (``None``: no row yet) to ``next``."""

    expected: int | None
    next: int
    high_watermark: int | None = None


class OffsetStore:
    """The offsets of one consumer group on one topic."""

    def __init__(self, db: Database, group: str, topic: str) -> None:
        self._db = db
        self.group = group
        self.topic = topic

    def load(self, partitions: list[int]) -> dict[int, int | None]:
        """The next offset stored for each partition; ``None`` where nothing was ever committed."""
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT partition, next_offset FROM ledger_consumer_offsets"
                " WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s)",
                (self.group, self.topic, partitions),
            ).fetchall()
        stored = {int(p): int(o) for p, o in rows}
        return {p: stored.get(p) for p in partitions}

    def fence(self, advances: Mapping[int, Advance]) -> Fence:
        """The append fence for ``advances``: a callable run with the transaction's connection."""

        def run(conn: psycopg.Connection[Any]) -> None:
            compare_and_set(conn, self.group, self.topic, advances)

        return run


def compare_and_set(
    conn: psycopg.Connection[Any], group: str, topic: str, advances: Mapping[int, Advance]
) -> None:
    """Move each partition's stored offset from ``expected`` to ``next``, or raise ``OffsetConflict``."""
    if not advances:
        return
    partitions = sorted(advances)
    # Lock the rows in a fixed order (by partition) so two consumers can never deadlock on them; a row
    # another transaction is moving is waited for, then read as committed.
    rows = conn.execute(
        "SELECT partition, next_offset FROM ledger_consumer_offsets"
        " WHERE consumer_group = %s AND topic = %s AND partition = ANY(%s) ORDER BY partition FOR UPDATE",
        (group, topic, partitions),
    ).fetchall()
    stored = {int(p): int(o) for p, o in rows}
    errors = [
        FieldError(
            f"{topic}/{p}",
            f"stored next offset is {stored.get(p, 'absent')}, this batch expected {_show(advances[p].expected)}",
        )
        for p in partitions
        if stored.get(p) != advances[p].expected
    ]
    if errors:
        msg = f"offsets of group {group!r} moved under this consumer: " + "; ".join(
            f"{e.field}: {e.message}" for e in errors
        )
        raise OffsetConflict(msg, errors=errors)
    fresh = [p for p in partitions if advances[p].expected is None]
    if fresh:
        # ON CONFLICT here only detects a concurrent first insert (bookkeeping, not an event): a row that
        # appeared meanwhile makes the insert count short and the batch roll back.
        inserted = conn.execute(
            "INSERT INTO ledger_consumer_offsets (consumer_group, topic, partition, next_offset, high_watermark)"
            " SELECT %s, %s, p, o, h FROM unnest(%s::int[], %s::int8[], %s::int8[]) AS u(p, o, h)"
            " ON CONFLICT DO NOTHING",
            (
                group,
                topic,
                fresh,
                [advances[p].next for p in fresh],
                [advances[p].high_watermark for p in fresh],
            ),
        ).rowcount
        if inserted != len(fresh):
            msg = f"offsets of group {group!r} on {topic} were created by another consumer meanwhile"
            raise OffsetConflict(msg)
    moved = [p for p in partitions if advances[p].expected is not None]
    if moved:
        conn.execute(
            "UPDATE ledger_consumer_offsets o SET next_offset = u.o, updated_at = now(),"
            " high_watermark = COALESCE(u.h, o.high_watermark)"
            " FROM unnest(%s::int[], %s::int8[], %s::int8[]) AS u(p, o, h)"
            " WHERE o.consumer_group = %s AND o.topic = %s AND o.partition = u.p",
            (
                moved,
                [advances[p].next for p in moved],
                [advances[p].high_watermark for p in moved],
                group,
                topic,
            ),
        )


def _show(value: int | None) -> str:
    return "no row (start of the topic)" if value is None else str(value)
