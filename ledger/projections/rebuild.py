"""``ledger projections rebuild``: replay the log into empty projection tables.

The rebuild locks the log heads table against every append for its whole transaction (a new log cannot
start meanwhile either), and feeds the projectors exactly what the inline path feeds them (the stored
event, its log, position and recorded time), in log order, so the result equals the inline projection row
for row. Events go in chunks of ``CHUNK`` through the same load → apply → save code as an append batch
(``bulk.save_rows``: one COPY and one merge per table per chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from ledger.projections.registry import NamedProjector
from ledger.projections.tables import Connection
from ledger.storage.append import Recorded
from ledger.storage.database import Database

CHUNK = 10_000
_decode = msgspec.json.Decoder().decode


def rebuild(
    db: Database, projectors: Sequence[NamedProjector], *, progress: Callable[[int], None] | None = None
) -> int:
    """Empty the projectors' tables and replay every event into them; return how many events were read."""
    read = 0
    with db.connect() as conn, conn.transaction():
        # EXCLUSIVE blocks appends (they lock and update heads, or insert a new one) but not readers,
        # who go on seeing the projections as they were until the rebuild commits.
        conn.execute("LOCK TABLE ledger_log_heads IN EXCLUSIVE MODE")
        for projector in projectors:
            for table in projector.tables:
                conn.execute(f"DELETE FROM {table}")
        # Binary, so the stored bytes arrive as they are (no hex to decode); a server-side cursor, so
        # memory stays at one chunk whatever the size of the log.
        with conn.cursor(name="ledger_rebuild", binary=True) as cur:
            cur.itersize = CHUNK
            cur.execute(
                "SELECT log, position, recorded_at, canonical FROM ledger_events ORDER BY log, position"
            )
            while rows := cur.fetchmany(CHUNK):
                chunk = [
                    Recorded(log, position, at, _decode(canonical)["event"])
                    for log, position, at, canonical in rows
                ]
                read += _apply(conn, projectors, chunk, progress)
    return read


def _apply(
    conn: Connection,
    projectors: Sequence[NamedProjector],
    chunk: list[Recorded],
    progress: Callable[[int], None] | None,
) -> int:
    for projector in projectors:
        projector.apply(conn, chunk)
    if progress is not None and chunk:
        progress(len(chunk))
    return len(chunk)
