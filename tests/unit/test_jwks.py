"""Token keys from a JWKS (issue 9): picked by kid, rotated, refreshed at a bounded rate, failing closed;
and the claims a token must carry (nbf, iat, sub, purpose) and the MFA a route may need."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ledger.api.problems import mapped_status
from ledger.auth.jwks import JwksError, JwksKeys, parse_jwks, read_jwks_url
from ledger.auth.tokens import READERS, Principal, TokenVerifier, sign_token
from ledger.domain.errors import (
    AuthenticationFailed,
    ConfigurationError,
    PermissionDenied,
    TokenKeysUnavailable,
)
from ledger.settings import JwksSettings, Settings

ALGORITHMS = ("EdDSA", "ES256", "RS256")


def jwk(private: Any, kid: str | None, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``private``."""
    public = private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        out = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        out = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        out = OKPAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        out["kid"] = kid
    return {**out, **extra}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks_bytes(*keys: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "dana",
        "iat": now,
        "exp": now + 600,
        "roles": ["auditor"],
        "tenant": "acme",
    }
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def bearer(private: Any, settings: Settings, *, kid: str | None, alg: str = "EdDSA", **overrides: Any) -> str:
    headers = None if kid is None else {"kid": kid}
    return "Bearer " + jwt.encode(claims(settings, **overrides), private, algorithm=alg, headers=headers)


@pytest.fixture
def key_a() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def key_b() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def file_settings(tmp_path: Path, document: bytes, **jwks: Any) -> Settings:
    path = tmp_path / "jwks.json"
    path.write_bytes(document)
    return Settings(
        home=tmp_path, database_url="postgresql://db/ledger", jwks=JwksSettings(file=path, **jwks)
    )


