"""JWT bearer tokens (DESIGN §7): an explicit asymmetric algorithm allow-list, required claims, roles, tenant."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.exceptions import InvalidSubjectError

from ledger.auth.jwks import Keys, StaticKey, VerificationKey, algorithms_for, jwks_keys
from ledger.crypto.keys import read_or_create_secret
from ledger.domain.envelope import TENANT_PATTERN
from ledger.domain.errors import AuthenticationFailed, ConfigurationError, FieldError, PermissionDenied
from ledger.domain.events import PURPOSES_OF_USE
from ledger.domain.fields import IDENTIFIER_PATTERN, MAX_IDENTIFIER_LENGTH
from ledger.domain.identifiers import find_direct_identifier
from ledger.domain.logs import SYSTEM_TENANT
from ledger.settings import Settings

ROLES = ("ingest", "auditor", "security", "regulatory", "admin", "witness")
READERS = frozenset({"auditor", "security", "regulatory", "admin"})
# Writing is a service's job: only ingest tokens post events, admin included (README "Roles").
WRITERS = frozenset({"ingest"})
# An external witness (C2SP tlog-witness) posts cosignatures and reads only what it checks before
# cosigning: checkpoints, consistency proofs, keys. It reads no events.
WITNESSES = frozenset({"witness"})
CHECKPOINT_READERS = READERS | WITNESSES
ANY_ROLE = frozenset(ROLES)


@dataclass(frozen=True)
class Principal:
    """Who is calling: subject, roles, tenant, whether they signed in with MFA, and the token's purpose of use."""

    subject: str
    roles: frozenset[str]
    tenant: str
    mfa: bool = False
    purpose: str | None = None

    def require(self, allowed: frozenset[str], *, mfa: bool = False) -> None:
        """Refuse unless the principal holds one of ``allowed``; acting as admin needs MFA (DESIGN §7),
        and so does every role where ``mfa`` is set (exports, erasures)."""
        granted = self.roles & allowed
        if not granted:
            msg = f"this needs one of the roles {', '.join(sorted(allowed))}; the token has {', '.join(sorted(self.roles)) or 'none'}"
            raise PermissionDenied(msg)
        if granted == {"admin"} and not self.mfa:
            msg = "acting as admin needs a token issued after multi-factor sign-in ('amr' containing 'mfa'): sign in with MFA and get a new token"
            raise PermissionDenied(msg)
        if mfa and not self.mfa:
            msg = "this needs a token issued after multi-factor sign-in ('amr' containing 'mfa'): sign in with MFA and get a new token"
            raise PermissionDenied(msg)

    def require_tenant(self, tenant: str, *, index: int | None = None) -> None:
        """Refuse access to another tenant's data; ``index`` names the event of a batch."""
        if tenant != self.tenant:
            where = "" if index is None else f"event {index}: "
            msg = f"{where}the token is scoped to tenant {self.tenant!r}, not {tenant!r}"
            raise PermissionDenied(msg, errors=[FieldError("tenant", msg, index)])


