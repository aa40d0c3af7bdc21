"""``ledger projections rebuild``: replay the log into empty projection tables.

The rebuild holds every log head's lock for its whole transaction, so no append can interleave, and
feeds the projector exactly what the inline path feeds it (the stored event, its log, position and
recorded time), in log order, so the result equals the inline projection row for row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from ledger.projections.registry import NamedProjector
from ledger.projections.tables import Connection
from ledger.storage.append import Recorded
from ledger.storage.database import Database

CHUNK = 1000


def rebuild(
    db: Database, projectors: Sequence[NamedProjector], *, progress: Callable[[int], None] | None = None
) -> int:
    """Empty the projectors' tables and replay every event into them; return how many events were read."""
    read = 0
    with db.connect() as conn, conn.transaction():
        conn.execute("SELECT log FROM ledger_log_heads ORDER BY log FOR UPDATE")
        for projector in projectors:
            for table in projector.tables:
                conn.execute(f"DELETE FROM {table}")
        with conn.cursor(name="ledger_rebuild") as cur:
            cur.itersize = CHUNK
            cur.execute(
                "SELECT log, position, recorded_at, canonical FROM ledger_events ORDER BY log, position"
            )
            chunk: list[Recorded] = []
            for log, position, recorded_at, canonical in cur:
                chunk.append(
                    Recorded(str(log), int(position), recorded_at, json.loads(bytes(canonical))["event"])
                )
                if len(chunk) == CHUNK:
                    read += _apply(conn, projectors, chunk, progress)
                    chunk = []
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
