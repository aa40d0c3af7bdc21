"""Signed-note keys: key names, key ids, verifier keys (vkeys), signer keys, and when a key may sign.

C2SP signed-note §"Signatures" and §"Verifier keys"; the signature types are those the spec assigns:
``0x01`` Ed25519 over the note text, ``0x04`` timestamped Ed25519 cosignature (witnesses), ``0x06``
timestamped ML-DSA-44 (sub)tree cosignature (c2sp.org/tlog-cosignature), which the ledger also uses for its
own post-quantum checkpoint signature, as c2sp.org/tlog-checkpoint recommends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA44PrivateKey, MLDSA44PublicKey

from ledger.verifier.errors import VerifierError

ED25519 = 0x01
COSIGNATURE_ED25519 = 0x04
COSIGNATURE_MLDSA44 = 0x06

#: The signature types whose signature starts with an 8-byte big-endian POSIX timestamp (tlog-cosignature).
TIMESTAMPED = frozenset({COSIGNATURE_ED25519, COSIGNATURE_MLDSA44})

_PUBLIC_KEY_BYTES = {ED25519: 32, COSIGNATURE_ED25519: 32, COSIGNATURE_MLDSA44: 1312}
_SIGNATURE_BYTES = {ED25519: 64, COSIGNATURE_ED25519: 8 + 64, COSIGNATURE_MLDSA44: 8 + 2420}
TYPE_NAMES = {
    ED25519: "Ed25519",
    COSIGNATURE_ED25519: "Ed25519 cosignature",
    COSIGNATURE_MLDSA44: "ML-DSA-44",
}
_SEED_BYTES = 32  # both an Ed25519 private key and an ML-DSA-44 private key (FIPS 204 ξ) are a 32-byte seed
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")
_SIGNER_PREFIX = "PRIVATE+KEY+"


def check_key_name(name: str, what: str = "key name") -> str:
    """``name`` itself if it is a valid key name: non-empty, no Unicode space, no ``+`` (signed-note §Format)."""
    if not name or "+" in name or any(ch.isspace() for ch in name):
        msg = f"{what} {name!r} is not valid: it must be non-empty, without spaces or '+'"
        raise VerifierError(msg)
    if any(ord(ch) < 0x20 for ch in name):
        msg = f"{what} {name!r} contains a control character"
        raise VerifierError(msg)
    return name


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """SHA-256(key name ‖ 0x0A ‖ signature type ‖ public key)[:4] as a big-endian uint32 (signed-note)."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def decode_base64(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padding required, and only the one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        msg = f"{what} is not valid base64"
        raise VerifierError(msg) from None
    if base64.b64encode(raw).decode() != text:
        msg = f"{what} is not canonical base64"
        raise VerifierError(msg)
    return raw