class TokenVerifier:
    """Checks bearer tokens against the configured keys (one PEM key or a JWKS), issuer and audience."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys = verification_keys(settings)

    def verify(self, authorization: str | None) -> Principal:
        """Parse an ``Authorization`` header into a principal, or raise ``AuthenticationFailed``."""
        if not authorization or not authorization.lower().startswith("bearer "):
            msg = "send a bearer token: Authorization: Bearer <token> (in embedded mode: `ledger token --role ROLE --tenant T`)"
            raise AuthenticationFailed(msg)
        token = authorization[7:].strip()
        key = self._keys.key_for(_kid(token))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                # Only the algorithms this key can verify: a token naming another one is refused as a 401,
                # never handed to a verifier that would misuse the key (or fail with a TypeError).
                algorithms=list(key.algorithms),
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=self._settings.jwt_leeway_seconds,
            )
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError) as exc:
            # The library's wording is not ours to pass on (and may change with its version).
            raise AuthenticationFailed(self._refusal(exc, token, key)) from None
        self._check_lifetime(claims)
        return _principal(claims)

    def _refusal(self, exc: Exception, token: str, key: VerificationKey) -> str:
        settings = self._settings
        if isinstance(exc, jwt.ExpiredSignatureError):
            # PyJWT checks the signature before exp, so the claim read here is the signed one.
            expired = _claim_time(token, "exp")
            when = f" at {expired}" if expired else ""
            return f"the token expired{when}; get a new one"
        if isinstance(exc, jwt.ImmatureSignatureError):
            # Raised after the signature verified: the claims read here are the signed ones.
            claim = "nbf" if "nbf" in str(exc) else "iat"
            at = _claim_time(token, claim)
            said = "is not valid before" if claim == "nbf" else "says it was issued at"
            when = f" {at}" if at else " a time in the future"
            return (
                f"the token's {claim!r} claim {said}{when}, more than {settings.jwt_leeway_seconds} s "
                "(LEDGER_JWT_LEEWAY_SECONDS) from now; check the clocks or get a new token"
            )
        if isinstance(exc, InvalidSubjectError):
            return "the token's 'sub' claim must be a string"
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"the token has no {exc.claim!r} claim"
        if isinstance(exc, jwt.InvalidAudienceError):
            return f"the token is for another audience; this ledger accepts aud {settings.jwt_audience!r}"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"the token comes from another issuer; this ledger accepts iss {settings.jwt_issuer!r}"
        if isinstance(exc, jwt.InvalidAlgorithmError):
            named = "" if key.kid is None else f" for key {key.kid[:80]!r}"
            return f"the token is signed with an algorithm this ledger does not accept{named} ({', '.join(key.algorithms)})"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "the token's signature does not verify with this ledger's key"
        if isinstance(exc, jwt.DecodeError):
            return "the token is not a well-formed signed JWT"
        return "the token does not verify"

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        longest = self._settings.jwt_max_lifetime_seconds
        try:
            lifetime = float(claims["exp"]) - float(claims["iat"])
        except (TypeError, ValueError):
            msg = "the token's 'exp' and 'iat' claims must be NumericDate numbers (RFC 7519 §2)"
            raise AuthenticationFailed(msg) from None
        if not lifetime <= longest:  # also refuses NaN
            msg = (
                f"the token is valid for {int(lifetime)} s, longer than the {longest} s this ledger accepts "
                "(LEDGER_JWT_MAX_LIFETIME_SECONDS); get a shorter-lived one"
            )
            raise AuthenticationFailed(msg)


def _kid(token: str) -> str | None:
    """The ``kid`` of the token's header; a header that cannot be read is left to ``jwt.decode`` to refuse."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    if kid is not None and not isinstance(kid, str):
        msg = "the token's 'kid' header must be a string"
        raise AuthenticationFailed(msg)
    return kid


def _claim_time(token: str, claim: str) -> str | None:
    try:
        value = jwt.decode(token, options={"verify_signature": False})[claim]
        return datetime.fromtimestamp(int(value), UTC).isoformat().replace("+00:00", "Z")
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def subject_problem(subject: object) -> str | None:
    """Why ``subject`` cannot be a token's ``sub``, or ``None``. It becomes the actor of every access event
    the ledger records for the token, so it must be an identifier the ledger records in plain text: no
    spaces or control characters, and no direct identifier (an e-mail address, a phone number)."""
    if not isinstance(subject, str) or not 1 <= len(subject) <= MAX_IDENTIFIER_LENGTH:
        return f"must be an identifier of 1 to {MAX_IDENTIFIER_LENGTH} characters"
    if not re.fullmatch(IDENTIFIER_PATTERN, subject):
        return "must be an identifier without spaces or control characters"
    if (kind := find_direct_identifier(subject)) is not None:
        return f"holds {kind}, which the ledger never records: use a pseudonymous subject id"
    return None


