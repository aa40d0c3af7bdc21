"""Issue 7 over a real server: what the read path refuses, the bounds on bodies, pages and error lists, the token
rules, the protocol details, and an OpenAPI document exact enough to test the API with."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.api.bodies import size_text
from ledger.domain.registry import EVENT_TYPES
from ledger.runtime import Ledger, wire
from ledger.settings import Limits
from ledger.storage.database import Database
from tests.conftest import TokenFactory, _settings, fresh_database, make_event, serving

STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
NUL, NEWLINE = "\x00", "\n"


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **headers}


def assert_parameter_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "parameter_invalid"
    assert problem["title"] == "A request parameter is not valid"
    assert name in [e["field"] for e in problem["errors"]], problem


# ---- item 4: every query and path parameter refuses control characters and over-long values --------------

QUERY_PARAMETERS = [
    ("/v1/events", "log", 100),
    ("/v1/events", "type", 100),
    ("/v1/events", "subject", 500),
    ("/v1/events", "actor", 200),
    ("/v1/events", "since", 64),
    ("/v1/events", "until", 64),
    ("/v1/events", "cursor", 1024),
    ("/v1/compliance/flags", "kind", 100),
    ("/v1/compliance/flags", "actor", 200),
    ("/v1/compliance/flags", "dataset", 200),
    ("/v1/compliance/flags", "cursor", 1024),
    ("/v1/annotators/ann-1/credentials", "as_of", 64),
    ("/v1/reports/retention", "as_of", 64),
    ("/v1/reports/retention", "format", 100),
]
PATH_PARAMETERS = [
    ("/v1/events/{}", "event_id", 200),
    ("/v1/items/{}/item-1/provenance", "dataset", 200),
    ("/v1/items/ds/{}/provenance", "item", 200),
    ("/v1/items/{}/item-1/labels", "dataset", 200),
    ("/v1/items/ds/{}/labels", "item", 200),
    ("/v1/annotators/{}/credentials", "actor", 200),
]


@pytest.mark.parametrize("bad", ["nul", "newline", "final newline", "too long"])
@pytest.mark.parametrize(("path", "name", "bound"), QUERY_PARAMETERS)
def test_a_query_parameter_the_ledger_cannot_use_is_a_400_naming_it(
    http: httpx.Client, token: TokenFactory, tenant: str, path: str, name: str, bound: int, bad: str
) -> None:
    # A final newline: Python's `$` matches before it, so a pattern alone lets it through.
    value = {"nul": f"a{NUL}b", "newline": f"x{NEWLINE}2026 FORGED", "final newline": f"a{NEWLINE}",
             "too long": "a" * (bound + 1)}[bad]  # fmt: skip
    response = http.get(path, params={name: value}, headers=bearer(token("auditor", tenant=tenant, mfa=True)))
    assert_parameter_refused(response, name)


@pytest.mark.parametrize("bad", ["%00", "%0A", "%7F", "%C2%85", "final %0A", "too long"])
@pytest.mark.parametrize(("template", "name", "bound"), PATH_PARAMETERS)
def test_a_path_parameter_the_ledger_cannot_use_is_a_400_naming_it(
    http: httpx.Client, token: TokenFactory, tenant: str, template: str, name: str, bound: int, bad: str
) -> None:
    value = {"too long": "a" * (bound + 1), "final %0A": "a%0A"}.get(bad, f"a{bad}b")
    response = http.get(template.format(value), headers=bearer(token("auditor", tenant=tenant)))
    assert_parameter_refused(response, name)


def test_values_at_the_bound_are_still_read(http: httpx.Client, token: TokenFactory, tenant: str) -> None:
    auditor = bearer(token("auditor", tenant=tenant))
    assert http.get("/v1/events", params={"actor": "a" * 200}, headers=auditor).status_code == 200
    assert http.get(f"/v1/events/{'e' * 200}", headers=auditor).status_code == 404


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        _cursor(["acme\u0000", 3]),
        _cursor([1, 2]),
        _cursor(["acme", -1]),
        _cursor(["acme", 2**63]),
        _cursor(["acme", True]),
        _cursor(["acme", 1.5]),
        _cursor({"log": "acme"}),
        _cursor(["acme"]),
        base64.urlsafe_b64encode(b'["a", 1e999]').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
@pytest.mark.parametrize("path", ["/v1/events", "/v1/compliance/flags"])
def test_a_cursor_this_server_did_not_issue_is_a_400(
    http: httpx.Client, token: TokenFactory, tenant: str, path: str, cursor: str
) -> None:
    response = http.get(path, params={"cursor": cursor}, headers=bearer(token("auditor", tenant=tenant)))
    assert_parameter_refused(response, "cursor")


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("/v1/events", "since", "0001-01-01T00:00:00+14:00"),
        ("/v1/events", "until", "9999-12-31T23:59:59-14:00"),
        ("/v1/events", "since", "2026-03-02T09:15:27"),
        ("/v1/annotators/ann-1/credentials", "as_of", "0001-01-01T00:00:00+14:00"),
        ("/v1/reports/retention", "as_of", "9999-12-31"),
        ("/v1/reports/retention", "as_of", "0001-01-01"),
        ("/v1/reports/retention", "format", "pdf"),
        ("/v1/events", "limit", "0"),
        ("/v1/events", "limit", "many"),
    ],
)
def test_values_outside_what_the_ledger_holds_are_a_400(
    http: httpx.Client, token: TokenFactory, tenant: str, path: str, name: str, value: str
) -> None:
    response = http.get(path, params={name: value}, headers=bearer(token("auditor", tenant=tenant, mfa=True)))
    assert_parameter_refused(response, name)


def test_an_unknown_query_parameter_is_refused_naming_it(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    response = http.get(
        "/v1/events", params={"tyep": "review.submitted"}, headers=bearer(token("auditor", tenant=tenant))
    )
    assert_parameter_refused(response, "tyep")


# ---- item 12 (type): an unknown event type is named, not answered with an empty page ----------------------


def test_an_unknown_event_type_filter_is_a_400_naming_type(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    auditor = bearer(token("auditor", tenant=tenant))
    response = http.get("/v1/events", params={"type": "nope"}, headers=auditor)
    assert_parameter_refused(response, "type")
    assert "annotation.created" in response.json()["errors"][0]["message"]
    assert http.get("/v1/events", params={"type": "review.submitted"}, headers=auditor).status_code == 200


# ---- items 7, 8, 14: bodies bounded in size and in how many large ones are parsed at once ----------------

SMALL = Limits(
    max_body_bytes=64 * 1024,
    large_body_bytes=1024,
    max_large_bodies=1,
    large_body_wait_seconds=0,
    page_max_bytes=4000,
)


@pytest.fixture(scope="module")
def small_server(
    pg_server: str,
    template_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    signing_key: Ed25519PrivateKey,
) -> Iterator[tuple[str, Ledger]]:
    """A second real server over its own database, with tight limits so that tests can reach them."""
    with fresh_database(pg_server, f"ledger_test_small_{os.getpid()}") as url:
        db = Database(url, pool_size=4)
        settings = dataclasses.replace(
            _settings(tmp_path_factory.mktemp("small"), url, signing_key), limits=SMALL
        )
        ledger = wire(settings, db)
        with serving(ledger) as base:
            yield base, ledger
        db.dispose()


@pytest.fixture
def small(small_server: tuple[str, Ledger]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_server[0], timeout=30) as client:
        yield client


def test_the_limit_is_named_the_way_people_read_it() -> None:
    assert size_text(16 * 1024 * 1024) == "16 MiB"
    assert size_text(64 * 1024) == "64 KiB"
    assert size_text(1500) == "1500 bytes"


def test_a_body_over_the_limit_is_a_413_that_says_the_limit(
    small: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    response = small.post(
        "/v1/events",
        content=b" " * (64 * 1024 + 1),
        headers=bearer(token("ingest", tenant=tenant), **STRUCTURED),
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "body_too_large"
    assert response.json()["detail"] == "the body is over the 64 KiB limit; split the batch into smaller ones"


def test_a_streamed_body_without_a_length_is_held_to_the_same_limit(
    small: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(80):
            yield b" " * 1024

    response = small.post(
        "/v1/events", content=chunks(), headers=bearer(token("ingest", tenant=tenant), **STRUCTURED)
    )
    assert response.status_code == 413
    assert "64 KiB" in response.json()["detail"]


def _start_large_post(base_url: str, token: str) -> socket.socket:
    """A POST whose length says "large" and whose body has not all arrived: it holds a large-body slot."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 4096\r\n\r\n"
    )
    sock.sendall(head.encode() + b"[")
    return sock


