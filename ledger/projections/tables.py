"""Small helpers shared by the projectors: batched upserts and key look-ups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

Connection = psycopg.Connection[Any]
Row = dict[str, Any]


def upsert(
    conn: Connection, table: str, keys: Sequence[str], rows: Iterable[Row], *, update: bool = True
) -> None:
    """Insert ``rows`` (dicts with the same columns), replacing a row with the same ``keys`` when ``update``.

    Projection tables are derived state, so replacing a row here is right; events are never upserted.
    """
    batch = list(rows)
    if not batch:
        return
    columns = list(batch[0])
    placeholders = ", ".join(["%s"] * len(columns))
    if update:
        changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {changes}"
    else:
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) {conflict}"
    with conn.cursor() as cur:
        cur.executemany(sql, [tuple(r[c] for c in columns) for r in batch])


def select_by_pairs(conn: Connection, sql: str, pairs: Iterable[tuple[str, str]]) -> list[Row]:
    """Run ``sql`` (with ``%s`` for two text arrays joined as ``u(a, b)``) for the distinct ``pairs``."""
    distinct = sorted(set(pairs))
    if not distinct:
        return []
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, ([a for a, _ in distinct], [b for _, b in distinct]))
        return list(cur.fetchall())
