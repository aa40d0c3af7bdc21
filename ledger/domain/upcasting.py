"""Old schema versions are upcast on read, never rewritten in storage (DESIGN §3).

Each upcaster turns the ``data`` of version N into version N+1 and is named ``upcast_vN_vN+1``;
``upcast`` chains them up to the current version. Stored bytes stay exactly as they were hashed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ledger.domain.registry import EVENT_TYPES

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def upcast_training_completed_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 named a course by its title only; v2 has a stable ``course_id`` and ``course_title``."""
    out = {k: v for k, v in data.items() if k != "course"}
    out["course_title"] = data["course"]
    out["course_id"] = re.sub(r"[^a-z0-9]+", "-", str(data["course"]).lower()).strip("-") or "course"
    return out


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("training.completed", 1): upcast_training_completed_v1_v2,
}


def upcast(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its ``data`` in the current schema version of its type (the input is not changed)."""
    name = str(event.get("type"))
    current = EVENT_TYPES.get(name)
    version = int(event.get("schemaversion", 1))
    if current is None or version >= current.schemaversion:
        return event
    data = event["data"]
    while version < current.schemaversion:
        data = UPCASTERS[(name, version)](data)
        version += 1
    return {**event, "data": data, "schemaversion": version}
