"""The fields of a CVAT webhook payload, read as the types CVAT sends them: a value of another type is
refused (``Unmappable``) naming the field, and the refusal never repeats what the field held."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, TypeGuard

from ledger.webhooks.model import tool_stamp, unmappable

_FIELD_NAME = re.compile(r"^[a-z_]{1,40}$")


def resource(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``name`` object of the payload (``task``, ``job``, ``project``)."""
    value = payload.get(name)
    if not isinstance(value, dict):
        raise unmappable(name, f"expected the {name} object CVAT sends with this event")
    return value


def before_update(payload: dict[str, Any]) -> dict[str, Any]:
    """The old values of an update's changed fields."""
    value = payload.get("before_update")
    if not isinstance(value, dict):
        raise unmappable(
            "before_update",
            "CVAT sent no before_update object (the changed fields' old values), so what changed cannot be told",
        )
    return value


def is_id(value: object) -> TypeGuard[int]:
    """Whether ``value`` is one of CVAT's ids: a whole number, not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def object_id(obj: dict[str, Any], name: str, field: str) -> int:
    """The id in ``obj[field]``."""
    value = obj.get(field)
    if not is_id(value):
        raise unmappable(f"{name}.{field}", "expected a whole number, CVAT's id")
    return value


def optional_id(obj: dict[str, Any], name: str, field: str) -> int | None:
    """The id in ``obj[field]``, or ``None`` where CVAT sends none (a task outside any project)."""
    return None if obj.get(field) is None else object_id(obj, name, field)


def choice(obj: dict[str, Any], name: str, field: str, allowed: tuple[str, ...]) -> str:
    """``obj[field]``, one of ``allowed`` (a job's stage or state)."""
    value = obj.get(field)
    if not isinstance(value, str) or value not in allowed:
        raise unmappable(f"{name}.{field}", f"expected one of {', '.join(repr(a) for a in allowed)}")
    return value


def tool_time(obj: dict[str, Any], name: str, field: str) -> datetime:
    """The time in ``obj[field]`` (CVAT writes UTC with a ``Z``), in UTC."""
    value = obj.get(field)
    parsed = parse_time(value)
    if parsed is None:
        raise unmappable(f"{name}.{field}", "expected an ISO 8601 date and time with its offset (CVAT's)")
    return parsed


def parse_time(value: object) -> datetime | None:
    """``value`` as an aware time, or ``None`` when it is not ISO 8601 text with an offset."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        # A time at the edge of the calendar (0001-01-01T00:00:00+01:00) has no UTC: OverflowError.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def since(obj: dict[str, Any], name: str) -> str | None:
    """The stamp of ``obj``'s ``assignee_updated_date`` (when its assignee was set), where CVAT sends one."""
    value = obj.get("assignee_updated_date")
    return None if value is None else tool_stamp(tool_time(obj, name, "assignee_updated_date"))


def user_id(user: object) -> str | None:
    """The id, as text, of a CVAT user object (or of a bare user id)."""
    if isinstance(user, dict):
        user = user.get("id")
    return str(user) if is_id(user) else None


def changed_fields(before: dict[str, Any]) -> str:
    """The names of the changed fields (CVAT's field names only: never a value, never free text)."""
    names = sorted(k for k in before if isinstance(k, str) and _FIELD_NAME.match(k))
    return ", ".join(names[:10]) + (", …" if len(names) > 10 else "") if names else "nothing"
