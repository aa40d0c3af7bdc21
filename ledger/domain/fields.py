"""Field markers shared by the event models: what is sealed, what is free text, common shapes, and limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)

SENSITIVE = "x-ledger-sensitive"
FREE_TEXT = "x-ledger-free-text"
LEDGER_ID_PREFIX = "ledger:"
"""Event ids beginning with this are the ledger's own (``ledger.*`` types only): a producer's event can
never take the id the ledger gives a checkpoint, and so never stop one from being recorded."""
SIGNED_ENCODING = "x-ledger-signed-encoding"
"""Marks text the ledger itself writes in a signed format (a signed note, a signature line, a key):
base64 may spell anything, an "MRN" followed by digits included, so it is not scanned for direct
identifiers. Only ``ledger.*`` types, which producers cannot send, carry such fields."""
TIME_RANGE = "x-ledger-range"
MAX_FUTURE_SKEW_MARKER = "x-ledger-max-future-skew-seconds"
TENANT_CONTEXT = "tenant"
"""The validation-context key holding the producer's tenant, for rules that compare ``data`` with it."""


# The one range of times the ledger accepts, in UTC (DESIGN §3 "what is accepted must stay usable").
# Every reader can hold it: PostgreSQL timestamptz, Python datetime after any offset conversion, and
# the projections. Readers of rows stored before the rule use ``in_time_range`` to skip what lies outside.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive
INT4_MAX = 2**31 - 1
"""The largest value an ``integer`` column (PostgreSQL int4) holds: the bound of every count and version."""


def in_time_range(value: datetime) -> bool:
    """True when an aware ``value`` lies in [EARLIEST_TIME, LATEST_TIME); comparing never overflows."""
    return value.tzinfo is not None and EARLIEST_TIME <= value < LATEST_TIME


