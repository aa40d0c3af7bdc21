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


# ---- issue 7: limits, writers, tenant names, lifetimes, the ledger's own messages -----------------------


def test_the_request_limits_have_their_defaults_and_read_the_environment() -> None:
    from ledger.settings import MiB

    default = Settings.from_env({}).limits
    assert (default.max_body_bytes, default.large_body_bytes, default.max_large_bodies) == (16 * MiB, MiB, 2)
    assert default.page_max_bytes == 4 * MiB
    assert Settings.from_env({}).jwt_max_lifetime_seconds == 24 * 3600
    tuned = Settings.from_env({"LEDGER_MAX_BODY_BYTES": "1048576", "LEDGER_LARGE_BODY_BYTES": "4096",
                               "LEDGER_MAX_LARGE_BODIES": "1", "LEDGER_PAGE_MAX_BYTES": "65536",
                               "LEDGER_LARGE_BODY_WAIT_SECONDS": "0.5",
                               "LEDGER_JWT_MAX_LIFETIME_SECONDS": "3600"})  # fmt: skip
    assert tuned.limits.max_body_bytes == MiB
    assert tuned.limits.large_body_wait_seconds == 0.5
    assert tuned.jwt_max_lifetime_seconds == 3600


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LEDGER_MAX_BODY_BYTES": "0"}, "LEDGER_MAX_BODY_BYTES"),
        ({"LEDGER_MAX_LARGE_BODIES": "-1"}, "LEDGER_MAX_LARGE_BODIES"),
        ({"LEDGER_JWT_MAX_LIFETIME_SECONDS": "0"}, "LEDGER_JWT_MAX_LIFETIME_SECONDS"),
        ({"LEDGER_MAX_BODY_BYTES": "1000", "LEDGER_LARGE_BODY_BYTES": "2000"}, "LEDGER_LARGE_BODY_BYTES"),
        ({"LEDGER_LARGE_BODY_WAIT_SECONDS": "-1"}, "LEDGER_LARGE_BODY_WAIT_SECONDS"),
    ],
)
def test_a_limit_that_cannot_work_is_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)


def test_only_ingest_may_write() -> None:
    from ledger.auth.tokens import WRITERS, Principal

    Principal("svc", frozenset({"ingest"}), "acme").require(WRITERS)
    with pytest.raises(PermissionDenied):
        Principal("root", frozenset({"admin"}), "acme", mfa=True).require(WRITERS)


@pytest.mark.parametrize("tenant", ["acme\n", "Acme", "acme/1", "", "a" * 64, "-acme"])
def test_a_token_cannot_be_issued_for_a_tenant_that_cannot_exist(embedded: Settings, tenant: str) -> None:
    with pytest.raises(ConfigurationError, match="tenant"):
        issue_dev_token(embedded, roles=["auditor"], tenant=tenant, subject="x")


@pytest.mark.parametrize("ttl", [0, -100_000, 24 * 3600 + 1])
def test_a_dev_token_lifetime_must_be_positive_and_within_the_maximum(embedded: Settings, ttl: int) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_JWT_MAX_LIFETIME_SECONDS"):
        issue_dev_token(embedded, roles=["auditor"], tenant="acme", subject="x", ttl_seconds=ttl)


def _signed(settings: Settings, **claims: object) -> str:
    from ledger.auth.tokens import dev_signing_key

    TokenVerifier(settings)  # creates the embedded key
    base = jwt.decode(issue_dev_token(settings, roles=["auditor"], tenant="acme", subject="x"),
                      options={"verify_signature": False})  # fmt: skip
    base.update(claims)
    for name in [k for k, v in base.items() if v is None]:
        del base[name]
    return jwt.encode(base, dev_signing_key(settings.signing_key_file), algorithm="EdDSA")


def test_a_token_living_longer_than_the_maximum_is_refused(embedded: Settings) -> None:
    import time

    now = int(time.time())
    century = _signed(embedded, iat=now, exp=now + 100 * 365 * 24 * 3600)
    with pytest.raises(AuthenticationFailed, match="LEDGER_JWT_MAX_LIFETIME_SECONDS"):
        TokenVerifier(embedded).verify(f"Bearer {century}")


