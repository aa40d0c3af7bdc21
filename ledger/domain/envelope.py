"""The CloudEvents 1.0 envelope with the ledger's extension attributes, and validation of a received event."""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from itertools import accumulate
from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ledger.domain.canonical import canonicalize, canonicalize_json
from ledger.domain.errors import (
    FieldError,
    ForbiddenIdentifier,
    MalformedRequest,
    NotCloudEvent,
    ReservedEventType,
    UnknownEventType,
    ValidationFailed,
)
from ledger.domain.fields import (
    IDENTIFIER_PATTERN,
    INT32_MAX,
    LEDGER_ID_PREFIX,
    MAX_EVENT_BYTES,
    MAX_EXTENSIONS,
    MAX_FUTURE_SKEW,
    MAX_FUTURE_SKEW_MARKER,
    MAX_JSON_DEPTH,
    MAX_REPORTED_ERRORS,
    PRINTABLE_PATTERN,
    TENANT_CONTEXT,
    EventData,
    ExtensionValue,
    Identifier,
    Timestamp,
)
from ledger.domain.identifiers import find_direct_identifier
from ledger.domain.logs import SYSTEM_TENANT
from ledger.domain.registry import EVENT_TYPES, EventType, event_type_at

_encode_json = msgspec.json.Encoder().encode
STRUCTURED = "application/cloudevents+json"
"""The media type of one structured-mode CloudEvent (HTTP and Kafka bindings)."""
BATCH = "application/cloudevents-batch+json"
"""The media type of a JSON array of structured-mode CloudEvents (HTTP binding)."""
_decode_json = msgspec.json.Decoder().decode
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")  # CloudEvents 1.0 §Attribute Naming Convention


class Envelope(BaseModel):
    """CloudEvents 1.0 structured-mode attributes plus ``tenant``, ``actor``, ``actorrole`` and tracing ids."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, ExtensionValue] = Field(init=False)

    specversion: Literal["1.0"]
    id: str = Field(
        min_length=1,
        max_length=200,
        pattern=PRINTABLE_PATTERN,
        description=(
            "Producer's idempotency key. It may hold '/', but not at either end nor two in a row "
            "(it must be addressable as GET /v1/events/{id})."
        ),
    )
    source: str = Field(min_length=1, max_length=500, pattern=PRINTABLE_PATTERN)
    type: str = Field(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN)
    time: Timestamp = Field(
        description=(
            f"When it happened. At most {MAX_FUTURE_SKEW.total_seconds():.0f} seconds after the ledger's "
            "clock when received (clock skew, not scheduling)."
        ),
        json_schema_extra={MAX_FUTURE_SKEW_MARKER: int(MAX_FUTURE_SKEW.total_seconds())},
    )
    subject: str | None = Field(default=None, max_length=500, pattern=PRINTABLE_PATTERN)
    datacontenttype: str = Field(
        default="application/json", max_length=200, pattern=r"^application/json *(;[^\x00-\x1f\x7f-\x9f]*)?$"
    )
    dataschema: str | None = Field(default=None, max_length=500, pattern=PRINTABLE_PATTERN)
    schemaversion: int = Field(default=1, strict=True, ge=1, le=INT32_MAX)
    tenant: str = Field(min_length=1, max_length=63, pattern=TENANT_PATTERN)
    actor: Identifier
    actorrole: str = Field(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN)
    correlationid: str | None = Field(default=None, max_length=200, pattern=PRINTABLE_PATTERN)
    causationid: str | None = Field(default=None, max_length=200, pattern=PRINTABLE_PATTERN)
    data: dict[str, Any]

    @field_validator("id")
    @classmethod
    def _id_is_addressable(cls, value: str) -> str:
        # An id may hold '/' (GET /v1/events/{id} takes the rest of the path), but a path cannot carry
        # one at either end or two in a row: HTTP servers normalise those away, so such an event could
        # never be asked for again.
        if value.startswith("/") or value.endswith("/") or "//" in value:
            msg = "must not begin or end with '/' or hold '//': GET /v1/events/{id} could not address it"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _extensions_are_well_formed(self) -> Envelope:
        extensions = self.model_extra or {}
        if len(extensions) > MAX_EXTENSIONS:
            msg = f"an event carries at most {MAX_EXTENSIONS} extension attributes, not {len(extensions)}"
            raise ValueError(msg)
        for name in extensions:
            if not EXTENSION_NAME.match(name):
                msg = (
                    f"extension attribute {name!r} must be 1-20 lowercase letters or digits (CloudEvents 1.0)"
                )
                raise ValueError(msg)
        return self


@dataclass(frozen=True)
class ReceivedEvent:
    """A received event that passed validation: the raw JSON as received, and its parsed parts.

    ``canonical`` is the RFC 8785 form of ``raw``, computed once by validation: the content digest and
    the stored form start from it. ``raw`` holds JSON types alone and must not be changed afterwards.
    """

    raw: dict[str, Any]
    envelope: Envelope
    data: EventData
    event_type: EventType
    canonical: bytes

    @property
    def id(self) -> str:
        """The producer's event id."""
        return self.envelope.id

    @property
    def tenant(self) -> str:
        """The tenant whose log the event belongs to."""
        return self.envelope.tenant

    @property
    def time(self) -> datetime:
        """When the event happened, according to its producer."""
        return self.envelope.time

    @cached_property
    def data_subject(self) -> str:
        """The person sealed values are about: a named data field, or else the actor (asked up to three
        times per sealed event, and the type's ``subject_field`` is a slow class-attribute miss)."""
        name = self.event_type.subject_field
        value = getattr(self.data, name, None) if name else None
        return value if isinstance(value, str) else self.envelope.actor

    @cached_property
    def has_sensitive(self) -> bool:
        """Whether a value stands on one of its type's sensitive paths: sealing and the digest both ask."""
        return any(get_path(self.raw["data"], p) is not None for p in self.event_type.sensitive_paths)


