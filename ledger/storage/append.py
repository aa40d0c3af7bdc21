"""The append service: the only write path (DESIGN §4).

One transaction per batch: lock the log heads involved ``FOR UPDATE`` in a fixed order, dedupe event ids
under that lock, hash in Python, insert every row with one binary COPY, grow each log's Merkle tree (the
tiles the batch completed in one statement, the right edge with the head), advance the heads, commit.
Commit order therefore equals chain order, and positions are gap-free.

The transaction is bounded: it waits at most ``lock_timeout`` for a head another writer holds and no
statement runs longer than ``statement_timeout`` (both ``StorageUnavailable``, retryable). A value that
slipped past validation and that PostgreSQL cannot store refuses the whole batch as ``ValidationFailed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import psycopg

from ledger.crypto.sealing import Sealer
from ledger.domain.canonical import canonicalize, canonicalize_json
from ledger.domain.envelope import ReceivedEvent
from ledger.domain.errors import FieldError, IdempotencyConflict, ValidationFailed
from ledger.domain.hashing import GENESIS_HASH, chain_hash, leaf_hash
from ledger.domain.logs import log_for
from ledger.domain.stored import format_time, stored_bytes
from ledger.storage import tree
from ledger.storage.database import Database, first_line

_COLUMNS = (
    "log",
    "position",
    "tenant",
    "event_id",
    "type",
    "source",
    "subject",
    "actor",
    "event_time",
    "recorded_at",
    "content_digest",
    "canonical",
    "prev_hash",
    "hash",
)
_decode = msgspec.json.Decoder().decode
_COPY = f"COPY ledger_events ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = [
    "text", "int8", "text", "text", "text", "text", "text", "text",
    "timestamptz", "timestamptz", "bytea", "bytea", "bytea", "bytea",
]  # fmt: skip


@dataclass(frozen=True)
class Receipt:
    """Where an event was recorded. ``duplicate`` is true when the same id and content was recorded before."""

    event_id: str
    log: str
    position: int
    hash: bytes
    recorded_at: datetime
    duplicate: bool = False

    def as_tuple(self) -> tuple[str, str, int, bytes, datetime, bool]:
        """The fields in order."""
        return (self.event_id, self.log, self.position, self.hash, self.recorded_at, self.duplicate)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form returned to producers."""
        return {
            "id": self.event_id,
            "log": self.log,
            "position": self.position,
            "hash": self.hash.hex(),
            "recorded_at": format_time(self.recorded_at),
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class Recorded:
    """A newly recorded event as projections see it: the stored form (sensitive values sealed) and place."""

    log: str
    position: int
    recorded_at: datetime
    event: dict[str, Any]


@dataclass(frozen=True)
class LogHead:
    """A log's head as locked for an append: its size, the hash of its last event, when that was recorded,
    and its Merkle tree's right edge (``ledger.storage.tree``)."""

    size: int
    hash: bytes
    recorded_at: datetime | None
    edge: tree.Edge


Connection = psycopg.Connection[Any]
Fence = Callable[[Connection], None]
"""Runs first inside the append transaction (e.g. a compare-and-set of consumed Kafka offsets);
raising aborts the whole batch."""


class Projector(Protocol):
    """Something updated inline, in the append transaction, from the events just recorded."""

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Update the projection's rows for ``events`` (in log order)."""


@dataclass
class _Pending:
    index: int
    event: ReceivedEvent
    log: str
    digest: bytes
    canonical: bytes  # canonical bytes of the event as stored (sensitive values sealed)


class AppendService:
    """Appends validated events to their logs, exactly once, in one transaction per batch."""

    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        *,
        clock: Callable[[], datetime] | None = None,
        projectors: Sequence[Projector] = (),
        lock_timeout: float = 5.0,
        statement_timeout: float = 30.0,
    ) -> None:
        self._db = db
        self._sealer = sealer
        self._clock = clock or (lambda: datetime.now(UTC))
        self._projectors = list(projectors)
        self._timeouts = (f"{round(lock_timeout * 1000)}ms", f"{round(statement_timeout * 1000)}ms")

    def append(self, events: Sequence[ReceivedEvent], *, fence: Fence | None = None) -> list[Receipt]:
        """Record ``events``; a batch is all-or-nothing. Receipts come back in input order.

        ``fence`` runs first in the same transaction, so what it records (consumed offsets) commits
        with the events or not at all, even when every event is a repeat or there are none.
        """
        if not events and fence is None:
            return []
        pending = self._prepare(events)
        with self._db.connect() as conn:
            try:
                with conn.transaction():
                    if fence is not None:
                        self._bound(conn)
                        fence(conn)
                    if not pending:
                        return []
                    # One round trip for the bounds, the head locks and the dedupe query: the server runs
                    # them in order, so the dedupe still reads under the locks.
                    with conn.pipeline():
                        if fence is None:
                            self._bound(conn)
                        heads = _request_heads(conn, sorted({(p.log, p.event.tenant) for p in pending}))
                        known = _request_known(conn, pending)
                    return self._append_locked(conn, pending, _heads(heads), known.fetchall())
            except psycopg.DataError as exc:  # from a projector; the COPY's own are named in _insert
                msg = f"the batch holds a value PostgreSQL cannot store: {first_line(exc)}"
                raise ValidationFailed(msg) from exc

    def _prepare(self, events: Sequence[ReceivedEvent]) -> list[_Pending]:
        """Everything that needs no lock: digests, sealing, canonical bytes (once per event)."""
        # Sealing may create subject keys (their own short transaction), so it happens before any lock.
        stored = self._sealer.seal(list(events))
        pending = []
        for i, (event, as_stored) in enumerate(zip(events, stored, strict=True)):
            # Validation made the canonical bytes of the event as received; only a sealed form is new.
            canonical = event.canonical if as_stored is event.raw else canonicalize_json(as_stored)
            digest = self._sealer.content_digest(event)
            pending.append(_Pending(i, event, log_for(event.tenant), digest, canonical))
        return pending

    def _bound(self, conn: psycopg.Connection[Any]) -> None:
        # SET LOCAL: the bounds end with this transaction, so a pooled connection keeps none.
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            self._timeouts,
        )

    def _append_locked(
        self,
        conn: psycopg.Connection[Any],
        pending: list[_Pending],
        heads: dict[str, LogHead],
        known: list[Any],
    ) -> list[Receipt]:
        receipts: list[Receipt | None] = [None] * len(pending)
        fresh = _dedupe(known, pending, receipts)
        if fresh:
            self._insert(conn, heads, fresh, receipts)
            # Projectors see each event as its canonical bytes say, exactly what a rebuild reads back
            # (10.0 and 10 are one JSON number; the raw form would keep the difference).
            recorded = [
                Recorded(p.log, r.position, r.recorded_at, _decode(p.canonical))
                for p in fresh
                if (r := receipts[p.index])
            ]
            for projector in self._projectors:
                projector.apply(conn, recorded)
        first = {(p.event.tenant, p.event.id): receipts[p.index] for p in fresh}
        for i, r in enumerate(receipts):  # in-batch repeats of an id point at its first occurrence
            if r is None:
                original = first[(pending[i].event.tenant, pending[i].event.id)]
                assert original is not None
                receipts[i] = Receipt(*original.as_tuple()[:5], duplicate=True)
        return [r for r in receipts if r is not None]

    def _insert(
        self,
        conn: psycopg.Connection[Any],
        heads: dict[str, LogHead],
        fresh: list[_Pending],
        receipts: list[Receipt | None],
    ) -> None:
        """Chain and COPY the new events (rows stream to the server while later ones are hashed), grow the
        logs' trees over the same leaf hashes, advance the heads."""
        now = self._clock()
        # Recorded time never runs backwards within a log, even if the server clock does.
        recorded = {log: max(now, h.recorded_at) if h.recorded_at else now for log, h in heads.items()}
        recorded_json = {log: b'"%s"' % format_time(t).encode() for log, t in recorded.items()}
        log_json = {log: canonicalize(log) for log in heads}
        sizes = {log: h.size for log, h in heads.items()}
        last = {log: h.hash for log, h in heads.items()}
        leaves: dict[str, list[bytes]] = {log: [] for log in heads}
        current: _Pending | None = None
        try:
            with conn.cursor().copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                for p in fresh:
                    current = p  # psycopg refuses some values (a NUL in text) while encoding this row
                    size, prev = sizes[p.log], last[p.log]
                    canonical = stored_bytes(p.canonical, log_json[p.log], size, recorded_json[p.log])
                    leaf = leaf_hash(canonical)
                    digest = chain_hash(prev, leaf)
                    env = p.event.envelope
                    copy.write_row((
                        p.log, size, env.tenant, env.id, env.type, env.source, env.subject, env.actor,
                        env.time, recorded[p.log], p.digest, canonical, prev, digest,
                    ))  # fmt: skip
                    sizes[p.log], last[p.log] = size + 1, digest
                    leaves[p.log].append(leaf)
                    receipts[p.index] = Receipt(env.id, p.log, size, digest, recorded[p.log])
                current = None  # what fails from here on fails at the server, which names the COPY line
        except psycopg.DataError as exc:
            raise _unstorable(exc, fresh, current) from exc
        edges = self._grow_trees(conn, heads, leaves)
        advanced = {
            log: LogHead(sizes[log], last[log], recorded[log], edges[log]) for log in heads if leaves[log]
        }
        _advance_heads(conn, advanced)

    def _grow_trees(
        self, conn: psycopg.Connection[Any], heads: dict[str, LogHead], leaves: dict[str, list[bytes]]
    ) -> dict[str, tree.Edge]:
        """Each log's right edge after its new leaves; the tiles they completed are stored here."""
        edges: dict[str, tree.Edge] = {}
        completed: list[tuple[str, tree.Tile]] = []
        for log, new in leaves.items():
            edges[log], done = tree.grow(heads[log].edge, new)
            completed.extend((log, t) for t in done)
        tree.store_tiles(conn, completed)
        return edges