def test_only_so_many_large_bodies_are_parsed_at_once_the_others_get_503_with_retry_after(
    small: httpx.Client, small_server: tuple[str, Ledger], token: TokenFactory, tenant: str
) -> None:
    ingest = token("ingest", tenant=tenant)
    large = b" " * 2048
    held = _start_large_post(small_server[0], ingest)
    try:
        # The held request reaches its handler at a moment this test cannot see: ask until it has.
        deadline = time.monotonic() + 20
        while True:
            response = small.post("/v1/events", content=large, headers=bearer(ingest, **STRUCTURED))
            if response.status_code == 503 or time.monotonic() > deadline:
                break
        assert response.status_code == 503
        assert response.json()["code"] == "overloaded"
        assert int(response.headers["retry-after"]) >= 1
        # A small body is never held back.
        assert small.post("/v1/events", content=b"{", headers=bearer(ingest, **STRUCTURED)).status_code == 400
        held.sendall(b" " * 4095)
        assert held.recv(65536).startswith(b"HTTP/1.1 400")
    finally:
        held.close()
    # The slot is free again.
    assert small.post("/v1/events", content=large, headers=bearer(ingest, **STRUCTURED)).status_code == 400


# ---- item 6: pages bounded in bytes as well as in events -------------------------------------------------


