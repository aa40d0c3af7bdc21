"""``ledger verify``: re-read every event, recompute leaf hashes, the chain and the Merkle tree, compare
with the heads, the stored tiles and the right edges.

Trusts nothing the database says beyond the bytes it returns: the canonical bytes are re-hashed, the
columns derived from them are re-checked, positions must be gap-free from 0, each log must end where its
head says it ends, and its Merkle tree, rebuilt from the recomputed leaves, must be the one stored (the
checks themselves are in ``ledger.domain.verification`` and ``ledger.domain.tree_verification``).

Rows are streamed with binary COPY, which converts nothing that could fail (a timestamptz arrives as its
int8 of microseconds). Each log is cut into position ranges; with more than one range and ``jobs`` > 1
the ranges are checked by worker processes, all reading one exported snapshot, and joined at the borders.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ledger.domain.errors import NotFound
from ledger.domain.merkle import TILE_HEIGHT, TILE_WIDTH
from ledger.domain.tree_verification import RangeTiles, StoredTree
from ledger.domain.verification import (
    LogResult,
    Segment,
    StoredRow,
    VerificationReport,
    check_range,
    describe_instant,
    join,
    pg_microseconds,
    verify_rows,
)
from ledger.storage.database import storage_error
from ledger.storage.tree import decode_edge

if TYPE_CHECKING:
    from ledger.storage.database import Database

__all__ = [
    "LogResult",
    "StoredRow",
    "VerificationReport",
    "count_events",
    "default_jobs",
    "describe_instant",
    "pg_microseconds",
    "record",
    "verify",
    "verify_rows",
]

Progress = Callable[[int], None]
RANGE_SIZE = 50_000
"""The most positions per range: small enough to share the work and move the progress bar."""
MIN_RANGE_SIZE = 5_000
"""The fewest: a range's own cost (a transaction, a snapshot import, an index descent) must not count."""
_MAX_RANGES_PER_LOG = 10_000  # a head or position tampered to 10^15 must not plan 10^10 ranges

COLUMNS = ", ".join(StoredRow._fields)
# Text as bytes and a timestamptz as its wire form, an int8 of microseconds: loading never fails.
ROW_TYPES = ["bytea", "int8", "bytea", "bytea", "bytea", "bytea", "bytea", "bytea",
             "int8", "int8", "bytea", "bytea", "bytea"]  # fmt: skip
_RANGE_SQL = f"SELECT {COLUMNS} FROM ledger_events WHERE log = %s AND position >= %s"


@dataclass(frozen=True)
class Range:
    """The positions ``[start, end)`` of one log (``end`` None: to the end of the log)."""

    log: str
    start: int
    end: int | None
    head_size: int = 0
    """What the log's head says, which tells which level-0 tiles must be stored."""
    sizes: tuple[int, ...] = ()
    """The tree sizes whose roots are wanted (checkpoints)."""


def default_jobs() -> int:
    """One worker per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def count_events(db: Database, log: str | None = None) -> int:
    """How many rows a verification will read, for a progress bar: what the heads say, since a count(*)
    would read the whole table once more."""
    with db.connect() as conn, conn.transaction():
        if log is None:
            row = conn.execute("SELECT coalesce(sum(size), 0) FROM ledger_log_heads").fetchone()
        else:
            row = conn.execute(
                "SELECT coalesce(sum(size), 0) FROM ledger_log_heads WHERE log = %s", (log,)
            ).fetchone()
    return int(row[0]) if row else 0


def verify(
    db: Database,
    *,
    log: str | None = None,
    progress: Progress | None = None,
    jobs: int | None = None,
    range_size: int | None = None,
    sizes: dict[str, set[int]] | None = None,
) -> VerificationReport:
    """Verify one log, or every log, with up to ``jobs`` worker processes (default: one per core).

    ``progress`` is called with the number of rows read since the last call. ``range_size`` (positions per
    range) is chosen from the ledger's size and ``jobs`` unless given. ``sizes`` are tree sizes per log
    whose recomputed roots the report must carry (``LogResult.roots``), such as checkpoints' sizes.
    """
    wanted = {name: tuple(sorted(s)) for name, s in (sizes or {}).items()}
    jobs = jobs or default_jobs()
    with db.connect() as conn, conn.transaction():
        # One snapshot for heads and rows, so appends racing with the check cannot look like a break.
        # (SET TRANSACTION must be the transaction's first statement.)
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if log is not None and not _exists(conn, log):
            msg = f"there is no log {log!r}; `ledger verify` without --log checks every log"
            raise NotFound(msg)
        heads, edges = _heads(conn, log)
        ranges = _plan(conn, heads, log, jobs, range_size, wanted)
        trees = {
            name: _stored_tree(conn, name, heads.get(name, (0, b""))[0], edges.get(name))
            for name in {*heads, *(r.log for r in ranges)}
        }
        if jobs > 1 and len(ranges) > 1:
            # Workers import this transaction's snapshot, which stays valid while it is open.
            exported = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert exported is not None
            segments = _in_workers(db.url, str(exported[0]), ranges, jobs, progress)
        else:
            segments = [(r, _read_and_check(conn, r, progress)) for r in ranges]
    by_log: dict[str, list[Segment]] = {}
    for r, segment in segments:
        by_log.setdefault(r.log, []).append(segment)
    names = sorted(set(heads) | set(by_log))
    return VerificationReport(
        [
            join(name, by_log.get(name, []), heads.get(name), trees[name], wanted.get(name, ()))
            for name in names
        ]
    )


def _exists(conn: psycopg.Connection[Any], log: str) -> bool:
    """A log exists when it has a head or any event (events without a head are a break to report)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM ledger_log_heads WHERE log = %s)"
        " OR EXISTS (SELECT 1 FROM ledger_events WHERE log = %s)",
        (log, log),
    ).fetchone()
    return bool(row and row[0])


