"""Set-based projection writes: the one way every projector saves its rows (DESIGN §5).

A projector computes everything a batch changes in Python (load → apply → save) and hands each table's
changed rows to ``save_rows`` once. Per table that is one binary COPY into a temporary staging table shaped
like the target, and one ``INSERT … SELECT … ON CONFLICT`` that moves the rows from it, whatever their
number: never a statement per row. Inline projection (a batch of the append service) and ``ledger
projections rebuild`` (chunks of ten thousand events and more) go through the same code, so they write the
same rows; any later projector saves the same way.

Staging tables are temporary (private to the connection), created on first use and kept by the pooled
connection. The merge empties its staging table as it reads it (``DELETE … RETURNING``); a ``TRUNCATE``,
which costs a catalog update and a new file each time, runs only once enough dead rows have passed through.
A transaction that fails takes its staged rows with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from psycopg import sql

from ledger.projections.tables import Connection

Row = Mapping[str, Any]

TRUNCATE_AFTER = 20_000
"""Rows a staging table takes (as dead rows, on this connection) before it is truncated."""

# Column names and type oids per (database, table): fixed by the migrations, looked up once per process.
_shapes: dict[tuple[str, str], tuple[tuple[str, ...], tuple[int, ...]]] = {}
# Rows staged per table since its last TRUNCATE, per connection.
_staged: weakref.WeakKeyDictionary[Connection, dict[str, int]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Rows:
    """The rows of one projection table a batch changed, each a mapping holding every column.

    ``keys`` are the table's conflict target and must be unique among ``rows``. ``update`` says what a
    row meeting an existing one does: True replaces every other column, False keeps the existing row, a
    mapping gives the ``SET`` expression per column (``EXCLUDED`` is the new row, the table name the old).
    """

    table: str
    keys: tuple[str, ...]
    rows: Sequence[Row]
    update: bool | Mapping[str, str] = True


def save_rows(conn: Connection, *writes: Rows) -> None:
    """Write every non-empty ``Rows`` in the caller's transaction: one COPY per table, and one round trip
    each to make sure the staging tables exist and to run every merge."""
    pending = [w for w in writes if w.rows]
    if not pending:
        return
    conn.execute(
        sql.SQL(" ").join(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {});").format(
                _stage(w.table), sql.Identifier(w.table)
            )
            for w in pending
        )
    )
    staged = _staged.setdefault(conn, {})
    statements: list[sql.Composable] = []
    for w in pending:
        columns, oids = _shape(conn, w.table)
        row_values = itemgetter(*columns)
        with conn.cursor().copy(
            sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(_stage(w.table))
        ) as copy:
            copy.set_types(list(oids))
            for row in w.rows:
                copy.write_row(row_values(row))
        statements.append(_merge(w, columns))
        staged[w.table] = staged.get(w.table, 0) + len(w.rows)
        if staged[w.table] >= TRUNCATE_AFTER:
            statements.append(sql.SQL("TRUNCATE {};").format(_stage(w.table)))
            staged[w.table] = 0
    conn.execute(sql.SQL(" ").join(statements))


def _merge(w: Rows, columns: tuple[str, ...]) -> sql.Composed:
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    keys = sql.SQL(", ").join(map(sql.Identifier, w.keys))
    action: sql.Composable
    if w.update is False:
        action = sql.SQL("DO NOTHING")
    else:
        sets = (
            {c: f"EXCLUDED.{c}" for c in columns if c not in w.keys} if w.update is True else dict(w.update)
        )
        action = sql.SQL("DO UPDATE SET ") + sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.SQL(expression))
            for c, expression in sets.items()
        )
    return sql.SQL(
        "WITH staged AS (DELETE FROM {stage} RETURNING {names})"
        " INSERT INTO {table} ({names}) SELECT {names} FROM staged ON CONFLICT ({keys}) {action};"
    ).format(stage=_stage(w.table), names=names, table=sql.Identifier(w.table), keys=keys, action=action)


def _stage(table: str) -> sql.Identifier:
    return sql.Identifier("pg_temp", f"stage_{table}")


def _shape(conn: Connection, table: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    key = (conn.info.dbname, table)
    if key not in _shapes:
        rows = conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum",
            (table,),
        ).fetchall()
        _shapes[key] = (tuple(str(r[0]) for r in rows), tuple(int(r[1]) for r in rows))
    return _shapes[key]
