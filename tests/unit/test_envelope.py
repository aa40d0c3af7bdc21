"""Validation of received events: every refusal names the field."""

from __future__ import annotations

import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.errors import ForbiddenIdentifier, ValidationFailed
from tests.factories import example_event


def fields_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.field for e in exc.value.errors]


def test_a_valid_event_parses_into_envelope_and_data() -> None:
    event = validate_event(example_event("credential.granted", tenant="acme"))
    assert event.event_type.name == "credential.granted"
    assert event.data_subject == event.raw["data"]["annotator"]  # credentials are about the annotator


def test_the_actor_is_the_data_subject_by_default() -> None:
    event = validate_event(example_event("review.submitted", tenant="acme"))
    assert event.data_subject == "rad-01"


def test_a_non_object_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_event([1, 2])
    assert fields_of(caught) == ["$"]


def test_extension_attribute_names_follow_cloudevents() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_event(example_event("annotation.created", tenant="acme", **{"Bad-Name": "x"}))
    assert "Bad-Name" in str(caught.value.errors)


def test_well_formed_extension_attributes_are_kept() -> None:
    event = validate_event(example_event("annotation.created", tenant="acme", traceparent="00-abc-01"))
    assert event.raw["traceparent"] == "00-abc-01"


def test_an_unsupported_schemaversion_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_event(example_event("annotation.created", tenant="acme", schemaversion=2))
    assert fields_of(caught) == ["schemaversion"]


def test_ledger_types_are_written_only_by_the_ledger() -> None:
    raw = example_event("ledger.report_generated", tenant="acme")
    with pytest.raises(ValidationFailed):
        validate_event(raw)
    assert validate_event(raw, allow_internal=True).event_type.internal


def test_a_model_origin_must_name_the_model() -> None:
    raw = example_event("annotation.created", tenant="acme", data_origin="model")
    with pytest.raises(ValidationFailed) as caught:
        validate_event(raw)
    assert "model_name" in caught.value.errors[0].message


def test_a_tenant_must_be_a_slug() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_event(example_event("annotation.created", tenant="Acme Corp"))
    assert fields_of(caught) == ["tenant"]


def test_every_free_text_field_with_an_identifier_is_named() -> None:
    raw = example_event("access.break_glass", tenant="acme", data_reason="Patient name: John Smith")
    with pytest.raises(ForbiddenIdentifier) as caught:
        validate_event(raw)
    assert fields_of(caught) == ["data.reason"]


def test_the_ledgers_signed_notes_are_not_screened_for_identifiers() -> None:
    # Base64 spells anything: about one checkpoint note in a thousand holds "MRN" and digits, and such a
    # checkpoint must still be recorded. Producers cannot send these types, so nothing of theirs is exempt.
    from ledger.domain.internal import ledger_event
    from ledger.domain.registry import EVENT_TYPES

    note = "ledger.local/logs/acme\n5\nAAAA\n\n— ledger.local/checkpoints AbC+MRN12345678/Q==\n"
    event = ledger_event(
        "ledger.checkpoint_signed",
        "acme",
        {"log": "acme", "tree_size": 5, "root_hash": "0" * 64, "note": note},
    )
    assert event.raw["data"]["note"] == note
    with pytest.raises(ForbiddenIdentifier):  # the same text anywhere else is still refused
        ledger_event("ledger.ingest_rejected", "acme",
                     {"raw_sha256": "0" * 64, "reason": note, "transport": "http"})  # fmt: skip
    marked = {name for name, t in EVENT_TYPES.items() if t.signed_encoding_paths}
    assert marked == {"ledger.checkpoint_signed", "ledger.checkpoint_cosigned"}
    assert all(EVENT_TYPES[name].internal for name in marked)


def test_ids_beginning_with_ledger_colon_are_the_ledgers_own() -> None:
    # Otherwise a producer could post "ledger:checkpoint:<n+1>" and that size would never be signed.
    with pytest.raises(ValidationFailed) as refused:
        validate_event(example_event("annotation.created", tenant="acme", id="ledger:checkpoint:7"))
    assert [e.field for e in refused.value.errors] == ["id"]
    validate_event(
        example_event("annotation.created", tenant="acme", id="ledger-checkpoint:7")
    )  # not the prefix

    from ledger.domain.internal import ledger_event

    own = ledger_event("ledger.report_generated", "acme",
                       {"report": "r", "sha256": "0" * 64, "parameters": {}}, event_id="report:1")  # fmt: skip
    assert own.raw["id"] == "ledger:report:1"
