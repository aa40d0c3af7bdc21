"""Every read on the record leaves one access event, committed before the data leaves (issue 9), over a real
server and PostgreSQL: the right principal, role, route, resource and count for every read route; refusals
as access.denied; a read whose recording fails answers 503 with nothing, and leaves nothing half-recorded."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.auth.routes import ROUTES
from ledger.auth.tokens import sign_token
from ledger.domain.logs import SYSTEM_TENANT
from ledger.runtime import Ledger, wire
from ledger.storage.database import Database
from ledger.webhooks.sources import SourceStore
from tests.conftest import TokenFactory, make_event, serving

Body = Callable[[httpx.Response], int]


def bearer(token: str, **more: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **more}


def reads_of(ledger: Ledger, tenant: str, *, types: tuple[str, ...] = ("access.data_viewed", "access.data_exported")) -> list[dict[str, Any]]:  # fmt: skip
    """The access events the ledger recorded in ``tenant``'s log, oldest first, as stored."""
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT canonical FROM ledger_events WHERE tenant = %s AND type = ANY(%s)"
            " AND event_id LIKE 'ledger:%%' ORDER BY log, position",
            (tenant, list(types)),
        ).fetchall()
    return [json.loads(bytes(r[0]))["event"] for r in rows]


@pytest.fixture
def world(http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger) -> dict[str, Any]:
    """A tenant with an annotation on one item released, a credential and a signed checkpoint."""
    annotation = make_event(tenant, actor="ann-01")
    credential = make_event(tenant, "credential.granted")
    glass = make_event(tenant, "access.break_glass", actor="dr-b")  # raises a break_glass anomaly
    data = annotation["data"]
    release = make_event(tenant, "dataset.release_created", data_dataset=data["dataset"], data_release="r-read",
                         data_items=[{"item": data["item"], "label_class": data["label_class"]}])  # fmt: skip
    for event in (annotation, credential, glass, release):
        assert http.post("/v1/events", json=event, headers=bearer(token("ingest", tenant=tenant),
                         **{"content-type": "application/cloudevents+json"})).status_code == 201  # fmt: skip
    shared_ledger.checkpoints.sign(tenant)
    with shared_ledger.db.connect() as conn:
        [(anomaly,)] = conn.execute(
            "SELECT anomaly_id FROM proj_access_anomalies WHERE tenant = %s", (tenant,)
        ).fetchall()
    return {"event": annotation, "dataset": data["dataset"], "item": data["item"], "annotator": credential["data"]["annotator"], "anomaly": anomaly, "release": "r-read"}  # fmt: skip


def _json_count(key: str) -> Body:
    return lambda r: len(r.json()[key])


def _one(_: httpx.Response) -> int:
    return 1


