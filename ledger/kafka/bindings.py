"""The CloudEvents Kafka protocol binding: structured mode (the event is the JSON value) and binary mode
(attributes in ``ce_*`` headers, ``data`` as the value), decoded into the raw event dict the HTTP path
also validates, and encoded for producers.

Mode detection follows the binding (§3): a ``content-type`` header starting ``application/cloudevents``
means structured; otherwise a ``ce_specversion`` header means binary; otherwise the value is read as a
structured event, which is what most producers send without headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ledger.domain.envelope import STRUCTURED, binary_attribute, parse_json
from ledger.domain.errors import MalformedRequest
from ledger.kafka.transport import Headers, Message, header

_PREFIX = "ce_"

Mode = Literal["structured", "binary"]
RejectionCode = Literal[
    "not_json",
    "not_cloudevent",
    "unknown_type",
    "reserved_type",
    "schema_violation",
    "forbidden_identifier",
    "idempotency_conflict",
]


@dataclass(frozen=True)
class Rejection:
    """Why a message cannot enter the ledger: a stable ``code`` and a sentence for people.

    ``tenant`` is the tenant the message names, when one could be read, so the rejection is recorded in
    that tenant's log.
    """

    code: RejectionCode
    reason: str
    tenant: str | None = None


def decode(message: Message) -> dict[str, Any] | Rejection:
    """The raw CloudEvent a message carries, or why it carries none. Nothing is validated here."""
    content_type = _text(header(message.headers, "content-type")) or ""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents"):
        if media != STRUCTURED:
            return Rejection(
                "not_cloudevent", f"content type {media} is not accepted on Kafka; send {STRUCTURED}"
            )
        return _structured(message.value)
    if header(message.headers, _PREFIX + "specversion") is not None:
        return _binary(message, media)
    return _structured(message.value)


def _structured(value: bytes | None) -> dict[str, Any] | Rejection:
    if value is None:
        return Rejection("not_cloudevent", "the message has no value (a tombstone), so no event")
    parsed = _json(value)
    if isinstance(parsed, Rejection):
        return parsed
    if not isinstance(parsed, dict):
        return Rejection(
            "not_cloudevent", f"the value is JSON but a {_json_kind(parsed)}, not a CloudEvent object"
        )
    if "specversion" not in parsed:
        return Rejection(
            "not_cloudevent",
            "the value is a JSON object without specversion: not a CloudEvent",
            _tenant(parsed),
        )
    return parsed


def _binary(message: Message, media: str) -> dict[str, Any] | Rejection:
    event: dict[str, Any] = {}
    for name, raw in message.headers:
        lower = name.lower()
        if not lower.startswith(_PREFIX):
            continue
        text = _text(raw)
        if text is None:
            return Rejection("not_cloudevent", f"header {name} is not UTF-8 text", _tenant(event))
        attr = lower[len(_PREFIX) :]
        event[attr] = binary_attribute(attr, text)
    tenant = _tenant(event)
    if media not in ("", "application/json"):
        return Rejection("not_cloudevent", f"binary-mode data must be application/json, not {media}", tenant)
    event["datacontenttype"] = "application/json"
    if message.value is not None:
        data = _json(message.value)
        if isinstance(data, Rejection):
            return Rejection(data.code, data.reason, tenant)
        event["data"] = data
    return event


def _json(value: bytes) -> Any:
    # The one JSON reader of ingest (no NaN, bounded depth: a message nested 200,000 deep is a rejection,
    # not a RecursionError that would stop the worker on every redelivery).
    try:
        return parse_json(value)
    except MalformedRequest as exc:
        return Rejection("not_json", exc.detail.replace("the body is", "the value is"))


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _tenant(event: Mapping[str, Any]) -> str | None:
    value = event.get("tenant")
    return value if isinstance(value, str) else None


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def encode(event: Mapping[str, Any], mode: Mode = "structured") -> tuple[bytes, Headers]:
    """A record value and headers carrying ``event`` in ``mode`` (the inverse of ``decode``)."""
    if mode == "structured":
        value = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        return value, (("content-type", f"{STRUCTURED}; charset=utf-8".encode()),)
    headers: list[tuple[str, bytes | None]] = [("content-type", b"application/json")]
    for name, attr in event.items():
        if name in ("data", "datacontenttype") or attr is None:
            continue
        headers.append((_PREFIX + name, str(attr).encode()))
    value = json.dumps(event.get("data"), ensure_ascii=False, separators=(",", ":")).encode()
    return value, tuple(headers)
