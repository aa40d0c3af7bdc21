"""Settings from the environment, and the token rules of DESIGN §7."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.auth.tokens import TokenVerifier, issue_dev_token, sign_token
from ledger.domain.errors import AuthenticationFailed, ConfigurationError, PermissionDenied
from ledger.settings import Settings


def test_defaults_are_the_embedded_mode_on_loopback(tmp_path: Path) -> None:
    settings = Settings.from_env({"LEDGER_HOME": str(tmp_path)})
    assert settings.embedded
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.resolved_master_key_file == tmp_path / "keys" / "master.key"


def test_a_bad_number_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_PORT"):
        Settings.from_env({"LEDGER_PORT": "eighty"})


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_symmetric_and_none_algorithms_cannot_be_configured(algorithm: str) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_JWT_ALGORITHMS"):
        Settings.from_env({"LEDGER_JWT_ALGORITHMS": f"EdDSA,{algorithm}"})


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def test_a_dev_token_round_trips_into_a_principal(embedded: Settings) -> None:
    token = issue_dev_token(embedded, roles=["auditor", "security"], tenant="acme", subject="dana", mfa=True)
    principal = TokenVerifier(embedded).verify(f"Bearer {token}")
    assert principal.subject == "dana"
    assert principal.roles == {"auditor", "security"}
    assert principal.tenant == "acme"
    assert principal.mfa


def test_dev_tokens_are_refused_outside_embedded_mode(tmp_path: Path) -> None:
    external = Settings(home=tmp_path, database_url="postgresql://db/ledger")
    with pytest.raises(ConfigurationError, match="embedded mode only"):
        issue_dev_token(external, roles=["auditor"], tenant="acme", subject="x")


def test_an_external_database_needs_a_configured_public_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_JWT_PUBLIC_KEY_FILE"):
        TokenVerifier(Settings(home=tmp_path, database_url="postgresql://db/ledger"))


def test_a_token_for_another_audience_is_refused(embedded: Settings) -> None:
    other = Settings(home=embedded.home, jwt_audience="someone-else")
    token = issue_dev_token(other, roles=["auditor"], tenant="acme", subject="x")
    with pytest.raises(AuthenticationFailed, match=r"(?i)audience"):
        TokenVerifier(embedded).verify(f"Bearer {token}")


def test_the_public_key_cannot_be_used_as_an_hmac_secret(embedded: Settings) -> None:
    """The classic algorithm-confusion attack: an HS256 token keyed with the server's own public key."""
    import base64
    import hashlib
    import hmac
    import json

    from ledger.auth.tokens import dev_signing_key

    verifier = TokenVerifier(embedded)
    public_pem = (
        dev_signing_key(embedded.signing_key_file)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {
        "sub": "x",
        "roles": ["admin"],
        "tenant": "acme",
        "iss": "ledger-dev",
        "aud": "ledger",
        "exp": 9_999_999_999,
    }
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    signature = b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(AuthenticationFailed):
        verifier.verify(f"Bearer {signing_input}.{signature}")


def test_a_token_without_a_tenant_is_refused(embedded: Settings) -> None:
    settings = embedded
    token = sign_token(Ed25519PrivateKey.generate(), settings, roles=["auditor"], tenant="acme", subject="x")
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["tenant"]
    TokenVerifier(settings)  # creates the embedded key
    from ledger.auth.tokens import dev_signing_key

    unscoped = jwt.encode(claims, dev_signing_key(settings.signing_key_file), algorithm="EdDSA")
    with pytest.raises(AuthenticationFailed, match="tenant"):
        TokenVerifier(settings).verify(f"Bearer {unscoped}")


def test_roles_are_checked(embedded: Settings) -> None:
    token = issue_dev_token(embedded, roles=["ingest"], tenant="acme", subject="x")
    principal = TokenVerifier(embedded).verify(f"Bearer {token}")
    with pytest.raises(PermissionDenied, match="auditor"):
        principal.require(frozenset({"auditor"}))
