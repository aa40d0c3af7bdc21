"""Webhook payloads taken from the tools' own documentation or source (``tests/fixtures/webhooks/``).

Each file is the payload as the tool sends it, plus a ``_source`` key naming where it was taken from (a
documentation page, a source file at a version, or a capture from a running tool), which ``load`` removes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def path(kind: str, name: str) -> Path:
    """The fixture file ``name`` (``ANNOTATION_CREATED``, ``update-job``) of tool ``kind``."""
    return FIXTURES / kind / f"{name}.json"


def load(kind: str, name: str) -> dict[str, Any]:
    """The payload of fixture ``name`` of tool ``kind`` (``label-studio``, ``cvat``), without ``_source``."""
    payload = json.loads(path(kind, name).read_text(encoding="utf-8"))
    payload.pop("_source", None)
    return payload


def body(kind: str, name: str) -> bytes:
    """The payload as the bytes a delivery carries."""
    return json.dumps(load(kind, name)).encode()