def _principal(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles")
    tenant = claims.get("tenant")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        msg = "the token's 'roles' claim must be a list of role names"
        raise AuthenticationFailed(msg)
    if not isinstance(tenant, str) or not tenant:
        msg = "the token has no 'tenant' claim"
        raise AuthenticationFailed(msg)
    if not re.fullmatch(TENANT_PATTERN, tenant):
        msg = (
            "the token's 'tenant' claim is not a tenant name (lowercase letters, digits and '-', at most 63)"
        )
        raise AuthenticationFailed(msg)
    if tenant == SYSTEM_TENANT:
        msg = f"the token's tenant is {SYSTEM_TENANT!r}, the ledger's own log, which no token may act in"
        raise AuthenticationFailed(msg)
    subject = claims["sub"]
    if (problem := subject_problem(subject)) is not None:
        raise AuthenticationFailed(f"the token's 'sub' claim {problem}")
    purpose = claims.get("purpose")
    if purpose is not None and purpose not in PURPOSES_OF_USE:
        msg = f"the token's 'purpose' claim must be one of {', '.join(PURPOSES_OF_USE)}"
        raise AuthenticationFailed(msg)
    amr = claims.get("amr")
    return Principal(
        subject=subject,
        roles=frozenset(r for r in roles if r in ROLES),
        tenant=tenant,
        mfa=isinstance(amr, list) and "mfa" in amr,
        purpose=purpose,
    )


def verification_keys(settings: Settings) -> Keys:
    """Where tokens' keys come from: ``LEDGER_JWT_JWKS_FILE`` or ``_URL``, ``LEDGER_JWT_PUBLIC_KEY_FILE``,
    or (embedded mode) the dev key."""
    if settings.jwks.configured:
        return jwks_keys(settings.jwks, settings.jwt_algorithms)
    key = load_verification_key(settings)
    algorithms = algorithms_for(key, settings.jwt_algorithms)
    if not algorithms:
        msg = (
            f"the token key is a {type(key).__name__}, which none of LEDGER_JWT_ALGORITHMS "
            f"({', '.join(settings.jwt_algorithms)}) can verify"
        )
        raise ConfigurationError(msg)
    return StaticKey(VerificationKey(key=key, kid=None, algorithms=algorithms))


def load_verification_key(settings: Settings) -> Any:
    """The one public key tokens are checked with: ``LEDGER_JWT_PUBLIC_KEY_FILE``, or the embedded dev key."""
    if settings.jwt_public_key_file is not None:
        try:
            return serialization.load_pem_public_key(settings.jwt_public_key_file.read_bytes())
        except (OSError, ValueError) as exc:
            msg = f"LEDGER_JWT_PUBLIC_KEY_FILE ({settings.jwt_public_key_file}) is not a readable PEM public key: {exc}"
            raise ConfigurationError(msg) from None
    if not settings.embedded:
        msg = (
            "set LEDGER_JWT_JWKS_URL, LEDGER_JWT_JWKS_FILE or LEDGER_JWT_PUBLIC_KEY_FILE: with an external "
            "database there is no development signing key"
        )
        raise ConfigurationError(msg)
    return dev_signing_key(settings.signing_key_file).public_key()


def dev_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 development signing key in ``LEDGER_HOME``, created on first use."""
    pem = read_or_create_secret(
        path,
        lambda: Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        msg = f"{path} is not an Ed25519 private key"
        raise ConfigurationError(msg)
    return key


def issue_dev_token(
    settings: Settings,
    *,
    roles: list[str],
    tenant: str,
    subject: str,
    ttl_seconds: int = 8 * 3600,
    mfa: bool = False,
    purpose: str | None = None,
) -> str:
    """A development token signed with the embedded key (``ledger token``)."""
    if not settings.embedded:
        msg = "`ledger token` issues development tokens in embedded mode only; use your identity provider in production"
        raise ConfigurationError(msg)
    if not 1 <= ttl_seconds <= settings.jwt_max_lifetime_seconds:
        msg = (
            f"the lifetime must be 1 to {settings.jwt_max_lifetime_seconds} seconds "
            f"(LEDGER_JWT_MAX_LIFETIME_SECONDS), got {ttl_seconds}"
        )
        raise ConfigurationError(msg)
    key = dev_signing_key(settings.signing_key_file)
    return sign_token(
        key,
        settings,
        roles=roles,
        tenant=tenant,
        subject=subject,
        ttl_seconds=ttl_seconds,
        mfa=mfa,
        purpose=purpose,
    )


def sign_token(
    key: Ed25519PrivateKey,
    settings: Settings,
    *,
    roles: list[str],
    tenant: str,
    subject: str,
    ttl_seconds: int = 8 * 3600,
    mfa: bool = False,
    purpose: str | None = None,
    kid: str | None = None,
) -> str:
    """An EdDSA-signed token with the issuer and audience this ledger expects (``kid`` in its header if given)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        msg = f"unknown role {', '.join(unknown)}; roles are {', '.join(ROLES)}"
        raise ConfigurationError(msg)
    # fullmatch: TENANT_PATTERN ends in '$', which re.match lets through before a final newline.
    if not re.fullmatch(TENANT_PATTERN, tenant):
        msg = f"tenant {tenant!r} must be lowercase letters, digits and '-' (at most 63)"
        raise ConfigurationError(msg)
    if (problem := subject_problem(subject)) is not None:
        msg = f"the subject {problem}"
        raise ConfigurationError(msg)
    if purpose is not None and purpose not in PURPOSES_OF_USE:
        msg = f"unknown purpose {purpose!r}; purposes of use are {', '.join(PURPOSES_OF_USE)}"
        raise ConfigurationError(msg)
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        "roles": roles,
        "tenant": tenant,
        "amr": ["pwd", "mfa"] if mfa else ["pwd"],
    }
    if purpose is not None:
        claims["purpose"] = purpose
    return jwt.encode(claims, key, algorithm="EdDSA", headers=None if kid is None else {"kid": kid})
