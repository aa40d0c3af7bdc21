"""The FHIR export over real PostgreSQL and the real HTTP server: every resource validates with the R4B
models, the Bundle round-trips, sealed values stay out, tenants stay apart, a range too wide is refused
naming ``until``, and the export itself is on the record (HTTP and CLI)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.provenance import Provenance

from ledger.cli.main import main
from ledger.domain.envelope import validate_event
from ledger.domain.errors import ParameterInvalid
from ledger.fhir.export import Window, export, select
from ledger.runtime import Ledger
from tests.conftest import TokenFactory, make_event

BATCH = {"content-type": "application/cloudevents-batch+json"}
SINCE, UNTIL = "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"
SEALED = ("10.20.1.17", "AcmeViewer", "Reading the study", "Solid nodule")
MODELS = {"AuditEvent": AuditEvent, "Provenance": Provenance}


def story(tenant: str) -> list[dict[str, Any]]:
    """A model's pre-annotation, a reader's revision of it, a review, an adjudication, a read, a failed sign-in."""
    item, ann = f"item-{tenant}", f"ann-{tenant}"
    common = {"data_dataset": "chest-ct-2026", "data_item": item, "subject": f"chest-ct-2026/{item}"}
    return [
        make_event(tenant, "annotation.created", id=f"{tenant}-ai", time="2026-02-27T08:00:00Z",
                   actor="pipeline", actorrole="model", data_annotation_id=ann, data_version=1,
                   data_origin="model", data_model_name="nodule-net", data_model_version="2.1", **common),
        make_event(tenant, "annotation.updated", id=f"{tenant}-edit", time="2026-03-02T09:41:12Z",
                   actor=f"reader-{tenant}", data_annotation_id=ann, data_version=2, data_previous_version=1,
                   data_origin="human", data_model_name=None, data_model_version=None,
                   data_comment="Solid nodule, margins clear.", **common),
        make_event(tenant, "review.submitted", id=f"{tenant}-review", time="2026-03-03T10:00:00Z",
                   data_annotation_id=ann, data_annotation_version=2, **common),
        make_event(tenant, "adjudication.completed", id=f"{tenant}-adj", time="2026-03-04T10:00:00Z",
                   data_annotation_ids=[ann], data_final_annotation_id=ann, **common),
        make_event(tenant, "access.data_viewed", id=f"{tenant}-view", time="2026-03-05T10:00:00Z",
                   actor=f"reader-{tenant}", data_resource=f"chest-ct-2026/{item}", **common),
        make_event(tenant, "auth.login_failed", id=f"{tenant}-login", time="2026-03-06T10:00:00Z"),
        make_event(tenant, "credential.granted", id=f"{tenant}-cred", time="2026-03-06T11:00:00Z"),
    ]  # fmt: skip


def recorded(ledger: Ledger, tenant: str) -> None:
    ledger.appender.append([validate_event(e) for e in story(tenant)])


def window(tenant: str) -> Window:
    return Window(tenant, datetime.fromisoformat(SINCE), datetime.fromisoformat(UNTIL))


def check(resource: dict[str, Any]) -> None:
    model = MODELS[resource["resourceType"]].model_validate(resource)
    assert model.model_dump(mode="json", exclude_none=True) == resource


@pytest.fixture
def two_tenants(ledger: Ledger) -> Ledger:
    recorded(ledger, "acme")
    recorded(ledger, "other")
    return ledger


def test_an_export_holds_every_exported_event_of_the_range_as_valid_r4_resources(two_tenants: Ledger) -> None:
    produced = export(two_tenants.db, window("acme"), "bundle")
    body = json.loads(produced.body)
    parsed = Bundle.model_validate_json(produced.body)
    assert parsed.model_dump(mode="json", exclude_none=True) == body
    resources = [e["resource"] for e in body["entry"]]
    for resource in resources:
        check(resource)
    # the pre-annotation is before the range and the credential is not exported: five events remain
    kinds = [r["resourceType"] for r in resources]
    assert kinds == ["Provenance", "Provenance", "Provenance", "AuditEvent", "AuditEvent"]
    assert produced.resources == 5
    revision = resources[0]
    # the earlier model version, outside the range, is still named as the AI pre-annotation revised
    assert revision["entity"][0]["role"] == "source"
    assert revision["entity"][0]["agent"][0]["who"]["display"] == "nodule-net 2.1"


def test_sealed_values_and_other_tenants_never_appear(two_tenants: Ledger) -> None:
    for fmt in ("bundle", "ndjson"):
        text = export(two_tenants.db, window("acme"), fmt).body.decode()
        assert not [s for s in SEALED if s in text]
        assert "other" not in text
        assert "acme" in text


def test_ndjson_is_one_valid_resource_per_line(two_tenants: Ledger) -> None:
    produced = export(two_tenants.db, window("acme"), "ndjson")
    assert produced.media_type == "application/fhir+ndjson"
    lines = produced.body.decode().splitlines()
    assert len(lines) == produced.resources == 5
    for line in lines:
        check(json.loads(line))


def test_resource_ids_are_the_same_in_every_export(two_tenants: Ledger) -> None:
    first = [
        json.loads(line)["id"] for line in export(two_tenants.db, window("acme"), "ndjson").body.splitlines()
    ]
    again = json.loads(export(two_tenants.db, window("acme"), "bundle").body)
    assert [e["resource"]["id"] for e in again["entry"]] == first


def test_a_range_holding_more_than_the_limit_is_refused_naming_until(two_tenants: Ledger) -> None:
    with pytest.raises(ParameterInvalid) as caught:
        select(two_tenants.db, window("acme"), limit=4)
    assert "narrow the range" in caught.value.detail
    assert [e.field for e in caught.value.errors] == ["until"]
    assert len(select(two_tenants.db, window("acme"), limit=5)) == 5


# ---- over HTTP ----------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def post(http: httpx.Client, token: TokenFactory, tenant: str) -> None:
    response = http.post("/v1/events", content=json.dumps(story(tenant)),
                         headers={**bearer(token("ingest", tenant=tenant)), **BATCH})  # fmt: skip
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("fmt", "media"), [("bundle", "application/fhir+json"), ("ndjson", "application/fhir+ndjson")]
)
def test_the_http_export_is_valid_and_on_the_record(http, token, tenant: str, fmt: str, media: str) -> None:
    post(http, token, tenant)
    auditor = bearer(token("regulatory", tenant=tenant, mfa=True))
    response = http.get(
        "/v1/export/fhir", params={"since": SINCE, "until": UNTIL, "format": fmt}, headers=auditor
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    if fmt == "bundle":
        resources = [e["resource"] for e in Bundle.model_validate_json(response.content).model_dump(mode="json", exclude_none=True)["entry"]]  # fmt: skip
    else:
        resources = [json.loads(line) for line in response.text.splitlines()]
    assert len(resources) == 5
    for resource in resources:
        check(resource)
    assert not [s for s in SEALED if s in response.text]

    listed = http.get("/v1/events", params={"type": "access.data_exported"}, headers=auditor).json()["events"]
    (mine,) = [e["event"] for e in listed if e["event"]["data"].get("route") == "GET /v1/export/fhir"]
    assert mine["actor"] == "tester"
    assert mine["data"]["record_count"] == 5
    assert mine["data"]["query"] == {"since": SINCE, "until": UNTIL, "format": fmt}
    reports = http.get("/v1/events", params={"type": "ledger.report_generated"}, headers=auditor).json()[
        "events"
    ]
    digests = {e["event"]["data"]["sha256"]: e["receipt"]["position"] for e in reports}
    assert digests[response.headers["x-report-sha256"]] == int(response.headers["x-ledger-position"])


def test_the_http_export_shows_only_the_callers_tenant(http, token, tenant: str) -> None:
    other = f"o-{tenant}"
    post(http, token, tenant)
    post(http, token, other)
    response = http.get("/v1/export/fhir", params={"since": SINCE, "until": UNTIL},
                        headers=bearer(token("auditor", tenant=tenant, mfa=True)))  # fmt: skip
    assert response.status_code == 200
    assert f"item-{other}" not in response.text
    assert f"item-{tenant}" in response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [({"since": UNTIL, "until": SINCE}, "since"), ({"since": "yesterday", "until": UNTIL}, "since"),
     ({"since": SINCE, "until": UNTIL, "format": "xml"}, "format")],
)  # fmt: skip
def test_an_unusable_query_is_a_400_naming_the_parameter(http, token, tenant, params, field) -> None:
    response = http.get(
        "/v1/export/fhir", params=params, headers=bearer(token("auditor", tenant=tenant, mfa=True))
    )
    assert response.status_code == 400, response.text
    assert field in response.text


def test_without_mfa_the_export_is_refused(http, token, tenant) -> None:
    response = http.get("/v1/export/fhir", params={"since": SINCE, "until": UNTIL},
                        headers=bearer(token("auditor", tenant=tenant)))  # fmt: skip
    assert response.status_code == 403


# ---- the command line ---------------------------------------------------------------------------------


def test_the_cli_writes_the_export_and_records_it(
    two_tenants: Ledger, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_HOME", str(two_tenants.settings.home))
    out = tmp_path / "export.ndjson"
    code = main(
        ["export", "fhir", "--since", SINCE, "--until", UNTIL, "--ndjson", "--tenant", "acme", "-o", str(out)]
    )
    assert code == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    for line in lines:
        check(json.loads(line))
    with two_tenants.db.connect() as conn:
        rows = conn.execute(
            "SELECT type, canonical FROM ledger_events WHERE tenant = 'acme'"
            " AND type IN ('access.data_exported', 'ledger.report_generated') ORDER BY position"
        ).fetchall()
    events = {str(t): json.loads(bytes(c))["event"] for t, c in rows}
    assert events["access.data_exported"]["actor"] == "cli"
    assert events["access.data_exported"]["data"]["record_count"] == 5
    assert events["access.data_exported"]["id"].startswith("ledger:")
    report = events["ledger.report_generated"]["data"]
    assert report["report"] == "fhir_export"
    assert report["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()


def test_the_cli_asks_for_a_tenant_when_several_hold_events(
    two_tenants: Ledger, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_HOME", str(two_tenants.settings.home))
    out = tmp_path / "export.json"
    assert main(["export", "fhir", "--since", SINCE, "--until", UNTIL, "-o", str(out)]) == 2
    assert "--tenant" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "since", "until"),
    [("--since", "1800-01-01T00:00:00Z", UNTIL), ("--until", SINCE, "2300-01-01T00:00:00Z")],
)
def test_the_cli_refuses_a_time_outside_the_ledgers_range_naming_the_option(
    two_tenants: Ledger, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
    option: str, since: str, until: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_HOME", str(two_tenants.settings.home))
    out = tmp_path / "export.json"
    assert (
        main(["export", "fhir", "--since", since, "--until", until, "--tenant", "acme", "-o", str(out)]) == 2
    )
    assert f"{option} must lie in [1900-01-01" in capsys.readouterr().err
    assert not out.exists()
