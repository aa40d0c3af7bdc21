"""The webhook routes over a real server and PostgreSQL: a delivery is authenticated by its source's own
secret (401 and only the recorded refusal otherwise), recorded once (a retry is a repeat with the original
receipts), and what cannot become events is answered 202 and kept as ``ledger.ingest_rejected``."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from ledger.domain.errors import Overloaded, StorageUnavailable
from ledger.domain.logs import SYSTEM_TENANT, log_for
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from ledger.webhooks.model import Delivery, Lookup, Mapped, Source, SourceConfig, unmappable
from ledger.webhooks.service import LOCK_KEY, WebhookService
from ledger.webhooks.sources import SourceStore
from tests import webhook_fixtures
from tests.conftest import make_event

LS = "/v1/webhooks/label-studio"
CVAT = "/v1/webhooks/cvat"
ACTOR = "ann-0042"
NOW = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)


def events_of(ledger: Ledger, tenant: str) -> list[dict[str, Any]]:
    """Every event of ``tenant``'s log, oldest first, as stored."""
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT canonical FROM ledger_events WHERE tenant = %s ORDER BY log, position", (tenant,)
        ).fetchall()
    return [json.loads(bytes(r[0]))["event"] for r in rows]


def denials(ledger: Ledger, route: str) -> list[dict[str, Any]]:
    """The ``access.denied`` events of the ledger's own log naming ``route``."""
    return [
        e
        for e in events_of(ledger, SYSTEM_TENANT)
        if e["type"] == "access.denied" and e["data"]["route"] == f"POST {route}"
    ]


def ls_payload(name: str = "ANNOTATION_CREATED") -> dict[str, Any]:
    """A Label Studio fixture payload."""
    return webhook_fixtures.load("label-studio", name)


def tool_user(payload: dict[str, Any]) -> str:
    user = payload["annotation"]["completed_by"]
    return str(user["id"] if isinstance(user, dict) else user)


@pytest.fixture(scope="module")
def document(server_url: str) -> dict[str, Any]:
    """The served OpenAPI document."""
    return httpx.get(f"{server_url}/schema/openapi.json", timeout=30).json()


def assert_documented(document: dict[str, Any], route: str, response: httpx.Response) -> None:
    """The response's status is documented for ``route``, and its body matches the documented schema."""
    documented = document["paths"][route]["post"]["responses"][str(response.status_code)]
    [(media, content)] = documented["content"].items()
    assert response.headers["content-type"].split(";")[0] == media
    # The schema's "#/components/..." references resolve against a root holding the document's components.
    Draft202012Validator({**content["schema"], "components": document["components"]}).validate(
        response.json()
    )


class Tool:
    """One source of the test's tenant, posting as the tool does."""

    def __init__(self, http: httpx.Client, source: Source, secret: str) -> None:
        self.http, self.source, self.secret = http, source, secret

    def post(self, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        route = LS if self.source.kind == "label-studio" else CVAT
        if not headers:
            headers = self.credentials(raw)
        return self.http.post(
            route,
            params={"source": self.source.name},
            content=raw,
            headers={"content-type": "application/json", **headers},
        )

    def credentials(self, raw: bytes) -> dict[str, str]:
        if self.source.kind == "cvat":
            digest = hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
            return {"x-signature-256": f"sha256={digest}"}
        return {"authorization": f"Bearer {self.secret}"}


@pytest.fixture
def studio(http: httpx.Client, tenant: str, shared_ledger: Ledger) -> Tool:
    """A Label Studio source of the test's tenant, the fixtures' annotator mapped."""
    config = SourceConfig(users={tool_user(ls_payload()): ACTOR})
    source, secret = SourceStore(shared_ledger.db).add("label-studio", tenant, config=config)
    return Tool(http, source, secret)


@pytest.fixture
def cvat(http: httpx.Client, tenant: str, shared_ledger: Ledger) -> Tool:
    """A CVAT source of the test's tenant, the fixtures' user mapped."""
    config = SourceConfig(users={"1": ACTOR})
    source, secret = SourceStore(shared_ledger.db).add("cvat", tenant, config=config)
    return Tool(http, source, secret)


# ---- authentication ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer not-the-secret"}, {"authorization": "Basic dXNlcjpwdw=="}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_label_studio_without_its_secret_is_401_and_only_the_refusal_is_recorded(
    studio: Tool, headers: dict[str, str], tenant: str, shared_ledger: Ledger
) -> None:
    before = len(denials(shared_ledger, LS))
    refused = studio.post(ls_payload(), **(headers or {"x-none": "1"}))
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"] == 'Bearer realm="ledger"'
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "unauthenticated"
    assert events_of(shared_ledger, tenant) == []
    assert [(e["actor"], e["data"]["status"]) for e in denials(shared_ledger, LS)[before:]] == [
        ("unauthenticated", 401)
    ]


