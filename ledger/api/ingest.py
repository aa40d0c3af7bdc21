"""Reading CloudEvents out of an HTTP request: structured, batch and binary content modes (CloudEvents HTTP binding)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ledger.domain.envelope import ReceivedEvent, validate_event
from ledger.domain.errors import FieldError, MalformedRequest, UnsupportedMediaType, ValidationFailed

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_INTEGER_ATTRIBUTES = {"schemaversion"}


def parse_request(
    content_type: str, headers: Mapping[str, str], body: bytes
) -> tuple[list[ReceivedEvent], bool]:
    """The validated events of a request, and whether it was a batch. A batch is all-or-nothing."""
    media = content_type.split(";", 1)[0].strip().lower()
    # The media type decides the mode first (CloudEvents HTTP binding §3): a structured or batch request
    # may carry ce-* headers too, and they are then ignored.
    if media not in (STRUCTURED, BATCH) and "ce-specversion" in headers:
        return [validate_event(_binary_event(media, headers, body))], False
    if media == BATCH:
        items = _json(body)
        if not isinstance(items, list):
            raise MalformedRequest(
                f"{BATCH} must be a JSON array of events", errors=[FieldError("$", "expected an array")]
            )
        return _validate_batch(items), True
    if media in (STRUCTURED, "application/json"):
        return [validate_event(_json(body))], False
    msg = f"content type {media or '(none)'} is not accepted; send {STRUCTURED}, {BATCH}, or binary mode with ce-* headers"
    raise UnsupportedMediaType(msg)


def _validate_batch(items: list[Any]) -> list[ReceivedEvent]:
    events: list[ReceivedEvent] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            events.append(validate_event(item))
        except ValidationFailed as exc:
            errors.extend(
                FieldError(fe.field, fe.message, index) for fe in exc.errors or [FieldError("$", exc.detail)]
            )
    if errors:
        bad = sorted({fe.index for fe in errors if fe.index is not None})
        msg = f"{len(bad)} of {len(items)} events are not valid (indexes {', '.join(map(str, bad[:20]))}); nothing was recorded"
        raise ValidationFailed(msg, errors=errors)
    if not events:
        raise ValidationFailed("the batch is empty", errors=[FieldError("$", "send at least one event")])
    return events


def _binary_event(media: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-"):
            attr = lower[3:]
            try:  # header values are percent-encoded UTF-8 (CloudEvents HTTP binding §3.1.3.2)
                text = unquote(value, errors="strict")
            except UnicodeDecodeError:
                msg = f"header {name} is not percent-encoded UTF-8"
                raise MalformedRequest(msg, errors=[FieldError(attr, msg)]) from None
            integer = attr in _INTEGER_ATTRIBUTES and text.isascii() and text.isdigit()
            event[attr] = int(text) if integer else text
    if media not in ("application/json", ""):
        msg = f"binary-mode data must be application/json, not {media}"
        raise UnsupportedMediaType(msg)
    event["datacontenttype"] = "application/json"
    event["data"] = _json(body)
    return event


def _json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        msg = f"the body is not valid JSON: {reason}"
        raise MalformedRequest(msg, errors=[FieldError("$", msg)]) from None


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    msg = f"{name} is not a JSON number"
    raise ValueError(msg)
