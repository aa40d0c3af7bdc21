"""Review on the record, over a real server and PostgreSQL: anomalies raised by real events (every break-glass
use; a burst of failed logins) are listed, filtered and paged, shown with their evidence, reviewed by the
security role (the review is an event in the log and sets the status), and reported on; no other tenant sees
any of it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.domain.envelope import validate_event
from ledger.runtime import Ledger
from tests.conftest import TokenFactory, make_event


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _time(hours: float) -> str:
    return (datetime(2026, 12, 7, 10, tzinfo=UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def raise_anomalies(ledger: Ledger, tenant: str) -> dict[str, str]:
    """Three break-glass uses (dr-a twice, dr-b once) and a burst of five failed logins by ann-3: four
    anomalies. Returns the id of each break-glass event by name."""
    glass = {
        name: make_event(tenant, "access.break_glass", actor=actor, time=_time(hours))
        for name, actor, hours in (("a1", "dr-a", 0), ("b1", "dr-b", 1), ("a2", "dr-a", 2))
    }
    failures = [
        make_event(tenant, "auth.login_failed", actor="ann-3", time=_time(3 + i / 60)) for i in range(5)
    ]
    ledger.appender.append([validate_event(e) for e in [*glass.values(), *failures]])
    return {name: e["id"] for name, e in glass.items()}


@pytest.fixture
def raised(shared_ledger: Ledger, tenant: str) -> dict[str, str]:
    return raise_anomalies(shared_ledger, tenant)


def anomalies(http: httpx.Client, auth: dict[str, str], **query: Any) -> dict[str, Any]:
    response = http.get("/v1/anomalies", params=query, headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def glass_anomaly(http: httpx.Client, auth: dict[str, str], event_id: str) -> dict[str, Any]:
    [found] = [
        a for a in anomalies(http, auth, rule="break_glass")["anomalies"] if a["evidence"] == [event_id]
    ]
    return found


def test_anomalies_are_listed_and_filtered(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    security = bearer(token("security", tenant=tenant))
    every = anomalies(http, security)["anomalies"]
    assert sorted(a["rule"] for a in every) == ["break_glass", "break_glass", "break_glass", "login_failures"]
    assert {a["status"] for a in every} == {"open"}
    assert [a["actor"] for a in anomalies(http, security, rule="break_glass", actor="dr-a")["anomalies"]] == [
        "dr-a",
        "dr-a",
    ]
    [burst] = anomalies(http, security, rule="login_failures")["anomalies"]
    assert (burst["actor"], len(burst["evidence"])) == ("ann-3", 5)
    assert anomalies(http, security, status="benign")["anomalies"] == []
    # since/until bound raised_at, the time the ledger recorded the raising event (now), not the event's time.
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert len(anomalies(http, security, since=hour_ago)["anomalies"]) == 4
    assert anomalies(http, security, until=hour_ago)["anomalies"] == []
    assert anomalies(http, security, since=_time(-1), until=_time(48))["anomalies"] == []
    # An auditor reads them too.
    assert len(anomalies(http, bearer(token("auditor", tenant=tenant)))["anomalies"]) == 4


def test_pages_follow_the_cursor_without_gaps_or_repeats(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    security = bearer(token("security", tenant=tenant))
    seen, cursor = [], None
    while True:
        page = anomalies(http, security, limit=1, **({"cursor": cursor} if cursor else {}))
        seen.extend(a["anomaly_id"] for a in page["anomalies"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [a["anomaly_id"] for a in anomalies(http, security)["anomalies"]]
    assert len(set(seen)) == 4


def test_unknown_filters_and_damaged_cursors_are_refused_naming_them(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    security = bearer(token("security", tenant=tenant))
    for query, field in (({"rule": "nosuch"}, "rule"), ({"status": "closed"}, "status"),
                         ({"cursor": "garbage"}, "cursor"), ({"since": "yesterday"}, "since")):  # fmt: skip
        response = http.get("/v1/anomalies", params=query, headers=security)
        assert response.status_code == 400, query
        assert [e["field"] for e in response.json()["errors"]] == [field]


def test_one_anomaly_comes_with_its_evidence_as_stored(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    security = bearer(token("security", tenant=tenant))
    listed = glass_anomaly(http, security, raised["b1"])
    response = http.get(f"/v1/anomalies/{listed['anomaly_id']}", headers=security)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rule"], body["actor"], body["severity"]) == ("break_glass", "dr-b", listed["severity"])
    [evidence] = body["evidence_events"]
    assert evidence["event"]["id"] == raised["b1"]
    assert evidence["event"]["type"] == "access.break_glass"
    assert set(evidence["event"]["data"]["reason"]) == {"sealed"}  # sealed values stay sealed
    assert evidence["receipt"]["position"] == body["position"]


def test_a_review_sets_the_status_and_is_an_event_in_the_log(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    security = bearer(token("security", tenant=tenant, subject="sec-1"))
    target = glass_anomaly(http, security, raised["a1"])
    response = http.post(
        f"/v1/anomalies/{target['anomaly_id']}/reviews",
        json={"decision": "policy_violation", "comment": "No clinical reason on file; raised with the lead."},
        headers=security,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    after = body["anomaly"]
    assert (after["status"], after["reviewed_by"], after["reviews"]) == ("policy_violation", "sec-1", 1)
    assert after["review_event_id"] == body["receipt"]["id"]
    assert [a["anomaly_id"] for a in anomalies(http, security, status="policy_violation")["anomalies"]] == [
        target["anomaly_id"]
    ]
    logged = http.get(
        "/v1/events",
        params={"type": "ledger.anomaly_reviewed"},
        headers=bearer(token("auditor", tenant=tenant)),
    ).json()["events"]
    [review] = logged
    assert review["receipt"]["id"] == body["receipt"]["id"]
    assert review["event"]["subject"] == target["anomaly_id"]
    data = review["event"]["data"]
    assert (data["anomaly_id"], data["reviewer"], data["decision"]) == (
        target["anomaly_id"],
        "sec-1",
        "policy_violation",
    )
    assert set(data["comment"]) == {"sealed"}

    second = http.post(
        f"/v1/anomalies/{target['anomaly_id']}/reviews", json={"decision": "benign"}, headers=security
    )
    assert second.status_code == 201, second.text
    assert (second.json()["anomaly"]["status"], second.json()["anomaly"]["reviews"]) == ("benign", 2)


@pytest.mark.parametrize(
    "grant",
    [{"roles": ("auditor",)}, {"roles": ("admin",), "mfa": True}, {"roles": ("regulatory",)},
     {"roles": ("ingest",)}],
    ids=["auditor", "admin", "regulatory", "ingest"],
)  # fmt: skip
def test_only_the_security_role_reviews(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str], grant: dict[str, Any]
) -> None:
    target = glass_anomaly(http, bearer(token("security", tenant=tenant)), raised["a1"])
    caller = bearer(token(*grant["roles"], tenant=tenant, mfa=grant.get("mfa", False)))
    response = http.post(
        f"/v1/anomalies/{target['anomaly_id']}/reviews", json={"decision": "benign"}, headers=caller
    )
    assert response.status_code == 403, response.text
    assert glass_anomaly(http, bearer(token("security", tenant=tenant)), raised["a1"])["status"] == "open"


@pytest.mark.parametrize("role", ["regulatory", "ingest", "witness"])
def test_roles_outside_security_and_audit_read_no_anomalies(
    http: httpx.Client, token: TokenFactory, tenant: str, role: str
) -> None:
    assert http.get("/v1/anomalies", headers=bearer(token(role, tenant=tenant))).status_code == 403


@pytest.mark.parametrize("body", [{"decision": "maybe"}, {}, {"decision": "benign", "outcome": "x"},
                                  {"decision": "benign", "comment": "x" * 4001}])  # fmt: skip
def test_a_review_body_that_cannot_be_read_is_refused(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str], body: dict[str, Any]
) -> None:
    security = bearer(token("security", tenant=tenant))
    target = glass_anomaly(http, security, raised["a1"])
    response = http.post(f"/v1/anomalies/{target['anomaly_id']}/reviews", json=body, headers=security)
    assert response.status_code == 400, response.text
    assert glass_anomaly(http, security, raised["a1"])["reviews"] == 0


def test_no_other_tenants_anomalies(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    target = glass_anomaly(http, bearer(token("security", tenant=tenant)), raised["a1"])
    other = f"{tenant}-x"
    raise_anomalies_elsewhere = bearer(token("security", tenant=other))
    assert anomalies(http, raise_anomalies_elsewhere)["anomalies"] == []
    path = f"/v1/anomalies/{target['anomaly_id']}"
    assert http.get(path, headers=raise_anomalies_elsewhere).status_code == 404
    refused = http.post(f"{path}/reviews", json={"decision": "benign"}, headers=raise_anomalies_elsewhere)
    assert refused.status_code == 404
    assert glass_anomaly(http, bearer(token("security", tenant=tenant)), raised["a1"])["reviews"] == 0
    assert http.get("/v1/anomalies/break_glass:000000000000000000000000", headers=bearer(
        token("security", tenant=tenant))).status_code == 404  # fmt: skip


def _reviewed_one(http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]) -> str:
    security = bearer(token("security", tenant=tenant, subject="sec-1"))
    target = glass_anomaly(http, security, raised["b1"])
    response = http.post(
        f"/v1/anomalies/{target['anomaly_id']}/reviews", json={"decision": "incident"}, headers=security
    )
    assert response.status_code == 201, response.text
    return str(target["anomaly_id"])


def test_the_access_review_report_shows_raised_reviewed_and_open(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    reviewed = _reviewed_one(http, token, tenant, raised)
    today = datetime.now(UTC).date()
    auditor = bearer(token("auditor", tenant=tenant, mfa=True))
    query = {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat()}

    as_json = http.get("/v1/reports/access-review", params={**query, "format": "json"}, headers=auditor)
    assert as_json.status_code == 200, as_json.text
    assert as_json.headers["x-report-sha256"] == hashlib.sha256(as_json.content).hexdigest()
    doc = as_json.json()
    assert doc["totals"] == {"raised": 4, "reviewed": 1, "open_at_end": 3}
    this_week = doc["periods"][-1]
    assert this_week["raised"]["by_rule"] == {"break_glass": 3, "login_failures": 1}
    [review] = this_week["reviewed"]["reviews"]
    assert (review["anomaly_id"], review["reviewer"], review["decision"]) == (reviewed, "sec-1", "incident")
    assert reviewed not in {a["anomaly_id"] for a in doc["open_at_end"]}

    as_csv = http.get("/v1/reports/access-review", params={**query, "format": "csv"}, headers=auditor)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["anomaly_id"], r["reviewer"], r["decision"]) for r in rows if r["section"] == "review"] == [
        (reviewed, "sec-1", "incident")
    ]
    assert len([r for r in rows if r["section"] == "open"]) == 3

    as_html = http.get("/v1/reports/access-review", params={**query, "format": "html"}, headers=auditor)
    assert as_html.headers["content-type"].startswith("text/html")
    page = as_html.text
    assert "<h1>Access review</h1>" in page
    assert reviewed in page
    assert "sec-1" in page

    logged = http.get("/v1/events", params={"type": "ledger.report_generated"}, headers=auditor).json()[
        "events"
    ]
    digests = {
        e["event"]["data"]["sha256"] for e in logged if e["event"]["data"]["report"] == "access_review"
    }
    assert digests == {hashlib.sha256(r.content).hexdigest() for r in (as_json, as_csv, as_html)}


def test_the_report_names_no_other_tenants_anomalies(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str], shared_ledger: Ledger
) -> None:
    other = "o" + tenant[1:]  # a tenant whose name does not contain the first one's
    shared_ledger.appender.append([validate_event(make_event(other, "annotation.created"))])
    today = datetime.now(UTC).date().isoformat()
    response = http.get("/v1/reports/access-review", params={"from": today, "to": today},
                        headers=bearer(token("security", tenant=other, mfa=True)))  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["totals"] == {"raised": 0, "reviewed": 0, "open_at_end": 0}
    assert tenant not in response.text


def test_a_range_ending_before_it_starts_is_refused_naming_to(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    response = http.get("/v1/reports/access-review", params={"from": "2026-12-08", "to": "2026-12-01"},
                        headers=bearer(token("security", tenant=tenant, mfa=True)))  # fmt: skip
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["to"]


def test_the_command_line_report_in_three_formats(ledger: Ledger, tenant: str, tmp_path: Path) -> None:
    raise_anomalies(ledger, tenant)
    today = datetime.now(UTC).date()
    # From yesterday: anomalies raised just before midnight stay inside the range.
    first, today = (today - timedelta(days=1)).isoformat(), today.isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_HOME=str(ledger.settings.home), LEDGER_DATABASE_URL=str(ledger.settings.database_url))
    outputs = {}
    for fmt in ("json", "csv", "html"):
        out = tmp_path / f"review.{fmt}"
        result = subprocess.run(
            [sys.executable, "-m", "ledger.cli.main", "report", "access-review", "--from", first, "--to", today,
             "--tenant", tenant, "--format", fmt, "--output", str(out)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert (
            f"SHA-256 {hashlib.sha256(out.read_bytes()).hexdigest()} recorded at {tenant}/" in result.stderr
        )
        outputs[fmt] = out.read_text()
    assert json.loads(outputs["json"])["totals"] == {"raised": 4, "reviewed": 0, "open_at_end": 4}
    assert len([r for r in csv.DictReader(io.StringIO(outputs["csv"])) if r["section"] == "open"]) == 4
    assert outputs["html"].count("break_glass:") == 3


def test_every_body_is_what_the_openapi_document_says(
    http: httpx.Client, server_url: str, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    import schemathesis

    document = schemathesis.openapi.from_url(f"{server_url}/schema/openapi.json")
    operations = {r.ok().label: r.ok() for r in document.get_all_operations()}
    security = bearer(token("security", tenant=tenant, mfa=True))  # the report is an export: MFA
    target = glass_anomaly(http, security, raised["a1"])["anomaly_id"]
    today = datetime.now(UTC).date().isoformat()
    answered = {
        "GET /v1/anomalies": http.get("/v1/anomalies", headers=security),
        "GET /v1/anomalies/{anomaly_id}": http.get(f"/v1/anomalies/{target}", headers=security),
        "POST /v1/anomalies/{anomaly_id}/reviews": http.post(
            f"/v1/anomalies/{target}/reviews", json={"decision": "benign", "comment": "ok"}, headers=security
        ),
        "GET /v1/reports/access-review": http.get(
            "/v1/reports/access-review", params={"from": today, "to": today}, headers=security
        ),
    }
    for label, response in answered.items():
        assert response.status_code in (200, 201), (label, response.text)
        operations[label].validate_response(response)  # raises naming what does not match


def test_a_comment_holding_a_direct_identifier_is_refused_naming_it(
    http: httpx.Client, token: TokenFactory, tenant: str, raised: dict[str, str]
) -> None:
    security = bearer(token("security", tenant=tenant, mfa=True))  # the report is an export: MFA
    target = glass_anomaly(http, security, raised["a1"])["anomaly_id"]
    response = http.post(
        f"/v1/anomalies/{target}/reviews",
        json={"decision": "incident", "comment": "called the patient at jane.doe@example.com"},
        headers=security,
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["data.comment"]
    assert glass_anomaly(http, security, raised["a1"])["reviews"] == 0