def encode_base64(raw: bytes) -> str:
    """Standard base64 with padding, as every C2SP text format writes it."""
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class VerifierKey:
    """A public key that verifies one signature type under one key name (what a vkey encodes)."""

    name: str
    signature_type: int
    public_key: bytes
    key_id: int = field(init=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        expected = _PUBLIC_KEY_BYTES.get(self.signature_type)
        if expected is None:
            msg = f"key {self.name}: signature type 0x{self.signature_type:02x} is not supported"
            raise VerifierError(msg)
        if len(self.public_key) != expected:
            msg = (
                f"key {self.name}: a {TYPE_NAMES[self.signature_type]} public key has {expected} bytes,"
                f" not {len(self.public_key)}"
            )
            raise VerifierError(msg)
        object.__setattr__(self, "key_id", key_id(self.name, self.signature_type, self.public_key))

    @property
    def label(self) -> str:
        """``name+hex(key id)``, how errors and reports name this key."""
        return f"{self.name}+{self.key_id:08x}"

    @property
    def vkey(self) -> str:
        """The signed-note verifier key text: ``<name>+<hex key id>+<base64(type ‖ public key)>``."""
        return f"{self.label}+{encode_base64(bytes([self.signature_type]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` (without key id or timestamp) is this key's signature of ``message``."""
        try:
            if self.signature_type == COSIGNATURE_MLDSA44:
                # FIPS 204 pure ML-DSA with the empty context, as tlog-cosignature signs
                MLDSA44PublicKey.from_public_bytes(self.public_key).verify(signature, message)
            else:
                Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        except UnsupportedAlgorithm:
            msg = f"key {self.label}: this build of cryptography cannot verify ML-DSA-44 (it needs OpenSSL 3.5+)"
            raise VerifierError(msg) from None
        return True

    def check_signature_length(self, signature: bytes) -> None:
        """Refuse a signature (after the key id) whose length this signature type cannot have."""
        if len(signature) != _SIGNATURE_BYTES[self.signature_type]:
            msg = (
                f"signature by {self.label} has {len(signature)} bytes after the key id;"
                f" a {TYPE_NAMES[self.signature_type]} signature has {_SIGNATURE_BYTES[self.signature_type]}"
            )
            raise VerifierError(msg)


def parse_vkey(text: str) -> VerifierKey:
    """Parse a verifier key; its key id must be the one its name, type and public key give."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        msg = f"verifier key {text[:60]!r} must have three parts separated by '+' (name+keyid+key)"
        raise VerifierError(msg)
    name, hex_id, key64 = parts
    check_key_name(name, "verifier key name")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        msg = f"verifier key {name}: key id {hex_id!r} is not 8 lowercase hex digits"
        raise VerifierError(msg)
    raw = decode_base64(key64, f"verifier key {name}+{hex_id}: the public key")
    if not raw:
        msg = f"verifier key {name}+{hex_id} has no key material"
        raise VerifierError(msg)
    key = VerifierKey(name, raw[0], raw[1:])
    if key.key_id != int(hex_id, 16):
        msg = f"verifier key {name}+{hex_id}: the key id does not match its key (expected {key.key_id:08x})"
        raise VerifierError(msg)
    return key


def find_key(keys: Sequence[VerifierKey], name: str, kid: int) -> VerifierKey | None:
    """The one key with this name and key id, or None; two different keys sharing both are refused."""
    found = {k for k in keys if k.name == name and k.key_id == kid}
    if len(found) > 1:
        msg = f"ambiguous key {name}+{kid:08x}: two different known keys share its name and key id"
        raise VerifierError(msg)
    return next(iter(found), None)


# ---- signing ------------------------------------------------------------------------------------------


class Signer(Protocol):
    """What signs a note line: a key name, a key id, a signature type and raw signing (a KMS fits too).

    ``sign`` receives the exact message of the signature type (the note text for Ed25519, the
    tlog-cosignature message for the timestamped types) and returns the bare signature.
    """

    @property
    def name(self) -> str:
        """The key name written in the signature line."""
        ...

    @property
    def key_id(self) -> int:
        """The 32-bit key id written before the signature."""
        ...

    @property
    def signature_type(self) -> int:
        """One of ``ED25519``, ``COSIGNATURE_ED25519``, ``COSIGNATURE_MLDSA44``."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The bare signature of ``message``."""
        ...


@dataclass(frozen=True)
class SeedSigner:
    """A signer holding its 32-byte private seed in memory (tests, the local key file, an auditor's witness)."""

    name: str
    signature_type: int
    seed: bytes = field(repr=False)
    verifier_key: VerifierKey = field(init=False)

    def __post_init__(self) -> None:
        if len(self.seed) != _SEED_BYTES:
            msg = f"signer {self.name}: a private seed has {_SEED_BYTES} bytes, not {len(self.seed)}"
            raise VerifierError(msg)
        object.__setattr__(self, "verifier_key", VerifierKey(self.name, self.signature_type, self._public()))

    @classmethod
    def generate(cls, name: str, signature_type: int) -> SeedSigner:
        """A new signer with a fresh random seed."""
        return cls(name, signature_type, secrets.token_bytes(_SEED_BYTES))

    @property
    def key_id(self) -> int:
        """The key id of this signer's public key."""
        return self.verifier_key.key_id

    @property
    def vkey(self) -> str:
        """The verifier key text a verifier is given."""
        return self.verifier_key.vkey

    @property
    def signer_key(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key id>+<base64(type ‖ seed)>``, the golang.org/x/mod/sumdb/note form."""
        return f"{_SIGNER_PREFIX}{self.verifier_key.label}+{encode_base64(bytes([self.signature_type]) + self.seed)}"

    def sign(self, message: bytes) -> bytes:
        """Ed25519 (RFC 8032) or ML-DSA-44 (FIPS 204, empty context) signature of ``message``."""
        if self.signature_type == COSIGNATURE_MLDSA44:
            return MLDSA44PrivateKey.from_seed_bytes(self.seed).sign(message)
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)

    def _public(self) -> bytes:
        if self.signature_type == COSIGNATURE_MLDSA44:
            return MLDSA44PrivateKey.from_seed_bytes(self.seed).public_key().public_bytes_raw()
        if self.signature_type in (ED25519, COSIGNATURE_ED25519):
            return Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()
        msg = f"signer {self.name}: signature type 0x{self.signature_type:02x} is not supported"
        raise VerifierError(msg)


def parse_signer_key(text: str) -> SeedSigner:
    """Parse ``PRIVATE+KEY+<name>+<hex key id>+<base64(type ‖ seed)>``; the key id must match."""
    if not text.startswith(_SIGNER_PREFIX):
        msg = "a signer key starts with PRIVATE+KEY+"
        raise VerifierError(msg)
    parts = text[len(_SIGNER_PREFIX) :].strip().split("+", 2)
    if len(parts) != 3 or not _HEX_KEY_ID.fullmatch(parts[1]):
        msg = "a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>"
        raise VerifierError(msg)
    name, hex_id, key64 = parts
    raw = decode_base64(key64, f"signer key {name}+{hex_id}")
    if not raw:
        msg = f"signer key {name}+{hex_id} has no key material"
        raise VerifierError(msg)
    signer = SeedSigner(check_key_name(name, "signer key name"), raw[0], raw[1:])
    if signer.key_id != int(hex_id, 16):
        msg = f"signer key {name}+{hex_id}: the key id does not match its key"
        raise VerifierError(msg)
    return signer


# ---- validity windows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyWindow:
    """A verifier key with the time it started signing and, once rotated out, the time it was retired."""

    key: VerifierKey
    created_at: datetime
    retired_at: datetime | None = None


def key_valid_at(window: KeyWindow, signed_at: datetime) -> bool:
    """True if a signature made at ``signed_at`` falls in the key's window [created_at, retired_at).

    A key retired at T signs nothing at or after T: its successor took over at that instant, so a
    checkpoint claiming a later signing time under the old key is one a thief of the old key made.
    """
    if signed_at < window.created_at:
        return False
    return window.retired_at is None or signed_at < window.retired_at