def parse_time(name: str, value: str) -> datetime:
    """An RFC 3339 time with an offset within [EARLIEST_TIME, LATEST_TIME), as a query parameter or a
    command-line option ``name`` gives it; else ``ParameterInvalid`` naming ``name``."""
    from ledger.domain.errors import FieldError, ParameterInvalid

    try:
        parsed: datetime | None = parse_rfc3339(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        message = "must be an RFC 3339 time with an offset, e.g. 2026-01-31T00:00:00Z"
    elif not in_time_range(parsed):
        message = f"must lie in [{EARLIEST_TIME.isoformat()}, {LATEST_TIME.isoformat()})"
    else:
        return parsed
    raise ParameterInvalid(f"{name} {message}", errors=[FieldError(name, message)])


# ---- limits ------------------------------------------------------------------------------------------
# Every bound the ledger puts on what it accepts, in one place (docs/security.md lists them). Each is
# generous for a real annotation project and small enough that one event can never cost the ledger (or
# any reader of a page of events) more than a bounded amount of memory and time. Each is also stated in
# the published JSON Schemas (maxLength, maxItems, maximum, ...), so producers see it.

MAX_FUTURE_SKEW = timedelta(minutes=5)
"""How far an event's ``time`` may lie ahead of the ledger's clock when received: clock skew between
hosts, not scheduling. An event "from the future" would sort before the events that caused it."""

MAX_SAFE_INTEGER = 2**53 - 1
"""I-JSON (RFC 7493): the largest integer every JSON reader (and RFC 8785, which hashes doubles) carries
exactly; the bound of a checkpoint's tree size, far below PostgreSQL's ``bigint``."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""CloudEvents 1.0 Integer: the range of an integer extension attribute (and of ``schemaversion``)."""

MAX_EVENT_BYTES = 1024 * 1024
"""One event's compact JSON encoding: Kafka's default ``message.max.bytes`` (1 MB), so that any event
the ledger accepts over HTTP could travel over Kafka too, and a page of events stays bounded."""
MAX_JSON_DEPTH = 16
"""Nesting of arrays and objects in one event; the deepest registered type needs 5 (a polygon point)."""
MAX_BATCH_EVENTS = 5_000
"""Events in one batch request: ten times the batch size the benchmarks find fastest (500)."""
MAX_REPORTED_ERRORS = 100
"""Field errors listed in one refusal; the total is still counted (``LedgerError.error_count``)."""

MAX_IDENTIFIER_LENGTH = 200
"""An opaque id: a DICOM UID is at most 64 characters, a UUID 36, a URN a few dozen."""
MAX_LABEL_LENGTH = 300
"""A short human-readable value: a title, an issuer, a course name."""
MAX_FREE_TEXT_LENGTH = 4000
"""Human-written text (a comment, a reason): a long paragraph."""
MAX_SHORT_VALUE_LENGTH = 1000
"""A sealed short value (a license number, an address, a user agent)."""
MAX_URI_LENGTH = 2000
"""A URI: the practical limit of browsers and proxies."""

MAX_EXTENSIONS = 20
"""CloudEvents extension attributes on one event (traceparent, tracestate, partitionkey, ...)."""
MAX_EXTENSION_LENGTH = 2048
"""A string extension attribute: W3C ``tracestate`` is at most 512 characters; four times that."""

MAX_POLYGON_POINTS = 10_000
"""Vertices of one polygon: a model's contour of a large organ has a few thousand."""
MAX_COORDINATE = 1_000_000.0
"""An image pixel coordinate: whole-slide pathology images reach about 200,000 pixels a side."""
MAX_ITEMS_PER_EVENT = 5_000
"""Items named by one assignment, legal-hold scope or dataset release. At 64-character DICOM UIDs a
release of 5,000 items is about 750 KB, within ``MAX_EVENT_BYTES``; a larger release is several."""
MAX_ADJUDICATED_ANNOTATIONS = 100
"""Readers' annotations one adjudication chooses among: two to five in practice."""
MAX_REPORT_PARAMETERS = 50
"""Parameters recorded for one generated report."""


# ---- times -------------------------------------------------------------------------------------------

# RFC 3339 §5.6 date-time with the year limited to 1900-2199 (the instant range is then checked after
# the offset is applied); at most nanosecond fractions. The one lexical rule for every time field.
RFC3339_PATTERN = (
    r"^(?:19|20|21)[0-9]{2}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)
_TIME_MAX_LENGTH = len("2199-12-31T23:59:59.123456789+14:00")
_RANGE_TEXT = "between 1900-01-01T00:00:00Z (inclusive) and 2200-01-01T00:00:00Z (exclusive)"


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 date-time. The one parser ingest and every reader use, so what validation accepts,
    projections, provenance and verification can always read back (RFC 3339 allows a lower-case t and z)."""
    return datetime.fromisoformat(value.upper())


def _text(value: object) -> object:
    # CloudEvents times are RFC 3339 strings; pydantic would otherwise read a number (or a string of
    # digits) as Unix seconds, which no reader of the stored event could parse back.
    if isinstance(value, datetime):
        return value
    msg = f"must be an RFC 3339 time string {_RANGE_TEXT}, e.g. 2026-01-31T09:00:00Z"
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(msg)
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise ValueError(msg) from None


def _in_range(value: datetime) -> datetime:
    if value.tzinfo is None:
        msg = "must carry a time zone offset (RFC 3339), e.g. 2026-01-31T09:00:00Z"
        raise ValueError(msg)
    if not in_time_range(value):
        msg = f"must lie {_RANGE_TEXT} once its offset is applied"
        raise ValueError(msg)
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_text),
    AfterValidator(_in_range),
    Field(
        json_schema_extra={
            "pattern": RFC3339_PATTERN,
            "maxLength": _TIME_MAX_LENGTH,
            TIME_RANGE: {"from": "1900-01-01T00:00:00Z", "until": "2200-01-01T00:00:00Z"},
            "$comment": f"An RFC 3339 date-time whose instant lies {_RANGE_TEXT}.",
        }
    ),
]
"""An RFC 3339 timestamp string with an offset, whose instant lies in [EARLIEST_TIME, LATEST_TIME)."""


# ---- numbers -----------------------------------------------------------------------------------------
# Strict: a JSON string of digits or a boolean is not a number. Projections read the stored JSON, where
# "2" or true would stand where an integer column expects 2.

Version = Annotated[int, Field(strict=True, ge=1, le=INT4_MAX)]
"""A version number (stored in an ``integer`` column)."""
Count = Annotated[int, Field(strict=True, ge=0, le=INT4_MAX)]
"""A count or an index (a frame, a number of records)."""
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
"""A finite pixel coordinate (a polygon may reach a little outside the image)."""
Position = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_COORDINATE)]
"""A finite pixel coordinate inside the image."""
Extent = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_COORDINATE)]
"""A finite, positive width or height in pixels."""
Fraction = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
"""A finite number in [0, 1] (a confidence)."""


# ---- strings -----------------------------------------------------------------------------------------

# No whitespace and no C0/C1 control characters: an id is never more than one token on one line.
IDENTIFIER_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]+$"
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""No C0 or C1 control character and no DEL (Unicode category Cc): what every envelope attribute and
every request parameter must be, so an accepted id can always be asked for again and never forges a log line."""

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=IDENTIFIER_PATTERN)]
"""An opaque, pseudonymous identifier: no spaces or control characters, 1-200 characters."""

