"""Reading CloudEvents out of an HTTP request: structured, batch and binary content modes (CloudEvents HTTP binding)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import msgspec

from ledger.domain.envelope import (
    BATCH,
    STRUCTURED,
    ReceivedEvent,
    binary_attribute,
    parse_json,
    validate_decoded_event,
    validate_json_event,
)
from ledger.domain.errors import FieldError, MalformedRequest, UnsupportedMediaType, ValidationFailed
from ledger.domain.fields import MAX_BATCH_EVENTS, MAX_REPORTED_ERRORS

_decode_batch = msgspec.json.Decoder(list[msgspec.Raw]).decode


def parse_request(
    content_type: str, headers: Mapping[str, str], body: bytes, *, received_at: datetime | None = None
) -> tuple[list[ReceivedEvent], bool]:
    """The validated events of a request, and whether it was a batch. A batch is all-or-nothing.

    ``received_at`` is the ledger's clock when the request arrived (now, by default): no event's time
    may lie more than ``MAX_FUTURE_SKEW`` after it.
    """
    received_at = received_at or datetime.now(UTC)
    media = content_type.split(";", 1)[0].strip().lower()
    # The media type decides the mode first (CloudEvents HTTP binding §3): a structured or batch request
    # may carry ce-* headers too, and they are then ignored.
    if media not in (STRUCTURED, BATCH) and "ce-specversion" in headers:
        return [validate_decoded_event(_binary_event(media, headers, body), received_at=received_at)], False
    if media == BATCH:
        return _validate_batch(_batch_items(body), received_at), True
    if media in (STRUCTURED, "application/json"):
        return [validate_json_event(body, received_at=received_at)], False
    msg = f"content type {media or '(none)'} is not accepted; send {STRUCTURED}, {BATCH}, or binary mode with ce-* headers"
    raise UnsupportedMediaType(msg)


def _batch_items(body: bytes) -> list[msgspec.Raw]:
    # Only the array is parsed here: each event's own bytes are validated (and parsed) on their own.
    # The count is checked before anything is built per item: a 16 MiB body of `{}` is 5.6 million
    # items, and a bytes object for each would double the memory the split itself takes.
    try:
        items = _decode_batch(body)
    except msgspec.ValidationError:
        msg = f"{BATCH} must be a JSON array of events"
        raise MalformedRequest(msg, errors=[FieldError("$", "expected an array")]) from None
    except (msgspec.DecodeError, RecursionError):
        parse_json(body)  # raises, naming what is wrong as for a single event
        msg = "the body is not valid JSON"
        raise MalformedRequest(msg, errors=[FieldError("$", msg)]) from None
    if len(items) > MAX_BATCH_EVENTS:
        msg = f"a batch holds at most {MAX_BATCH_EVENTS:,} events, not {len(items):,}; send several batches"
        # The refusal's traceback keeps this frame, and handlers up the stack keep the refusal in a cycle
        # that only the garbage collector breaks: without the list, the frame holds nothing large.
        del items
        raise ValidationFailed(msg, errors=[FieldError("$", msg)])
    return items


def _validate_batch(items: list[msgspec.Raw], received_at: datetime) -> list[ReceivedEvent]:
    events: list[ReceivedEvent] = []
    errors: list[FieldError] = []  # the first MAX_REPORTED_ERRORS only: the body must not outgrow the request
    error_count = 0
    bad: list[int] = []
    for index, item in enumerate(items):
        try:
            events.append(validate_json_event(bytes(item), received_at=received_at))
        except ValidationFailed as exc:
            bad.append(index)
            listed = exc.errors or [FieldError("$", exc.detail)]
            error_count += max(exc.error_count, len(listed))
            room = MAX_REPORTED_ERRORS - len(errors)
            errors.extend(FieldError(fe.field, fe.message, index) for fe in listed[:room])
    if bad:
        msg = f"{len(bad)} of {len(items)} events are not valid (indexes {', '.join(map(str, bad[:20]))}"
        msg += ", …); " if len(bad) > 20 else "); "
        if error_count > len(errors):
            msg += f"the first {len(errors)} of {error_count} errors are listed; "
        raise ValidationFailed(msg + "nothing was recorded", errors=errors, error_count=error_count)
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
            event[attr] = binary_attribute(attr, text)
    if media not in ("application/json", ""):
        msg = f"binary-mode data must be application/json, not {media}"
        raise UnsupportedMediaType(msg)
    event["datacontenttype"] = "application/json"
    event["data"] = parse_json(body)
    return event
