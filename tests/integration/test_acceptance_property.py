"""What the ledger accepts stays usable forever; what it refuses is refused at the door, naming the field.

Events are generated from the committed JSON Schemas (``tests/schema_strategy.py``), half of them with one
value pushed to an edge (times outside the accepted range, integers past int4, control characters, huge
lists and extension attributes). Each is posted to a real server over its own database; afterwards every
reader must answer without a 5xx: the log verifies, every accepted event reads back, item provenance and
labels, credentials, guidelines, flags, event pages and the retention report answer, and a rebuild of
every projection gives exactly the inline rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from ledger.auth.tokens import sign_token
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from tests.conftest import serving
from tests.integration.test_projections import snapshot
from tests.schema_strategy import events

TENANT = "prop"
STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.fixture
def client(ledger: Ledger, signing_key: Ed25519PrivateKey) -> Iterator[httpx.Client]:
    """A client of a real server over this test's own database: reads as an auditor, posts as ingest."""
    with serving(ledger) as url, httpx.Client(base_url=url, timeout=120) as http:

        def bearer(role: str) -> str:
            token = sign_token(signing_key, ledger.settings, roles=[role], tenant=TENANT, subject=f"prop-{role}",
                               ttl_seconds=3600, mfa=True)  # fmt: skip
            return "Bearer " + token

        http.headers["authorization"] = bearer("auditor")
        http.headers["x-test-ingest"] = bearer("ingest")
        yield http


def _post(http: httpx.Client, event: dict[str, Any]) -> httpx.Response:
    headers = {**STRUCTURED, "authorization": http.headers["x-test-ingest"]}
    return http.post("/v1/events", json=event, headers=headers)


def _refused_properly(response: httpx.Response) -> bool:
    """A 4xx problem+json whose ``errors`` name at least one field."""
    if not 400 <= response.status_code < 500:
        return False
    body = response.json()
    return bool(body.get("errors")) and all(
        isinstance(e.get("field"), str) and e["field"] for e in body["errors"]
    )


def _get(http: httpx.Client, path: str, **params: str) -> httpx.Response:
    response = http.get(path, params=params)
    assert response.status_code < 500, (
        f"{path} {params} answered {response.status_code}: {response.text[:500]}"
    )
    return response


def _read_everything(http: httpx.Client, accepted: list[dict[str, Any]]) -> None:
    for event in accepted:
        assert _get(http, "/v1/events/" + quote(event["id"], safe="")).status_code == 200, event["id"]
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        dataset, item = data.get("dataset"), data.get("item")
        if isinstance(dataset, str) and isinstance(item, str):
            for what in ("provenance", "labels"):
                _get(http, f"/v1/items/{quote(dataset, safe='')}/{quote(item, safe='')}/{what}")
        for person in {event.get("actor"), data.get("annotator")} - {None}:
            _get(http, f"/v1/annotators/{quote(str(person), safe='')}/credentials")
    _get(http, "/v1/guidelines")
    for path in ("/v1/events", "/v1/compliance/flags"):
        cursor: str | None = None
        for _ in range(1000):
            page = _get(http, path, **({"cursor": cursor} if cursor else {}), limit="1000").json()
            cursor = page.get("next_cursor")
            if not cursor:
                break
    for fmt in ("json", "csv", "html"):
        _get(http, "/v1/reports/retention", format=fmt)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(batch=st.lists(events(TENANT), min_size=1, max_size=6))
def test_what_is_accepted_stays_usable_and_what_is_refused_names_a_field(
    ledger: Ledger, client: httpx.Client, batch: list[dict[str, Any]]
) -> None:
    accepted = []
    for event in batch:
        response = _post(client, event)
        assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
        if response.status_code in (200, 201):
            accepted.append(event)
        else:
            assert _refused_properly(response), f"{response.status_code}: {response.text[:500]}"
        # --hypothesis-show-statistics tells how much of what was generated got in, and of which types
        note(f"{event.get('type')}: {response.status_code}")

    report = verify(ledger.db)
    assert report.intact, report.breaks
    _read_everything(client, accepted)
    inline = snapshot(ledger)
    rebuild(ledger.db, all_projectors())
    assert snapshot(ledger) == inline