def test_a_token_without_iat_is_refused(embedded: Settings) -> None:
    with pytest.raises(AuthenticationFailed, match="'iat'"):
        TokenVerifier(embedded).verify(f"Bearer {_signed(embedded, iat=None)}")


def test_a_token_whose_tenant_claim_is_not_a_tenant_is_refused(embedded: Settings) -> None:
    with pytest.raises(AuthenticationFailed, match="tenant"):
        TokenVerifier(embedded).verify(f"Bearer {_signed(embedded, tenant='acme' + chr(10))}")


def test_no_token_acts_in_the_ledgers_own_log(embedded: Settings) -> None:
    with pytest.raises(AuthenticationFailed, match="the ledger's own log"):
        TokenVerifier(embedded).verify(f"Bearer {_signed(embedded, tenant='ledger')}")


def test_no_producer_writes_into_the_ledgers_own_log() -> None:
    from ledger.domain.envelope import validate_event
    from ledger.domain.errors import ValidationFailed
    from tests.factories import example_event

    with pytest.raises(ValidationFailed) as refused:
        validate_event(example_event("annotation.created", tenant="ledger"))
    assert [e.field for e in refused.value.errors] == ["tenant"]


def test_an_expired_token_is_answered_in_the_ledgers_words(embedded: Settings) -> None:
    import time

    now = int(time.time())
    expired = _signed(embedded, iat=now - 7200, exp=now - 3600)
    with pytest.raises(AuthenticationFailed) as refused:
        TokenVerifier(embedded).verify(f"Bearer {expired}")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    assert refused.value.detail == f"the token expired at {when}; get a new one"


# PyJWT's own wording for each failure; none of it may reach a caller.
_LIBRARY_WORDS = ("Signature has expired", "Invalid audience", "Invalid issuer", "Not enough segments",
                  "Signature verification failed", "The specified alg value is not allowed",
                  "Token is missing", "The token is not yet valid", "Invalid header", "Invalid payload")  # fmt: skip


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s, t: t[:-4] + "AAAA",  # signature
        lambda s, t: "not-a-jwt",
        lambda s, t: "a.b.c",
        lambda s, t: _signed(s, aud="elsewhere"),
        lambda s, t: _signed(s, iss="elsewhere"),
        lambda s, t: _signed(s, exp=1),
        lambda s, t: _signed(s, iat=9_999_999_000, exp=9_999_999_999),
        lambda s, t: _signed(s, sub=None),
        lambda s, t: _signed(s, exp="tomorrow"),
    ],
)
def test_no_library_message_reaches_the_caller(embedded: Settings, mangle) -> None:
    token = mangle(embedded, _signed(embedded))
    with pytest.raises(AuthenticationFailed) as refused:
        TokenVerifier(embedded).verify(f"Bearer {token}")
    detail = refused.value.detail
    assert detail.startswith("the token")
    assert not any(words.lower() in detail.lower() for words in _LIBRARY_WORDS), detail


@pytest.mark.parametrize(
    "argv",
    [
        ["--tenant", "acme\n"],
        ["--tenant", "acme", "--ttl", "-100000"],
        ["--tenant", "acme", "--ttl", "0"],
        ["--tenant", "acme", "--ttl", str(100 * 365 * 24 * 3600)],
    ],
)
def test_ledger_token_refuses_what_would_make_a_useless_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    from ledger.cli.main import EXIT_ERROR, main

    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    monkeypatch.delenv("LEDGER_DATABASE_URL", raising=False)
    assert main(["token", "--role", "auditor", *argv]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ledger: ")


def test_ledger_token_prints_a_token_the_verifier_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.cli.main import EXIT_OK, main

    monkeypatch.setenv("LEDGER_HOME", str(tmp_path))
    monkeypatch.delenv("LEDGER_DATABASE_URL", raising=False)
    assert main(["token", "--role", "auditor", "--tenant", "acme", "--ttl", "60"]) == EXIT_OK
    token = capsys.readouterr().out.strip()
    assert TokenVerifier(Settings(home=tmp_path)).verify(f"Bearer {token}").tenant == "acme"