def test_a_jwt_is_not_a_source_secret(studio: Tool, token, tenant: str, shared_ledger: Ledger) -> None:
    jwt = token("ingest", tenant=tenant)
    assert studio.post(ls_payload(), authorization=f"Bearer {jwt}").status_code == 401
    assert events_of(shared_ledger, tenant) == []


def test_a_source_of_the_other_tool_does_not_authenticate(
    http: httpx.Client, cvat: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    # The CVAT source's secret as a Label Studio bearer, at the Label Studio route: refused.
    impostor = Tool(http, cvat.source, cvat.secret)
    response = http.post(
        LS,
        params={"source": impostor.source.name},
        content=json.dumps(ls_payload()).encode(),
        headers={"authorization": f"Bearer {cvat.secret}"},
    )
    assert response.status_code == 401
    assert events_of(shared_ledger, tenant) == []


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "md5=abc", "sha256=zz"])
def test_cvat_without_a_valid_signature_is_401_before_the_body_is_read(
    cvat: Tool, signature: str | None, tenant: str, shared_ledger: Ledger
) -> None:
    before = len(denials(shared_ledger, CVAT))
    headers = {"x-signature-256": signature} if signature else {"x-none": "1"}
    # Not even JSON: a refusal for the signature, not a rejection of the body, shows it was never parsed.
    refused = cvat.post(b"{not json", **headers)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert events_of(shared_ledger, tenant) == []
    assert len(denials(shared_ledger, CVAT)) == before + 1


def test_a_body_signed_for_other_bytes_is_401(cvat: Tool, tenant: str, shared_ledger: Ledger) -> None:
    signed = cvat.credentials(b'{"event": "ping"}')
    assert cvat.post(b'{"event": "ping", "x": 1}', **signed).status_code == 401
    assert events_of(shared_ledger, tenant) == []


def test_cvat_ping_is_answered_and_records_nothing(
    cvat: Tool, tenant: str, shared_ledger: Ledger, document: dict[str, Any]
) -> None:
    response = cvat.post(webhook_fixtures.body("cvat", "ping"))
    assert (response.status_code, response.json()) == (200, {"pong": True})
    assert_documented(document, CVAT, response)
    assert events_of(shared_ledger, tenant) == []


# ---- recorded once --------------------------------------------------------------------------------------


def test_a_delivery_is_recorded_and_its_retry_is_a_repeat(
    studio: Tool, tenant: str, shared_ledger: Ledger, document: dict[str, Any]
) -> None:
    first = studio.post(ls_payload())
    assert first.status_code == 201, first.text
    assert_documented(document, LS, first)
    receipts = first.json()["receipts"]
    assert receipts
    assert not any(r["duplicate"] for r in receipts)
    assert isinstance(first.json()["summary"], str)
    recorded = events_of(shared_ledger, tenant)
    assert [e["id"] for e in recorded] == [r["id"] for r in receipts]

    retry = studio.post(ls_payload())
    assert retry.status_code == 200, retry.text
    assert_documented(document, LS, retry)
    # The original receipts of the delivery's annotation events (the project's guideline, published with
    # the first delivery, is not this delivery's own: the next annotation of the project cites it too).
    own = [r for r, e in zip(receipts, recorded, strict=True) if e["type"] != "guideline.published"]
    assert [e["type"] for e in recorded] == ["guideline.published", "annotation.created"]
    assert retry.json()["receipts"] == [{**r, "duplicate": True} for r in own]
    assert events_of(shared_ledger, tenant) == recorded


