"""The FHIR mapping, pure: events (as dicts) to R4 ``AuditEvent`` and ``Provenance``, each checked by the
``fhir.resources`` R4B models, and the Bundle and NDJSON round-trips. No database."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.provenance import Provenance
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.registry import EVENT_TYPES
from ledger.fhir.auditevent import AUDITED_TYPES, audit_event
from ledger.fhir.bundle import bundle, bundle_bytes, ndjson_bytes
from ledger.fhir.export import EXPORTED_TYPES, resources
from ledger.fhir.provenance import PROVENANCE_TYPES, provenance
from ledger.fhir.references import Source, resource_id
from tests.factories import example_event

RECORDED = "2026-03-02T09:14:04.123456Z"
SENSITIVE = ("10.20.1.17", "AcmeViewer", "Reading the study", "looks fine")


def source(type_: str, position: int = 7, **overrides: Any) -> Source:
    event = example_event(type_, tenant="acme", **overrides)
    return Source(event, "acme", position, RECORDED, "ab" * 32)


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource through its R4B model and back: it validates, and the model loses nothing."""
    model = {"AuditEvent": AuditEvent, "Provenance": Provenance}[resource["resourceType"]]
    parsed = model.model_validate(resource)
    assert parsed.model_dump(mode="json", exclude_none=True) == resource
    return resource


def coding(concept: dict[str, Any], system: str) -> str:
    return next(c["code"] for c in concept["coding"] if c["system"] == system)


def test_every_exported_type_is_a_registered_event_type_and_maps_to_a_valid_resource() -> None:
    assert set(EXPORTED_TYPES) <= EVENT_TYPES.keys()
    for type_ in AUDITED_TYPES:
        assert validated(audit_event(source(type_)))["resourceType"] == "AuditEvent"
    for type_ in PROVENANCE_TYPES:
        assert validated(provenance(source(type_)))["resourceType"] == "Provenance"


def test_no_sensitive_value_is_exported_even_when_the_input_holds_it_in_clear() -> None:
    # The examples carry source addresses, user agents, reasons and comments in clear (as posted);
    # the stored form seals them, and the mapping never reads those fields either way.
    for type_ in EXPORTED_TYPES:
        mapped = resources([source(type_, data_comment="looks fine")] if "comment" in example_event(type_, tenant="acme")["data"] else [source(type_)], {})  # fmt: skip
        text = json.dumps(mapped)
        assert not [s for s in SENSITIVE if s in text], type_


def test_a_producers_access_event_is_a_balp_read_of_the_item() -> None:
    r = validated(audit_event(source("access.data_viewed")))
    assert r["type"]["code"] == "rest"
    assert r["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read"}
    ]
    assert r["action"] == "R"
    assert r["outcome"] == "0"
    assert r["recorded"] == RECORDED
    assert r["period"]["start"] == "2026-03-02T09:14:03Z"
    user, server = r["agent"]
    assert user["requestor"] is True
    assert user["who"]["identifier"]["value"] == "ann-04"
    assert user["type"]["coding"][0]["code"] == "IRCP"
    assert user["role"][0]["text"] == "annotator"
    assert server["type"]["coding"][0]["code"] == "110153"
    assert server["requestor"] is False
    assert r["source"]["observer"]["identifier"]["value"] == "urn:ledger"
    (entity,) = r["entity"]
    assert entity["what"]["identifier"]["value"] == "chest-ct-2026/1.2.826.0.1.3680043.10.543.1001"
    assert entity["role"]["code"] == "4"
    details = {d["type"]: d["valueString"] for d in entity["detail"]}
    assert details["item"] == "1.2.826.0.1.3680043.10.543.1001"


def test_a_ledger_recorded_list_read_is_a_balp_query_with_its_parameters() -> None:
    query = {"actor": "ann-04", "limit": "5"}
    r = validated(audit_event(source("access.data_viewed", data_route="GET /v1/events", data_query=query, data_record_count=5)))  # fmt: skip
    assert r["subtype"][0]["code"] == "search"
    assert r["action"] == "E"
    assert r["agent"][1]["type"]["coding"][0]["code"] == "110152"  # the server is the Destination in a Query
    q = next(e for e in r["entity"] if e["role"]["code"] == "24")
    assert base64.b64decode(q["query"]).decode() == "GET /v1/events?actor=ann-04&limit=5"
    assert "what" not in q