def _request_heads(conn: psycopg.Connection[Any], logs: list[tuple[str, str]]) -> psycopg.Cursor[Any]:
    """Create missing heads and lock every head of ``logs``; the cursor of the locked rows."""
    names = [log for log, _ in logs]
    # Creating a head is idempotent bookkeeping, not an event: ON CONFLICT is safe here.
    conn.execute(
        "INSERT INTO ledger_log_heads (log, tenant, size, head_hash)"
        " SELECT l, t, 0, %s FROM unnest(%s::text[], %s::text[]) AS u(l, t) ORDER BY l"
        " ON CONFLICT (log) DO NOTHING",
        (GENESIS_HASH, names, [t for _, t in logs]),
    )
    # A fixed lock order (by log name) means two batches touching the same logs can never deadlock.
    return conn.execute(
        "SELECT log, size, head_hash, recorded_at, tree_edge FROM ledger_log_heads"
        " WHERE log = ANY(%s) ORDER BY log FOR UPDATE",
        (names,),
    )


def _heads(cursor: psycopg.Cursor[Any]) -> dict[str, LogHead]:
    return {
        str(r[0]): LogHead(int(r[1]), bytes(r[2]), r[3], tree.decode_edge(bytes(r[4])))
        for r in cursor.fetchall()
    }


