"""The CloudEvents Kafka binding (structured and binary mode) and what each kind of bad message is called.

Pure functions: no broker, no database (a unit test)."""

from __future__ import annotations

import hashlib

import pytest

from ledger.ingest import KAFKA, Rejection, parse, raw_sha256, rejection_id
from ledger.kafka.batch import read_event
from ledger.kafka.bindings import encode, request_of
from ledger.kafka.dlq import H_CODE, H_ID, H_REASON, H_SHA256, reject
from ledger.kafka.transport import Headers, Message
from tests.factories import example_event


def message(value: bytes | None, headers: Headers = (), offset: int = 7) -> Message:
    return Message("events", 2, offset, b"acme", value, headers, 1_767_225_600_000)


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_both_modes_carry_the_same_event(mode: str) -> None:
    event = example_event("review.submitted", tenant="acme")
    value, headers = encode(event, mode)  # type: ignore[arg-type]
    [decoded] = parse(request_of(message(value, headers)), KAFKA).events
    assert decoded.raw == event
    received = read_event(message(value, headers))
    assert not isinstance(received, Rejection)
    assert received.id == event["id"]


@pytest.mark.parametrize(
    ("value", "headers", "code"),
    [
        (b"{not json", (), "malformed_request"),
        (b'"a string"', (), "not_cloudevent"),
        (b'{"id": "x"}', (), "not_cloudevent"),
        (None, (), "not_cloudevent"),
        (b"[]", (("content-type", b"application/cloudevents-batch+json"),), "unsupported_media_type"),
        (b"{}", (("ce_specversion", b"1.0"), ("content-type", b"text/plain")), "unsupported_media_type"),
        (b"{}", (("ce_specversion", b"1.0"), ("ce_id", b"\xff\xfe")), "malformed_request"),
        (b"{oops", (("ce_specversion", b"1.0"), ("ce_tenant", b"acme")), "malformed_request"),
        # Nested deeper than any parser should follow: a rejection, not a RecursionError that would stop
        # the worker again on every redelivery.
        (b"[" * 200_000, (), "malformed_request"),
        (b"[" * 200_000, (("ce_specversion", b"1.0"), ("ce_tenant", b"acme")), "malformed_request"),
    ],
)
def test_undecodable_messages_are_named(value: bytes | None, headers: Headers, code: str) -> None:
    outcome = read_event(message(value, headers))
    assert isinstance(outcome, Rejection)
    assert outcome.code == code
    assert outcome.raw_sha256 == hashlib.sha256(value or b"").hexdigest()


def test_validation_failures_are_named() -> None:
    unknown = example_event("annotation.created", tenant="acme", type="annotation.exploded")
    reserved = example_event("annotation.created", tenant="acme", type="ledger.ingest_rejected")
    bad = example_event("annotation.created", tenant="acme")
    bad["data"]["version"] = 0
    ssn = example_event("review.submitted", tenant="acme", data_comment="SSN 123-45-6789")
    for event, code in ((unknown, "unknown_type"), (reserved, "reserved_type"), (bad, "validation_failed"),
                        (ssn, "forbidden_identifier")):  # fmt: skip
        outcome = read_event(message(encode(event)[0]))
        assert isinstance(outcome, Rejection), code
        assert (outcome.code, outcome.tenant) == (code, "acme")
        assert "123-45-6789" not in outcome.reason


def test_a_rejection_is_a_pure_function_of_the_message() -> None:
    m = message(b"{not json")
    rejection = read_event(m)
    assert isinstance(rejection, Rejection)
    first_event, first_letter = reject(m, rejection, default_tenant="ledger")
    again_event, again_letter = reject(m, rejection, default_tenant="ledger")
    assert first_event.raw == again_event.raw  # a replay is a repeat, not a second rejection
    assert first_letter == again_letter
    digest = hashlib.sha256(b"{not json").hexdigest()
    assert first_event.raw["data"]["raw_sha256"] == digest == raw_sha256(m.value)
    # The id every release so far has given this message: a replay after an upgrade is still a repeat.
    assert first_event.id == rejection_id("kafka", "events/2/7", digest)
    assert (
        first_event.id == "rejected-" + hashlib.sha256(f"kafka:events/2/7#{digest}".encode()).hexdigest()[:40]
    )
    assert first_event.raw["data"]["origin"] == "events/2/7"
    assert first_event.raw["time"] == "2026-01-01T00:00:00.000000Z"  # the message's timestamp, not "now"
    assert (first_event.raw["actor"], first_event.raw["actorrole"]) == ("ledger", "system")
    assert first_event.tenant == "ledger"
    headers = dict(first_letter.headers)
    assert headers[H_CODE] == b"malformed_request"
    assert headers[H_REASON].decode() == first_event.raw["data"]["reason"]
    assert headers[H_REASON].startswith(b"malformed_request: the value is not valid JSON")
    assert (headers[H_ID], headers[H_SHA256]) == (first_event.id.encode(), digest.encode())
    elsewhere = reject(message(b"{not json", offset=8), rejection, default_tenant="ledger")[0]
    assert elsewhere.id != first_event.id


@pytest.mark.parametrize("version", ["9" * 5000, "\u00b2", "1e3", "-1"])
def test_a_binary_schemaversion_no_integer_carries_is_refused_naming_it(version: str) -> None:
    event = example_event("review.submitted", tenant="acme")
    value, headers = encode(event, "binary")
    headers = [(k, v) for k, v in headers if k != "ce_schemaversion"] + [
        ("ce_schemaversion", version.encode())
    ]
    outcome = read_event(message(value, tuple(headers)))
    assert isinstance(outcome, Rejection)
    assert outcome.code == "validation_failed"
    assert "schemaversion" in outcome.reason