def test_a_read_of_one_named_thing_through_the_api_stays_a_read() -> None:
    r = audit_event(source("access.data_viewed", data_route="GET /v1/items/{dataset}/{item}/provenance"))
    assert r["subtype"][0]["code"] == "read"
    assert not [e for e in r["entity"] if e["role"]["code"] == "24"]


def test_an_export_is_dicom_export_with_disclose_and_a_report_entity() -> None:
    r = validated(audit_event(source("access.data_exported")))
    assert r["type"]["code"] == "110106"
    assert r["action"] == "R"
    assert r["subtype"][0]["code"] == "disclose"
    assert r["entity"][0]["role"]["code"] == "3"


def test_refusals_failures_and_break_glass() -> None:
    denied = validated(audit_event(source("access.denied", data_outcome="failure", data_status=403)))
    assert denied["outcome"] == "4"
    assert "403" in denied["outcomeDesc"]
    glass = validated(audit_event(source("access.break_glass")))
    assert coding(glass["purposeOfEvent"][0], "http://terminology.hl7.org/CodeSystem/v3-ActReason") == "BTG"
    failed = validated(audit_event(source("auth.login_failed")))
    assert failed["type"]["code"] == "110114"
    assert failed["subtype"][0]["code"] == "110122"
    assert failed["outcome"] == "4"
    assert "entity" not in failed
    assert validated(audit_event(source("auth.login_succeeded")))["outcome"] == "0"


def test_purpose_of_use_keeps_the_ledgers_code_and_adds_the_hl7_one_where_it_exists() -> None:
    r = audit_event(source("access.data_viewed", data_purpose_of_use="research"))
    (purpose,) = r["purposeOfEvent"]
    assert coding(purpose, "urn:ledger:purpose-of-use") == "research"
    assert coding(purpose, "http://terminology.hl7.org/CodeSystem/v3-ActReason") == "HRESCH"
    assert r["agent"][0]["purposeOfUse"] == r["purposeOfEvent"]


def test_a_human_annotation_has_its_author_guideline_and_target_version() -> None:
    p = validated(provenance(source("annotation.created", data_origin="human", data_model_name=None, data_model_version=None)))  # fmt: skip
    data = example_event("annotation.created", tenant="acme")["data"]
    (target,) = p["target"]
    assert target["identifier"]["value"] == f"{data['dataset']}/{data['item']}/annotations/{data['annotation_id']}/_history/{data['version']}"  # fmt: skip
    assert p["policy"] == [f"urn:ledger:guideline:{data['guideline_id']}:{data['guideline_version']}"]
    (agent,) = p["agent"]
    assert agent["type"]["coding"][0]["code"] == "author"
    assert agent["who"]["identifier"]["system"] == "urn:ledger:actor"
    assert p["activity"]["coding"][0]["code"] == "CREATE"


def test_a_models_pre_annotation_names_the_model_as_author_device() -> None:
    p = validated(provenance(source("annotation.created", data_origin="model", data_model_name="nodule-net", data_model_version="2.1")))  # fmt: skip
    author, enterer = p["agent"]
    assert author["who"]["type"] == "Device"
    assert author["who"]["display"] == "nodule-net 2.1"
    assert enterer["type"]["coding"][0]["code"] == "enterer"


def test_an_update_revises_the_previous_version_and_a_model_made_one_is_its_source() -> None:
    s = source("annotation.updated", data_origin="human", data_model_name=None, data_model_version=None)
    data = s.data
    plain = validated(provenance(s))
    (entity,) = plain["entity"]
    assert entity["role"] == "revision"
    assert entity["what"]["identifier"]["value"].endswith("/_history/1")
    made = {(data["dataset"], data["item"], data["annotation_id"], 1): ("nodule-net", "2.1")}
    from_model = validated(provenance(s, lambda d, i, a, v: made.get((d, i, a, v))))
    (entity,) = from_model["entity"]
    assert entity["role"] == "source"
    assert entity["agent"][0]["who"]["display"] == "nodule-net 2.1"


def test_a_review_is_verified_and_signed_with_its_21_cfr_11_50_meaning() -> None:
    p = validated(provenance(source("review.submitted", data_level=3, data_signature_meaning="approval")))
    (agent,) = p["agent"]
    assert agent["type"]["coding"][0]["code"] == "verifier"
    (signature,) = p["signature"]
    assert coding({"coding": signature["type"]}, "urn:iso-astm:E1762-95:2013") == "1.2.840.10065.1.12.1.6"
    assert coding({"coding": signature["type"]}, "urn:ledger:signature-meaning") == "approval"
    assert signature["who"]["identifier"]["value"] == p["agent"][0]["who"]["identifier"]["value"]


