"""CloudEvents content modes, for every binding: structured, batch and binary, read into validated events.

The one reading of a request, as eventsourcing's ``Mapper`` is the one mapping of a stored event: the media
type decides the mode (CloudEvents HTTP binding §3, Kafka binding §3), each event's own bytes are parsed
once and validated by ``ledger.domain.envelope``, and every refusal is a ``LedgerError`` whose ``code``
names it on every transport. ``parse`` raises it (HTTP answers with its status); ``receive`` returns it
as a ``Rejection`` (Kafka, and later the webhooks, record it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from ledger.domain.envelope import (
    BATCH,
    STRUCTURED,
    ReceivedEvent,
    binary_attribute,
    parse_json,
    validate_decoded_event,
    validate_json_event,
    validate_parsed_event,
)
from ledger.domain.errors import (
    FieldError,
    LedgerError,
    MalformedRequest,
    NotCloudEvent,
    UnsupportedMediaType,
    ValidationFailed,
)
from ledger.domain.fields import MAX_BATCH_EVENTS, MAX_REPORTED_ERRORS
from ledger.ingest.rejection import Rejection, refusal
from ledger.ingest.request import Binding, Request

_decode_batch = msgspec.json.Decoder(list[msgspec.Raw]).decode
_CLOUDEVENTS = "application/cloudevents"
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Parsed:
    """The validated events of one request, and whether it was a batch (all-or-nothing)."""

    events: list[ReceivedEvent]
    batch: bool


def parse(request: Request, binding: Binding, *, received_at: datetime | None = None) -> Parsed:
    """The validated events ``request`` carries; the ``LedgerError`` saying why not otherwise.

    ``received_at`` is the ledger's clock when the request arrived (now, by default): no event's time may
    lie more than ``MAX_FUTURE_SKEW`` after it.
    """
    received_at = received_at or datetime.now(UTC)
    media = _media(request.media_type)
    if media == BATCH and binding.batch:
        return Parsed(_validate_batch(_batch_items(_body(request)), received_at), batch=True)
    raw, body = _single(request, binding, media)
    return Parsed([_validate_single(raw, body, received_at)], batch=False)


def receive(request: Request, binding: Binding, *, received_at: datetime | None = None) -> Parsed | Rejection:
    """``parse``, with a refusal returned as the ``Rejection`` to record (for transports that must not lose it)."""
    received_at = received_at or datetime.now(UTC)
    media = _media(request.media_type)
    raw: Any = None
    try:
        if media == BATCH and binding.batch:
            return Parsed(_validate_batch(_batch_items(_body(request)), received_at), batch=True)
        raw, body = _single(request, binding, media)
        return Parsed([_validate_single(raw, body, received_at)], batch=False)
    except LedgerError as exc:
        tenant = raw.get("tenant") if isinstance(raw, dict) else _named_tenant(request, binding)
        return refusal(exc, request.body, binding, tenant=tenant if isinstance(tenant, str) else None)


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _single(request: Request, binding: Binding, media: str) -> tuple[Any, bytes | None]:
    """The one event's raw value and the JSON bytes it was parsed from (``None``: built from headers)."""
    # The media type decides the mode first: a structured request may carry attribute headers too, and
    # they are then ignored.
    if media.startswith(_CLOUDEVENTS):
        if media != STRUCTURED:
            raise _not_accepted(media, binding)
        return _structured(request, binding)
    if request.has_attribute(binding.prefix + "specversion"):
        return _binary(request, binding, media), None
    if media == _JSON or binding.headerless_structured:
        return _structured(request, binding)
    raise _not_accepted(media, binding)


def _not_accepted(media: str, binding: Binding) -> UnsupportedMediaType:
    modes = f"{STRUCTURED}, {BATCH}," if binding.batch else f"{STRUCTURED}"
    msg = f"content type {media or '(none)'} is not accepted; send {modes} or binary mode with {binding.prefix}* headers"
    return UnsupportedMediaType(msg)


def _body(request: Request) -> bytes:
    if request.body is None:
        msg = "the message has no value (a tombstone), so no event"
        raise NotCloudEvent(msg, errors=[FieldError("$", msg)])
    return request.body


def _structured(request: Request, binding: Binding) -> tuple[Any, bytes]:
    body = _body(request)
    return parse_json(body), body


def _binary(request: Request, binding: Binding, media: str) -> dict[str, Any]:
    event: dict[str, Any] = {}
    prefix = binding.prefix
    for name, value in request.attributes:
        lower = name.lower()
        if lower.startswith(prefix):
            attr = lower[len(prefix) :]
            event[attr] = binary_attribute(attr, binding.attribute_text(name, value))
    if media not in (_JSON, ""):
        msg = f"binary-mode data must be {_JSON}, not {media}"
        raise UnsupportedMediaType(msg)
    event["datacontenttype"] = _JSON
    if request.body is not None:  # a Kafka record may carry no value: then the event has no data
        event["data"] = parse_json(request.body)
    return event


def _validate_single(raw: Any, body: bytes | None, received_at: datetime) -> ReceivedEvent:
    if body is None:  # built from header text and parsed JSON alone: validated as decoded
        return validate_decoded_event(raw, received_at=received_at)
    return validate_parsed_event(raw, body, received_at=received_at)


def _named_tenant(request: Request, binding: Binding) -> str | None:
    """The tenant a refused binary-mode request names in its attributes, if it can be read at all."""
    for name, value in request.attributes:
        if name.lower() == binding.prefix + "tenant":
            try:
                return binding.attribute_text(name, value)
            except MalformedRequest:
                return None
    return None


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
