"""What a stored event may change in the projections.

Validation refuses times outside the accepted range and integers above int4 (``ledger.domain.fields``),
but the log keeps whatever older code accepted, forever. Such a value would fail a ``timestamptz`` or
``integer`` column, or a Python datetime conversion, on every later read, so the projectors ask here
first and flag the event instead of applying it. Likewise a legal hold may only hold its own tenant's log.
"""

from __future__ import annotations

import typing
from datetime import datetime
from functools import cache
from typing import Any

from ledger.domain.fields import EARLIEST_TIME, INT4_MAX, LATEST_TIME, in_time_range, parse_rfc3339
from ledger.domain.logs import log_for
from ledger.domain.registry import EVENT_TYPES

INT4_MIN = -INT4_MAX - 1
_SAFE_YEARS = (f"{EARLIEST_TIME.year + 1:04d}", f"{LATEST_TIME.year - 2:04d}")
ACCEPTED = (
    f"times in [{EARLIEST_TIME:%Y-%m-%d}, {LATEST_TIME:%Y-%m-%d}) UTC, integers in [{INT4_MIN}, {INT4_MAX}]"
)


def unholdable(event: dict[str, Any]) -> list[tuple[str, Any]]:
    """The (field, value) pairs of an upcast stored event that the projections cannot hold; empty when none.

    Checked: the envelope ``time``, every top-level time field of the type's ``data`` model and every
    top-level integer of ``data`` (nested values only ever land in ``jsonb``, which holds them).
    """
    found: list[tuple[str, Any]] = []
    if not holdable_time(event.get("time")):
        found.append(("time", event.get("time")))
    data = event.get("data")
    if not isinstance(data, dict):
        return found
    for name in _time_fields(str(event.get("type"))):
        value = data.get(name)
        if value is not None and not holdable_time(value):
            found.append((f"data.{name}", value))
    for name, value in data.items():
        if type(value) is int and not INT4_MIN <= value <= INT4_MAX:  # a bool is not an int here
            found.append((f"data.{name}", value))
    return found


def foreign_hold_log(event: dict[str, Any]) -> str | None:
    """The log a ``retention.hold_placed`` names in its scope when that log is not its own tenant's."""
    if event.get("type") != "retention.hold_placed":
        return None
    scope = event.get("data", {}).get("scope")
    log = scope.get("log") if isinstance(scope, dict) else None
    if isinstance(log, str) and log != log_for(str(event.get("tenant"))):
        return log
    return None


def holdable_time(value: Any) -> bool:
    """Whether ``value`` is an RFC 3339 time the projections (and a report converting it to UTC) can hold."""
    if not isinstance(value, str):
        return False
    if _SAFE_YEARS[0] <= value[:4] <= _SAFE_YEARS[1] and value[4:5] == "-":
        return True  # no offset (at most a day) takes a time of these years out of the range
    try:
        return in_time_range(parse_rfc3339(value))
    except ValueError:
        return False


@cache
def _time_fields(type_name: str) -> tuple[str, ...]:
    event_type = EVENT_TYPES.get(type_name)
    if event_type is None:
        return ()
    return tuple(n for n, f in event_type.model.model_fields.items() if _is_time(f.annotation))


def _is_time(annotation: Any) -> bool:
    return annotation is datetime or any(_is_time(a) for a in typing.get_args(annotation))