Sha256Hex = Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
"""A lowercase hex SHA-256 digest."""

Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH)]
"""A short human-readable value (a title, an issuer)."""

FreeText = Annotated[str, Field(max_length=MAX_FREE_TEXT_LENGTH, json_schema_extra={FREE_TEXT: True})]
"""Human-written text: scanned for direct identifiers at ingest."""

SensitiveText = Annotated[
    str, Field(max_length=MAX_FREE_TEXT_LENGTH, json_schema_extra={SENSITIVE: True, FREE_TEXT: True})
]
"""Human-written text that is also sealed (AES-256-GCM) before it is hashed and stored."""

SensitiveValue = Annotated[str, Field(max_length=MAX_SHORT_VALUE_LENGTH, json_schema_extra={SENSITIVE: True})]
"""A short value (license number, address, user agent) sealed before it is hashed and stored."""


# ---- extension attributes ----------------------------------------------------------------------------


CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""What ``PRINTABLE_PATTERN`` excludes, as a search: unlike a ``$`` in Python's ``re``, it also finds a
final newline."""


def _extension_value(value: Any) -> str | int | bool:
    # One check with one message: a union of constrained types would report three errors per value.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT32_MIN <= value <= INT32_MAX:
            msg = f"an integer extension attribute must lie in {INT32_MIN}..{INT32_MAX} (CloudEvents 1.0 Integer)"
            raise ValueError(msg)
        return value
    if isinstance(value, str):
        if len(value) > MAX_EXTENSION_LENGTH:
            msg = f"an extension attribute holds at most {MAX_EXTENSION_LENGTH} characters"
            raise ValueError(msg)
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                msg = "an extension attribute must be valid Unicode (it holds a lone surrogate)"
                raise ValueError(msg) from None
        if CONTROL_CHARACTER.search(value):
            # A binary-mode header carries it (CloudEvents HTTP binding), and no header holds these.
            msg = "an extension attribute must not contain control characters (U+0000-U+001F, U+007F-U+009F)"
            raise ValueError(msg)
        return value
    msg = "an extension attribute must be a string, integer or boolean"
    raise ValueError(msg)


ExtensionValue = Annotated[
    str | int | bool,
    PlainValidator(_extension_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_EXTENSION_LENGTH, "pattern": PRINTABLE_PATTERN},
                {"type": "integer", "minimum": INT32_MIN, "maximum": INT32_MAX},
                {"type": "boolean"},
            ]
        }
    ),
]
"""The value of a CloudEvents extension attribute: a bounded string, a 32-bit integer or a boolean."""


class EventData(BaseModel):
    """Base of every event's ``data`` model: frozen, and unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