def test_concurrent_deliveries_of_one_source_are_all_recorded(
    studio: Tool, server_url: str, tenant: str, shared_ledger: Ledger
) -> None:
    bodies = []
    for n in range(8):
        payload = copy.deepcopy(ls_payload())
        payload["annotation"]["id"] = 9000 + n
        bodies.append(json.dumps(payload).encode())
    statuses: list[int] = []

    def deliver(body: bytes) -> None:
        with httpx.Client(base_url=server_url, timeout=60) as http:
            statuses.append(Tool(http, studio.source, studio.secret).post(body).status_code)

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [201] * 8
    annotations = [e for e in events_of(shared_ledger, tenant) if e["type"] == "annotation.created"]
    prefix = f"{studio.source.name}-"
    ids = {e["data"]["annotation_id"].removeprefix(prefix).split("-")[0] for e in annotations}
    assert ids == {f"a{9000 + n}" for n in range(8)}
    assert verify(shared_ledger.db, log=log_for(tenant), jobs=1).intact


# ---- refused on the record ------------------------------------------------------------------------------


def rejections(ledger: Ledger, tenant: str) -> list[dict[str, Any]]:
    return [e for e in events_of(ledger, tenant) if e["type"] == "ledger.ingest_rejected"]


def assert_rejected(response: httpx.Response, code: str, body: bytes, ledger: Ledger, tenant: str, source: Source) -> dict[str, Any]:  # fmt: skip
    """A 202 naming ``code``, and its ``ledger.ingest_rejected`` on record with the body's SHA-256."""
    assert response.status_code == 202, response.text
    rejected = response.json()["rejected"]
    assert rejected["code"] == code
    [event] = rejections(ledger, tenant)
    assert event["id"] == rejected["event_id"]
    assert event["data"]["raw_sha256"] == hashlib.sha256(body).hexdigest()
    assert event["data"]["reason"] == f"{code}: {rejected['reason']}"
    assert event["data"]["transport"] == "webhook"
    assert event["data"]["origin"] == f"{source.kind}:{source.name}"
    return event


def test_an_unsupported_action_is_202_and_recorded_and_its_retry_is_a_repeat(
    studio: Tool, tenant: str, shared_ledger: Ledger, document: dict[str, Any]
) -> None:
    body = json.dumps({"action": "WEBHOOK_TEST_UNKNOWN"}).encode()
    response = studio.post(body)
    assert_documented(document, LS, response)
    assert_rejected(response, "webhook_unsupported", body, shared_ledger, tenant, studio.source)
    recorded = events_of(shared_ledger, tenant)
    retry = studio.post(body)
    assert (retry.status_code, retry.json()) == (202, response.json())
    assert events_of(shared_ledger, tenant) == recorded


