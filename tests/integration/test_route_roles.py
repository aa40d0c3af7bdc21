"""Every route of the OpenAPI document against the one table of who may call it (``ledger.auth.routes``),
over a real server: 401 without a token, 403 for each role the row leaves out, 403 without MFA where the row
needs it, and an allowed role let through; the webhook routes refuse every JWT (401) and let their source's
own secret through. And no body read by one tenant holds another tenant's data."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.auth.routes import ROUTES, RouteAccess
from ledger.auth.tokens import ROLES, sign_token
from ledger.domain.canonical import canonicalize
from ledger.runtime import Ledger
from ledger.webhooks.sources import SourceStore
from tests.conftest import make_event

BATCH = {"content-type": "application/cloudevents-batch+json"}
METHODS = ("get", "post", "put", "patch", "delete")
DENIED = (401, 403)
RELEASE = "r1"


@dataclass
class World:
    """One tenant's data, every name in it carrying the tenant's ``marker``."""

    marker: str
    tenant: str = ""
    dataset: str = ""
    items: tuple[str, str] = ("", "")
    actor: str = ""
    guideline: str = ""
    event_ids: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    anomaly_id: str = ""
    webhooks: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Webhook route → the (name, secret) of a source of that tool in the tenant."""

    def __post_init__(self) -> None:
        m = self.marker
        self.tenant = f"t-{m}"
        self.dataset = f"ds-{m}"
        self.items = (f"item-{m}-1", f"item-{m}-2")
        self.actor = f"ann-{m}"
        self.guideline = f"gl-{m}"

    @property
    def log(self) -> str:
        return self.tenant

    def events(self, *, extra: bool) -> list[dict[str, Any]]:
        """A credential, a guideline, two annotations and a read; with ``extra`` a login failure too."""
        m = self.marker
        out = [
            make_event(
                self.tenant,
                "credential.granted",
                id=f"evt-{m}-cred",
                data_annotator=self.actor,
                data_credential_id=f"cred-{m}",
            ),
            make_event(
                self.tenant, "guideline.published", id=f"evt-{m}-gl", data_guideline_id=self.guideline
            ),
        ]
        for n, item in enumerate(self.items):
            out.append(
                make_event(
                    self.tenant,
                    "annotation.created",
                    id=f"evt-{m}-ann-{n}",
                    actor=self.actor,
                    subject=f"{self.dataset}/{item}",
                    data_dataset=self.dataset,
                    data_item=item,
                    data_annotation_id=f"a-{m}-{n}",
                    data_guideline_id=self.guideline,
                    # a version never published: each annotation raises a compliance flag
                    data_guideline_version="9.9",
                )
            )
        out.append(
            make_event(
                self.tenant,
                "access.data_viewed",
                id=f"evt-{m}-view",
                actor=self.actor,
                subject=f"{self.dataset}/{self.items[0]}",
                data_resource=f"{self.dataset}/{self.items[0]}",
                data_dataset=self.dataset,
                data_item=self.items[0],
            )
        )
        # Two readers disagreeing on item 1 under the shared QC policy's guideline (tests/conftest.py), and
        # a single read of item 2: the quality routes have an item below policy, one within, an annotator.
        for n, (who, item, label) in enumerate(
            (
                (self.actor, self.items[0], "nodule"),
                (f"rdr-{m}", self.items[0], "mass"),
                (f"rdr-{m}", self.items[1], "mass"),
            )
        ):
            out.append(
                make_event(
                    self.tenant,
                    "annotation.created",
                    id=f"evt-{m}-qc-{n}",
                    actor=who,
                    subject=f"{self.dataset}/{item}",
                    data_dataset=self.dataset,
                    data_item=item,
                    data_annotation_id=f"a-{m}-qc-{n}",
                    data_label_class=label,
                    data_origin="human",
                    data_guideline_id="qc-route",
                    data_guideline_version="9.9",
                )
            )
        # A release of both items: the lineage report has a release to show.
        released = [{"item": item, "label_class": "nodule"} for item in self.items]
        out.append(
            make_event(
                self.tenant,
                "dataset.release_created",
                id=f"evt-{m}-release",
                data_dataset=self.dataset,
                data_release=RELEASE,
                data_split="test",
                data_items=released,
                data_items_sha256=hashlib.sha256(canonicalize(released)).hexdigest(),
            )
        )
        # Every break-glass use raises an anomaly: the anomaly routes have one to show.
        out.append(
            make_event(
                self.tenant,
                "access.break_glass",
                id=f"evt-{m}-glass",
                actor=self.actor,
                data_resource=f"{self.dataset}/{self.items[1]}",
                data_dataset=self.dataset,
                data_item=self.items[1],
            )
        )
        if extra:
            out.append(make_event(self.tenant, "auth.login_failed", id=f"evt-{m}-login", actor=self.actor))
        return out


