"""The HTTP API over a real server and a real PostgreSQL: posting, reading, auth and errors."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import TokenFactory, make_event

STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **headers}


def post(
    http: httpx.Client, token: str, body: object, headers: dict[str, str] = STRUCTURED
) -> httpx.Response:
    return http.post("/v1/events", content=json.dumps(body), headers=bearer(token, **headers))


class TestPosting:
    def test_a_structured_event_gets_a_receipt_and_reads_back(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        event = make_event(tenant)
        response = post(http, token("ingest", tenant=tenant), event)

        assert response.status_code == 201, response.text
        receipt = response.json()
        assert receipt["id"] == event["id"]
        assert receipt["log"] == tenant
        assert receipt["position"] == 0
        assert len(receipt["hash"]) == 64
        assert receipt["duplicate"] is False

        read = http.get(f"/v1/events/{event['id']}", headers=bearer(token("auditor", tenant=tenant)))
        assert read.status_code == 200
        assert read.json()["receipt"]["hash"] == receipt["hash"]
        assert read.json()["event"]["data"]["label_class"] == event["data"]["label_class"]

    def test_a_batch_is_recorded_in_order(self, http, token: TokenFactory, tenant: str) -> None:
        events = [make_event(tenant) for _ in range(25)]
        response = post(http, token("ingest", tenant=tenant), events, BATCH)

        assert response.status_code == 201
        receipts = response.json()["receipts"]
        assert [r["id"] for r in receipts] == [e["id"] for e in events]
        assert [r["position"] for r in receipts] == list(range(25))

    def test_binary_mode_takes_attributes_from_ce_headers(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        event = make_event(tenant, "review.submitted")
        headers = {f"ce-{k}": str(v) for k, v in event.items() if k not in ("data", "datacontenttype")}
        headers["ce-source"] = "urn:acme:review%20workflow"  # header values are percent-encoded
        response = http.post(
            "/v1/events",
            content=json.dumps(event["data"]),
            headers=bearer(token("ingest", tenant=tenant), **headers, **{"content-type": "application/json"}),
        )

        assert response.status_code == 201, response.text
        stored = http.get(f"/v1/events/{event['id']}", headers=bearer(token("auditor", tenant=tenant))).json()
        assert stored["event"]["source"] == "urn:acme:review workflow"
        assert stored["event"]["data"]["level"] == 3

    def test_reposting_the_same_event_returns_the_original_receipt(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        event = make_event(tenant)
        first = post(http, token("ingest", tenant=tenant), event)
        again = post(http, token("ingest", tenant=tenant), event)

        assert again.status_code == 200
        assert again.json() == {**first.json(), "duplicate": True}

    def test_reposting_an_id_with_different_content_is_a_conflict(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        event = make_event(tenant)
        post(http, token("ingest", tenant=tenant), event)
        changed = {**event, "data": {**event["data"], "label_class": "mass"}}

        response = post(http, token("ingest", tenant=tenant), changed)

        assert response.status_code == 409
        problem = response.json()
        assert response.headers["content-type"].startswith("application/problem+json")
        assert problem["code"] == "idempotency_conflict"
        assert problem["errors"][0]["field"] == "id"

    def test_a_batch_with_one_bad_event_records_nothing_and_names_it(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        events = [make_event(tenant) for _ in range(3)]
        events[1]["data"]["geometry"]["width"] = -5

        response = post(http, token("ingest", tenant=tenant), events, BATCH)

        assert response.status_code == 422
        errors = response.json()["errors"]
        assert [(e["index"], e["field"]) for e in errors] == [(1, "data.geometry.bbox.width")]
        listed = http.get("/v1/events", headers=bearer(token("auditor", tenant=tenant))).json()
        assert listed["events"] == []


class TestMalformedInput:
    @pytest.mark.parametrize(
        ("mutate", "field"),
        [
            (lambda e: e.pop("actor"), "actor"),
            (lambda e: e.update(time="yesterday"), "time"),
            (lambda e: e.update(time="2026-03-02T09:15:27"), "time"),
            (lambda e: e.update(specversion="0.3"), "specversion"),
            (lambda e: e["data"].pop("label_class"), "data.label_class"),
            (lambda e: e["data"].update(origin="robot"), "data.origin"),
            (lambda e: e["data"].update(unexpected=1), "data.unexpected"),
            (lambda e: e.update(type="annotation.painted"), "type"),
            (lambda e: e.update(type="ledger.checkpoint_signed"), "type"),
        ],
    )
    def test_the_error_names_the_field(
        self, http, token: TokenFactory, tenant: str, mutate, field: str
    ) -> None:
        event = make_event(tenant)
        mutate(event)

        response = post(http, token("ingest", tenant=tenant), event)

        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]]

    @pytest.mark.parametrize(
        "text",
        ["patient SSN 123-45-6789", "call 555-123-4567", "mail jane.doe@example.org", "MRN: A1234567"],
    )
    def test_direct_identifiers_in_free_text_are_refused(
        self, http, token: TokenFactory, tenant: str, text: str
    ) -> None:
        event = make_event(tenant, data_comment=f"Reviewed; {text}.")

        response = post(http, token("ingest", tenant=tenant), event)

        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "forbidden_identifier"
        assert problem["errors"][0]["field"] == "data.comment"

    def test_a_body_that_is_not_json_is_a_400(self, http, token: TokenFactory, tenant: str) -> None:
        response = http.post(
            "/v1/events", content=b"{not json", headers=bearer(token("ingest", tenant=tenant), **STRUCTURED)
        )
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"

    def test_an_unknown_content_type_is_a_415(self, http, token: TokenFactory, tenant: str) -> None:
        response = http.post(
            "/v1/events",
            content=b"<xml/>",
            headers=bearer(token("ingest", tenant=tenant), **{"content-type": "text/xml"}),
        )
        assert response.status_code == 415


class TestAccessControl:
    def test_no_token_is_a_401(self, http) -> None:
        response = http.get("/v1/events")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")

    def test_a_token_signed_by_another_key_is_a_401(self, http, tenant: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from ledger.auth.tokens import sign_token
        from ledger.settings import Settings

        forged = sign_token(
            Ed25519PrivateKey.generate(), Settings(), roles=["admin"], tenant=tenant, subject="mallory"
        )
        assert http.get("/v1/events", headers=bearer(forged)).status_code == 401

    def test_an_expired_token_is_a_401(self, http, token: TokenFactory, tenant: str) -> None:
        expired = token("auditor", tenant=tenant, ttl=-120)
        assert http.get("/v1/events", headers=bearer(expired)).status_code == 401

    def test_an_unsigned_token_is_a_401(self, http, tenant: str) -> None:
        import jwt

        unsigned = jwt.encode({"sub": "x", "roles": ["admin"], "tenant": tenant, "iss": "ledger-dev", "aud": "ledger",
                               "exp": 9_999_999_999}, key=None, algorithm="none")  # fmt: skip
        assert http.get("/v1/events", headers=bearer(unsigned)).status_code == 401

    def test_a_reader_cannot_post(self, http, token: TokenFactory, tenant: str) -> None:
        response = post(http, token("auditor", tenant=tenant), make_event(tenant))
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"

    def test_an_ingest_token_cannot_read(self, http, token: TokenFactory, tenant: str) -> None:
        assert http.get("/v1/events", headers=bearer(token("ingest", tenant=tenant))).status_code == 403

    def test_a_token_cannot_write_into_another_tenant(self, http, token: TokenFactory, tenant: str) -> None:
        response = post(http, token("ingest", tenant=tenant), make_event("someone-else"))
        assert response.status_code == 403

    def test_a_token_cannot_read_another_tenants_event(self, http, token: TokenFactory, tenant: str) -> None:
        event = make_event(tenant)
        post(http, token("ingest", tenant=tenant), event)
        other = token("auditor", tenant=f"{tenant}-other")

        assert http.get(f"/v1/events/{event['id']}", headers=bearer(other)).status_code == 404
        # The other tenant sees only its own log: the record of its failed read, nothing of the first.
        seen = http.get("/v1/events", headers=bearer(other)).json()["events"]
        assert [e["event"]["type"] for e in seen] == ["access.data_viewed"]
        assert seen[0]["receipt"]["log"] == f"{tenant}-other"
        assert seen[0]["event"]["data"]["status"] == 404


class TestReading:
    @pytest.fixture
    def recorded(self, http, token: TokenFactory, tenant: str) -> list[dict]:
        events = [
            make_event(tenant, actor=f"ann-0{i % 3}", time=f"2026-03-0{1 + i % 5}T10:00:00Z")
            for i in range(12)
        ]
        events += [make_event(tenant, "review.submitted", subject="chest-ct-2026/item-9") for _ in range(3)]
        assert post(http, token("ingest", tenant=tenant), events, BATCH).status_code == 201
        return events

    def test_filters_combine(self, http, token: TokenFactory, tenant: str, recorded: list[dict]) -> None:
        auditor = bearer(token("auditor", tenant=tenant))
        by_type = http.get("/v1/events", params={"type": "review.submitted"}, headers=auditor).json()[
            "events"
        ]
        by_actor = http.get("/v1/events", params={"actor": "ann-01"}, headers=auditor).json()["events"]
        by_subject = http.get(
            "/v1/events", params={"subject": "chest-ct-2026/item-9"}, headers=auditor
        ).json()["events"]
        in_range = http.get(
            "/v1/events",
            params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-04T00:00:00Z"},
            headers=auditor,
        ).json()["events"]

        assert len(by_type) == 3
        assert {e["event"]["actor"] for e in by_actor} == {"ann-01"}
        assert len(by_actor) == 4
        assert len(by_subject) == 3
        assert {e["event"]["time"][:10] for e in in_range} == {"2026-03-02", "2026-03-03"}

    def test_cursor_pagination_visits_every_event_once(
        self, http, token: TokenFactory, tenant: str, recorded: list[dict]
    ) -> None:
        auditor = bearer(token("auditor", tenant=tenant))
        seen, types, cursor = [], [], None
        while True:
            params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
            page = http.get("/v1/events", params=params, headers=auditor).json()
            seen += [e["receipt"]["position"] for e in page["events"]]
            types += [e["event"]["type"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Every event once, in order; the log grows while it is paged through by the record of each
        # page read, and those records come after the producer's events.
        assert seen == list(range(len(seen)))
        assert types[: len(recorded)] == [e["type"] for e in recorded]
        assert set(types[len(recorded) :]) == {"access.data_viewed"}

    def test_a_bad_time_filter_names_the_parameter(self, http, token: TokenFactory, tenant: str) -> None:
        response = http.get(
            "/v1/events", params={"since": "last week"}, headers=bearer(token("auditor", tenant=tenant))
        )
        assert response.status_code == 400
        assert response.json()["code"] == "parameter_invalid"
        assert response.json()["errors"][0]["field"] == "since"

    def test_an_unknown_event_is_a_404_problem(self, http, token: TokenFactory, tenant: str) -> None:
        response = http.get("/v1/events/nope", headers=bearer(token("auditor", tenant=tenant)))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_sensitive_values_are_served_sealed(self, http, token: TokenFactory, tenant: str) -> None:
        event = make_event(tenant, "access.data_viewed")
        post(http, token("ingest", tenant=tenant), event)
        stored = http.get(f"/v1/events/{event['id']}", headers=bearer(token("auditor", tenant=tenant))).json()
        assert set(stored["event"]["data"]["source_address"]) == {"sealed"}
        assert "10.20.1.17" not in json.dumps(stored)


class TestOperations:
    def test_health_reports_the_database_and_kafka_positions(self, http, shared_ledger) -> None:
        with shared_ledger.db.connect() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO ledger_consumer_offsets (consumer_group, topic, partition, next_offset, high_watermark)"
                " VALUES ('health-test', 'ledger.events', 0, 40, 42) ON CONFLICT DO NOTHING"
            )
        body = http.get("/health").json()
        assert body["database"] == "ok"
        [mine] = [p for p in body["kafka"]["partitions"] if p["group"] == "health-test"]
        assert (mine["next_offset"], mine["lag"]) == (40, 2)

    def test_the_openapi_document_lists_the_routes(self, http) -> None:
        paths = http.get("/schema/openapi.json").json()["paths"]
        assert {"/v1/events", "/v1/events/{event_id}", "/health"} <= set(paths)

    def test_event_types_are_listed_with_their_sealed_fields(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        listed = http.get("/v1/event-types", headers=bearer(token("ingest", tenant=tenant)))
        types = {t["type"]: t for t in listed.json()["event_types"]}
        assert types["credential.granted"]["sealed_fields"] == ["data.license_number"]


class TestReviewFindings:
    """Inputs a careful reviewer found that once answered 500 or slipped through."""

    def test_the_same_event_in_binary_mode_is_a_repeat_of_the_structured_one(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        event = make_event(tenant, priority=5)
        event.pop("datacontenttype")
        first = post(http, token("ingest", tenant=tenant), event)
        headers = {f"ce-{k}": str(v) for k, v in event.items() if k != "data"}
        again = http.post("/v1/events", content=json.dumps(event["data"]),
                          headers=bearer(token("ingest", tenant=tenant), **headers, **{"content-type": "application/json"}))  # fmt: skip
        assert first.status_code == 201
        assert again.status_code == 200, again.text
        assert again.json()["position"] == first.json()["position"]

    def test_a_structured_request_with_stray_ce_headers_is_still_structured(
        self, http, token: TokenFactory, tenant: str
    ) -> None:
        response = post(
            http, token("ingest", tenant=tenant), make_event(tenant), {**STRUCTURED, "ce-specversion": "1.0"}
        )
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize("alg", ["RS256", "ES256"])
    def test_a_token_naming_another_algorithm_is_a_401(self, http, tenant: str, alg: str) -> None:
        import base64

        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        claims = b64(
            json.dumps({"sub": "x", "roles": ["admin"], "tenant": tenant, "exp": 9_999_999_999}).encode()
        )
        response = http.get("/v1/events", headers=bearer(f"{header}.{claims}.{b64(b'sig')}"))
        assert response.status_code == 401

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"actor": "ann\x00"}, "actor"),
            ({"time": 1772438127}, "time"),
            ({"subject": "Patient name: John Smith"}, "subject"),
            ({"contact": "jane.doe@example.org"}, "contact"),
            ({"data_resource": "study for MRN 00123456"}, "data.resource"),
        ],
    )
    def test_bad_envelope_values_are_refused_naming_the_field(
        self, http, token: TokenFactory, tenant: str, change, field
    ) -> None:
        event = make_event(tenant, "access.data_viewed", **change)
        response = post(http, token("ingest", tenant=tenant), event)
        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]]

    @pytest.mark.parametrize("body", [b"[" * 100_000, b'{"x": NaN}'])
    def test_bodies_json_cannot_carry_are_a_400(
        self, http, token: TokenFactory, tenant: str, body: bytes
    ) -> None:
        response = http.post(
            "/v1/events", content=body, headers=bearer(token("ingest", tenant=tenant), **STRUCTURED)
        )
        assert response.status_code == 400

    def test_a_forged_cursor_is_a_400(self, http, token: TokenFactory, tenant: str) -> None:
        import base64

        forged = base64.urlsafe_b64encode(b'["a", 1e999]').decode().rstrip("=")
        response = http.get(
            "/v1/events", params={"cursor": forged}, headers=bearer(token("auditor", tenant=tenant))
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["field"] == "cursor"

    def test_an_id_with_a_slash_reads_back(self, http, token: TokenFactory, tenant: str) -> None:
        event = make_event(tenant, id="tool/run-7/event-1")
        assert post(http, token("ingest", tenant=tenant), event).status_code == 201
        read = http.get("/v1/events/tool/run-7/event-1", headers=bearer(token("auditor", tenant=tenant)))
        assert read.status_code == 200
        assert read.json()["event"]["id"] == "tool/run-7/event-1"


def test_acting_as_admin_needs_mfa(http, token: TokenFactory, tenant: str) -> None:
    assert http.get("/v1/events", headers=bearer(token("admin", tenant=tenant))).status_code == 403
    assert http.get("/v1/events", headers=bearer(token("admin", tenant=tenant, mfa=True))).status_code == 200
    assert http.get("/v1/events", headers=bearer(token("admin", "auditor", tenant=tenant))).status_code == 200
