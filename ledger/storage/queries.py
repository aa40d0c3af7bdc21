"""Reading events back: by id, and by filters with keyset (cursor) pagination."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.errors import FieldError, NotFound, ParameterInvalid
from ledger.domain.logs import owns_log
from ledger.storage.database import Database

_COLUMNS = "log, position, event_id, type, recorded_at, prev_hash, hash, canonical"
_SELECT = f"SELECT {_COLUMNS} FROM ledger_events"
PAGE_MAX_BYTES = 4 * 1024 * 1024
"""Default bound of a page's events' stored JSON (``Limits.page_max_bytes`` configures the API's)."""
_POSITION_END = 2**63  # positions are bigint
_CURSOR_LOG_MAX = 1024


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: the document that was hashed, and where it sits in its log."""

    log: str
    position: int
    event_id: str
    type: str
    recorded_at: datetime
    prev_hash: bytes
    hash: bytes
    canonical: bytes

    @property
    def document(self) -> dict[str, Any]:
        """The hashed document: ``{"event", "log", "position", "recorded_at"}``."""
        doc: dict[str, Any] = json.loads(self.canonical)
        return doc

    def as_dict(self, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON form served by the API: the event and its receipt."""
        return {
            "event": event if event is not None else self.document["event"],
            "receipt": {
                "id": self.event_id,
                "log": self.log,
                "position": self.position,
                "recorded_at": self.document["recorded_at"],
                "prev_hash": self.prev_hash.hex(),
                "hash": self.hash.hex(),
            },
        }


@dataclass(frozen=True)
class EventFilter:
    """Filters of ``GET /v1/events``; ``since``/``until`` bound the producer's event time (until exclusive)."""

    tenant: str
    log: str | None = None
    type: str | None = None
    subject: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Page:
    """One page of events and the cursor of the next page (``None`` at the end)."""

    events: list[StoredEvent]
    next_cursor: str | None


def _row(r: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(
        str(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], bytes(r[5]), bytes(r[6]), bytes(r[7])
    )


class EventQueries:
    """Read-side queries over ``ledger_events``, always scoped to one tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, tenant: str, event_id: str) -> StoredEvent:
        """One event by its producer id, or ``NotFound``."""
        with self._db.connect() as conn, conn.transaction():
            row = conn.execute(
                _SELECT + " WHERE tenant = %s AND event_id = %s", (tenant, event_id)
            ).fetchone()
        if row is None:
            msg = f"no event with id {event_id!r} in tenant {tenant!r}"
            raise NotFound(msg)
        return _row(row)

    def many(self, tenant: str, event_ids: list[str]) -> list[StoredEvent]:
        """The events of ``tenant`` among ``event_ids``, in the order asked (ids not in the tenant are left out)."""
        with self._db.connect() as conn, conn.transaction():
            rows = conn.execute(
                _SELECT + " WHERE tenant = %s AND event_id = ANY(%s)", (tenant, event_ids)
            ).fetchall()
        found = {event.event_id: event for event in map(_row, rows)}
        return [found[i] for i in dict.fromkeys(event_ids) if i in found]

    def list(
        self,
        flt: EventFilter,
        *,
        cursor: str | None = None,
        limit: int = 100,
        max_bytes: int = PAGE_MAX_BYTES,
    ) -> Page:
        """Events matching ``flt`` in (log, position) order: at most ``limit``, and no more than fit in
        ``max_bytes`` of stored JSON (always at least one, so a page is never empty while events remain)."""
        clauses, params = ["tenant = %s"], [flt.tenant]
        for column, value in (
            ("log", flt.log),
            ("type", flt.type),
            ("subject", flt.subject),
            ("actor", flt.actor),
        ):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if flt.since is not None:
            clauses.append("event_time >= %s")
            params.append(flt.since)  # type: ignore[arg-type]
        if flt.until is not None:
            clauses.append("event_time < %s")
            params.append(flt.until)  # type: ignore[arg-type]
        if cursor is not None:
            after_log, after_position = decode_cursor(cursor)
            if not owns_log(flt.tenant, after_log):  # another tenant's cursor continues nothing here
                return Page([], None)
            clauses.append("(log, position) > (%s, %s)")
            params.extend([after_log, after_position])  # type: ignore[list-item]
        # The byte bound is applied in the database, so rows past it are never sent: octet_length of a
        # TOASTed value reads its stored size, not the value. ``candidates`` says whether more rows follow.
        sql = f"""
            SELECT {_COLUMNS}, candidates FROM (
                SELECT {_COLUMNS},
                       sum(octet_length(canonical)) OVER (ORDER BY log, position) AS running,
                       count(*) OVER () AS candidates
                FROM ({_SELECT} WHERE {" AND ".join(clauses)} ORDER BY log, position LIMIT %s) AS page
            ) AS sized
            WHERE running <= %s OR running = octet_length(canonical)
            ORDER BY log, position"""
        with self._db.connect() as conn, conn.transaction():
            rows = conn.execute(sql, (*params, limit + 1, max_bytes)).fetchall()
        events = [_row(r) for r in rows[:limit]]
        more = bool(rows) and int(rows[0][-1]) > len(events)
        return Page(events, encode_cursor(events[-1].log, events[-1].position) if more and events else None)


def encode_cursor(log: str, position: int) -> str:
    """An opaque cursor naming the last event of a page."""
    return base64.urlsafe_b64encode(json.dumps([log, position]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Reverse of ``encode_cursor``; a damaged or forged cursor is ``ParameterInvalid`` naming ``cursor``."""
    try:
        log, position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        log = position = None
    # What the database is handed must be what this server issues: text without NUL, a bigint position.
    if not (
        isinstance(log, str)
        and len(log) <= _CURSOR_LOG_MAX
        and "\x00" not in log
        and isinstance(position, int)
        and not isinstance(position, bool)
        and 0 <= position < _POSITION_END
    ):
        msg = "cursor is not one this server issued; start again without it"
        raise ParameterInvalid(msg, errors=[FieldError("cursor", msg)])
    return log, position