# (method, template) -> (path, params, resource, the record count the body shows)
def cases(w: dict[str, Any], tenant: str) -> dict[tuple[str, str], tuple[str, dict[str, str], str, Body]]:
    item = f"{w['dataset']}/{w['item']}"
    return {
        ("GET", "/v1/event-types"): ("/v1/event-types", {}, "event-types", _json_count("event_types")),
        ("GET", "/v1/events"): ("/v1/events", {"limit": "5"}, "events", _json_count("events")),
        ("GET", "/v1/events/{event_id}"): (f"/v1/events/{w['event']['id']}", {}, f"event:{w['event']['id']}", _one),
        ("GET", "/v1/items/{dataset}/{item}/labels"): (f"/v1/items/{item}/labels", {}, f"item:{item}", _json_count("annotations")),
        ("GET", "/v1/items/{dataset}/{item}/provenance"): (f"/v1/items/{item}/provenance", {}, f"item:{item}", _json_count("events")),
        ("GET", "/v1/annotators/{actor}/credentials"): (f"/v1/annotators/{w['annotator']}/credentials", {}, f"annotator:{w['annotator']}", _json_count("credentials")),
        ("GET", "/v1/compliance/flags"): ("/v1/compliance/flags", {}, "compliance-flags", _json_count("flags")),
        ("GET", "/v1/guidelines"): ("/v1/guidelines", {}, "guidelines", _json_count("guidelines")),
        ("GET", "/v1/reports/retention"): ("/v1/reports/retention", {"format": "json"}, "report:retention", lambda r: sum(len(r.json()[k]) for k in ("logs", "guidelines", "credentials", "legal_holds", "erasures"))),
        ("GET", "/v1/logs/{log}/proofs/consistency"): (f"/v1/logs/{tenant}/proofs/consistency", {"from": "1"}, f"log:{tenant}/consistency", _one),
        ("GET", "/v1/logs/{log}/proofs/inclusion"): (f"/v1/logs/{tenant}/proofs/inclusion", {"position": "0"}, f"log:{tenant}/inclusion", _one),
        ("GET", "/v1/logs/{log}/checkpoint"): (f"/v1/logs/{tenant}/checkpoint", {}, f"log:{tenant}/checkpoint", _one),
        ("GET", "/v1/logs/{log}/checkpoints"): (f"/v1/logs/{tenant}/checkpoints", {}, f"log:{tenant}/checkpoints", _json_count("checkpoints")),
        ("GET", "/v1/keys"): ("/v1/keys", {}, "keys", _json_count("checkpoint_keys")),
        ("GET", "/v1/anomalies"): ("/v1/anomalies", {"rule": "break_glass"}, "anomalies", _json_count("anomalies")),
        ("GET", "/v1/anomalies/{anomaly_id}"): (f"/v1/anomalies/{w['anomaly']}", {}, f"anomaly:{w['anomaly']}", _one),
        ("GET", "/v1/reports/access-review"): ("/v1/reports/access-review", {"from": "2026-01-01", "to": "2026-12-31", "format": "json"}, "report:access-review", lambda r: sum(r.json()["totals"].values())),
        ("GET", "/v1/bundles"): ("/v1/bundles", {"item": item}, "bundle:item", lambda r: len(r.json()["events"])),
        ("GET", "/v1/quality/annotators/{actor}"): (f"/v1/quality/annotators/{w['event'].get('actor', 'a')}", {}, f"annotator-quality:{w['event'].get('actor', 'a')}", _json_count("tasks")),
        ("GET", "/v1/quality/items"): ("/v1/quality/items", {}, "item-quality", _json_count("items")),
        ("GET", "/v1/releases/{dataset}/{release}/lineage"): (f"/v1/releases/{w['dataset']}/{w.get('release', 'r')}/lineage", {"format": "json"}, f"report:lineage:{w['dataset']}@{w.get('release', 'r')}", _json_count("items")),
        ("GET", "/v1/export/fhir"): ("/v1/export/fhir", FHIR_WINDOW, f"fhir:{FHIR_SINCE.isoformat()}/{FHIR_UNTIL.isoformat()}", lambda r: len(r.json().get("entry", []))),
    }  # fmt: skip


FHIR_SINCE, FHIR_UNTIL = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
FHIR_WINDOW = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}


READ_ROUTES = sorted(key for key, access in ROUTES.items() if access.records is not None)


def test_every_read_route_has_a_case() -> None:
    """A route added to the table without a case here would go untested: name it."""
    missing = [f"{m} {t}" for m, t in READ_ROUTES if (m, t) not in cases({"event": {"id": "x"}, "dataset": "d", "item": "i", "annotator": "a", "anomaly": "n"}, "t")]  # fmt: skip
    assert missing == []


@pytest.mark.parametrize(("method", "template"), READ_ROUTES, ids=[f"{m} {t}" for m, t in READ_ROUTES])
def test_a_read_leaves_exactly_one_access_event_naming_who_what_and_how_many(
    method: str,
    template: str,
    http: httpx.Client,
    token: TokenFactory,
    tenant: str,
    world: dict[str, Any],
    shared_ledger: Ledger,
) -> None:
    path, params, resource, count_of = cases(world, tenant)[(method, template)]
    access = ROUTES[(method, template)]
    role = "auditor" if "auditor" in access.roles else sorted(access.roles)[0]
    before = reads_of(shared_ledger, tenant)
    read = http.get(path, params=params,
                    headers=bearer(token(role, tenant=tenant, subject="reader-7", mfa=True), **{"user-agent": "probe/1"}))  # fmt: skip
    assert read.status_code == 200, read.text

    after = reads_of(shared_ledger, tenant)
    assert len(after) == len(before) + 1
    event = after[-1]
    assert event["type"] == access.records
    assert (event["actor"], event["actorrole"]) == ("reader-7", role)
    data = event["data"]
    assert data["route"] == f"{method} {template}"
    assert data["resource"] == resource
    assert data["record_count"] == count_of(read)
    assert data["status"] == 200
    assert data["outcome"] == "success"
    assert data["query"] == params
    assert data["purpose_of_use"] == "audit"
    # The source address and user agent are on the record, sealed: the stored form holds no plaintext.
    assert set(data["source_address"]) == {"sealed"}
    assert set(data["user_agent"]) == {"sealed"}
    assert "probe/1" not in json.dumps(event)


