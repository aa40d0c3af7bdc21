"""Validation straight from a body's bytes (issue 12) decides exactly as validation of the parsed value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.api.ingest import BATCH, STRUCTURED, parse_request
from ledger.domain.canonical import canonicalize
from ledger.domain.envelope import validate_decoded_event, validate_event, validate_json_event
from ledger.domain.errors import ForbiddenIdentifier, MalformedRequest, ValidationFailed
from ledger.domain.fields import MAX_EVENT_BYTES
from ledger.synth.project import generate
from tests.factories import example_event


def outcome(check: Any, value: Any) -> tuple[str, list[str]]:
    try:
        event = check(value)
    except ValidationFailed as exc:
        return type(exc).__name__, [e.field for e in exc.errors]
    return "accepted", [event.id, event.event_type.name]


CASES = [
    example_event("annotation.created", tenant="acme"),
    example_event("review.submitted", tenant="acme", data_comment="SSN: 123456789"),
    example_event(
        "access.data_viewed", tenant="acme", data_source_address="555-123-4567"
    ),  # sealed: not scanned
    example_event("access.data_viewed", tenant="acme", data_reason="DOB 1961-04-12"),
    example_event("annotation.created", tenant="acme", data_comment="a\x00b"),
    example_event("annotation.created", tenant="acme", data_comment="Patient:\nJohn Smith"),  # an escape
    example_event("annotation.created", tenant="acme", data_comment="naïve — Name: Jane Doe"),
    example_event("annotation.created", tenant="acme", data_version="2"),
    example_event("annotation.created", tenant="acme", time="2026-01-31T09:00Z"),
]


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_bytes_and_parsed_value_get_the_same_verdict(raw: dict[str, Any], ensure_ascii: bool) -> None:
    body = json.dumps(raw, ensure_ascii=ensure_ascii).encode()
    assert outcome(validate_json_event, body) == outcome(validate_event, json.loads(body))


def test_the_synthetic_project_validates_the_same_from_bytes() -> None:
    for raw in generate(events=2_000, seed=3):
        from_bytes = validate_json_event(json.dumps(raw).encode())
        assert from_bytes.raw == raw
        assert from_bytes.envelope == validate_event(raw).envelope


def test_a_pretty_printed_event_is_measured_by_its_compact_size() -> None:
    raw = example_event("annotation.created", tenant="acme")
    raw["data"]["geometry"] = {"kind": "polygon", "points": [[1.5, 2.5]] * 9_000}
    body = json.dumps(raw, indent=40).encode()
    assert len(body) > MAX_EVENT_BYTES
    assert validate_json_event(body).id == raw["id"]


@pytest.mark.parametrize("body", [b"{", b'{"x": NaN}', b"[1e999]", b'"\\ud800"', b"\xff", b"[" * 5_000])
def test_what_is_not_json_is_a_malformed_request(body: bytes) -> None:
    with pytest.raises(MalformedRequest) as caught:
        validate_json_event(body)
    assert [e.field for e in caught.value.errors] == ["$"]


@pytest.mark.parametrize("body", [b"{", b"{}", b"[" * 5_000, b'[{"a": NaN}]'])
def test_a_batch_that_is_not_a_json_array_is_a_malformed_request(body: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(BATCH, {}, body)


def test_a_batch_names_each_bad_event_by_its_index() -> None:
    good = example_event("annotation.created", tenant="acme")
    bad = example_event("review.submitted", tenant="acme", data_comment="MRN 00123456")
    body = json.dumps([good, bad, 7]).encode()
    with pytest.raises(ValidationFailed) as caught:
        parse_request(BATCH, {}, body)
    assert [(e.index, e.field) for e in caught.value.errors] == [(1, "data.comment"), (2, "$")]


def test_a_structured_event_is_validated_from_its_body() -> None:
    raw = example_event("review.submitted", tenant="acme", data_comment="SSN 078-05-1120")
    with pytest.raises(ForbiddenIdentifier):
        parse_request(STRUCTURED, {}, json.dumps(raw).encode())


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_a_decoded_value_gets_the_verdict_and_canonical_bytes_of_any_other(raw: dict[str, Any]) -> None:
    decoded = json.loads(json.dumps(raw))
    assert outcome(validate_decoded_event, decoded) == outcome(validate_event, decoded)
    if outcome(validate_event, decoded)[0] == "accepted":
        assert validate_decoded_event(decoded).canonical == validate_event(decoded).canonical


def test_a_binary_mode_event_keeps_the_canonical_bytes_of_what_its_headers_and_body_say() -> None:
    raw = example_event("annotation.created", tenant="acme")
    headers = {f"ce-{k}": str(v) for k, v in raw.items() if k not in ("data", "datacontenttype")}
    [event], batch = parse_request("application/json", headers, json.dumps(raw["data"]).encode())
    assert not batch
    assert event.canonical == canonicalize(event.raw)
    assert event.raw == raw
