"""What the projectors share for reading their rows: the connection type and look-ups by key pairs.

Writing goes through ``bulk.save_rows``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

Connection = psycopg.Connection[Any]
Row = dict[str, Any]


def fetch_rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[Row]:
    """Run ``sql`` and return its rows as dicts."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def select_by_keys(conn: Connection, sql: str, keys: Iterable[tuple[Any, ...]]) -> list[Row]:
    """Run ``sql`` (with one ``%s`` array per key column) for the distinct ``keys``; no query at all when
    there are none."""
    distinct = sorted(set(keys))
    if not distinct:
        return []
    return fetch_rows(conn, sql, tuple(list(column) for column in zip(*distinct, strict=True)))


def select_by_pairs(conn: Connection, sql: str, pairs: Iterable[tuple[str, str]]) -> list[Row]:
    """Run ``sql`` (with ``%s`` for two text arrays joined as ``u(a, b)``) for the distinct ``pairs``;
    no query at all when there are none."""
    return select_by_keys(conn, sql, pairs)