def test_a_failed_read_is_recorded_with_its_status(
    http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger
) -> None:
    read = http.get("/v1/items/ds/nosuch/provenance", headers=bearer(token("security", tenant=tenant)))
    assert read.status_code == 404
    [event] = reads_of(shared_ledger, tenant)
    assert event["data"]["outcome"] == "failure"
    assert event["data"]["status"] == 404
    assert event["data"]["record_count"] == 0
    assert event["data"]["resource"] == "item:ds/nosuch"
    assert "item" not in event["data"]  # a probe does not give the item a provenance


def test_the_purpose_of_use_comes_from_the_header_and_a_wrong_one_is_refused(
    http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger
) -> None:
    reader = token("regulatory", tenant=tenant)
    assert (
        http.get("/v1/guidelines", headers=bearer(reader, **{"x-purpose-of-use": "research"})).status_code
        == 200
    )
    refused = http.get("/v1/guidelines", headers=bearer(reader, **{"x-purpose-of-use": "curiosity"}))
    assert refused.status_code == 400
    assert "X-Purpose-Of-Use" in refused.text
    assert [e["data"]["purpose_of_use"] for e in reads_of(shared_ledger, tenant)] == ["research"]


def test_refusals_are_recorded_as_access_denied(
    http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger
) -> None:
    # 403: the token verified, so the refusal goes to its tenant's log under its subject.
    assert (
        http.get("/v1/events", headers=bearer(token("ingest", tenant=tenant, subject="svc-9"))).status_code
        == 403
    )
    [denied] = reads_of(shared_ledger, tenant, types=("access.denied",))
    assert (denied["actor"], denied["actorrole"]) == ("svc-9", "ingest")
    assert denied["data"]["status"] == 403
    assert denied["data"]["route"] == "GET /v1/events"

    # 401: nothing in the request can be believed, so it goes to the ledger's own log, unauthenticated.
    before = len(reads_of(shared_ledger, SYSTEM_TENANT, types=("access.denied",)))
    marker = f"/v1/items/{tenant}/x/labels"
    assert http.get(marker, headers={"authorization": "Bearer not-a-token"}).status_code == 401
    system = reads_of(shared_ledger, SYSTEM_TENANT, types=("access.denied",))
    new = [e for e in system[before:] if e["data"]["resource"] == "/v1/items/{dataset}/{item}/labels"]
    assert [(e["actor"], e["data"]["status"]) for e in new] == [("unauthenticated", 401)]


@pytest.mark.parametrize("kind", ["label-studio", "cvat"])
def test_a_webhook_refused_for_its_credentials_is_recorded_as_access_denied(
    kind: str, http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger
) -> None:
    """The webhook routes take no JWT, but a refusal is recorded as the Gate records one: in the ledger's
    own log, unauthenticated (neither the source's name nor its tenant can be believed)."""
    source, _ = SourceStore(shared_ledger.db).add(kind, tenant)
    route = f"/v1/webhooks/{kind}"
    before = len(reads_of(shared_ledger, SYSTEM_TENANT, types=("access.denied",)))
    wrong = {"authorization": f"Bearer {token('ingest', tenant=tenant)}", "x-signature-256": "sha256=00"}
    refused = http.post(route, params={"source": source.name}, content=b"{}", headers=wrong)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    system = reads_of(shared_ledger, SYSTEM_TENANT, types=("access.denied",))
    new = [e for e in system[before:] if e["data"]["resource"] == route]
    assert [(e["actor"], e["data"]["status"], e["data"]["route"]) for e in new] == [
        ("unauthenticated", 401, f"POST {route}")
    ]
    with shared_ledger.db.connect() as conn:  # and nothing at all in the source's tenant
        row = conn.execute("SELECT count(*) FROM ledger_events WHERE tenant = %s", (tenant,)).fetchone()
    assert row == (0,)


def test_what_the_caller_sends_never_keeps_a_read_or_a_refusal_off_the_record(
    http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger
) -> None:
    """Values the identifier screen refuses (an e-mail in a filter or a path) are recorded by their digest;
    a refusal is recorded whatever its query or purpose header holds."""
    auditor = bearer(token("auditor", tenant=tenant))
    listed = http.get("/v1/events", params={"actor": "jane.doe@hospital.org"}, headers=auditor)
    assert listed.status_code == 200
    missing = http.get("/v1/annotators/jane.doe@hospital.org/credentials", headers=auditor)
    assert missing.status_code == 404
    first, second = reads_of(shared_ledger, tenant)
    assert first["data"]["query"]["actor"].startswith("21 characters, sha256 ")
    assert second["data"]["status"] == 404
    assert second["data"]["resource"].startswith("31 characters, sha256 ")  # annotator:jane.doe@…
    assert "jane.doe" not in json.dumps([first, second])

    probe = http.get("/v1/events", params={"x": "a@b.co"},
                     headers=bearer(token("ingest", tenant=tenant), **{"x-purpose-of-use": "curiosity"}))  # fmt: skip
    assert probe.status_code == 403
    [denied] = reads_of(shared_ledger, tenant, types=("access.denied",))
    assert denied["data"]["purpose_of_use"] == "audit"
    assert "a@b.co" not in json.dumps(denied)