def validate_event(
    raw: Any, *, allow_internal: bool = False, received_at: datetime | None = None
) -> ReceivedEvent:
    """Validate one received CloudEvent; raise ``ValidationFailed`` whose errors name each bad field.

    ``received_at`` (aware) is when the event reached the ledger: its ``time`` may lie at most
    ``MAX_FUTURE_SKEW`` later. Every transport passes it; ``None`` (the ledger's own events, generated
    demo data) sets no bound on the future, only the one range of times every field keeps to.
    """
    return _validate_value(raw, decoded=False, allow_internal=allow_internal, received_at=received_at)


def validate_decoded_event(
    raw: Any, *, allow_internal: bool = False, received_at: datetime | None = None
) -> ReceivedEvent:
    """``validate_event`` of a value built from JSON alone: what ``parse_json`` returned, or a dict of
    header text and such values (the binary content modes, a Kafka message's decoded value).

    Such a value holds JSON types only, so its canonical bytes need no check that they came from JSON
    types (``canonicalize_json``); every other check is the same.
    """
    return _validate_value(raw, decoded=True, allow_internal=allow_internal, received_at=received_at)


def _validate_value(
    raw: Any, *, decoded: bool, allow_internal: bool, received_at: datetime | None
) -> ReceivedEvent:
    if not isinstance(raw, dict):
        raise _not_an_object()
    return _validate(
        raw, _json_bytes(raw), parsed=decoded, allow_internal=allow_internal, received_at=received_at
    )


def validate_json_event(
    body: bytes, *, allow_internal: bool = False, received_at: datetime | None = None
) -> ReceivedEvent:
    """``validate_event`` straight from the JSON bytes of one event, parsed once.

    The bytes as received are the text the size, nesting, NUL and identifier checks read; only a body
    holding escapes (or too long to be sure of its compact size) is encoded afresh for them.
    """
    return validate_parsed_event(
        parse_json(body), body, allow_internal=allow_internal, received_at=received_at
    )


