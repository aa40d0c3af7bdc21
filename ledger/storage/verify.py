"""``ledger verify``: re-read every event, recompute leaf hashes and the chain, compare with the heads.

Trusts nothing the database says beyond the bytes it returns: the canonical bytes are re-hashed, the
columns derived from them are re-checked, positions must be gap-free from 0, and each log must end
where its head says it ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from ledger.domain.canonical import canonicalize
from ledger.domain.errors import NotFound, ValidationFailed, VerificationBreak
from ledger.domain.fields import parse_rfc3339
from ledger.domain.hashing import GENESIS_HASH, chain_hash, leaf_hash
from ledger.domain.stored import format_time
from ledger.storage.database import Database

Progress = Callable[[int], None]


@dataclass
class LogResult:
    """The outcome for one log."""

    log: str
    checked: int = 0
    head_size: int | None = None
    head_hash: bytes | None = None
    first_break: VerificationBreak | None = None

    @property
    def intact(self) -> bool:
        """True when no break was found."""
        return self.first_break is None


@dataclass
class VerificationReport:
    """Every log checked, and the first break in each."""

    logs: list[LogResult] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when every log verifies."""
        return all(r.intact for r in self.logs)

    @property
    def breaks(self) -> list[VerificationBreak]:
        """The first break of each broken log."""
        return [r.first_break for r in self.logs if r.first_break is not None]

    @property
    def checked(self) -> int:
        """How many events were re-hashed."""
        return sum(r.checked for r in self.logs)


def count_events(db: Database, log: str | None = None) -> int:
    """How many rows a verification will read (for a progress bar)."""
    with db.connect() as conn, conn.transaction():
        if log is None:
            row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
        else:
            row = conn.execute("SELECT count(*) FROM ledger_events WHERE log = %s", (log,)).fetchone()
    return int(row[0]) if row else 0


