"""One definition of what is acceptable (issue 7): what validation refuses, naming the field, so that
whatever it accepts every reader can hold. No database: the rules live in the models."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.api.ingest import BATCH, STRUCTURED, parse_request
from ledger.domain.envelope import validate_event
from ledger.domain.errors import ValidationFailed
from ledger.domain.fields import (
    EARLIEST_TIME,
    INT4_MAX,
    LATEST_TIME,
    MAX_ADJUDICATED_ANNOTATIONS,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    MAX_EXTENSION_LENGTH,
    MAX_EXTENSIONS,
    MAX_FUTURE_SKEW,
    MAX_ITEMS_PER_EVENT,
    MAX_JSON_DEPTH,
    MAX_POLYGON_POINTS,
    MAX_REPORTED_ERRORS,
    MAX_SAFE_INTEGER,
    RFC3339_PATTERN,
    TIME_RANGE,
    Timestamp,
)
from ledger.domain.registry import EVENT_TYPES, OLDER_VERSIONS, EventType
from ledger.ingest import Rejection
from ledger.kafka.batch import read_event
from ledger.kafka.transport import Message
from tests.factories import example_event

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def refusal(raw: Any, **kwargs: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate_event(raw, **kwargs)
    return caught.value


def fields(exc: ValidationFailed) -> list[str]:
    return [e.field for e in exc.errors]


def annotation(**overrides: Any) -> dict[str, Any]:
    return example_event("annotation.created", tenant="acme", **overrides)


# ---- times (items 1, 2 and 12) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00+14:00",  # issue 7 item 1: before year 1 once converted to UTC
        "9999-12-31T23:59:59-14:00",  # ... after year 9999
        "1899-12-31T23:59:59Z",
        "1900-01-01T00:00:00+00:01",  # 1899 in UTC
        "2200-01-01T00:00:00Z",  # the upper bound is exclusive
        "2199-12-31T23:00:00-14:00",  # 2200 in UTC
    ],
)
def test_an_envelope_time_outside_the_range_is_refused_stating_the_range(time: str) -> None:
    exc = refusal(annotation(time=time))
    assert fields(exc) == ["time"]
    assert "1900-01-01T00:00:00Z" in exc.errors[0].message
    assert "2200-01-01T00:00:00Z" in exc.errors[0].message


@pytest.mark.parametrize(
    "time",
    [
        "1900-01-01T00:00:00Z",
        "2199-12-31T23:59:59.999999Z",
        "2026-01-31t09:00:00z",
        "2026-01-31T09:00:00+14:00",
    ],
)
def test_times_at_the_edges_of_the_range_are_accepted(time: str) -> None:
    assert validate_event(annotation(time=time)).time.tzinfo is not None


@pytest.mark.parametrize(
    "time",
    ["2026-01-31T09:00Z", "20260131T090000Z", "2026-01-31 09:00:00Z", "2026-01-31", "2026-01-31T09:00:00",
     "2026-01-31T09:00:00.1234567890Z", "2026-02-30T09:00:00Z", "2026-01-31T09:00:00+0100", 1772438127],
)  # fmt: skip
def test_what_is_not_rfc_3339_is_refused(time: object) -> None:
    assert fields(refusal(annotation(time=time))) == ["time"]


def _time_fields(event_type: EventType) -> list[str]:
    properties = event_type.data_schema["properties"]
    return [
        name
        for name, prop in properties.items()
        if any(TIME_RANGE in arm for arm in prop.get("anyOf", [prop]))
    ]


TIME_FIELDS = [
    (t.name, f) for t in [*EVENT_TYPES.values(), *OLDER_VERSIONS.values()] for f in _time_fields(t)
]


def test_every_data_time_is_found() -> None:
    names = {f for _, f in TIME_FIELDS}
    assert {
        "valid_from",
        "valid_until",
        "effective_from",
        "effective_until",
        "effective_at",
        "completed_at",
    } <= names


@pytest.mark.parametrize(("type_name", "field"), TIME_FIELDS)
@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_data_time_outside_the_range_is_refused_naming_it(type_name: str, field: str, time: str) -> None:
    raw = example_event(type_name, tenant="acme")
    if raw.get("schemaversion", 1) != EVENT_TYPES[type_name].schemaversion:
        pytest.skip("the example is of the current version")
    raw["data"][field] = time
    assert f"data.{field}" in fields(refusal(raw, allow_internal=True))


@given(st.from_regex(RFC3339_PATTERN, fullmatch=True))
def test_every_time_accepted_can_be_held_in_utc(text: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    try:
        value = TypeAdapter(Timestamp).validate_python(text)
    except ValidationError:
        return
    in_utc = value.astimezone(UTC)  # what PostgreSQL and every reader do; must never overflow
    assert EARLIEST_TIME <= in_utc < LATEST_TIME


def test_an_event_time_beyond_the_clock_skew_is_refused() -> None:  # issue 7 item 12
    late = (NOW + MAX_FUTURE_SKEW + timedelta(seconds=1)).isoformat()
    exc = refusal(annotation(time=late), received_at=NOW)
    assert fields(exc) == ["time"]
    assert "5 minutes" in exc.errors[0].message


def test_an_event_time_within_the_clock_skew_is_accepted() -> None:
    assert validate_event(annotation(time=(NOW + MAX_FUTURE_SKEW).isoformat()), received_at=NOW)


def test_data_times_may_lie_in_the_future() -> None:
    raw = example_event("credential.granted", tenant="acme", data_valid_until="2190-01-01T00:00:00Z")
    assert validate_event(raw, received_at=NOW)


def test_http_ingest_judges_the_time_by_the_clock() -> None:
    body = json.dumps(annotation(time="2099-01-01T00:00:00Z")).encode()
    with pytest.raises(ValidationFailed) as caught:
        parse_request(STRUCTURED, {}, body)
    assert fields(caught.value) == ["time"]


def test_kafka_ingest_judges_the_time_by_the_clock() -> None:
    value = json.dumps(annotation(time="2099-01-01T00:00:00Z")).encode()
    outcome = read_event(Message("events", 0, 1, b"acme", value, (), None))
    assert isinstance(outcome, Rejection)
    assert "time" in outcome.reason


# ---- numbers (item 3) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "field", "value"),
    [
        ("annotation.created", "version", INT4_MAX + 1),  # issue 7 item 3
        ("review.submitted", "annotation_version", INT4_MAX + 1),
        ("review.submitted", "resulting_version", INT4_MAX + 1),
        ("annotation.deleted", "previous_version", INT4_MAX + 1),
        ("access.data_viewed", "record_count", INT4_MAX + 1),
        ("annotation.created", "version", "2"),  # a string of digits is not a number
        ("annotation.created", "version", True),
        ("annotation.created", "version", 2.0),
        ("review.submitted", "level", "2"),
        ("ledger.checkpoint_signed", "tree_size", MAX_SAFE_INTEGER + 1),
    ],
)
def test_an_integer_beyond_its_column_or_not_an_integer_is_refused(
    type_name: str, field: str, value: object
) -> None:
    raw = example_event(type_name, tenant="acme", **{f"data_{field}": value})
    assert f"data.{field}" in fields(refusal(raw, allow_internal=True))


def test_the_largest_int4_is_accepted() -> None:
    assert validate_event(annotation(data_version=INT4_MAX, data_previous_version=None))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e300, "1.5", True])
def test_coordinates_are_finite_numbers_of_a_bounded_size(bad: object) -> None:
    polygon = {"kind": "polygon", "points": [[0, 0], [10, 0], [bad, 10]]}
    bbox = {"kind": "bbox", "x": bad, "y": 0, "width": 1, "height": 1}
    classification = {"kind": "classification", "confidence": bad}
    for geometry in (polygon, bbox, classification):
        assert fields(refusal(annotation(data_geometry=geometry)))[0].startswith("data.geometry")


@pytest.mark.parametrize(
    ("name", "value"), [("big", 2**31), ("small", -(2**31) - 1), ("real", 1.5), ("none", None)]
)
def test_extension_attributes_hold_cloudevents_values(name: str, value: object) -> None:
    assert fields(refusal(annotation(**{name: value}))) == [name]


def test_schemaversion_is_a_32_bit_integer() -> None:
    assert fields(refusal(annotation(schemaversion=2**31))) == ["schemaversion"]
    assert fields(refusal(annotation(schemaversion="1"))) == ["schemaversion"]


# ---- sizes (item 6) ------------------------------------------------------------------------------------


def test_a_long_extension_attribute_is_refused_naming_it() -> None:
    assert fields(refusal(annotation(note="x" * (MAX_EXTENSION_LENGTH + 1)))) == ["note"]
    assert validate_event(annotation(note="x" * MAX_EXTENSION_LENGTH))


def test_the_number_of_extension_attributes_is_bounded() -> None:
    many = {f"ext{i}": "v" for i in range(MAX_EXTENSIONS + 1)}
    exc = refusal(annotation(**many))
    assert str(MAX_EXTENSIONS) in exc.errors[0].message
    assert validate_event(annotation(**dict(list(many.items())[:MAX_EXTENSIONS])))


def test_a_polygon_has_a_bounded_number_of_points() -> None:
    points = [[float(i % 1000), float(i // 1000)] for i in range(MAX_POLYGON_POINTS + 1)]
    exc = refusal(annotation(data_geometry={"kind": "polygon", "points": points}))
    assert fields(exc) == ["data.geometry.polygon.points"]
    assert validate_event(annotation(data_geometry={"kind": "polygon", "points": points[:-1]}))


@pytest.mark.parametrize(
    ("type_name", "field"),
    [
        ("assignment.created", "items"),
        ("adjudication.completed", "annotation_ids"),
        ("dataset.release_created", "items"),
    ],
)
def test_lists_are_bounded(type_name: str, field: str) -> None:
    raw = example_event(type_name, tenant="acme")
    limit = EVENT_TYPES[type_name].data_schema["properties"][field]["maxItems"]
    assert limit in (MAX_ITEMS_PER_EVENT, MAX_ADJUDICATED_ANNOTATIONS)
    raw["data"][field] = raw["data"][field][:1] * (limit + 1)
    assert f"data.{field}" in fields(refusal(raw))


def test_a_whole_event_is_bounded_in_bytes() -> None:
    raw = annotation(**{f"e{i}": "x" * MAX_EXTENSION_LENGTH for i in range(MAX_EXTENSIONS)})
    raw["data"]["geometry"] = {"kind": "polygon", "points": [[123456.789, 654321.123]] * MAX_POLYGON_POINTS}
    raw["data"]["comment"] = "x" * 4000
    raw["data"]["padding"] = "x" * MAX_EVENT_BYTES
    exc = refusal(raw)
    assert fields(exc) == ["$"]
    assert f"{MAX_EVENT_BYTES:,}" in exc.errors[0].message


def test_deep_nesting_is_refused_before_anything_walks_it() -> None:
    deep: Any = "\x00"  # a NUL at the bottom: the NUL walk must never meet this depth
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    exc = refusal(annotation(data_junk=deep))
    assert fields(exc) == ["$"]
    assert "nest" in exc.errors[0].message


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert validate_event(annotation(data_comment='[{"[[[[' * 100 + '\\"]]]'))


def test_report_parameters_are_bounded() -> None:
    raw = example_event("ledger.report_generated", tenant="acme")
    raw["data"]["parameters"] = {f"p{i}": "v" for i in range(51)}
    assert fields(refusal(raw, allow_internal=True)) == ["data.parameters"]
    raw["data"]["parameters"] = {"scope": "x" * 1001}
    assert fields(refusal(raw, allow_internal=True)) == ["data.parameters.scope"]


def test_identifiers_hold_no_control_characters() -> None:
    assert fields(refusal(annotation(actor="ann\x1b[2J"))) == ["actor"]
    assert fields(refusal(annotation(data_item="a\x85b"))) == ["data.item"]


# ---- scopes (item 5) -----------------------------------------------------------------------------------


def test_a_legal_hold_may_name_only_the_producers_own_log() -> None:
    raw = example_event("retention.hold_placed", tenant="other", data_scope={"log": "acme"})
    exc = refusal(raw)
    assert fields(exc) == ["data.scope.log"]
    assert validate_event(example_event("retention.hold_placed", tenant="acme", data_scope={"log": "acme"}))


# ---- error lists and batches (item 8) ------------------------------------------------------------------


def test_a_batch_has_a_bounded_number_of_events() -> None:
    body = b"[" + b",".join([b"{}"] * (MAX_BATCH_EVENTS + 1)) + b"]"
    with pytest.raises(ValidationFailed) as caught:
        parse_request(BATCH, {}, body)
    assert fields(caught.value) == ["$"]
    assert f"{MAX_BATCH_EVENTS:,}" in caught.value.errors[0].message


def test_a_batch_lists_the_first_errors_and_counts_them_all() -> None:
    body = b"[" + b",".join([b"{}"] * MAX_BATCH_EVENTS) + b"]"
    with pytest.raises(ValidationFailed) as caught:
        parse_request(BATCH, {}, body)
    exc = caught.value
    assert len(exc.errors) == MAX_REPORTED_ERRORS
    assert exc.error_count > MAX_BATCH_EVENTS  # every {} misses several attributes
    assert f"of {exc.error_count} errors" in exc.detail
    assert (
        len(json.dumps([e.as_dict() for e in exc.errors])) < 20_000
    )  # the body stays smaller than the request


def test_one_event_lists_the_first_errors_and_counts_them_all() -> None:
    raw = example_event("assignment.created", tenant="acme", data_items=["bad id"] * MAX_ITEMS_PER_EVENT)
    exc = refusal(raw)
    assert len(exc.errors) == MAX_REPORTED_ERRORS
    assert exc.error_count == MAX_ITEMS_PER_EVENT


# ---- the published schemas state every bound -----------------------------------------------------------


def _unbounded(node: Any, path: str) -> list[str]:
    if not isinstance(node, dict):
        return []
    found = []
    kind = node.get("type")
    if "const" not in node and "enum" not in node:
        if kind == "string" and "maxLength" not in node:
            found.append(f"{path}: string without maxLength")
        if kind == "array" and "maxItems" not in node and node.get("items") is not False:
            found.append(f"{path}: array without maxItems")
        if kind in ("integer", "number") and not ("maximum" in node or "exclusiveMaximum" in node):
            found.append(f"{path}: {kind} without maximum")
        if kind in ("integer", "number") and not ("minimum" in node or "exclusiveMinimum" in node):
            found.append(f"{path}: {kind} without minimum")
        extra = node.get("additionalProperties")
        if kind == "object" and isinstance(extra, dict) and "maxProperties" not in node:
            found.append(f"{path}: map without maxProperties")
    for key, sub in node.items():
        if isinstance(sub, dict):
            found += _unbounded(sub, f"{path}/{key}")
        elif isinstance(sub, list):
            found += [u for i, s in enumerate(sub) for u in _unbounded(s, f"{path}/{key}/{i}")]
    return found


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_string_list_number_and_map_in_the_schemas_is_bounded(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert _unbounded(schema, "") == []
    assert schema["x-ledger-limits"] == {"max_event_bytes": MAX_EVENT_BYTES, "max_json_depth": MAX_JSON_DEPTH}
    assert schema["properties"]["time"]["x-ledger-max-future-skew-seconds"] == MAX_FUTURE_SKEW.total_seconds()


@pytest.mark.parametrize("version", ["9" * 5000, "99999999999", "\u00b2"])
def test_a_binary_mode_schemaversion_no_integer_carries_is_a_4xx_naming_it(version: str) -> None:
    """Not a 500 from ``int()`` of thousands of digits: the header stays text and validation names it."""
    event = example_event("annotation.created", tenant="acme")
    headers = {f"ce-{k}": str(v) for k, v in event.items() if k != "data"}
    headers["ce-schemaversion"] = version
    with pytest.raises(ValidationFailed) as refused:
        parse_request("application/json", headers, json.dumps(event["data"]).encode())
    assert [e.field for e in refused.value.errors] == ["schemaversion"]


@pytest.mark.parametrize("event_id", ["a/", "/a", "a//b"])
def test_an_id_no_path_can_address_is_refused_naming_it(event_id: str) -> None:
    """Found by the acceptance property: `2897:/` was recorded, then GET /v1/events/2897%3A%2F was a 404."""
    with pytest.raises(ValidationFailed) as refused:
        validate_event(example_event("annotation.created", tenant="acme", id=event_id))
    assert [e.field for e in refused.value.errors] == ["id"]


def test_an_id_with_inner_slashes_is_still_accepted() -> None:
    assert (
        validate_event(example_event("annotation.created", tenant="acme", id="tool/run-7/a1")).id
        == "tool/run-7/a1"
    )
