"""Valid events for tests, built from the committed examples in ``schemas/examples/``."""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "schemas" / "examples"


@cache
def _example(type_: str) -> dict[str, Any]:
    path = EXAMPLES / f"{type_}.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def example_event(type_: str, *, tenant: str, id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A copy of the example of ``type_`` for ``tenant`` with a fresh id; ``data_*`` keywords override data fields."""
    event = copy.deepcopy(_example(type_))
    event["tenant"] = tenant
    event["id"] = id or f"evt-{uuid.uuid4().hex}"
    for key, value in overrides.items():
        if key.startswith("data_"):
            event["data"][key[5:]] = value
        else:
            event[key] = value
    return event