def validate_parsed_event(
    raw: Any, body: bytes, *, allow_internal: bool = False, received_at: datetime | None = None
) -> ReceivedEvent:
    """``validate_json_event`` of ``raw``, which ``parse_json(body)`` returned: for a caller that keeps the
    parsed value (to name the tenant of a rejection) without parsing twice."""
    if not isinstance(raw, dict):
        raise _not_an_object()
    readable = len(body) <= MAX_EVENT_BYTES and b"\\" not in body
    encoded = body if readable else _json_bytes(raw)
    return _validate(raw, encoded, parsed=True, allow_internal=allow_internal, received_at=received_at)


def _not_an_object() -> NotCloudEvent:
    return NotCloudEvent("an event must be a JSON object", errors=[FieldError("$", "expected a JSON object")])


_INTEGER_ATTRIBUTES = frozenset({"schemaversion"})
_INTEGER_DIGITS = len(str(INT32_MAX))


def binary_attribute(name: str, text: str) -> str | int:
    """The value of a binary-mode attribute (HTTP ``ce-*`` header, Kafka ``ce_*`` header): headers carry
    text, so an integer attribute written as at most ten ASCII digits becomes an integer; anything else
    stays the text as sent, for validation to refuse naming the attribute (never an ``int()`` of
    thousands of digits, which Python itself refuses)."""
    if name in _INTEGER_ATTRIBUTES and text.isascii() and text.isdigit() and len(text) <= _INTEGER_DIGITS:
        return int(text)
    return text