def verify(db: Database, *, log: str | None = None, progress: Progress | None = None) -> VerificationReport:
    """Verify one log, or every log; ``progress`` is called with the number of rows read since last call."""
    report = VerificationReport()
    with db.connect() as conn, conn.transaction():
        # One snapshot for heads and rows, so appends racing with the check cannot look like a break.
        # (SET TRANSACTION must be the transaction's first statement.)
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if log is not None and not _exists(conn, log):
            msg = f"there is no log {log!r}; `ledger verify` without --log checks every log"
            raise NotFound(msg)
        where = "" if log is None else " WHERE log = %s"
        params: tuple[Any, ...] = () if log is None else (log,)
        heads = {
            str(r[0]): (int(r[1]), bytes(r[2]))
            for r in conn.execute("SELECT log, size, head_hash FROM ledger_log_heads" + where, params)
        }
        results: dict[str, LogResult] = {}
        rows_sql = f"SELECT {COLUMNS} FROM ledger_events{where} ORDER BY log, position"
        with conn.cursor().copy(f"COPY ({rows_sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
            copy.set_types(ROW_TYPES)
            for name, rows in _by_log(copy.rows(), progress):
                results[name] = verify_rows(name, rows, heads.get(name))
        for name, head in heads.items():
            if name not in results:
                results[name] = verify_rows(name, iter(()), head)
    report.logs = [results[n] for n in sorted(results)]
    return report


def _exists(conn: Any, log: str) -> bool:
    """A log exists when it has a head or any event (events without a head are a break to report)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM ledger_log_heads WHERE log = %s)"
        " OR EXISTS (SELECT 1 FROM ledger_events WHERE log = %s)",
        (log, log),
    ).fetchone()
    return bool(row and row[0])


def _by_log(rows: Any, progress: Progress | None) -> Iterator[tuple[str, Iterator[tuple[Any, ...]]]]:
    """Group an ordered row stream by log without holding a log in memory."""
    it = iter(rows)
    pending = next(it, None)
    read = 0

    def group(name: bytes) -> Iterator[tuple[Any, ...]]:
        nonlocal pending, read
        while pending is not None and pending[0] == name:
            row, pending = pending, next(it, None)
            read += 1
            if progress is not None and read % 1000 == 0:
                progress(1000)
            yield row

    while pending is not None:
        name = bytes(pending[0])
        rows = group(name)
        yield name.decode("utf-8", "replace"), rows
        for _ in rows:  # drain what the verifier skipped after a break
            pass
    if progress is not None and read % 1000:
        progress(read % 1000)


class StoredRow(NamedTuple):
    """One row of ``ledger_events`` as verification reads it: binary COPY, converting nothing that could fail.

    Text columns are their UTF-8 bytes; ``event_time`` and ``recorded_at`` are what PostgreSQL stores for a
    timestamptz, microseconds since 2000-01-01 UTC (any value PostgreSQL holds, even one no Python
    ``datetime`` can: 0001-01-01T00:00:00+14:00 is in year 0 in UTC).
    """

    log: bytes
    position: int
    event_id: bytes
    type: bytes
    tenant: bytes
    source: bytes
    subject: bytes | None
    actor: bytes
    event_time: int
    recorded_at: int
    prev_hash: bytes
    hash: bytes
    canonical: bytes


COLUMNS = ", ".join(StoredRow._fields)
# The binary wire format of a timestamptz is an int8 of microseconds: read as such, it never fails to load.
ROW_TYPES = ["bytea", "int8", "bytea", "bytea", "bytea", "bytea", "bytea", "bytea",
             "int8", "int8", "bytea", "bytea", "bytea"]  # fmt: skip
_PG_EPOCH = datetime(2000, 1, 1)  # naive on purpose: the arithmetic below stays in timedelta
_MICROSECOND = timedelta(microseconds=1)


def pg_microseconds(value: datetime) -> int:
    """An aware ``value`` as PostgreSQL stores a timestamptz: microseconds since 2000-01-01 UTC.

    Timedelta arithmetic on the local time and the offset, so no conversion to UTC can overflow.
    """
    offset = value.utcoffset()
    if offset is None:
        msg = "a time without an offset names no instant"
        raise ValueError(msg)
    return (value.replace(tzinfo=None) - _PG_EPOCH - offset) // _MICROSECOND


def describe_instant(microseconds: int) -> str:
    """A stored instant for a person: RFC 3339 in UTC when a ``datetime`` can hold it, else the raw count."""
    try:
        return format_time(datetime(2000, 1, 1, tzinfo=UTC) + microseconds * _MICROSECOND)
    except OverflowError:
        return f"{microseconds} µs from 2000-01-01T00:00:00Z"


def verify_rows(name: str, rows: Iterator[tuple[Any, ...]], head: tuple[int, bytes] | None) -> LogResult:
    """Verify one log's rows (``StoredRow`` fields, in position order) against its head ``(size, head_hash)``.

    Pure: no I/O, so it can be tested on rows built in memory.
    """
    result = LogResult(name, head_size=head[0] if head else None, head_hash=head[1] if head else None)
    expected, prev = 0, GENESIS_HASH
    for raw in rows:
        row = StoredRow(*raw)
        problem = _check_row(name, row, expected, prev)
        if problem is not None:
            result.first_break = problem
            return result
        result.checked += 1
        expected, prev = expected + 1, bytes(row.hash)
    if head is None:
        if expected:
            result.first_break = VerificationBreak(name, 0, "the log has events but no head row")
    elif head[0] != expected:
        reason = (
            f"the log ends after position {expected - 1} but its head says {head[0]} events: "
            f"{head[0] - expected} row(s) were removed from the tail"
            if head[0] > expected
            else f"the head says {head[0]} events but the log holds {expected}"
        )
        result.first_break = VerificationBreak(
            name, expected, reason, {"head_size": head[0], "rows": expected}
        )
    elif head[1] != prev:
        result.first_break = VerificationBreak(
            name, max(expected - 1, 0), "the head hash differs from the last event's"
        )
    return result


def _check_row(name: str, row: StoredRow, expected: int, prev: bytes) -> VerificationBreak | None:
    def broken(reason: str, **details: Any) -> VerificationBreak:
        return VerificationBreak(name, expected, reason, details)

    canonical, prev_hash = bytes(row.canonical), bytes(row.prev_hash)
    if row.position != expected:
        return broken(
            f"position {expected} is missing (the next row is at position {row.position}): a row was deleted"
        )
    if prev_hash != prev:
        return broken("prev_hash does not equal the hash of the previous event")
    if chain_hash(prev, leaf_hash(canonical)) != bytes(row.hash):
        return broken("the hash does not match the canonical bytes: the event or its hash was changed")
    try:
        doc = json.loads(canonical)
        if canonicalize(doc) != canonical:
            return broken("the stored bytes are not in RFC 8785 canonical form")
        event = doc["event"]
        subject = event.get("subject")
        claimed = {
            "log": doc["log"].encode(), "position": doc["position"], "event_id": event["id"].encode(),
            "type": event["type"].encode(), "tenant": event["tenant"].encode(),
            "source": event["source"].encode(), "subject": None if subject is None else subject.encode(),
            "actor": event["actor"].encode(), "event_time": pg_microseconds(parse_rfc3339(event["time"])),
            "recorded_at": pg_microseconds(parse_rfc3339(doc["recorded_at"])),
        }  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, ValidationFailed):
        return broken("the stored bytes are not a ledger document")
    # Every column a query can filter on must say what the hashed document says.
    actual = row._asdict()
    diffs = {
        n: {"hashed": _shown(n, c), "column": _shown(n, actual[n])}
        for n, c in claimed.items()
        if c != actual[n]
    }
    if diffs:
        return broken(f"columns disagree with the hashed document: {', '.join(diffs)}", **diffs)
    return None


_INSTANTS = ("event_time", "recorded_at")


def _shown(column: str, value: object) -> str:
    """A value of a break's details as a person reads it."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if column in _INSTANTS and isinstance(value, int):
        return describe_instant(value)
    return str(value)


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
