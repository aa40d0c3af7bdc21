"""Token verification keys: one PEM key, or an identity provider's JWKS (RFC 7517) read from a file or URL.

A JWKS is cached and read again every ``refresh_seconds``; a token picks its key by ``kid``, and a ``kid`` not
in the cached set makes one extra read, at most once per ``min_refresh_seconds`` (so made-up kids cannot make
the ledger hammer the identity provider). When reads fail, the last good set serves until it is
``max_age_seconds`` old; without a usable set no token can be checked and the ledger answers 503
(``TokenKeysUnavailable``): a read fails closed, and an identity provider's outage is not the caller's fault.

PyJWT's ``PyJWKClient`` caches too, but refetches on every unknown kid without a limit and drops its set when a
read fails; ``PyJWK`` parses each key here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    SECP384R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ledger.domain.errors import AuthenticationFailed, ConfigurationError, TokenKeysUnavailable
from ledger.settings import JwksSettings

_log = logging.getLogger("ledger.auth")

MAX_JWKS_BYTES = 1024 * 1024
"""A JWKS larger than this is refused: real ones hold a handful of keys, a few KiB."""

# Per key type, the only algorithms it may verify: never 'none', never a symmetric one (a public key used
# as an HMAC secret is the classic algorithm-confusion forgery), and an EC key only with its own curve.
_ALGORITHMS_FOR_KEY: tuple[tuple[type, tuple[str, ...]], ...] = (
    (Ed25519PublicKey, ("EdDSA",)),
    (RSAPublicKey, ("RS256", "RS384", "RS512", "PS256")),
)
_ALGORITHMS_FOR_CURVE: tuple[tuple[type, tuple[str, ...]], ...] = (
    (SECP256R1, ("ES256",)),
    (SECP384R1, ("ES384",)),
)


@dataclass(frozen=True)
class VerificationKey:
    """A public key, its ``kid`` (if it has one) and the algorithms a token signed with it may name."""

    key: Any
    kid: str | None
    algorithms: tuple[str, ...]


def algorithms_for(key: Any, configured: Iterable[str]) -> tuple[str, ...]:
    """The configured algorithms (``LEDGER_JWT_ALGORITHMS``) that ``key``'s type and curve can verify."""
    if isinstance(key, EllipticCurvePublicKey):
        table, of = _ALGORITHMS_FOR_CURVE, key.curve
    else:
        table, of = _ALGORITHMS_FOR_KEY, key
    usable = next((algs for cls, algs in table if isinstance(of, cls)), ())
    return tuple(a for a in configured if a in usable)


class Keys(Protocol):
    """Where the verifier gets the key for a token."""

    def key_for(self, kid: str | None) -> VerificationKey:
        """The key a token naming ``kid`` (or none) is checked with."""
        ...


class StaticKey:
    """One key (``LEDGER_JWT_PUBLIC_KEY_FILE`` or the embedded dev key): every token is checked with it."""

    def __init__(self, key: VerificationKey) -> None:
        self._key = key

    def key_for(self, kid: str | None) -> VerificationKey:
        """The one key, whatever ``kid`` the token names."""
        return self._key


class JwksError(Exception):
    """A JWKS could not be read or holds no usable key; the message says why (for the log)."""


def parse_jwks(document: bytes, configured: Iterable[str]) -> tuple[VerificationKey, ...]:
    """The signing keys of a JWKS document that one of the ``configured`` algorithms can verify.

    Keys for encryption (``use`` other than ``sig``), symmetric keys and keys whose own ``alg`` is not an
    accepted algorithm for their type are left out; a set with no key left is an error.
    """
    allowed = tuple(configured)
    try:
        parsed = json.loads(document)
    except (UnicodeDecodeError, ValueError):
        msg = "the JWKS is not JSON"
        raise JwksError(msg) from None
    members = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(members, list):
        msg = "the JWKS is not an object with a 'keys' list (RFC 7517 §5)"
        raise JwksError(msg)
    keys = [key for member in members if (key := _signing_key(member, allowed)) is not None]
    if not keys:
        msg = f"the JWKS holds no signing key for the accepted algorithms ({', '.join(allowed)})"
        raise JwksError(msg)
    return tuple(keys)


def _signing_key(member: Any, allowed: tuple[str, ...]) -> VerificationKey | None:
    if not isinstance(member, dict) or member.get("use", "sig") != "sig" or member.get("kty") == "oct":
        return None
    kid = member.get("kid")
    alg = member.get("alg")
    if (kid is not None and not isinstance(kid, str)) or (alg is not None and not isinstance(alg, str)):
        return None
    try:
        key = jwt.PyJWK(member).key
    except jwt.PyJWTError:
        return None
    # A JWKS should hold public keys only; if one carries its private part, only the public part is used.
    if isinstance(key, Ed25519PrivateKey | EllipticCurvePrivateKey | RSAPrivateKey):
        key = key.public_key()
    algorithms = algorithms_for(key, allowed)
    if alg is not None:
        # The key's own 'alg' binds it (RFC 7517 §4.4): a token naming another algorithm is refused.
        algorithms = tuple(a for a in algorithms if a == alg)
    if not algorithms:
        return None
    return VerificationKey(key=key, kid=kid, algorithms=algorithms)