class Tokens:
    """Test tokens the shared server accepts."""

    def __init__(self, ledger: Ledger, key: Ed25519PrivateKey) -> None:
        self._ledger, self._key = ledger, key

    def __call__(self, *roles: str, tenant: str, mfa: bool = True) -> dict[str, str]:
        token = sign_token(self._key, self._ledger.settings, roles=list(roles), tenant=tenant,
                           subject=f"sub-{roles[0]}", ttl_seconds=600, mfa=mfa)  # fmt: skip
        return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def tokens(shared_ledger: Ledger, signing_key: Ed25519PrivateKey) -> Tokens:
    return Tokens(shared_ledger, signing_key)


@pytest.fixture(scope="module")
def operations(client: httpx.Client) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the served OpenAPI document: (METHOD, path template) -> operation."""
    document = client.get("/schema/openapi.json").json()
    return {
        (method.upper(), path): op
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


@pytest.fixture(scope="module")
def worlds(client: httpx.Client, tokens: Tokens, shared_ledger: Ledger) -> tuple[World, World]:
    """Tenants A and B with the same kinds of data (B also a login failure), checkpoints and a report."""
    # A's log sorts after B's: the order in which a foreign cursor could resume inside A's own log.
    a, b = World("f" + uuid.uuid4().hex[:9]), World("0" + uuid.uuid4().hex[:9])
    for world in (a, b):
        events = world.events(extra=world is b)
        ingest = tokens("ingest", tenant=world.tenant, mfa=False)
        for half in (events[:3], events[3:]):  # two checkpoints, so the checkpoint list has pages
            response = client.post("/v1/events", content=json.dumps(half), headers={**ingest, **BATCH})
            assert response.status_code == 201, response.text
            receipts = response.json()["receipts"]
            world.event_ids += [r["id"] for r in receipts]
            world.positions += [r["position"] for r in receipts]
            assert shared_ledger.checkpoints.sign(world.log) is not None
        reader = tokens("regulatory", tenant=world.tenant)
        assert client.get("/v1/reports/retention", headers=reader).status_code == 200
        for key, path in (
            ("events", "/v1/events"),
            ("flags", "/v1/compliance/flags"),
            ("quality-items", "/v1/quality/items"),
            ("checkpoints", f"/v1/logs/{world.log}/checkpoints"),
        ):
            page = client.get(path, params={"limit": 1}, headers=reader).json()
            if page.get("next_cursor"):
                world.cursors[key] = page["next_cursor"]
        anomalies = client.get("/v1/anomalies", headers=tokens("security", tenant=world.tenant)).json()
        world.anomaly_id = anomalies["anomalies"][0]["anomaly_id"]
        for kind in ("label-studio", "cvat"):
            source, secret = SourceStore(shared_ledger.db).add(kind, world.tenant)
            world.webhooks[f"/v1/webhooks/{kind}"] = (source.name, secret)
    assert {"events", "flags", "checkpoints", "quality-items"} <= b.cursors.keys(), b.cursors
    return a, b


def report_window() -> dict[str, str]:
    """A week up to tomorrow, computed at the call: the worlds' events stay inside it across midnight."""
    today = datetime.now(UTC).date()
    return {"from": (today - timedelta(days=7)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}


def fhir_window() -> dict[str, str]:
    """From before the examples' event times up to tomorrow: the worlds' events and their recorded reads."""
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    return {"since": "2020-01-01T00:00:00Z", "until": f"{tomorrow.isoformat()}T00:00:00Z"}


def path_values(world: World) -> dict[str, str]:
    """Path parameters filled from a world's known values."""
    return {
        "event_id": world.event_ids[2],
        "dataset": world.dataset,
        "item": world.items[0],
        "actor": world.actor,
        "log": world.log,
        "anomaly_id": world.anomaly_id,
        "release": RELEASE,
    }


def variants(world: World, method: str, path: str) -> list[dict[str, Any]]:
    """Realistic query parameters of each GET route (required ones always present)."""
    last = world.positions[-1]
    return {
        "/v1/events": [{}, {"limit": 1}, {"log": world.log}, {"actor": world.actor},
                       {"subject": f"{world.dataset}/{world.items[0]}"}, {"type": "annotation.created"}],
        "/v1/events/{event_id}": [{}, {"proof": "true"}],
        "/v1/annotators/{actor}/credentials": [{}],
        "/v1/compliance/flags": [{}, {"limit": 1}, {"actor": world.actor}, {"dataset": world.dataset}],
        "/v1/reports/retention": [{"format": f} for f in ("json", "csv", "html")],
        "/v1/releases/{dataset}/{release}/lineage": [{"format": f} for f in ("json", "csv", "html")],
        "/v1/logs/{log}/proofs/consistency": [{"from": 1}, {"from": 1, "to": last + 1}],
        "/v1/logs/{log}/proofs/inclusion": [{"position": 0}, {"position": last}],
        "/v1/logs/{log}/checkpoints": [{}, {"limit": 1}],
        "/v1/anomalies": [{}, {"limit": 1}, {"rule": "break_glass"}, {"actor": world.actor}],
        "/v1/quality/annotators/{actor}": [{}],
        "/v1/quality/items": [{}, {"below_policy": "true"}, {"below_policy": "false"}, {"limit": 1},
                              {"dataset": world.dataset}, {"application": "route-qc"}],
        "/v1/reports/access-review": [{**report_window(), "format": f} for f in ("json", "csv", "html")],
        "/v1/export/fhir": [{**fhir_window(), "format": f} for f in ("bundle", "ndjson")],
        "/v1/bundles": [{"item": f"{world.dataset}/{world.items[0]}"}, {"events": ",".join(world.event_ids[:2])},
                        {"log": world.log, "from": 0, "to": 2}],
        "/v1/webhooks/label-studio": [{"source": world.webhooks.get(path, ("", ""))[0]}],
        "/v1/webhooks/cvat": [{"source": world.webhooks.get(path, ("", ""))[0]}],
    }.get(path, [{}]) if method == "GET" or path.startswith("/v1/webhooks/") else [{}]  # fmt: skip


def url_of(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no known value for a parameter of {path}"
    return path


def call(client: httpx.Client, method: str, path: str, world: World, headers: dict[str, str],
         params: dict[str, Any] | None = None) -> httpx.Response:  # fmt: skip
    """One request to an operation, its path filled from ``world``; a POST carries a plausible body."""
    url = url_of(path, path_values(world))
    query = params if params is not None else variants(world, method, path)[0]
    if path.startswith("/v1/webhooks/"):
        body = b'{"action": "WEBHOOK_TEST", "event": "ping"}'
        return client.post(
            url, params=query, content=body, headers={**headers, "content-type": "application/json"}
        )
    if method == "POST" and path == "/v1/events":
        body = json.dumps([make_event(world.tenant)])
        return client.post(url, content=body, headers={**headers, **BATCH})
    if method == "POST":
        return client.post(
            url, content=b"not a cosigned note\n", headers={**headers, "content-type": "text/plain"}
        )
    return client.request(method, url, params=query, headers=headers)


def v1(operations: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted(k for k in operations if k[1].startswith("/v1/"))


def by_jwt(operations: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, str]]:
    """The ``/v1`` operations a JWT authenticates: all but the webhooks (``by_source_secret``)."""
    return [k for k in v1(operations) if not ROUTES[k].by_source_secret]


def by_secret(operations: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, str]]:
    """The webhook operations, authenticated by their source's own secret."""
    return [k for k in v1(operations) if ROUTES[k].by_source_secret]


def source_credentials(path: str, world: World, body: bytes) -> dict[str, str]:
    """The headers proving a delivery of ``body`` comes from the world's source of that tool."""
    _, secret = world.webhooks[path]
    if path.endswith("/cvat"):
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"x-signature-256": f"sha256={digest}"}
    return {"authorization": f"Bearer {secret}"}


