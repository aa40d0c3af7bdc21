"""Reading events back: by id, and by filters with keyset (cursor) pagination."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.errors import FieldError, NotFound, ValidationFailed
from ledger.storage.database import Database

_SELECT = "SELECT log, position, event_id, type, recorded_at, prev_hash, hash, canonical FROM ledger_events"


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

    def list(self, flt: EventFilter, *, cursor: str | None = None, limit: int = 100) -> Page:
        """Events matching ``flt`` in (log, position) order, ``limit`` at a time."""
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
            clauses.append("(log, position) > (%s, %s)")
            params.extend([after_log, after_position])  # type: ignore[list-item]
        sql = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY log, position LIMIT %s"
        with self._db.connect() as conn, conn.transaction():
            rows = conn.execute(sql, (*params, limit + 1)).fetchall()
        events = [_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return Page(events, encode_cursor(events[-1].log, events[-1].position) if more and events else None)


def encode_cursor(log: str, position: int) -> str:
    """An opaque cursor naming the last event of a page."""
    return base64.urlsafe_b64encode(json.dumps([log, position]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int]:
    """Reverse of ``encode_cursor``; a damaged cursor is a validation error naming ``cursor``."""
    try:
        log, position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(log), int(position)
    except (ValueError, TypeError, OverflowError) as exc:
        msg = "cursor is not one this server issued; start again without it"
        raise ValidationFailed(msg, errors=[FieldError("cursor", msg)]) from exc
