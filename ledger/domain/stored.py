"""The stored document: the event as received (sensitive values sealed) plus the server-assigned fields.

Its RFC 8785 bytes are what is hashed (DESIGN §4); kept in the domain so that an offline verifier can
rebuild them with the standard library alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as stored and hashed."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stored_document(event: dict[str, Any], log: str, position: int, recorded_at: datetime) -> dict[str, Any]:
    """The JSON document whose RFC 8785 bytes are hashed: the event plus the server-assigned fields."""
    return {"event": event, "log": log, "position": position, "recorded_at": format_time(recorded_at)}


def stored_bytes(event_canonical: bytes, log_json: bytes, position: int, recorded_json: bytes) -> bytes:
    """``canonicalize(stored_document(...))`` built from parts already canonical.

    RFC 8785 sorts members by key; "event" < "log" < "position" < "recorded_at", so the document is
    the concatenation below. The append path uses it to canonicalise each event once, outside the lock.
    """
    return b"".join(
        (b'{"event":', event_canonical, b',"log":', log_json, b',"position":', b"%d" % position,
         b',"recorded_at":', recorded_json, b"}")
    )  # fmt: skip