def settle(failures: list[str]) -> None:
    """Fail with every finding at once (a route that disagrees with its row names itself)."""
    assert not failures, "\n".join(failures)


# ---- the table and the document are the same set of routes --------------------------------------------


def test_every_v1_operation_has_a_row_and_every_row_an_operation(operations) -> None:
    served = set(v1(operations))
    assert served - ROUTES.keys() == set(), "operations without a row in ledger.auth.routes.ROUTES"
    assert ROUTES.keys() - served == set(), "rows of ROUTES the OpenAPI document does not have"


def test_every_v1_operation_declares_bearer_security_and_its_refusals(operations) -> None:
    missing = [f"{m} {p}" for m, p in by_jwt(operations)
               if operations[(m, p)].get("security") != [{"bearer": []}] or not {"401", "403"} <= operations[(m, p)]["responses"].keys()]  # fmt: skip
    assert missing == []


def test_the_webhook_operations_declare_their_sources_secret_and_401(operations) -> None:
    schemes = {(m, p): operations[(m, p)].get("security") for m, p in by_secret(operations)}
    assert schemes == {
        ("POST", "/v1/webhooks/cvat"): [{"cvatSignature": []}],
        ("POST", "/v1/webhooks/label-studio"): [{"labelStudioSecret": []}],
    }
    assert all("401" in operations[k]["responses"] for k in schemes)