def read_jwks_url(url: str, timeout: float) -> bytes:
    """The body of ``url`` (at most ``MAX_JWKS_BYTES``); redirects are not followed, 200 is required."""
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                msg = f"{url} answered HTTP {response.status_code}"
                raise JwksError(msg)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    msg = f"{url} sent more than {MAX_JWKS_BYTES} bytes"
                    raise JwksError(msg)
            return bytes(body)
    except httpx.HTTPError as exc:
        msg = f"{url} cannot be read: {type(exc).__name__}: {exc}"
        raise JwksError(msg) from None


class JwksKeys:
    """A cached JWKS, read through ``source`` (a file or URL), refreshed and rotated by ``kid``.

    Thread-safe: one read at a time, and callers waiting for it use its result.
    """

    def __init__(
        self,
        source: Callable[[], bytes],
        *,
        name: str,
        algorithms: Iterable[str],
        settings: JwksSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._name = name
        self._algorithms = tuple(algorithms)
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[VerificationKey, ...] | None = None
        self._read_at = 0.0  # clock() of the last good read
        self._tried_at: float | None = None  # clock() of the last read, good or not
        self.reads = 0
        """How many times the source was read (good or not)."""

    def refresh(self) -> None:
        """Read the set now; on failure keep the last good one and raise ``JwksError``."""
        with self._lock:
            self._read(self._clock(), raising=True)

    def key_for(self, kid: str | None) -> VerificationKey:
        """The key named by ``kid``; an unknown kid makes one (rate-limited) read before it is refused.

        A scheduled refresh is made by one caller while the others go on with the cached set: a slow or
        unreachable identity provider stalls only the callers that have no key to go on with (none read
        yet, or a kid the cached set does not hold)."""
        now = self._clock()
        if self._keys is None or now - self._read_at >= self._settings.refresh_seconds:
            self._read_once(now, wait=self._keys is None)
        key = _select(self._usable(now), kid)
        if key is None and self._may_read(now):
            self._read_once(now, wait=True)
            key = _select(self._usable(now), kid)
        if key is None:
            raise AuthenticationFailed(self._unknown(kid))
        return key

    def _read_once(self, now: float, *, wait: bool) -> None:
        """Read unless another caller is reading right now (then wait for it only when ``wait``)."""
        if not self._lock.acquire(blocking=wait):
            return
        try:
            self._read(now)
        finally:
            self._lock.release()

    def _may_read(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._settings.min_refresh_seconds

    def _read(self, now: float, *, raising: bool = False) -> None:
        if not raising and not self._may_read(now):
            return
        self._tried_at = now
        self.reads += 1
        try:
            keys = parse_jwks(self._source(), self._algorithms)
        except JwksError as exc:
            _log.warning("the token keys (%s) could not be read: %s", self._name, exc)
            if raising:
                raise
            return
        self._keys, self._read_at = keys, now

    def _usable(self, now: float) -> tuple[VerificationKey, ...]:
        if self._keys is None or now - self._read_at > self._settings.max_age_seconds:
            state = "could not be read" if self._keys is None else "could not be read again in time"
            msg = (
                f"the identity provider's signing keys ({self._name}) {state}, so no token can be checked; "
                "this is not the caller's fault: retry later"
            )
            raise TokenKeysUnavailable(msg)
        return self._keys

    def _unknown(self, kid: str | None) -> str:
        count = len(self._keys or ())
        if kid is None:
            return f"the token names no key ('kid' header) and the key set holds {count} keys; it cannot be checked"
        return f"the token's key ('kid' {kid[:80]!r}) is not in the identity provider's key set"


def _select(keys: tuple[VerificationKey, ...], kid: str | None) -> VerificationKey | None:
    # A token's kid picks its key; a key without a kid (or a token without one) only when the set has one key.
    if kid is not None:
        named = next((k for k in keys if k.kid == kid), None)
        if named is not None:
            return named
    if len(keys) == 1 and (keys[0].kid is None or kid is None):
        return keys[0]
    return None


def jwks_keys(settings: JwksSettings, algorithms: Iterable[str]) -> JwksKeys:
    """The JWKS of ``LEDGER_JWT_JWKS_FILE`` or ``LEDGER_JWT_JWKS_URL``, read once now.

    A file that cannot be read is a configuration error found at start; a URL that cannot be read yet is
    not (the identity provider may come back): tokens are answered 503 until it does.
    """
    if settings.file is not None:
        path = settings.file

        def read_file() -> bytes:
            try:
                return path.read_bytes()
            except OSError as exc:
                msg = f"{path} cannot be read: {exc.strerror}"
                raise JwksError(msg) from None

        keys = JwksKeys(read_file, name="LEDGER_JWT_JWKS_FILE", algorithms=algorithms, settings=settings)
        try:
            keys.refresh()
        except JwksError as exc:
            msg = f"LEDGER_JWT_JWKS_FILE ({path}): {exc}"
            raise ConfigurationError(msg) from None
        return keys
    if settings.url is None:
        msg = "no JWKS is configured (LEDGER_JWT_JWKS_FILE or LEDGER_JWT_JWKS_URL)"
        raise ConfigurationError(msg)
    url, timeout = settings.url, settings.timeout_seconds
    keys = JwksKeys(
        lambda: read_jwks_url(url, timeout),
        name="LEDGER_JWT_JWKS_URL",
        algorithms=algorithms,
        settings=settings,
    )
    with contextlib.suppress(JwksError):  # logged by the read; the next token tries again (rate-limited)
        keys.refresh()
    return keys
