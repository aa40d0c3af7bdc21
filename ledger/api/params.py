"""Query parameters that need more than a type: times and dates, refused with the parameter named."""

from __future__ import annotations

from datetime import date, datetime

from ledger.domain.errors import FieldError, ValidationFailed
from ledger.domain.fields import parse_rfc3339


def parse_time(name: str, value: str) -> datetime:
    """An RFC 3339 time with an offset; anything else is a 422 naming ``name``."""
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        msg = f"{name} must be an RFC 3339 time with an offset, e.g. 2026-01-31T00:00:00Z"
        raise ValidationFailed(msg, errors=[FieldError(name, msg)])
    return parsed


def parse_date(name: str, value: str) -> date:
    """A calendar date, YYYY-MM-DD; anything else is a 422 naming ``name``."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        msg = f"{name} must be a date, YYYY-MM-DD"
        raise ValidationFailed(msg, errors=[FieldError(name, msg)]) from None