def _request_known(conn: psycopg.Connection[Any], pending: list[_Pending]) -> psycopg.Cursor[Any]:
    """The events of ``pending``'s ids already recorded (asked under the head locks)."""
    return conn.execute(
        "SELECT e.tenant, e.event_id, e.content_digest, e.log, e.position, e.hash, e.recorded_at"
        " FROM ledger_events e JOIN unnest(%b::text[], %b::text[]) AS u(tenant, event_id)"
        " USING (tenant, event_id)",
        ([p.event.tenant for p in pending], [p.event.id for p in pending]),
    )


def _dedupe(rows: list[Any], pending: list[_Pending], receipts: list[Receipt | None]) -> list[_Pending]:
    """Fill receipts of ids recorded before (``rows``, read under the head locks); return the events to
    insert."""
    known = {(str(r[0]), str(r[1])): r for r in rows}
    conflicts: list[FieldError] = []
    fresh: list[_Pending] = []
    seen: dict[tuple[str, str], bytes] = {}
    for p in pending:
        key = (p.event.tenant, p.event.id)
        if key in known:
            _, _, digest, log, position, hash_, recorded_at = known[key]
            if bytes(digest) != p.digest:
                conflicts.append(_conflict(p, "was recorded before with different content"))
            else:
                receipts[p.index] = Receipt(
                    p.event.id, str(log), int(position), bytes(hash_), recorded_at, True
                )
        elif key in seen:
            if seen[key] != p.digest:
                conflicts.append(_conflict(p, "appears twice in this batch with different content"))
        else:
            seen[key] = p.digest
            fresh.append(p)
    if conflicts:
        msg = "; ".join(f"event {e.index}: {e.message}" for e in conflicts)
        raise IdempotencyConflict(msg, errors=conflicts)
    return fresh


def _conflict(p: _Pending, what: str) -> FieldError:
    return FieldError("id", f"event id {p.event.id!r} {what}", index=p.index)


def _advance_heads(conn: psycopg.Connection[Any], heads: dict[str, LogHead]) -> None:
    names = sorted(heads)
    conn.execute(
        "UPDATE ledger_log_heads h SET size = u.size, head_hash = u.head_hash, recorded_at = u.recorded_at,"
        " tree_edge = u.tree_edge"
        " FROM unnest(%s::text[], %s::int8[], %s::bytea[], %s::timestamptz[], %s::bytea[])"
        " AS u(log, size, head_hash, recorded_at, tree_edge)"
        " WHERE h.log = u.log",
        (
            names,
            [heads[n].size for n in names],
            [heads[n].hash for n in names],
            [heads[n].recorded_at for n in names],
            [tree.encode_edge(heads[n].edge) for n in names],
        ),
    )


# The envelope member each column of the COPY holds, to name the field of a value PostgreSQL refused.
_FIELD_OF_COLUMN = {"event_id": "id", "event_time": "time", "type": "type", "source": "source",
                    "subject": "subject", "actor": "actor", "tenant": "tenant"}  # fmt: skip
_COPY_CONTEXT = re.compile(r"COPY ledger_events, line (\d+)(?:, column (\w+))?")


def _unstorable(exc: psycopg.DataError, fresh: list[_Pending], current: _Pending | None) -> ValidationFailed:
    """A value PostgreSQL (or psycopg, while encoding it) refused, named by event index and field."""
    reason = first_line(exc)
    where = _COPY_CONTEXT.search(exc.diag.context or "")
    column = where.group(2) if where else None
    if where and 0 < int(where.group(1)) <= len(fresh):
        current = fresh[int(where.group(1)) - 1]
    field = _FIELD_OF_COLUMN.get(column or "", "event")
    message = f"PostgreSQL cannot store this value: {reason}"
    errors = [FieldError(field, message, index=current.index if current else None)]
    return ValidationFailed(f"the batch holds a value PostgreSQL cannot store: {reason}", errors=errors)