def _heads(
    conn: psycopg.Connection[Any], log: str | None
) -> tuple[dict[str, tuple[int, bytes]], dict[str, bytes]]:
    """Each log's ``(size, head_hash)``, and its stored right edge."""
    where, params = ("", ()) if log is None else (" WHERE log = %s", (log,))
    rows = conn.execute(
        "SELECT log, size, head_hash, tree_edge FROM ledger_log_heads" + where, params
    ).fetchall()
    return {str(r[0]): (int(r[1]), bytes(r[2])) for r in rows}, {str(r[0]): bytes(r[3]) for r in rows}


_MAX_LEVEL = 8  # 256**8 leaves is past the 2**64 - 1 a checkpoint can state


def _stored_tree(conn: psycopg.Connection[Any], log: str, size: int, edge: bytes | None) -> StoredTree:
    """The stored tree of ``log`` above level 0 (level 0 is read range by range), its edge, and the first
    stored tile of each level that the head's ``size`` does not cover (one index probe per level).

    The tiles above level 0 are one per 65,536 events: 8 KiB each, 128 bytes per 1,000 events."""
    rows = conn.execute(
        "SELECT level, tile, hashes FROM ledger_merkle_tiles WHERE log = %s AND level >= 1", (log,)
    ).fetchall()
    past = []
    for level in range(_MAX_LEVEL):
        row = conn.execute(
            "SELECT tile FROM ledger_merkle_tiles WHERE log = %s AND level = %s AND tile >= %s"
            " ORDER BY tile LIMIT 1",
            (log, level, size >> (TILE_HEIGHT * (level + 1))),
        ).fetchone()
        if row is not None:
            past.append((level, int(row[0])))
    try:
        decoded = None if edge is None else decode_edge(edge)
    except ValueError:
        decoded = None
    tiles = {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}
    return StoredTree(size, tiles, decoded if edge is not None else (), past)