def test_an_unmapped_user_is_202_and_recorded_without_the_users_details(
    studio: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    payload = ls_payload()
    payload["annotation"]["completed_by"] = {"id": 777, "email": "jane.doe@hospital.org"}
    body = json.dumps(payload).encode()
    event = assert_rejected(
        studio.post(body), "webhook_unmappable", body, shared_ledger, tenant, studio.source
    )
    assert event["data"]["reason"] == (
        "webhook_unmappable: annotation.completed_by: tool user 777 is not mapped to a ledger actor; add it "
        "under [users] in the source's config and run `ledger sources configure`"
    )
    assert "jane.doe" not in json.dumps(events_of(shared_ledger, tenant))
    assert [e["type"] for e in events_of(shared_ledger, tenant)] == ["ledger.ingest_rejected"]


def test_a_body_that_is_not_json_is_202_with_its_sha256_and_reason_and_a_retry_is_a_repeat(
    studio: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    body = b'{"action": "ANNOTATION_CREATED", '
    response = studio.post(body)
    event = assert_rejected(response, "malformed_request", body, shared_ledger, tenant, studio.source)
    assert "not valid JSON" in event["data"]["reason"]
    retry = studio.post(body)
    assert (retry.status_code, retry.json()) == (202, response.json())
    assert rejections(shared_ledger, tenant) == [event]


def test_the_body_limit_holds_for_webhooks(studio: Tool, shared_ledger: Ledger, tenant: str) -> None:
    too_large = b" " * (shared_ledger.settings.limits.max_body_bytes + 1)
    response = studio.post(too_large)
    assert response.status_code == 413
    assert events_of(shared_ledger, tenant) == []


# ---- a task's life, as Label Studio reports it ----------------------------------------------------------


def annotations_of(ledger: Ledger, tenant: str) -> dict[str, tuple[int, str]]:
    """The projection's annotations of the tenant: id → (version, status)."""
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT annotation_id, version, status FROM proj_annotations WHERE tenant = %s", (tenant,)
        ).fetchall()
    return {str(r[0]): (int(r[1]), str(r[2])) for r in rows}


def test_a_task_created_annotated_updated_and_deleted_is_on_record_in_order(
    studio: Tool, http: httpx.Client, token, tenant: str, shared_ledger: Ledger
) -> None:
    name = studio.source.name
    region = f"{name}-a4-r1nodule"
    added = f"{name}-a4-r2nodule"

    assert studio.post(ls_payload("TASKS_CREATED")).status_code == 201
    [imported] = [e for e in events_of(shared_ledger, tenant) if e["type"] == "item.imported"]
    dataset, item = imported["data"]["dataset"], imported["data"]["item"]

    created = studio.post(ls_payload("ANNOTATION_CREATED"))
    assert created.status_code == 201, created.text
    assert annotations_of(shared_ledger, tenant) == {region: (1, "submitted")}

    # The update moves r1nodule and adds r2nodule: v2 of the one (citing v1), v1 of the other.
    updated = studio.post(ls_payload("ANNOTATION_UPDATED"))
    assert updated.status_code == 201, updated.text
    assert annotations_of(shared_ledger, tenant) == {region: (2, "submitted"), added: (1, "submitted")}
    [v2] = [e for e in events_of(shared_ledger, tenant) if e["type"] == "annotation.updated"]
    assert (v2["data"]["annotation_id"], v2["data"]["version"]) == (region, 2)
    assert v2["data"]["previous_version"] == 1
    assert v2["id"] in {r["id"] for r in updated.json()["receipts"]}
    # Its retry is a repeat: no v3.
    assert studio.post(ls_payload("ANNOTATION_UPDATED")).status_code == 200
    assert annotations_of(shared_ledger, tenant) == {region: (2, "submitted"), added: (1, "submitted")}

    deleted = studio.post(ls_payload("ANNOTATIONS_DELETED"))
    assert deleted.status_code == 201, deleted.text
    assert annotations_of(shared_ledger, tenant) == {region: (3, "deleted"), added: (2, "deleted")}
    before = events_of(shared_ledger, tenant)
    again = studio.post(ls_payload("ANNOTATIONS_DELETED"))
    assert again.status_code == 200, again.text
    assert events_of(shared_ledger, tenant) == before

    reader = {"authorization": f"Bearer {token('auditor', tenant=tenant)}"}
    provenance = http.get(f"/v1/items/{dataset}/{item}/provenance", headers=reader)
    assert provenance.status_code == 200, provenance.text
    events = provenance.json()["events"]
    assert [(e["type"], e["data"].get("annotation_id"), e["actor"], e["actorrole"]) for e in events] == [
        ("item.imported", None, name, "tool"),
        ("annotation.created", region, ACTOR, "annotator"),
        ("annotation.updated", region, ACTOR, "annotator"),
        ("annotation.created", added, ACTOR, "annotator"),
        # Label Studio says neither who deleted nor when: the source itself, at the delivery's arrival.
        ("annotation.deleted", region, name, "tool"),
        ("annotation.deleted", added, name, "tool"),
    ]
    assert verify(shared_ledger.db, log=log_for(tenant), jobs=1).intact


def test_a_signed_cvat_delivery_is_recorded_and_its_retry_is_a_repeat(
    cvat: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    body = webhook_fixtures.body("cvat", "create-task")
    first = cvat.post(body)
    assert first.status_code == 201, first.text
    recorded = events_of(shared_ledger, tenant)
    assert [e["id"] for e in recorded] == [r["id"] for r in first.json()["receipts"]]
    assert {e["source"] for e in recorded} == {f"urn:ledger:webhook:cvat:{cvat.source.name}"}
    retry = cvat.post(body)
    assert retry.status_code == 200, retry.text
    assert retry.json()["receipts"] == [{**r, "duplicate": True} for r in first.json()["receipts"]]
    assert events_of(shared_ledger, tenant) == recorded


def test_an_update_that_changes_nothing_is_200_unchanged_and_records_nothing(
    studio: Tool, tenant: str, shared_ledger: Ledger, document: dict[str, Any]
) -> None:
    assert studio.post(ls_payload()).status_code == 201
    recorded = events_of(shared_ledger, tenant)
    same = ls_payload()
    same["action"] = "ANNOTATION_UPDATED"
    same["annotation"]["updated_at"] = "2026-12-02T03:17:30.000000Z"  # saved again, regions as they were
    response = studio.post(same)
    assert response.status_code == 200, response.text
    assert response.json()["receipts"] == []
    assert response.json()["unchanged"]
    assert_documented(document, LS, response)
    assert events_of(shared_ledger, tenant) == recorded


def test_concurrent_updates_of_one_annotation_never_record_one_version_twice(
    studio: Tool, server_url: str, tenant: str, shared_ledger: Ledger
) -> None:
    """The source's lock: each update maps against the state the one before it left (v2, v3, …), and one
    that arrives after a newer one is refused on the record, never a second v2."""
    assert studio.post(ls_payload()).status_code == 201
    bodies = []
    for n in range(8):
        payload = ls_payload()
        payload["action"] = "ANNOTATION_UPDATED"
        payload["annotation"]["updated_at"] = f"2026-12-02T03:17:0{n}.000000Z"  # after the fixture's own
        payload["annotation"]["result"][0]["value"]["x"] = 11.0 + n
        bodies.append(json.dumps(payload).encode())
    answers: list[httpx.Response] = []

    def deliver(body: bytes) -> None:
        with httpx.Client(base_url=server_url, timeout=60) as http:
            answers.append(Tool(http, studio.source, studio.secret).post(body))

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 8
    assert {a.status_code for a in answers} <= {201, 202}
    refused = [a.json()["rejected"] for a in answers if a.status_code == 202]
    assert all(r["code"] == "webhook_unmappable" and "newer version" in r["reason"] for r in refused)
    versions = [
        e["data"]["version"]
        for e in events_of(shared_ledger, tenant)
        if e["type"] in ("annotation.created", "annotation.updated")
    ]
    assert versions == list(range(1, 10 - len(refused)))
    assert verify(shared_ledger.db, log=log_for(tenant), jobs=1).intact


# ---- hostile payloads: the service is every adapter's safety net (review 2) -----------------------------


def hostile_image(payload: dict[str, Any]) -> None:
    payload["task"]["data"]["image"] = "http://[abc/x.png"  # urlsplit: ValueError


def hostile_time(payload: dict[str, Any]) -> None:
    payload["annotation"]["updated_at"] = "0001-01-01T00:00:00+01:00"  # astimezone: OverflowError


def hostile_brush(payload: dict[str, Any]) -> None:
    payload["annotation"]["result"][0]["type"] = "brushlabels"
    payload["annotation"]["result"][0]["value"] = {
        "format": "rle",
        "rle": [10**30],
        "brushlabels": ["nodule"],
    }


def hostile_user(payload: dict[str, Any]) -> None:
    payload["annotation"]["completed_by"] = "jane.doe@hospital.org"


@pytest.mark.parametrize("spoil", [hostile_image, hostile_time, hostile_brush, hostile_user])
def test_a_hostile_label_studio_payload_is_202_and_one_rejection_never_an_error(
    studio: Tool, tenant: str, shared_ledger: Ledger, spoil: Callable[[dict[str, Any]], None]
) -> None:
    payload = ls_payload()
    spoil(payload)
    body = json.dumps(payload).encode()
    response = studio.post(body)
    assert response.status_code == 202, response.text
    assert [e["type"] for e in events_of(shared_ledger, tenant)] == ["ledger.ingest_rejected"]
    event = assert_rejected(
        response, response.json()["rejected"]["code"], body, shared_ledger, tenant, studio.source
    )
    assert "jane.doe" not in json.dumps(event)
    assert "[abc" not in json.dumps(event)
    assert studio.post(body).json() == response.json()  # a retry is a repeat
    assert len(rejections(shared_ledger, tenant)) == 1


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_cvat_time_without_a_utc_is_202_naming_the_field(
    cvat: Tool, tenant: str, shared_ledger: Ledger, when: str
) -> None:
    payload = webhook_fixtures.load("cvat", "update-job-completed")
    payload["job"]["updated_date"] = when
    body = json.dumps(payload).encode()
    event = assert_rejected(cvat.post(body), "webhook_unmappable", body, shared_ledger, tenant, cvat.source)
    assert "job.updated_date" in event["data"]["reason"]


def test_a_reason_the_rejection_cannot_hold_falls_back_to_the_code(
    shared_ledger: Ledger, tenant: str, studio: Tool
) -> None:
    """A mapping whose refusal quotes a direct identifier: the rejection is still recorded, without it."""

    def quoting(delivery: Delivery, lookup: Lookup) -> Mapped:
        raise unmappable("annotation.completed_by", "tool user jane.doe@hospital.org is not mapped")

    service = WebhookService(shared_ledger.db, shared_ledger.appender, shared_ledger.queries,
                             mappers={"label-studio": quoting, "cvat": quoting})  # fmt: skip
    body = json.dumps(ls_payload()).encode()
    outcome = service.deliver("label-studio", studio.source.name, studio.credentials(body), body, NOW)
    assert outcome.status == 202
    assert outcome.body["rejected"]["code"] == "webhook_unmappable"
    [event] = rejections(shared_ledger, tenant)
    assert event["id"] == outcome.body["rejected"]["event_id"]
    assert "jane.doe" not in json.dumps(event) + json.dumps(outcome.body)


def test_an_operational_error_keeps_its_status(shared_ledger: Ledger, tenant: str, studio: Tool) -> None:
    def away(delivery: Delivery, lookup: Lookup) -> Mapped:
        raise StorageUnavailable("PostgreSQL connection failed")

    service = WebhookService(shared_ledger.db, shared_ledger.appender, shared_ledger.queries,
                             mappers={"label-studio": away, "cvat": away})  # fmt: skip
    body = json.dumps(ls_payload()).encode()
    with pytest.raises(StorageUnavailable):
        service.deliver("label-studio", studio.source.name, studio.credentials(body), body, NOW)
    assert events_of(shared_ledger, tenant) == []


# ---- what is a repeat (review 8) ---------------------------------------------------------------------------


def test_a_delivery_of_one_annotation_on_record_and_one_new_records_the_new_one(
    studio: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    both = ls_payload("ANNOTATIONS_CREATED")
    first = copy.deepcopy(both)
    first["annotation"] = first["annotation"][:1]
    assert studio.post(first).status_code == 201
    before = {e["id"] for e in events_of(shared_ledger, tenant)}
    response = studio.post(both)
    assert response.status_code == 201, response.text
    new = [e for e in events_of(shared_ledger, tenant) if e["id"] not in before]
    created = {e["data"]["annotation_id"] for e in new if e["type"] == "annotation.created"}
    assert f"{studio.source.name}-a7-pred1" in created  # B, new, is recorded
    assert not [a for a in created if a.startswith(f"{studio.source.name}-a1-")]  # A, on record, is not again


def test_an_id_posted_first_by_another_producer_does_not_capture_the_delivery(
    studio: Tool, http: httpx.Client, token: Any, tenant: str, shared_ledger: Ledger
) -> None:
    payload = ls_payload()
    stamp = payload["annotation"]["updated_at"]
    result = payload["annotation"]["result"][0]["id"]
    squatted = f"{studio.source.name}:annotation/{payload['annotation']['id']}/{result}:created@{stamp}"
    ingest = {"authorization": f"Bearer {token('ingest', tenant=tenant)}"}
    posted = http.post("/v1/events", json=make_event(tenant, id=squatted), headers=ingest)
    assert posted.status_code in (200, 201), posted.text
    body = json.dumps(payload).encode()
    response = studio.post(body)
    assert response.status_code == 202, response.text
    rejected = response.json()["rejected"]
    assert rejected["code"] == "webhook_unmappable"
    assert rejected["reason"] == f"event {squatted} is on record, recorded by another producer"
    assert [e["type"] for e in events_of(shared_ledger, tenant)] == [
        "annotation.created",
        "ledger.ingest_rejected",
    ]


# ---- the source's lock is PostgreSQL's (review 6) ----------------------------------------------------------


def test_two_services_on_one_database_never_record_one_version_twice(
    studio: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    """Two ``ledger serve`` processes are two services on one database: their deliveries of one source
    still map one after the other (v2, v3, …), never two v2s."""
    services = [
        WebhookService(shared_ledger.db, shared_ledger.appender, shared_ledger.queries) for _ in range(2)
    ]
    first = json.dumps(ls_payload()).encode()
    assert (
        services[0].deliver("label-studio", studio.source.name, studio.credentials(first), first, NOW).status
        == 201
    )
    bodies = []
    for n in range(8):
        payload = ls_payload()
        payload["action"] = "ANNOTATION_UPDATED"
        payload["annotation"]["updated_at"] = f"2026-12-02T03:17:0{n}.000000Z"
        payload["annotation"]["result"][0]["value"]["x"] = 11.0 + n
        bodies.append(json.dumps(payload).encode())
    statuses: list[int] = []

    def deliver(service: WebhookService, body: bytes) -> None:
        outcome = service.deliver("label-studio", studio.source.name, studio.credentials(body), body, NOW)
        statuses.append(outcome.status)

    threads = [threading.Thread(target=deliver, args=(services[n % 2], b)) for n, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(statuses) == 8
    assert set(statuses) <= {201, 202}
    versions = [
        e["data"]["version"]
        for e in events_of(shared_ledger, tenant)
        if e["type"] in ("annotation.created", "annotation.updated")
    ]
    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) == 1 + statuses.count(201)
    assert verify(shared_ledger.db, log=log_for(tenant), jobs=1).intact


def test_a_delivery_that_cannot_have_its_sources_lock_is_503_and_records_nothing(
    studio: Tool, tenant: str, shared_ledger: Ledger
) -> None:
    service = WebhookService(shared_ledger.db, shared_ledger.appender, shared_ledger.queries, lock_wait=0.2)
    key = LOCK_KEY + studio.source.name
    with shared_ledger.db.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
        holder.commit()
        try:
            body = json.dumps(ls_payload()).encode()
            with pytest.raises(Overloaded):
                service.deliver("label-studio", studio.source.name, studio.credentials(body), body, NOW)
        finally:
            holder.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            holder.commit()
    assert events_of(shared_ledger, tenant) == []