# ---- who may call what --------------------------------------------------------------------------------


def test_without_a_token_every_v1_operation_is_401(client, operations, worlds) -> None:
    a, _ = worlds
    failures = []
    for method, path in v1(operations):
        response = call(client, method, path, a, {})
        if response.status_code != 401:
            failures.append(f"{method} {path} [401]: {response.status_code} {response.text[:200]}")
    settle(failures)


def test_every_role_outside_a_row_is_403_even_with_mfa(client, operations, worlds, tokens: Tokens) -> None:
    a, _ = worlds
    failures = []
    for method, path in by_jwt(operations):
        row = ROUTES[(method, path)]
        for role in sorted(set(ROLES) - row.roles):
            response = call(client, method, path, a, tokens(role, tenant=a.tenant))
            if response.status_code != 403:
                failures.append(
                    f"{method} {path} [403]: role {role} got {response.status_code} {response.text[:200]}"
                )
    settle(failures)


def test_a_row_needing_mfa_refuses_an_allowed_role_without_it(
    client, operations, worlds, tokens: Tokens
) -> None:
    a, _ = worlds
    failures = []
    rows = [(k, row) for k, row in sorted(ROUTES.items()) if row.mfa]
    assert rows, "the table has rows needing MFA (exports)"
    for (method, path), row in rows:
        for role in sorted(row.roles):
            response = call(client, method, path, a, tokens(role, tenant=a.tenant, mfa=False))
            if response.status_code != 403:
                failures.append(f"{method} {path} [mfa]: role {role} without MFA got {response.status_code}")
    settle(failures)


def test_every_allowed_role_is_let_through(client, operations, worlds, tokens: Tokens) -> None:
    a, _ = worlds
    failures = []
    for method, path in by_jwt(operations):
        for role in sorted(ROUTES[(method, path)].roles):
            response = call(client, method, path, a, tokens(role, tenant=a.tenant))
            if response.status_code in DENIED or response.status_code >= 500:
                failures.append(
                    f"{method} {path} [allowed]: role {role} got {response.status_code} {response.text[:200]}"
                )
    settle(failures)


def test_a_webhook_refuses_every_jwt_and_lets_its_sources_secret_through(
    client, operations, worlds, tokens: Tokens
) -> None:
    a, b = worlds
    failures = []
    body = b'{"action": "WEBHOOK_TEST", "event": "ping"}'
    for method, path in by_secret(operations):
        for role in sorted(ROLES):  # a JWT is not the source's secret, whatever its roles
            response = call(client, method, path, a, tokens(role, tenant=a.tenant))
            if response.status_code != 401:
                failures.append(f"{method} {path} [jwt]: role {role} got {response.status_code}")
        # Tenant B's secret does not open tenant A's source.
        refused = call(client, method, path, a, source_credentials(path, b, body))
        if refused.status_code != 401:
            failures.append(f"{method} {path} [other source]: {refused.status_code} {refused.text[:200]}")
        response = call(client, method, path, a, source_credentials(path, a, body))
        if response.status_code in DENIED or response.status_code >= 500:
            failures.append(f"{method} {path} [secret]: {response.status_code} {response.text[:200]}")
    settle(failures)


