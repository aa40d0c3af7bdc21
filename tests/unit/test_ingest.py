"""The transport-neutral ingest package: one reading of every CloudEvents content mode for both bindings, one
vocabulary of refusals (``LedgerError.code``), one ``ledger.ingest_rejected`` envelope for every transport.

Pure functions: no broker, no database, no server."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from ledger.api.problems import mapped_status
from ledger.domain import errors as e
from ledger.domain.envelope import BATCH, STRUCTURED
from ledger.domain.internal import LEDGER_ROLE, ledger_event
from ledger.ingest import (
    HTTP,
    KAFKA,
    REJECTED_TYPE,
    Binding,
    Parsed,
    Rejection,
    Request,
    parse,
    receive,
    refusal,
    rejection_event,
    rejection_id,
)
from tests.factories import example_event

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def structured(event: Any, media: str = STRUCTURED) -> Request:
    return Request(media, (), json.dumps(event).encode())


def binary(binding: Binding, event: dict[str, Any], *, media: str = "application/json") -> Request:
    """``event`` in binary mode as ``binding`` spells it: ``ce-*`` str headers (percent-encoded) or ``ce_*``
    byte headers (plain UTF-8)."""
    attributes: list[tuple[str, str | bytes | None]] = [("content-type", media)]
    for name, value in event.items():
        if name in ("data", "datacontenttype"):
            continue
        text = str(value)
        if binding is HTTP:
            attributes.append((f"CE-{name}", quote(text)))  # header names in any case
        else:
            attributes.append((f"ce_{name}", text.encode()))
    return Request(media, tuple(attributes), json.dumps(event["data"]).encode())


def accepted(outcome: Parsed | Rejection) -> Parsed:
    assert isinstance(outcome, Parsed), outcome
    return outcome


def rejected(outcome: Parsed | Rejection) -> Rejection:
    assert isinstance(outcome, Rejection), outcome
    return outcome


def event(type_: str = "review.submitted", **overrides: Any) -> dict[str, Any]:
    return example_event(type_, tenant="acme", **{"time": "2026-05-31T12:00:00Z", **overrides})


# ---- content modes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("binding", [HTTP, KAFKA], ids=["http", "kafka"])
def test_structured_and_binary_mode_carry_the_same_event(binding: Binding) -> None:
    sent = event(data_comment="Größe € 😀 and a ; semicolon")
    from_structured = accepted(receive(structured(sent), binding, received_at=NOW))
    from_binary = accepted(receive(binary(binding, sent), binding, received_at=NOW))
    assert not from_structured.batch
    assert not from_binary.batch
    [one], [other] = from_structured.events, from_binary.events
    assert one.raw == sent
    assert other.raw == {**sent, "datacontenttype": "application/json"}
    assert one.canonical == other.canonical


@pytest.mark.parametrize("binding", [HTTP, KAFKA], ids=["http", "kafka"])
def test_a_binary_integer_attribute_becomes_an_integer(binding: Binding) -> None:
    [received] = parse(binary(binding, event(schemaversion=1)), binding, received_at=NOW).events
    assert received.raw["schemaversion"] == 1


def test_only_http_reads_a_batch_and_it_is_all_or_nothing() -> None:
    events = [event(), event("annotation.created")]
    request = Request(BATCH, (), json.dumps(events).encode())
    parsed = parse(request, HTTP, received_at=NOW)
    assert parsed.batch
    assert [r.id for r in parsed.events] == [x["id"] for x in events]
    # Kafka's binding defines no batch mode: the media type is refused, whatever the value holds.
    assert rejected(receive(request, KAFKA, received_at=NOW)).code == "unsupported_media_type"
    bad = Request(BATCH, (), json.dumps([events[0], {**events[1], "type": "annotation.exploded"}]).encode())
    with pytest.raises(e.ValidationFailed) as caught:
        parse(bad, HTTP, received_at=NOW)
    assert caught.value.code == "validation_failed"
    assert [(x.field, x.index) for x in caught.value.errors] == [("type", 1)]


def test_the_media_type_decides_the_mode_before_attribute_headers() -> None:
    sent = event()
    request = Request(
        STRUCTURED, (("ce-specversion", "1.0"), ("ce-id", "ignored")), json.dumps(sent).encode()
    )
    assert parse(request, HTTP, received_at=NOW).events[0].id == sent["id"]


def test_a_headerless_body_is_structured_on_kafka_and_refused_over_http() -> None:
    request = Request("", (), json.dumps(event()).encode())
    assert accepted(receive(request, KAFKA, received_at=NOW)).events
    with pytest.raises(e.UnsupportedMediaType, match="ce-\\* headers"):
        parse(request, HTTP, received_at=NOW)
    assert parse(Request("application/json; charset=utf-8", (), request.body), HTTP).events


# ---- refusals: one vocabulary --------------------------------------------------------------------------


REFUSALS = [
    # (what was sent, code, the HTTP status it keeps)
    (Request(STRUCTURED, (), b"{not json"), "malformed_request", 400),
    (Request(STRUCTURED, (), b"[" * 200_000), "malformed_request", 400),
    (Request(STRUCTURED, (), b'"a string"'), "not_cloudevent", 422),
    (Request(STRUCTURED, (), b'{"id": "x", "tenant": "acme"}'), "not_cloudevent", 422),
    (structured(event(type="annotation.exploded")), "unknown_type", 422),
    (structured(event(type="annotation.exploded", actor=None)), "unknown_type", 422),
    (structured(event(type=REJECTED_TYPE)), "reserved_type", 422),
    (structured(event(data_level=9)), "validation_failed", 422),
    (structured(event(time="2099-01-01T00:00:00Z")), "validation_failed", 422),
    (structured(event(data_comment="SSN 123-45-6789")), "forbidden_identifier", 422),
    (Request("text/plain", (), b"{}"), "unsupported_media_type", 415),
    (Request("application/cloudevents+xml", (), b"<e/>"), "unsupported_media_type", 415),
]


@pytest.mark.parametrize(("request_", "code", "status"), REFUSALS, ids=[r[1] for r in REFUSALS])
def test_every_refusal_is_a_ledger_error_code_with_its_status(
    request_: Request, code: str, status: int
) -> None:
    with pytest.raises(e.LedgerError) as caught:
        parse(request_, HTTP, received_at=NOW)
    assert caught.value.code == code
    assert mapped_status(type(caught.value)) == status
    outcome = rejected(receive(request_, HTTP, received_at=NOW))
    assert outcome.code == code
    assert outcome.raw_sha256 == hashlib.sha256(request_.body or b"").hexdigest()
    assert "123-45-6789" not in outcome.reason


@pytest.mark.parametrize("binding", [HTTP, KAFKA], ids=["http", "kafka"])
def test_both_bindings_name_the_same_bad_event_alike(binding: Binding) -> None:
    for sent, code in (
        (event(type="annotation.exploded"), "unknown_type"),
        (event(data_level=9), "validation_failed"),
    ):
        for request in (structured(sent), binary(binding, sent)):
            outcome = rejected(receive(request, binding, received_at=NOW))
            assert (outcome.code, outcome.tenant) == (code, "acme")


def test_binary_attribute_headers_that_are_not_text_are_malformed() -> None:
    http = Request("application/json", (("ce-specversion", "1.0"), ("ce-id", "%FF%FE")), b"{}")
    kafka = Request("application/json", (("ce_specversion", b"1.0"), ("ce_id", b"\xff\xfe")), b"{}")
    for request, binding, words in ((http, HTTP, "percent-encoded UTF-8"), (kafka, KAFKA, "UTF-8 text")):
        with pytest.raises(e.MalformedRequest, match=words) as caught:
            parse(request, binding)
        assert [x.field for x in caught.value.errors] == ["id"]


def test_binary_data_must_be_json() -> None:
    for binding, prefix in ((HTTP, "ce-"), (KAFKA, "ce_")):
        request = Request("text/plain", ((prefix + "specversion", "1.0"),), b"hello")
        assert rejected(receive(request, binding)).code == "unsupported_media_type"


def test_a_refused_message_names_the_tenant_it_claims() -> None:
    # Read from the parsed value, or from the attribute headers when the message could not be decoded.
    assert rejected(receive(structured(event(data_level=9)), KAFKA)).tenant == "acme"
    undecodable = Request("", (("ce_id", b"\xff"), ("ce_specversion", b"1.0"), ("ce_tenant", b"acme")), b"{}")
    assert rejected(receive(undecodable, KAFKA)).tenant == "acme"
    assert rejected(receive(Request("", (), b"{oops"), KAFKA)).tenant is None


def test_a_tombstone_is_not_a_cloudevent() -> None:
    outcome = rejected(receive(Request("", (), None), KAFKA))
    assert outcome.code == "not_cloudevent"
    assert outcome.raw_sha256 == hashlib.sha256(b"").hexdigest()


def test_a_reason_names_the_fields_and_how_the_transport_calls_the_body() -> None:
    assert rejected(receive(Request("", (), b"{oops"), KAFKA)).reason.startswith(
        "the value is not valid JSON"
    )
    assert rejected(receive(Request(STRUCTURED, (), b"{oops"), HTTP)).reason.startswith("the body is not")
    bad = rejected(receive(structured(event(data_level=9)), KAFKA))
    assert "data.level" in bad.reason


# ---- the ledger.ingest_rejected envelope ----------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "kafka", "webhook"])
def test_one_rejection_envelope_for_every_transport(transport: Any) -> None:
    body = b'{"action": "ANNOTATION_EXPLODED"}'
    rejection = refusal(e.ValidationFailed("the action is not supported"), body, tenant="acme")
    origin = "/v1/webhooks/label-studio#delivery-7"
    recorded = rejection_event(
        rejection, transport=transport, origin=origin, time=NOW, default_tenant="ledger"
    )
    again = rejection_event(rejection, transport=transport, origin=origin, time=NOW, default_tenant="ledger")
    assert recorded.raw == again.raw  # a redelivery rebuilds it: a repeat, never a second record
    assert recorded.event_type.name == REJECTED_TYPE
    assert recorded.id == rejection_id(transport, origin, hashlib.sha256(body).hexdigest())
    assert recorded.raw["data"] == {
        "raw_sha256": hashlib.sha256(body).hexdigest(),
        "reason": "validation_failed: the action is not supported",
        "transport": transport,
        "origin": origin,
    }
    assert (recorded.tenant, recorded.raw["time"]) == ("acme", "2026-06-01T00:00:00.000000Z")
    # The same envelope as every other event the ledger writes as itself.
    own = ledger_event("ledger.report_generated", "acme", {"report": "r", "sha256": "0" * 64})
    for name in ("specversion", "source", "datacontenttype", "actor", "actorrole"):
        assert recorded.raw[name] == own.raw[name], name
    assert recorded.raw["actorrole"] == LEDGER_ROLE == "system"


def test_a_rejection_goes_to_the_default_tenant_when_the_named_one_is_no_tenant() -> None:
    rejection = Rejection("malformed_request", "no", "0" * 64, tenant="Not A Tenant!")
    recorded = rejection_event(
        rejection, transport="kafka", origin="t/0/1", time=NOW, default_tenant="ledger"
    )
    assert recorded.tenant == "ledger"


def test_a_long_reason_is_cut_to_what_the_record_holds() -> None:
    rejection = Rejection("validation_failed", "x" * 5000, "0" * 64, "acme")
    recorded = rejection_event(
        rejection, transport="http", origin="/v1/events", time=NOW, default_tenant="ledger"
    )
    assert len(recorded.raw["data"]["reason"]) == 2000
    assert recorded.raw["data"]["reason"].endswith("…")
