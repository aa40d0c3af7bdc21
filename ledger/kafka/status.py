"""Where each consumer group stands, read from the offsets table: for ``GET /health`` and metrics.

The position is what PostgreSQL committed (the source of truth); the lag is measured against the end of
the partition as the consumer last saw it (stored with each batch), so it needs no broker connection and
is as fresh as ``updated_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.storage.database import Database


@dataclass(frozen=True)
class PartitionStatus:
    """One partition of one topic as one consumer group has consumed it."""

    group: str
    topic: str
    partition: int
    next_offset: int  # the next offset to consume: everything before it is in the ledger
    high_watermark: int | None  # the partition's end offset when the last batch was read, if known
    updated_at: datetime  # when the last batch committed

    @property
    def lag(self) -> int | None:
        """Messages not yet in the ledger as of ``updated_at``, or None when the end offset is unknown."""
        return None if self.high_watermark is None else max(self.high_watermark - self.next_offset, 0)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "group": self.group,
            "topic": self.topic,
            "partition": self.partition,
            "next_offset": self.next_offset,
            "high_watermark": self.high_watermark,
            "lag": self.lag,
            "updated_at": self.updated_at.isoformat(),
        }


def consumer_status(
    db: Database, *, group: str | None = None, topic: str | None = None
) -> list[PartitionStatus]:
    """Every stored (group, topic, partition) position, optionally for one group and/or topic."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT consumer_group, topic, partition, next_offset, high_watermark, updated_at"
            " FROM ledger_consumer_offsets"
            " WHERE (%(group)s::text IS NULL OR consumer_group = %(group)s)"
            " AND (%(topic)s::text IS NULL OR topic = %(topic)s)"
            " ORDER BY consumer_group, topic, partition",
            {"group": group, "topic": topic},
        ).fetchall()
    return [
        PartitionStatus(str(g), str(t), int(p), int(o), None if h is None else int(h), u)
        for g, t, p, o, h, u in rows
    ]


def total_lag(statuses: list[PartitionStatus]) -> int | None:
    """The summed lag, or None when any partition's end offset is unknown."""
    lags = [s.lag for s in statuses]
    return None if any(v is None for v in lags) else sum(v for v in lags if v is not None)
