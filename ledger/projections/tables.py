"""What the projectors share for reading their rows: the connection type and look-ups by key pairs.

Writing goes through ``bulk.save_rows``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

Connection = psycopg.Connection[Any]
Row = dict[str, Any]


def select_by_pairs(conn: Connection, sql: str, pairs: Iterable[tuple[str, str]]) -> list[Row]:
    """Run ``sql`` (with ``%s`` for two text arrays joined as ``u(a, b)``) for the distinct ``pairs``;
    no query at all when there are none."""
    distinct = sorted(set(pairs))
    if not distinct:
        return []
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, ([a for a, _ in distinct], [b for _, b in distinct]))
        return list(cur.fetchall())