class Clock:
    """A clock the test moves by hand, so refresh and rate limits are tested without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- picking the key by kid ---------------------------------------------------------------------------


def test_a_tokens_kid_picks_its_key_from_the_set(tmp_path: Path, key_a, key_b) -> None:
    settings = file_settings(tmp_path, jwks_bytes(jwk(key_a, "a"), jwk(key_b, "b")))
    verifier = TokenVerifier(settings)
    assert verifier.verify(bearer(key_a, settings, kid="a", sub="alice")).subject == "alice"
    assert verifier.verify(bearer(key_b, settings, kid="b", sub="bob")).subject == "bob"
    with pytest.raises(AuthenticationFailed, match="signature"):
        verifier.verify(bearer(key_b, settings, kid="a"))


def test_with_several_keys_a_token_without_kid_is_refused(tmp_path: Path, key_a, key_b) -> None:
    settings = file_settings(tmp_path, jwks_bytes(jwk(key_a, "a"), jwk(key_b, "b")))
    with pytest.raises(AuthenticationFailed, match="kid"):
        TokenVerifier(settings).verify(bearer(key_a, settings, kid=None))


def test_a_key_without_kid_serves_only_when_it_is_the_only_one(tmp_path: Path, key_a, key_b) -> None:
    alone = file_settings(tmp_path, jwks_bytes(jwk(key_a, None)))
    assert TokenVerifier(alone).verify(bearer(key_a, alone, kid="whatever")).subject == "dana"
    assert TokenVerifier(alone).verify(bearer(key_a, alone, kid=None)).subject == "dana"
    two = file_settings(tmp_path, jwks_bytes(jwk(key_a, None), jwk(key_b, "b")))
    with pytest.raises(AuthenticationFailed, match="not in the identity provider's key set"):
        TokenVerifier(two).verify(bearer(key_a, two, kid="whatever"))


def test_a_jwk_of_another_type_than_its_alg_or_symmetric_or_for_encryption_is_left_out(key_a) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    document = jwks_bytes(
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        jwk(rsa_key, "rsa-hs", alg="HS256"),
        jwk(key_a, "enc", use="enc"),
        jwk(key_a, "ok"),
    )
    assert [k.kid for k in parse_jwks(document, ALGORITHMS)] == ["ok"]
    with pytest.raises(JwksError, match="no signing key"):
        parse_jwks(jwks_bytes({"kty": "oct", "k": "c2VjcmV0"}), ALGORITHMS)
    with pytest.raises(JwksError, match="'keys'"):
        parse_jwks(b'{"kty": "OKP"}', ALGORITHMS)


def test_a_jwks_file_that_cannot_be_used_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_JWT_JWKS_FILE"):
        TokenVerifier(file_settings(tmp_path, b"not json"))
    missing = Settings(home=tmp_path, jwks=JwksSettings(file=tmp_path / "absent.json"))
    with pytest.raises(ConfigurationError, match="cannot be read"):
        TokenVerifier(missing)


# ---- algorithms: strict per key, and the JWK's own alg binds ------------------------------------------


def test_a_jwks_own_alg_must_match_the_tokens(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = replace(
        file_settings(tmp_path, jwks_bytes(jwk(rsa_key, "r", alg="RS256"))),
        jwt_algorithms=("RS256", "PS256"),
    )
    verifier = TokenVerifier(settings)
    assert verifier.verify(bearer(rsa_key, settings, kid="r", alg="RS256")).subject == "dana"
    with pytest.raises(AuthenticationFailed, match=r"algorithm .* for key 'r' \(RS256\)"):
        verifier.verify(bearer(rsa_key, settings, kid="r", alg="PS256"))


def test_an_ec_key_verifies_only_its_own_curves_algorithm(tmp_path: Path) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    settings = replace(file_settings(tmp_path, jwks_bytes(jwk(p256, "e"))), jwt_algorithms=("ES256", "ES384"))
    verifier = TokenVerifier(settings)
    assert verifier.verify(bearer(p256, settings, kid="e", alg="ES256")).subject == "dana"
    # PyJWT will not sign ES384 with a P-256 key; a forger relabels the header of an ES256 token.
    token = bearer(p256, settings, kid="e", alg="ES256").removeprefix("Bearer ")
    relabelled = b64(json.dumps({"alg": "ES384", "kid": "e"}).encode()) + token[token.index(".") :]
    with pytest.raises(AuthenticationFailed, match=r"algorithm .* \(ES256\)"):
        verifier.verify(f"Bearer {relabelled}")


def test_a_jwks_public_key_cannot_be_used_as_an_hmac_secret(tmp_path: Path, key_a) -> None:
    document = jwks_bytes(jwk(key_a, "a"))
    settings = file_settings(tmp_path, document)
    public = json.dumps(jwk(key_a, "a")).encode()
    # PyJWT will not HMAC with a JWK-looking secret; a forger does it by hand, with the published key.
    for secret in (document, public):
        signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'a'}).encode())}.{b64(json.dumps(claims(settings)).encode())}"
        signature = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
        with pytest.raises(AuthenticationFailed, match="algorithm"):
            TokenVerifier(settings).verify(f"Bearer {signing_input}.{signature}")
    unsigned = jwt.encode(claims(settings), None, algorithm="none", headers={"kid": "a"})
    with pytest.raises(AuthenticationFailed, match="algorithm"):
        TokenVerifier(settings).verify(f"Bearer {unsigned}")


# ---- rotation, refresh and its rate limit --------------------------------------------------------------


def file_keys(path: Path, clock: Clock, **jwks: Any) -> JwksKeys:
    settings = JwksSettings(file=path, **jwks)
    keys = JwksKeys(path.read_bytes, name="test", algorithms=ALGORITHMS, settings=settings, clock=clock)
    keys.refresh()
    return keys


def test_rotation_a_new_kid_is_found_and_the_old_one_works_until_it_leaves_the_set(
    tmp_path: Path, key_a, key_b
) -> None:
    path, clock = tmp_path / "jwks.json", Clock()
    path.write_bytes(jwks_bytes(jwk(key_a, "a")))
    keys = file_keys(path, clock, refresh_seconds=300, min_refresh_seconds=30)
    assert keys.key_for("a").kid == "a"
    # The provider publishes b beside a: a token naming b makes the one read that finds it.
    path.write_bytes(jwks_bytes(jwk(key_a, "a"), jwk(key_b, "b")))
    clock.now += 31
    assert keys.key_for("b").kid == "b"
    # The provider withdraws a: it keeps working until the next scheduled read, then it is refused.
    path.write_bytes(jwks_bytes(jwk(key_b, "b")))
    clock.now += 100
    assert keys.key_for("a").kid == "a"
    clock.now += 200
    with pytest.raises(AuthenticationFailed, match="'a'"):
        keys.key_for("a")
    assert keys.key_for("b").kid == "b"


def test_a_flood_of_unknown_kids_reads_the_set_once_per_interval(tmp_path: Path, key_a) -> None:
    path, clock = tmp_path / "jwks.json", Clock()
    path.write_bytes(jwks_bytes(jwk(key_a, "a")))
    keys = file_keys(path, clock, refresh_seconds=300, min_refresh_seconds=30)
    assert keys.reads == 1
    clock.now += 30
    for n in range(200):
        with pytest.raises(AuthenticationFailed):
            keys.key_for(f"made-up-{n}")
    assert keys.reads == 2
    clock.now += 29
    with pytest.raises(AuthenticationFailed):
        keys.key_for("made-up-again")
    assert keys.reads == 2
    clock.now += 1
    with pytest.raises(AuthenticationFailed):
        keys.key_for("made-up-later")
    assert keys.reads == 3
    assert keys.key_for("a").kid == "a"
    assert keys.reads == 3  # a known kid reads nothing


def test_a_failed_read_keeps_the_last_set_until_it_is_too_old_then_fails_closed(
    tmp_path: Path, key_a
) -> None:
    path, clock = tmp_path / "jwks.json", Clock()
    path.write_bytes(jwks_bytes(jwk(key_a, "a")))
    keys = file_keys(path, clock, refresh_seconds=300, min_refresh_seconds=30, max_age_seconds=900)
    path.write_bytes(b"<html>maintenance</html>")
    clock.now += 600
    assert keys.key_for("a").kid == "a"
    clock.now += 301
    with pytest.raises(TokenKeysUnavailable, match="retry later"):
        keys.key_for("a")
    path.write_bytes(jwks_bytes(jwk(key_a, "a")))
    clock.now += 30
    assert keys.key_for("a").kid == "a"


# ---- claims --------------------------------------------------------------------------------------------


@pytest.fixture
def one_key(tmp_path: Path, key_a) -> Settings:
    return file_settings(tmp_path, jwks_bytes(jwk(key_a, "a")))


def test_nbf_is_honoured_with_the_configured_leeway(one_key: Settings, key_a) -> None:
    now = int(time.time())
    verifier = TokenVerifier(one_key)
    assert verifier.verify(bearer(key_a, one_key, kid="a", nbf=now + 20)).subject == "dana"
    with pytest.raises(AuthenticationFailed, match="'nbf'"):
        verifier.verify(bearer(key_a, one_key, kid="a", nbf=now + 120))
    strict = TokenVerifier(replace(one_key, jwt_leeway_seconds=0))
    with pytest.raises(AuthenticationFailed, match=r"'nbf'.*LEDGER_JWT_LEEWAY_SECONDS"):
        strict.verify(bearer(key_a, one_key, kid="a", nbf=now + 20))


def test_a_token_issued_in_the_future_is_refused(one_key: Settings, key_a) -> None:
    now = int(time.time())
    with pytest.raises(AuthenticationFailed, match="'iat'"):
        TokenVerifier(one_key).verify(bearer(key_a, one_key, kid="a", iat=now + 120, exp=now + 600))


@pytest.mark.parametrize(
    "subject", ["two words", "tab\there", "x" * 201, "", "nul\x00", "jane.doe@hospital.org", "555-123-4567"]
)
def test_a_subject_the_ledger_cannot_record_as_an_actor_is_refused(
    one_key: Settings, key_a, subject: str
) -> None:
    with pytest.raises(AuthenticationFailed, match="'sub'"):
        TokenVerifier(one_key).verify(bearer(key_a, one_key, kid="a", sub=subject))


def test_a_subject_that_is_not_a_string_is_refused(one_key: Settings, key_a) -> None:
    with pytest.raises(AuthenticationFailed, match="'sub'"):
        TokenVerifier(one_key).verify(bearer(key_a, one_key, kid="a", sub=42))


def test_the_purpose_claim_is_read_and_must_be_a_purpose_of_use(one_key: Settings, key_a) -> None:
    verifier = TokenVerifier(one_key)
    assert verifier.verify(bearer(key_a, one_key, kid="a", purpose="security")).purpose == "security"
    assert verifier.verify(bearer(key_a, one_key, kid="a")).purpose is None
    for bad in ("marketing", ["security"], 7):
        with pytest.raises(AuthenticationFailed, match="'purpose'"):
            verifier.verify(bearer(key_a, one_key, kid="a", purpose=bad))


def test_a_dev_token_carries_its_purpose(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    token = sign_token(Ed25519PrivateKey.generate(), settings, roles=["auditor"], tenant="acme", subject="x",
                       purpose="regulatory")  # fmt: skip
    assert jwt.decode(token, options={"verify_signature": False})["purpose"] == "regulatory"
    with pytest.raises(ConfigurationError, match="purpose"):
        sign_token(Ed25519PrivateKey.generate(), settings, roles=["auditor"], tenant="acme", subject="x",
                   purpose="marketing")  # fmt: skip
    with pytest.raises(ConfigurationError, match="subject"):
        sign_token(Ed25519PrivateKey.generate(), settings, roles=["auditor"], tenant="acme", subject="a b")


# ---- MFA -----------------------------------------------------------------------------------------------


def test_a_route_needing_mfa_refuses_an_allowed_role_without_it() -> None:
    without = Principal(subject="dana", roles=frozenset({"auditor"}), tenant="acme")
    without.require(READERS)
    with pytest.raises(PermissionDenied, match="sign in with MFA"):
        without.require(READERS, mfa=True)
    Principal(subject="dana", roles=frozenset({"auditor"}), tenant="acme", mfa=True).require(
        READERS, mfa=True
    )


def test_a_role_outside_the_route_is_refused_for_its_role_even_with_mfa() -> None:
    ingest = Principal(subject="svc", roles=frozenset({"ingest"}), tenant="acme", mfa=True)
    with pytest.raises(PermissionDenied, match="needs one of the roles"):
        ingest.require(READERS, mfa=True)


def test_acting_as_admin_still_needs_mfa() -> None:
    admin = Principal(subject="root", roles=frozenset({"admin"}), tenant="acme")
    with pytest.raises(PermissionDenied, match=r"admin.*sign in with MFA"):
        admin.require(READERS)


# ---- settings ------------------------------------------------------------------------------------------


def test_the_jwks_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LEDGER_JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json",
            "LEDGER_JWT_JWKS_REFRESH_SECONDS": "120",
            "LEDGER_JWT_JWKS_MIN_REFRESH_SECONDS": "10",
            "LEDGER_JWT_JWKS_MAX_AGE_SECONDS": "600",
            "LEDGER_JWT_JWKS_TIMEOUT_SECONDS": "2",
            "LEDGER_JWT_LEEWAY_SECONDS": "5",
        }
    )
    assert settings.jwks == JwksSettings(
        url="https://idp.example/.well-known/jwks.json",
        refresh_seconds=120,
        min_refresh_seconds=10,
        max_age_seconds=600,
        timeout_seconds=2,
    )
    assert settings.jwt_leeway_seconds == 5
    assert Settings.from_env({"LEDGER_JWT_JWKS_URL": "http://localhost:8080/jwks"}).jwks.url


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LEDGER_JWT_JWKS_URL": "http://idp.example/jwks"}, "https"),
        ({"LEDGER_JWT_JWKS_URL": "ftp://localhost/jwks"}, "https"),
        ({"LEDGER_JWT_JWKS_URL": "https://idp/x", "LEDGER_JWT_JWKS_FILE": "/x.json"}, "one token key source"),
        ({"LEDGER_JWT_JWKS_FILE": "/x.json", "LEDGER_JWT_PUBLIC_KEY_FILE": "/k.pem"}, "one token key source"),
        ({"LEDGER_JWT_JWKS_REFRESH_SECONDS": "0"}, "LEDGER_JWT_JWKS_REFRESH_SECONDS"),
        ({"LEDGER_JWT_JWKS_TIMEOUT_SECONDS": "nan"}, "LEDGER_JWT_JWKS_TIMEOUT_SECONDS"),
        ({"LEDGER_JWT_JWKS_MAX_AGE_SECONDS": "60"}, "LEDGER_JWT_JWKS_MAX_AGE_SECONDS"),
        ({"LEDGER_JWT_LEEWAY_SECONDS": "3600"}, "LEDGER_JWT_LEEWAY_SECONDS"),
        ({"LEDGER_JWT_LEEWAY_SECONDS": "-1"}, "LEDGER_JWT_LEEWAY_SECONDS"),
    ],
)
def test_a_jwks_setting_that_cannot_work_is_refused_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)


# ---- a JWKS URL, over a real local HTTP server ---------------------------------------------------------


class JwksServer:
    """A real HTTP server on loopback answering ``/jwks.json`` with ``document`` (or ``status``)."""

    def __init__(self) -> None:
        self.document = b""
        self.status = 200
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits += 1
                if self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/jwks.json")
                    self.end_headers()
                    return
                body = owner.document if owner.status == 200 else b"{}"
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.stop()


def test_a_jwks_url_is_fetched_once_and_served_from_the_cache(tmp_path: Path, idp: JwksServer, key_a) -> None:
    idp.document = jwks_bytes(jwk(key_a, "a"))
    settings = Settings(home=tmp_path, database_url="postgresql://db/x", jwks=JwksSettings(url=idp.url))
    verifier = TokenVerifier(settings)
    for n in range(5):
        assert verifier.verify(bearer(key_a, settings, kid="a", sub=f"user-{n}")).subject == f"user-{n}"
    assert idp.hits == 1


def test_a_jwks_url_is_read_again_when_due_and_on_a_new_kid(idp: JwksServer, key_a, key_b) -> None:
    idp.document = jwks_bytes(jwk(key_a, "a"))
    clock = Clock()
    settings = JwksSettings(url=idp.url, refresh_seconds=300, min_refresh_seconds=30)
    keys = JwksKeys(
        lambda: read_jwks_url(idp.url, 5), name="url", algorithms=ALGORITHMS, settings=settings, clock=clock
    )
    assert keys.key_for("a").kid == "a"
    assert idp.hits == 1
    idp.document = jwks_bytes(jwk(key_a, "a"), jwk(key_b, "b"))
    clock.now += 30
    assert keys.key_for("b").kid == "b"
    assert idp.hits == 2
    clock.now += 300
    assert keys.key_for("a").kid == "a"
    assert idp.hits == 3


def test_an_identity_provider_outage_refuses_tokens_with_503_not_401(tmp_path: Path, key_a) -> None:
    server = JwksServer()
    url = server.url
    server.stop()  # nothing listens there any more
    settings = Settings(home=tmp_path, database_url="postgresql://db/x", jwks=JwksSettings(url=url))
    verifier = TokenVerifier(settings)  # starts: the provider may come back
    with pytest.raises(TokenKeysUnavailable, match="not the caller's fault") as caught:
        verifier.verify(bearer(key_a, settings, kid="a"))
    assert mapped_status(type(caught.value)) == 503


def test_a_provider_answering_an_error_or_a_redirect_is_not_read(idp: JwksServer, key_a) -> None:
    idp.document = jwks_bytes(jwk(key_a, "a"))
    with pytest.raises(JwksError, match="HTTP 302"):
        read_jwks_url(idp.url.replace("/jwks.json", "/moved"), 5)
    idp.status = 500
    with pytest.raises(JwksError, match="HTTP 500"):
        read_jwks_url(idp.url, 5)


def test_during_an_outage_the_cached_set_serves_until_its_max_age(idp: JwksServer, key_a) -> None:
    idp.document = jwks_bytes(jwk(key_a, "a"))
    clock = Clock()
    settings = JwksSettings(url=idp.url, refresh_seconds=300, min_refresh_seconds=30, max_age_seconds=900)
    keys = JwksKeys(
        lambda: read_jwks_url(idp.url, 5), name="url", algorithms=ALGORITHMS, settings=settings, clock=clock
    )
    keys.refresh()
    idp.status = 503
    clock.now += 400
    assert keys.key_for("a").kid == "a"  # the read failed, the cached set still serves
    assert idp.hits == 2
    clock.now += 501
    with pytest.raises(TokenKeysUnavailable):
        keys.key_for("a")
    idp.status = 200
    clock.now += 30
    assert keys.key_for("a").kid == "a"
