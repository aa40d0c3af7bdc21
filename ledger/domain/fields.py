"""Field markers shared by the event models: what is sealed, what is free text, common shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

SENSITIVE = "x-ledger-sensitive"
FREE_TEXT = "x-ledger-free-text"


# The one range of times the ledger accepts, in UTC (DESIGN §3 "what is accepted must stay usable").
# Every reader can hold it: PostgreSQL timestamptz, Python datetime after any offset conversion, and
# the projections. Readers of rows stored before the rule use ``in_time_range`` to skip what lies outside.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive
INT4_MAX = 2**31 - 1
"""The largest value an ``integer`` column (PostgreSQL int4) holds: the bound of every count and version."""


def in_time_range(value: datetime) -> bool:
    """True when an aware ``value`` lies in [EARLIEST_TIME, LATEST_TIME); comparing never overflows."""
    return value.tzinfo is not None and EARLIEST_TIME <= value < LATEST_TIME


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        msg = "must carry a time zone offset (RFC 3339), e.g. 2026-01-31T09:00:00Z"
        raise ValueError(msg)
    return value


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time. The one parser ingest and every reader use, so what validation accepts,
    projections, provenance and verification can always read back (RFC 3339 allows a lower-case t and z)."""
    return datetime.fromisoformat(value.upper())


def _text(value: object) -> object:
    # CloudEvents times are RFC 3339 strings; pydantic would otherwise read a number (or a string of
    # digits) as Unix seconds, which no reader of the stored event could parse back.
    if isinstance(value, datetime):
        return value
    msg = "must be an RFC 3339 time string, e.g. 2026-01-31T09:00:00Z"
    if not isinstance(value, str):
        raise ValueError(msg)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValueError(msg) from None


Timestamp = Annotated[datetime, BeforeValidator(_text), AfterValidator(_aware)]
"""An RFC 3339 timestamp string with an offset; naive times and numbers are refused."""

Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
"""An opaque, pseudonymous identifier: no spaces, 1-200 characters."""

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A lowercase hex SHA-256 digest."""

FreeText = Annotated[str, Field(max_length=4000, json_schema_extra={FREE_TEXT: True})]
"""Human-written text: scanned for direct identifiers at ingest."""

SensitiveText = Annotated[str, Field(max_length=4000, json_schema_extra={SENSITIVE: True, FREE_TEXT: True})]
"""Human-written text that is also sealed (AES-256-GCM) before it is hashed and stored."""

SensitiveValue = Annotated[str, Field(max_length=1000, json_schema_extra={SENSITIVE: True})]
"""A short value (license number, address, user agent) sealed before it is hashed and stored."""


class EventData(BaseModel):
    """Base of every event's ``data`` model: frozen, and unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