# ---- no data of another tenant --------------------------------------------------------------------------


def reader_of(row: RouteAccess) -> str:
    """An allowed role for a route, preferring one that is not admin."""
    return sorted(row.roles - {"admin"} or row.roles)[0]


def gets(operations) -> list[tuple[str, str]]:
    return [(m, p) for m, p in v1(operations) if m == "GET"]


def leaks(body: str, theirs: World, *, with_types: bool) -> list[str]:
    """What of ``theirs`` a body shows: their marker (ids, dataset, actor, log name), a cursor, a type."""
    found = [f"marker {theirs.marker}"] if theirs.marker in body else []
    found += [f"cursor {name}" for name, cursor in theirs.cursors.items() if cursor in body]
    if with_types and "auth.login_failed" in body:
        found.append("event type auth.login_failed (tenant B only)")
    return found


def test_no_body_read_by_tenant_a_holds_tenant_b_data(client, operations, worlds, tokens: Tokens) -> None:
    a, b = worlds
    failures, seen = [], 0
    for method, path in gets(operations):
        headers = tokens(reader_of(ROUTES[(method, path)]), tenant=a.tenant)
        for params in variants(a, method, path):
            response = call(client, method, path, a, headers, params)
            if response.status_code != 200:
                failures.append(
                    f"{method} {path} [leak]: {params} expected 200 for tenant A's own data, got {response.status_code} {response.text[:200]}"
                )
                continue
            seen += len(response.content)
            found = leaks(response.text, b, with_types=path != "/v1/event-types")
            if found:
                failures.append(f"{method} {path} [leak]: {params} shows {', '.join(found)}")
            if a.marker not in response.text and path not in ("/v1/event-types", "/v1/keys"):
                failures.append(
                    f"{method} {path} [leak]: {params} tenant A's own data is not in the body (the check would be empty)"
                )
    assert seen > 0
    settle(failures)


def empty(response: httpx.Response) -> bool:
    """A 200 whose JSON lists are all empty: an empty page."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    body = response.json()
    return isinstance(body, dict) and all(not v for v in body.values() if isinstance(v, list))


def test_tenant_bs_ids_and_cursors_used_by_tenant_a_find_nothing(
    client, operations, worlds, tokens: Tokens
) -> None:
    a, b = worlds
    theirs = path_values(b)
    failures = []
    for method, path in gets(operations):
        headers = tokens(reader_of(ROUTES[(method, path)]), tenant=a.tenant)
        names = [p["name"] for p in operations[(method, path)].get("parameters", [])]
        attempts: list[tuple[str, dict[str, Any]]] = []
        if "{" in path:
            attempts.append((url_of(path, theirs), variants(b, method, path)[0]))
        own = url_of(path, path_values(a))
        for cursor in b.cursors.values():
            if "cursor" in names:
                attempts.append((own, {"cursor": cursor}))
        if path == "/v1/bundles":
            attempts += [(own, {"item": f"{b.dataset}/{b.items[0]}"}), (own, {"events": b.event_ids[0]}),
                         (own, {"log": b.log, "from": 0, "to": 2})]  # fmt: skip
        if path == "/v1/events":
            attempts += [
                (own, {"log": b.log}),
                (own, {"actor": b.actor}),
                (own, {"subject": f"{b.dataset}/{b.items[0]}"}),
            ]
        if path == "/v1/compliance/flags":
            attempts += [(own, {"actor": b.actor}), (own, {"dataset": b.dataset})]
        if path == "/v1/quality/items":
            attempts += [(own, {"dataset": b.dataset}), (own, {"dataset": b.dataset, "below_policy": "true"})]
        for url, params in attempts:
            response = client.get(url, params=params, headers=headers)
            found = leaks(response.text, b, with_types=True)
            # Tenant B's names come back only where the request itself quoted them (a 404 naming the id asked for).
            quoted = [f for f in found if not (f.startswith("marker") and response.status_code == 404)]
            if quoted:
                failures.append(f"GET {path} [leak]: {url} {params} shows {', '.join(quoted)}")
            if response.status_code not in (400, 404) and not empty(response):
                failures.append(
                    f"GET {path} [isolation]: {url} {params} answered {response.status_code}, neither 404 nor an empty page: {response.text[:200]}"
                )
    settle(failures)