def test_concurrent_reads_are_each_recorded(
    server_url: str, token: TokenFactory, tenant: str, shared_ledger: Ledger
) -> None:
    reader = token("auditor", tenant=tenant)
    statuses: list[int] = []

    def read() -> None:
        with httpx.Client(base_url=server_url, timeout=30) as client:
            statuses.extend(
                client.get("/v1/guidelines", headers=bearer(reader)).status_code for _ in range(5)
            )

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 40
    recorded = reads_of(shared_ledger, tenant)
    assert len(recorded) == 40
    assert len({e["id"] for e in recorded}) == 40


# ---- a read whose recording fails ----------------------------------------------------------------------


@pytest.fixture
def impatient(ledger: Ledger, tmp_path: Path, signing_key: Ed25519PrivateKey) -> Iterator[tuple[Ledger, str]]:
    """A server whose appends wait at most 0.3 s for a log head: a held head makes recording fail."""
    settings = dataclasses.replace(ledger.settings, db_lock_timeout=0.3)
    db = Database(str(ledger.settings.database_url), pool_size=4)
    quick = wire(settings, db)
    with serving(quick) as url:
        yield quick, url
    db.dispose()


def test_a_read_that_cannot_be_recorded_returns_503_and_nothing(
    impatient: tuple[Ledger, str], signing_key: Ed25519PrivateKey
) -> None:
    quick, url = impatient
    event = make_event("acme")
    quick.appender.append([_validated(event)])
    auditor = sign_token(signing_key, quick.settings, roles=["auditor"], tenant="acme", subject="a-1")
    with (
        httpx.Client(base_url=url, timeout=30) as client,
        psycopg.connect(str(quick.settings.database_url)) as holder,
    ):
        holder.execute(
            "SELECT 1 FROM ledger_log_heads WHERE log = 'acme' FOR UPDATE"
        )  # another writer holds it
        refused = client.get(f"/v1/events/{event['id']}", headers=bearer(auditor))
        holder.rollback()
        assert refused.status_code == 503
        assert refused.json()["code"] == "read_not_recorded"
        body = refused.json()  # a problem, and none of the event
        assert not {"event", "receipt", "data"} & set(body)
        assert "annotation.created" not in refused.text
        # Nothing of the failed read is on the record; the next read is recorded normally.
        assert reads_of(quick, "acme") == []
        assert client.get(f"/v1/events/{event['id']}", headers=bearer(auditor)).status_code == 200
        assert len(reads_of(quick, "acme")) == 1


def test_a_held_log_delays_only_its_own_tenants_reads(
    impatient: tuple[Ledger, str], signing_key: Ed25519PrivateKey
) -> None:
    quick, url = impatient
    quick.appender.append([_validated(make_event("acme")), _validated(make_event("beta"))])

    def reader(tenant: str) -> dict[str, str]:
        return bearer(
            sign_token(signing_key, quick.settings, roles=["auditor"], tenant=tenant, subject="a-1")
        )

    with (
        httpx.Client(base_url=url, timeout=30) as client,
        psycopg.connect(str(quick.settings.database_url)) as holder,
    ):
        holder.execute("SELECT 1 FROM ledger_log_heads WHERE log = 'acme' FOR UPDATE")
        results: dict[str, int] = {}
        held = threading.Thread(
            target=lambda: results.update(
                acme=client.get("/v1/guidelines", headers=reader("acme")).status_code
            )
        )
        held.start()
        with httpx.Client(base_url=url, timeout=30) as other:
            for _ in range(3):  # reads of beta go on while acme's are stuck
                assert other.get("/v1/guidelines", headers=reader("beta")).status_code == 200
        held.join()
        holder.rollback()
    assert results == {"acme": 503}
    assert len(reads_of(quick, "beta")) == 3
    assert reads_of(quick, "acme") == []


def _validated(raw: dict[str, Any]) -> Any:
    from ledger.domain.envelope import validate_event

    return validate_event(raw)
