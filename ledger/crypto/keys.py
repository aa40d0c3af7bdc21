"""Key providers: where the master key that wraps per-subject keys lives (a local file by default)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.domain.errors import KeyUnavailable

_NONCE_BYTES = 12


class KeyProvider(Protocol):
    """The small interface a KMS provider implements as well as the local file does."""

    key_id: str

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """Encrypt a data key for storage; ``context`` is bound as associated data."""

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """Decrypt a data key wrapped by ``wrap`` with the same ``context``."""

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for one named purpose (e.g. keyed content digests), stable for this master key."""


class LocalKeyFileProvider:
    """A 256-bit master key in a file (mode 0600), created on first use."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._master = _load_or_create(path)
        self.key_id = "local:" + _short_fingerprint(self._master)

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """AES-256-GCM under the master key: nonce ‖ ciphertext."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self._master).encrypt(nonce, key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        """Reverse of ``wrap``; a wrong key or context raises ``KeyUnavailable``."""
        try:
            return AESGCM(self._master).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], context)
        except InvalidTag:
            msg = f"a subject key does not unwrap under master key {self.key_id} ({self._path})"
            raise KeyUnavailable(msg) from None

    def derive(self, purpose: bytes) -> bytes:
        """HKDF-SHA256 of the master key with ``purpose`` as info (RFC 5869)."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(self._master)


def _load_or_create(path: Path) -> bytes:
    key = read_or_create_secret(path, lambda: secrets.token_bytes(32))
    if len(key) != 32:
        msg = f"master key file {path} must hold exactly 32 bytes, it holds {len(key)}"
        raise KeyUnavailable(msg)
    return key


def read_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of a private key file, creating it (mode 0600) with ``make()`` if it does not exist.

    The file appears whole or not at all (written to a temporary name, synced, then linked), so a
    process starting at the same moment never reads it half-written, and two creators cannot both win.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(make())
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _short_fingerprint(key: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"ledger key id\x00" + key)
    return digest.finalize()[:8].hex()