def _plan(
    conn: psycopg.Connection[Any],
    heads: dict[str, tuple[int, bytes]],
    log: str | None,
    jobs: int,
    range_size: int | None,
    roots_at: dict[str, tuple[int, ...]],
) -> list[Range]:
    """The ranges to check: every log holding events, cut into ranges of equal size, the last one open."""
    sizes = {}
    for name, last in _extents(conn, log):
        # Cut by what the head says, within what the rows reach: only the plan trusts these numbers, and
        # rows beyond the last cut are still read (the last range is open).
        sizes[name] = min(heads[name][0], last + 1) if name in heads else last + 1
    if range_size is None:  # about four ranges per worker keeps them all busy to the end
        range_size = min(RANGE_SIZE, max(MIN_RANGE_SIZE, -(-sum(sizes.values()) // (4 * jobs))))
    ranges = []
    for name, size in sizes.items():
        step = max(range_size, -(-size // _MAX_RANGES_PER_LOG))
        starts = range(0, max(size, 1), step)
        head, wanted = heads.get(name, (0, b""))[0], roots_at.get(name, ())
        ranges += [Range(name, s, s + step, head, wanted) for s in starts[:-1]]
        ranges.append(Range(name, starts[-1], None, head, wanted))
    return ranges


def _extents(conn: psycopg.Connection[Any], log: str | None) -> list[tuple[str, int]]:
    """(log, highest position) of every log holding events (or of ``log``), in one statement: the logs are
    found by skipping through the primary key, one index probe per log, never a scan."""
    if log is not None:
        rows = conn.execute("SELECT %s::text, max(position) FROM ledger_events WHERE log = %s", (log, log))
    else:
        rows = conn.execute(
            "WITH RECURSIVE l(log) AS ("
            " (SELECT log FROM ledger_events ORDER BY log LIMIT 1)"
            " UNION ALL SELECT (SELECT e.log FROM ledger_events e WHERE e.log > l.log ORDER BY e.log LIMIT 1)"
            " FROM l WHERE l.log IS NOT NULL"
            ") SELECT log, (SELECT max(position) FROM ledger_events e WHERE e.log = l.log)"
            " FROM l WHERE log IS NOT NULL"
        )
    return [(str(name), int(last)) for name, last in rows if last is not None]


def _read_and_check(conn: psycopg.Connection[Any], r: Range, progress: Progress | None) -> Segment:
    """Stream one range with binary COPY and check it, with the level-0 tiles it overlaps; rows after a
    break are read and dropped."""
    tiles = _level0_tiles(conn, r)
    query = _RANGE_SQL + ("" if r.end is None else " AND position < %s") + " ORDER BY position"
    params = (r.log, r.start) if r.end is None else (r.log, r.start, r.end)
    read = 0
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params) as copy:
        copy.set_types(ROW_TYPES)
        rows = copy.rows()

        def counted() -> Iterator[tuple[Any, ...]]:
            nonlocal read
            for row in rows:
                read += 1
                if progress is not None and read % 1000 == 0:
                    progress(1000)
                yield row

        segment = check_range(r.log, counted(), r.start, RangeTiles(tiles, r.head_size, r.sizes))
        for _ in rows:  # the rest of the range after a break: finish the COPY
            read += 1
    if progress is not None and read % 1000:
        progress(read % 1000)
    return segment


def _level0_tiles(conn: psycopg.Connection[Any], r: Range) -> dict[int, bytes]:
    """The stored level-0 tiles holding any position of ``r`` (8 KiB per 256 events)."""
    query = "SELECT tile, hashes FROM ledger_merkle_tiles WHERE log = %s AND level = 0 AND tile >= %s"
    params: tuple[Any, ...] = (r.log, r.start // TILE_WIDTH)
    if r.end is not None:
        query += " AND tile < %s"
        params += (-(-r.end // TILE_WIDTH),)
    return {int(t): bytes(h) for t, h in conn.execute(query, params)}


# ---- worker processes -------------------------------------------------------------------------------

_worker: dict[str, Any] = {}  # in each worker process: its connection and the snapshot to read


def _start_worker(url: str, snapshot: str) -> None:
    _worker["conn"] = psycopg.connect(url)
    _worker["snapshot"] = snapshot


def _check_in_worker(r: Range) -> tuple[Segment, int]:
    conn: psycopg.Connection[Any] = _worker["conn"]
    read: list[int] = []
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(_worker["snapshot"])))
            segment = _read_and_check(conn, r, read.append)
    except psycopg.Error as exc:
        raise storage_error(exc) from None  # a LedgerError pickles back to the parent; psycopg's may not
    return segment, sum(read)


def _pool_context() -> multiprocessing.context.BaseContext:
    # fork starts a worker in milliseconds with everything imported, but forking a process that runs
    # other threads (a test runner, a server) can copy a lock some thread holds; spawn is safe anywhere.
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _in_workers(
    url: str, snapshot: str, ranges: list[Range], jobs: int, progress: Progress | None
) -> list[tuple[Range, Segment]]:
    """Check ``ranges`` in ``jobs`` processes reading ``snapshot``; each range reports its rows when done."""
    done: list[tuple[Range, Segment]] = []
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(ranges)),
        mp_context=_pool_context(),
        initializer=_start_worker,
        initargs=(url, snapshot),
    ) as pool:
        pending: dict[Future[tuple[Segment, int]], Range] = {
            pool.submit(_check_in_worker, r): r for r in ranges
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                segment, read = future.result()
                done.append((pending.pop(future), segment))
                if progress is not None:
                    progress(read)
    return done


def record(db: Database, report: VerificationReport, started: datetime, finished: datetime) -> None:
    """Keep the outcome, so reports can state the integrity status they were checked against."""
    logs = [
        {
            "log": r.log,
            "size": r.head_size,
            "events_checked": r.checked,
            "head_hash": r.head_hash.hex() if r.head_hash else None,
            "first_break": None
            if r.first_break is None
            else {"position": r.first_break.position, "reason": r.first_break.reason},
        }
        for r in report.logs
    ]
    with db.connect() as conn, conn.transaction():
        conn.execute(
            "INSERT INTO ledger_verifications (started_at, finished_at, intact, events_checked, logs)"
            " VALUES (%s, %s, %s, %s, %s::jsonb)",
            (started, finished, report.intact, report.checked, json.dumps(logs)),
        )