def test_a_page_stops_before_its_byte_bound_and_the_cursor_goes_on(
    small: httpx.Client, small_server: tuple[str, Ledger], token: TokenFactory, tenant: str
) -> None:
    events = [make_event(tenant, data_comment="x" * 300) for _ in range(12)]
    assert (
        small.post(
            "/v1/events", content=json.dumps(events), headers=bearer(token("ingest", tenant=tenant), **BATCH)
        ).status_code
        == 201
    )
    auditor = bearer(token("auditor", tenant=tenant))
    seen, pages, cursor = [], 0, None
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = small.get("/v1/events", params=params, headers=auditor).json()
        stored = [len(json.dumps(e["event"])) for e in page["events"]]
        assert 1 <= len(stored) < 12
        assert sum(stored) <= SMALL.page_max_bytes or len(stored) == 1
        seen += [e["receipt"]["position"] for e in page["events"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Each page read is recorded in the same log, after the producer's twelve: every event once, in order.
    assert seen == list(range(len(seen)))
    assert len(seen) >= 12
    assert pages > 1


def test_an_event_larger_than_the_page_bound_is_still_served_alone(
    small_server: tuple[str, Ledger], tenant: str
) -> None:
    from ledger.domain.envelope import validate_event
    from ledger.storage.queries import EventFilter

    ledger = small_server[1]
    ledger.appender.append([validate_event(make_event(tenant)) for _ in range(3)])
    page = ledger.queries.list(EventFilter(tenant=tenant), limit=10, max_bytes=1)
    assert [e.position for e in page.events] == [0]
    assert page.next_cursor is not None
    rest = ledger.queries.list(EventFilter(tenant=tenant), cursor=page.next_cursor, limit=10, max_bytes=10**9)
    assert [e.position for e in rest.events] == [1, 2]
    assert rest.next_cursor is None


# ---- item 8: error bodies never outgrow the request -----------------------------------------------------


def test_a_batch_of_many_bad_events_is_answered_with_the_first_errors_and_their_count(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    body = b"[" + b",".join([b"{}"] * 5000) + b"]"
    response = http.post("/v1/events", content=body, headers=bearer(token("ingest", tenant=tenant), **BATCH))
    assert response.status_code == 422
    problem = response.json()
    assert len(problem["errors"]) == 100
    assert problem["error_count"] >= 5000
    assert len(response.content) < 64 * 1024


# ---- items 10 and 14: roles, tokens and protocol details ---------------------------------------------------


def test_admin_with_mfa_cannot_write_only_ingest_can(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    admin = token("admin", tenant=tenant, mfa=True)
    refused = http.post(
        "/v1/events", content=json.dumps(make_event(tenant)), headers=bearer(admin, **STRUCTURED)
    )
    assert refused.status_code == 403
    assert "ingest" in refused.json()["detail"]
    ingest = token("ingest", tenant=tenant)
    assert (
        http.post(
            "/v1/events", content=json.dumps(make_event(tenant)), headers=bearer(ingest, **STRUCTURED)
        ).status_code
        == 201
    )


def test_the_event_types_need_a_token_of_any_role(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    assert http.get("/v1/event-types").status_code == 401
    for role in ("ingest", "auditor", "security", "regulatory"):
        assert http.get("/v1/event-types", headers=bearer(token(role, tenant=tenant))).status_code == 200
    assert (
        http.get("/v1/event-types", headers=bearer(token("admin", tenant=tenant, mfa=True))).status_code
        == 200
    )


def test_an_expired_token_is_answered_in_the_ledgers_words(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    response = http.get("/v1/events", headers=bearer(token("auditor", tenant=tenant, ttl=-120)))
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert re.fullmatch(r"the token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; get a new one", detail), (
        detail
    )
    assert "Signature" not in response.text


def test_a_token_with_a_lifetime_over_the_maximum_is_refused(
    http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    century = token("auditor", tenant=tenant, ttl=100 * 365 * 24 * 3600)
    response = http.get("/v1/events", headers=bearer(century))
    assert response.status_code == 401
    assert "LEDGER_JWT_MAX_LIFETIME_SECONDS" in response.json()["detail"]


def test_options_on_the_events_path_allows_what_it_serves(http: httpx.Client) -> None:
    options = http.options("/v1/events")
    wrong_method = http.put("/v1/events")
    allowed = {m.strip() for m in options.headers["allow"].split(",")}
    assert allowed == {"GET", "OPTIONS", "POST"}
    assert wrong_method.status_code == 405
    assert {m.strip() for m in wrong_method.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize(
    ("fmt", "media"), [("csv", "text/csv"), ("html", "text/html"), ("json", "application/json")]
)
def test_a_report_names_its_charset_once(
    http: httpx.Client, token: TokenFactory, tenant: str, fmt: str, media: str
) -> None:
    ingest = bearer(token("ingest", tenant=tenant))
    assert (
        http.post("/v1/events", json=make_event(tenant), headers={**ingest, **STRUCTURED}).status_code == 201
    )
    response = http.get(
        "/v1/reports/retention",
        params={"format": fmt},
        headers=bearer(token("auditor", tenant=tenant, mfa=True)),
    )
    assert response.status_code == 200
    content_type = response.headers["content-type"]
    assert content_type.split(";")[0] == media
    assert content_type.count("charset") <= 1


# ---- item 15: the OpenAPI document -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(server_url: str) -> dict[str, Any]:
    return httpx.get(f"{server_url}/schema/openapi.json").json()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


WEBHOOK_SECURITY = {
    "/v1/webhooks/label-studio": [{"labelStudioSecret": []}],
    "/v1/webhooks/cvat": [{"cvatSignature": []}],
}
"""The webhook routes are authenticated by their source's own secret, not a JWT."""


def test_every_v1_operation_needs_the_bearer_scheme(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, method, operation in _operations(document):
        expected = [{"bearer": []}] if path.startswith("/v1/") else None
        assert operation.get("security") == WEBHOOK_SECURITY.get(path, expected), f"{method} {path}"


def test_every_error_status_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(problem["required"])
    assert "errors" not in problem["required"]
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        assert "500" in responses, f"{method} {path}"
        for status, response in responses.items():
            if int(status) >= 400:
                content = response["content"]
                assert list(content) == ["application/problem+json"], f"{method} {path} {status}"
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
    post = document["paths"]["/v1/events"]["post"]["responses"]
    assert {"200", "201", "400", "401", "403", "409", "413", "415", "422", "503"} <= set(post)


def test_the_post_body_is_described_for_every_content_mode(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/events"]["post"]["requestBody"]
    assert set(body["content"]) == {
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/json",
    }
    schemas = document["components"]["schemas"]
    documented = set(schemas["CloudEvent"]["discriminator"]["mapping"])
    assert documented == {name for name, t in EVENT_TYPES.items() if not t.internal}
    headers = {
        p["name"] for p in document["paths"]["/v1/events"]["post"]["parameters"] if p["in"] == "header"
    }
    assert {"ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-tenant", "ce-actor"} <= headers


@pytest.mark.parametrize("type_", sorted(name for name, t in EVENT_TYPES.items() if not t.internal))
def test_the_documented_schema_accepts_the_example_of_every_type(
    document: dict[str, Any], type_: str
) -> None:
    # Resolved as a producer's validator would: "#/components/..." against the document.
    schema = {"$ref": "#/components/schemas/CloudEvent", "components": document["components"]}
    event = make_event("acme", type_)
    jsonschema.Draft202012Validator(schema).validate(event)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**event, "type": "annotation.painted"})


def test_the_retention_report_is_documented_in_its_three_media_types(document: dict[str, Any]) -> None:
    ok = document["paths"]["/v1/reports/retention"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/csv", "text/html"}


def test_the_schema_page_loads_nothing_from_outside(http: httpx.Client) -> None:
    page = http.get("/schema")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert urls
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        asset = http.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0


def test_the_ui_assets_ship_in_the_package_with_their_licence() -> None:
    static = Path(__import__("ledger.api", fromlist=["x"]).__file__).parent / "static" / "swagger-ui"
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"} <= {
        p.name for p in static.iterdir()
    }