def parse_json(body: bytes) -> Any:
    """The value of a JSON text (RFC 8259: no NaN or Infinity, UTF-8); ``MalformedRequest`` otherwise."""
    try:
        return _decode_json(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        msg = f"the body is not valid JSON: {reason}"
        raise MalformedRequest(msg, errors=[FieldError("$", msg)]) from None


def _validate(
    raw: dict[str, Any],
    encoded: bytes | None,
    *,
    parsed: bool,
    allow_internal: bool,
    received_at: datetime | None,
) -> ReceivedEvent:
    """``_checked``, with a refusal named by what the event claims to be (its ``code``, the same on every
    transport): no CloudEvent, an unknown type, a type only the ledger writes, or else invalid."""
    try:
        return _checked(raw, encoded, parsed=parsed, allow_internal=allow_internal, received_at=received_at)
    except ValidationFailed as exc:
        if type(exc) is not ValidationFailed:
            raise
        kind = _refusal_kind(raw, allow_internal=allow_internal)
        if kind is ValidationFailed:
            raise
        raise kind(exc.detail, errors=exc.errors, error_count=exc.error_count) from None


def _refusal_kind(raw: dict[str, Any], *, allow_internal: bool) -> type[ValidationFailed]:
    # Judged from the raw attributes, whichever check failed first: an unknown type with a bad envelope
    # too is still an unknown type (what a dead-letter reader needs to know first).
    if "specversion" not in raw:
        return NotCloudEvent
    type_ = raw.get("type")
    registered = EVENT_TYPES.get(type_) if isinstance(type_, str) else None
    if isinstance(type_, str) and registered is None:
        return UnknownEventType
    if registered is not None and registered.internal and not allow_internal:
        return ReservedEventType
    return ValidationFailed


def _checked(
    raw: dict[str, Any],
    encoded: bytes | None,
    *,
    parsed: bool,
    allow_internal: bool,
    received_at: datetime | None,
) -> ReceivedEvent:
    """The checks of ``validate_event``; ``encoded`` is a JSON text of ``raw`` (``None``: not JSON).

    ``parsed``: ``raw`` is what the JSON decoder returned, so it holds JSON types alone and its canonical
    bytes need no check that they came from JSON types (``canonicalize_json``).
    """
    if encoded is not None:
        _refuse_oversized(encoded)
    _refuse_nul(raw, encoded)
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise _refusal(
            ValidationFailed, "the CloudEvent envelope is not valid", _field_errors(exc, "")
        ) from None
    if received_at is not None and envelope.time > received_at + MAX_FUTURE_SKEW:
        msg = (
            f"lies more than {MAX_FUTURE_SKEW.total_seconds() / 60:.0f} minutes after the event was received "
            f"({received_at.isoformat()}); check the producer's clock"
        )
        raise ValidationFailed("the event's time lies in the future", errors=[FieldError("time", msg)])

    event_type = EVENT_TYPES.get(envelope.type)
    if event_type is None:
        msg = f"unknown event type {envelope.type!r}; see GET /v1/event-types or schemas/ for the registered types"
        raise ValidationFailed(msg, errors=[FieldError("type", msg)])
    if event_type.internal and not allow_internal:
        msg = f"{envelope.type!r} is written only by the ledger itself"
        raise ValidationFailed(msg, errors=[FieldError("type", msg)])
    if not allow_internal and envelope.tenant == SYSTEM_TENANT:
        msg = f"tenant {SYSTEM_TENANT!r} is the ledger's own log; producers write to their own tenant"
        raise ValidationFailed(msg, errors=[FieldError("tenant", msg)])
    if not allow_internal and envelope.id.startswith(LEDGER_ID_PREFIX):
        msg = f"ids beginning with {LEDGER_ID_PREFIX!r} are reserved for the ledger's own events"
        raise ValidationFailed(msg, errors=[FieldError("id", msg)])
    versioned = event_type_at(envelope.type, envelope.schemaversion)
    if versioned is None:
        msg = f"schemaversion {envelope.schemaversion} of {envelope.type!r} is not accepted; send version {event_type.schemaversion}"
        raise ValidationFailed(msg, errors=[FieldError("schemaversion", msg)])
    event_type = versioned
    try:
        data = event_type.model.model_validate(envelope.data, context={TENANT_CONTEXT: envelope.tenant})
    except ValidationError as exc:
        detail = f"data of {envelope.type!r} is not valid"
        raise _refusal(ValidationFailed, detail, _field_errors(exc, "data")) from None
    if encoded is None:  # valid in every field, yet not JSON (only a caller in Python can build one)
        raise ValidationFailed(
            "the event is not JSON", errors=[FieldError("$", "holds a value JSON cannot carry")]
        )

    _refuse_direct_identifiers(raw, event_type, encoded)
    # Once, here: a value with no canonical form is refused at the door, naming its field.
    canonical = canonicalize_json(raw) if parsed else canonicalize(raw)
    return ReceivedEvent(raw=raw, envelope=envelope, data=data, event_type=event_type, canonical=canonical)


def _refusal(kind: type[ValidationFailed], detail: str, errors: list[FieldError]) -> ValidationFailed:
    """``kind`` listing at most ``MAX_REPORTED_ERRORS`` of ``errors``, and counting them all."""
    return kind(detail, errors=errors[:MAX_REPORTED_ERRORS], error_count=len(errors))


# A JSON text's nesting, read without parsing it: drop escaped characters, keep what lies outside strings
# (between every other quote), keep only brackets, and sum +1 / -1 along them.
_ESCAPED = re.compile(rb"\\.")
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def _nesting_beyond(encoded: bytes, limit: int) -> int | None:
    """How deeply arrays and objects nest in the JSON text ``encoded``, when deeper than ``limit``."""
    if encoded.count(b"[") + encoded.count(b"{") <= limit:
        return None  # too few brackets to nest deeper, whatever the strings hold: nothing to scan
    if b"\\" in encoded:
        encoded = _ESCAPED.sub(b"", encoded)
    outside = b"".join(encoded.split(b'"')[::2])
    steps = array("b", outside.translate(_BRACKET_STEPS, _NOT_BRACKETS))
    depth = max(accumulate(steps), default=0)
    return depth if depth > limit else None


def _refuse_oversized(encoded: bytes) -> None:
    if len(encoded) > MAX_EVENT_BYTES:
        msg = f"the event's JSON is {len(encoded):,} bytes; at most {MAX_EVENT_BYTES:,} are accepted"
        raise ValidationFailed("the event is too large", errors=[FieldError("$", msg)])
    depth = _nesting_beyond(encoded, MAX_JSON_DEPTH)
    if depth is not None:
        msg = f"arrays and objects nest {depth} levels deep; at most {MAX_JSON_DEPTH} are accepted"
        raise ValidationFailed("the event is nested too deeply", errors=[FieldError("$", msg)])


def _refuse_direct_identifiers(raw: dict[str, Any], event_type: EventType, encoded: bytes | None) -> None:
    """Every string is scanned except sealed values that are not free text (addresses, license numbers):
    those are erasable and never stored in plaintext. Sealed free text (comments, reasons) is scanned too.
    The signed notes and signature lines of ``ledger.*`` events are not scanned (``SIGNED_ENCODING``).

    Fast path: one scan over the event's JSON text. Each string stands in it verbatim between quotes,
    and a quote acts on the patterns' look-arounds exactly as a string's edge does, so a clean text
    means clean strings. Escapes (a backslash) could hide a match, so they take the per-field walk,
    as does any hit (perhaps in a sealed value), which the walk then attributes to its field.
    """
    if encoded is not None and b"\\" not in encoded and find_direct_identifier(encoded) is None:
        return
    sealed = {("data", *p) for p in event_type.sensitive_paths if p not in event_type.free_text_paths}
    sealed |= {("data", *p) for p in event_type.signed_encoding_paths}
    errors = [
        FieldError(_dotted(path), f"contains what looks like {kind}; remove it before sending")
        for path, text in _strings(raw, ())
        if path not in sealed and (kind := find_direct_identifier(text))
    ]
    if errors:
        raise _refusal(ForbiddenIdentifier, "a direct identifier must never enter the ledger", errors)


def _refuse_nul(raw: dict[str, Any], encoded: bytes | None) -> None:
    # PostgreSQL text cannot hold U+0000, and no legitimate attribute needs it. JSON text writes it as
    # \u0000, so its absence there (keys included) is proof; anything else takes the exact walk.
    if encoded is not None and b"\\u0000" not in encoded:
        return
    errors = [FieldError(_dotted(path) or "$", "must not contain the NUL character (U+0000)")
              for path, text in _strings(raw, (), keys=True) if "\x00" in text]  # fmt: skip
    if errors:
        raise ValidationFailed("a string contains the NUL character", errors=errors)


def _strings(
    value: Any, path: tuple[str | int, ...], *, keys: bool = False
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if keys and isinstance(k, str):
                yield (*path, k), k
            yield from _strings(v, (*path, str(k)), keys=keys)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i), keys=keys)


