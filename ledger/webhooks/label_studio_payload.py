"""Reading a Label Studio webhook payload: its project, objects, ids, times and a task's item.

Every refusal names the payload field (``tasks[0].data.image``) and never holds the field's value: a data
URL, a title or a free-text field may name a patient.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ledger.domain.canonical import canonicalize_json
from ledger.domain.fields import MAX_IDENTIFIER_LENGTH
from ledger.domain.identifiers import find_direct_identifier
from ledger.webhooks.model import Source, SourceConfig, unmappable


@dataclass(frozen=True, slots=True)
class Project:
    """The fields of a Label Studio project a mapping reads (``project`` of a payload)."""

    id: int
    label_config: str | None
    expert_instruction: str
    created_at: datetime | None
    updated_at: datetime | None


def guideline_of(source: Source, project: Project) -> tuple[str, str, str]:
    """(guideline id, version, document SHA-256) of a project's labelling configuration and instructions.

    The document is the RFC 8785 JSON of ``{"label_config", "expert_instruction"}`` (not the two texts run
    together, where a character could move from one to the other unseen); the version is the first 12 hex
    digits of its SHA-256."""
    document = {"label_config": project.label_config or "", "expert_instruction": project.expert_instruction}
    digest = hashlib.sha256(canonicalize_json(document)).hexdigest()
    return f"{source.name}-project-{project.id}", digest[:12], digest


def objects(payload: dict[str, Any], key: str, *, required: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The objects under ``key`` (one object, or a list of them) with where each one is."""
    value = payload.get(key)
    if value is None and not required:
        return []
    if isinstance(value, dict):
        return [(key, value)]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [(f"{key}[{n}]", v) for n, v in enumerate(value)]
    if value is None:
        raise unmappable(key, "is not in the payload; enable the webhook's 'Send payload' option")
    raise unmappable(key, "is not an object or a non-empty list of objects")


def read_project(payload: dict[str, Any]) -> Project | None:
    """The payload's ``project``, or ``None`` when it carries none."""
    raw = payload.get("project")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise unmappable("project", "is not an object")
    label_config = raw.get("label_config")
    instruction = raw.get("expert_instruction") or ""
    if label_config is not None and not isinstance(label_config, str):
        raise unmappable("project.label_config", "is not text")
    if not isinstance(instruction, str):
        raise unmappable("project.expert_instruction", "is not text")
    return Project(
        id=tool_id(raw.get("id"), "project.id"),
        label_config=label_config,
        expert_instruction=instruction,
        created_at=_read_optional_time(raw.get("created_at"), "project.created_at"),
        updated_at=_read_optional_time(raw.get("updated_at"), "project.updated_at"),
    )


def tool_id(value: Any, where: str) -> int:
    """A Label Studio object id (an integer primary key) found at ``where``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise unmappable(where, "is not a Label Studio id (a whole number)")
    return value


def optional_id(value: Any) -> int | None:
    """``value`` when it is an object id, else ``None`` (a field read only as a fallback)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_time(value: Any, where: str) -> datetime:
    """A Label Studio timestamp (``2026-12-02T03:16:46.826007Z``) found at ``where``, in UTC."""
    time = _read_optional_time(value, where)
    if time is None:
        raise unmappable(where, "is not given")
    return time


def _read_optional_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        time = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        time = None
    if time is None or time.tzinfo is None:
        raise unmappable(where, "is not an ISO 8601 time with an offset")
    try:
        return time.astimezone(UTC)
    except (OverflowError, ValueError):
        raise unmappable(where, "is not a time the ledger can hold (out of range in UTC)") from None


def _shown_key(key: Any) -> str:
    """A task data key as a refusal may name it (a labelling-config variable), or ``(key)``."""
    if isinstance(key, str) and 0 < len(key) <= 50 and re.fullmatch(r"[A-Za-z0-9_$-]+", key):
        return key
    return "(key)"


MAX_URL_LENGTH = 2048
"""A data URL longer than this is not read (refused as unmappable): the item pattern never runs over an
unbounded text."""
DEFAULT_ITEM_PATTERN = SourceConfig().item_pattern
"""The default item rule: the file name's stem when it is an opaque id (a DICOM UID, a UUID or a hex digest
of at least 16 digits) followed by its extensions; possessive throughout, so it runs in linear time."""


def read_item(data: Any, where: str, item_field: str | None, pattern: str) -> tuple[str, str]:
    """(data URL, item id) of a task's ``data``: the URL under ``item_field`` (default ``image``), whose
    path's last segment (percent-decoded) must match ``pattern`` as a whole; its ``item`` group is the id.

    Without an ``image`` key and no ``[item] field`` nothing is read: another value may be free text."""
    if not isinstance(data, dict):
        raise unmappable(where, "is not an object")
    key = item_field or "image"
    if key not in data and item_field is None:
        raise unmappable(
            where,
            "has no image key and the source sets no [item] field naming the key that holds the item's URL",
        )
    at = f"{where}.{_shown_key(key)}"
    url = data.get(key)
    if not isinstance(url, str) or not url:
        raise unmappable(at, "holds no data URL to take the item id from")
    if len(url) > MAX_URL_LENGTH:
        raise unmappable(at, f"the data URL is longer than {MAX_URL_LENGTH} characters, so it is not read")
    item = item_in(_url_path(url, at), pattern)
    if not item:
        if pattern == DEFAULT_ITEM_PATTERN:
            raise unmappable(
                at,
                "the default item rule finds no DICOM UID, UUID or hex digest in the file name; set [item] "
                "pattern",
            )
        raise unmappable(at, "the item pattern does not match the URL's file name; see [item] pattern")
    if len(item) > MAX_IDENTIFIER_LENGTH or any(c.isspace() or not c.isprintable() for c in item):
        raise unmappable(
            at, "the item id found is not an identifier (1-200 characters, no spaces); see [item]"
        )
    kind = find_direct_identifier(item)
    if kind is not None:
        raise unmappable(at, f"the item id found holds {kind}; set [item] pattern to take a pseudonymous id")
    return url, item


def item_in(path: str, pattern: str) -> str | None:
    """The ``item`` group of ``pattern`` matched against the whole of ``path``'s last segment (the file
    name), or ``None``."""
    match = re.fullmatch(pattern, path.rsplit("/", 1)[-1])
    return match.groupdict().get("item") if match else None


def _url_path(url: str, at: str) -> str:
    """The percent-decoded path of a data URL; for Label Studio's own local-files URL
    (``/data/local-files/?d=dir/image.png``) the file's path, which it passes as ``d``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise unmappable(at, "is not a URL that can be read") from None
    if parts.path.rstrip("/").endswith("/data/local-files"):
        files = parse_qs(parts.query).get("d")
        if files:
            return files[0]
    return unquote(parts.path)
