"""Token keys from an identity provider's JWKS URL, over a real ledger server and a real JWKS server:
tokens verify against the fetched set, and while the set cannot be fetched every call is 503, never data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.auth.tokens import sign_token
from ledger.runtime import Ledger, wire
from ledger.settings import JwksSettings
from tests.conftest import serving
from tests.unit.test_jwks import JwksServer, jwk


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.stop()


def jwks_ledger(ledger: Ledger, url: str) -> Ledger:
    settings = replace(ledger.settings, jwt_public_key_file=None, jwks=JwksSettings(url=url))
    return wire(settings, ledger.db)


def bearer(ledger: Ledger, key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    token = sign_token(key, ledger.settings, roles=["auditor"], tenant="acme", subject="dana", kid=kid)
    return {"authorization": f"Bearer {token}"}


def test_tokens_are_checked_with_the_fetched_key_set(ledger: Ledger, idp: JwksServer) -> None:
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    idp.document = json.dumps({"keys": [jwk(key, "k1")]}).encode()
    served = jwks_ledger(ledger, idp.url)
    with serving(served) as url, httpx.Client(base_url=url) as http:
        assert http.get("/v1/events", headers=bearer(served, key, "k1")).status_code == 200
        refused = http.get("/v1/events", headers=bearer(served, stranger, "k1"))
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthenticated"


def test_while_the_key_set_cannot_be_fetched_every_call_is_503_and_returns_no_data(ledger: Ledger) -> None:
    dead = JwksServer()
    dead.stop()  # nothing listens on its port any more
    served = jwks_ledger(ledger, dead.url)
    key = Ed25519PrivateKey.generate()
    with serving(served) as url, httpx.Client(base_url=url) as http:
        response = http.get("/v1/events", headers=bearer(served, key, "k1"))
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "token_keys_unavailable"
        assert "not the caller's fault" in body["detail"]
        assert "events" not in body