def test_a_modifying_review_targets_the_resulting_version_derived_from_the_reviewed_one() -> None:
    p = validated(provenance(source("review.submitted", data_decision="modify", data_resulting_annotation_id="ann-9", data_resulting_version=3)))  # fmt: skip
    assert p["target"][0]["identifier"]["value"].endswith("/annotations/ann-9/_history/3")
    assert p["entity"] == [{"role": "derivation", "what": p["target"][1]}]


def test_an_adjudication_is_attested_from_the_readers_annotations() -> None:
    s = source("adjudication.completed")
    p = validated(provenance(s))
    assert p["agent"][0]["type"]["coding"][0]["code"] == "attester"
    assert [e["role"] for e in p["entity"]] == ["source"] * len(s.data["annotation_ids"])
    assert p["target"][0]["identifier"]["value"].endswith(f"/annotations/{s.data['final_annotation_id']}")


def test_resource_ids_are_stable_per_event_and_differ_across_tenants() -> None:
    s = source("access.data_viewed", id="evt-1")
    assert audit_event(s)["id"] == audit_event(s)["id"] == resource_id("acme", "evt-1")
    assert resource_id("acme", "evt-1") != resource_id("other", "evt-1")


def test_a_position_past_32_bits_is_kept_exactly() -> None:
    r = validated(audit_event(source("access.data_viewed", position=2**40)))
    (ext,) = r["extension"]
    assert {"url": "position", "valueDecimal": 2**40} in ext["extension"]


@settings(max_examples=50, deadline=None)
@given(
    offset=st.sampled_from(["Z", "z", "+05:30", "-11:00"]),
    fraction=st.sampled_from(["", ".1", ".123456"]),
    ident=st.text(
        st.characters(blacklist_categories=("Cc", "Zs", "Zl", "Zp", "Cs")), min_size=1, max_size=60
    ),
)
def test_any_accepted_time_and_id_exports_as_a_valid_resource(offset: str, fraction: str, ident: str) -> None:
    s = source("access.data_viewed", id=ident, time=f"2026-03-02t09:14:03{fraction}{offset}")
    validated(audit_event(s))


def test_the_bundle_round_trips_through_the_r4b_model() -> None:
    mapped = resources([source(t, position=n) for n, t in enumerate(EXPORTED_TYPES)], {})
    body = bundle_bytes(mapped, bundle_id=resource_id("acme", "export"), timestamp=RECORDED)
    parsed = Bundle.model_validate_json(body)
    assert parsed.type == "collection"
    assert len(parsed.entry or []) == len(EXPORTED_TYPES)
    assert parsed.model_dump(mode="json", exclude_none=True) == json.loads(body)
    assert json.loads(body) == bundle(mapped, bundle_id=resource_id("acme", "export"), timestamp=RECORDED)
    assert [e["fullUrl"] for e in json.loads(body)["entry"]] == [f"urn:uuid:{r['id']}" for r in mapped]


def test_ndjson_is_one_valid_resource_per_line() -> None:
    mapped = resources([source(t, position=n) for n, t in enumerate(EXPORTED_TYPES)], {})
    lines = ndjson_bytes(mapped).decode().splitlines()
    assert len(lines) == len(EXPORTED_TYPES)
    assert [json.loads(line) for line in lines] == mapped
    for line in lines:
        validated(json.loads(line))


@pytest.mark.parametrize("type_", ["credential.granted", "guideline.published", "dataset.release_created"])
def test_other_families_are_not_exported(type_: str) -> None:
    assert type_ not in EXPORTED_TYPES


@pytest.mark.parametrize("type_", sorted(EXPORTED_TYPES))
def test_a_producers_time_outside_the_ledgers_range_exports_as_the_recorded_time(type_: str) -> None:
    # older versions accepted times such as year 1 with a positive offset, which astimezone(UTC) overflows on
    old = source(type_)
    old.event["time"] = "0001-01-01T00:00:00+01:00"
    resource = audit_event(old) if type_ in AUDITED_TYPES else provenance(old)
    for when in (resource.get("period", {}).get("start"), resource.get("occurredDateTime")):
        assert when in (None, RECORDED)
    for signature in resource.get("signature", []):
        assert signature["when"] == RECORDED
    validated(resource)