def _json_bytes(value: Any) -> bytes | None:
    try:
        return _encode_json(value)
    except (TypeError, ValueError, UnicodeEncodeError, OverflowError):
        return None  # not plain JSON (or a lone surrogate): the exact walk decides


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


_ENVELOPE_ATTRIBUTES = frozenset(Envelope.model_fields)


def normalized(raw: dict[str, Any]) -> dict[str, Any]:
    """The event as the same producer would send it in any content mode: CloudEvents defaults made
    explicit (``datacontenttype``) or implicit (``schemaversion`` 1), extension values as the strings a
    binary-mode header carries. Returns ``raw`` itself when nothing changes."""
    changes: dict[str, Any] = {}
    if "datacontenttype" not in raw:
        changes["datacontenttype"] = "application/json"
    for name in raw.keys() - _ENVELOPE_ATTRIBUTES:  # the extension attributes
        value = raw[name]
        if not isinstance(value, str):
            changes[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    drop_version = raw.get("schemaversion") == 1
    if not changes and not drop_version:
        return raw
    out = {**raw, **changes}
    if drop_version:
        del out["schemaversion"]
    return out


def get_path(data: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested dicts, or ``None`` when any step is missing."""
    node = data
    for step in path:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


# A failed pattern reads as the regular expression itself; for the two rules every producer meets,
# say what they mean.
_PATTERN_MEANINGS = {
    PRINTABLE_PATTERN: "must not contain control characters (U+0000-U+001F, U+007F-U+009F)",
    IDENTIFIER_PATTERN: "must be one token: no spaces and no control characters",
}


def _field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        field = ".".join([prefix, *loc] if prefix else loc) or "$"
        pattern = (err.get("ctx") or {}).get("pattern") if err["type"] == "string_pattern_mismatch" else None
        out.append(FieldError(field, _PATTERN_MEANINGS.get(str(pattern), err["msg"])))
    return out
