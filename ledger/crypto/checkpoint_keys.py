"""Checkpoint signing keys: the provider interface (a KMS fits it) and the local key file behind it.

Each *generation* holds an Ed25519 key (signed-note type 0x01) and an ML-DSA-44 key (tlog-cosignature type
0x06) under the same key name. ``rotate()`` retires the current generation and starts a new one; retired
public keys stay listed with their validity window so old checkpoints keep verifying and a checkpoint a
retired key signed after its retirement is refused (``ledger.verifier.keys.key_valid_at``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ledger.crypto.keys import read_or_create_secret
from ledger.domain.errors import ConfigurationError, KeyUnavailable
from ledger.files import write_atomically
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import COSIGNATURE_MLDSA44, ED25519, KeyWindow, SeedSigner, Signer, check_key_name
from ledger.verifier.transition import sign_transition

_FORMAT = "ledger-checkpoint-keys/1"
_SEED_FIELDS = {ED25519: "ed25519_seed", COSIGNATURE_MLDSA44: "mldsa44_seed"}


class CheckpointSigner(Signer, Protocol):
    """One signing key (``Signer``: its name ``<deployment>/checkpoints``, key id, signature type, and raw
    signing, which a KMS performs without exposing the key), plus the verifier key text it publishes."""

    @property
    def vkey(self) -> str:
        """The verifier key text published for auditors."""
        ...


class CheckpointKeyProvider(Protocol):
    """Where checkpoint keys live: a local key file by default, a KMS behind the same three calls."""

    def signers(self) -> tuple[CheckpointSigner, ...]:
        """The current generation's signers, Ed25519 first, then ML-DSA-44."""
        ...

    def verifier_keys(self) -> tuple[KeyWindow, ...]:
        """Every generation's public keys, current and retired, with their validity windows."""
        ...

    def rotate(self, now: datetime | None = None) -> KeyGeneration:
        """Retire the current generation and start a new one; returns the new generation."""
        ...

    def transitions(self) -> tuple[bytes, ...]:
        """For every generation after the first, the signed note by which the one before vouches for it
        (``ledger.verifier.transition``), oldest first."""
        ...


@dataclass(frozen=True)
class KeyGeneration:
    """One generation of checkpoint keys and the window in which it signs."""

    number: int
    created_at: datetime
    retired_at: datetime | None
    signers: tuple[SeedSigner, ...]

    def windows(self) -> tuple[KeyWindow, ...]:
        """This generation's public keys with its validity window."""
        return tuple(KeyWindow(s.verifier_key, self.created_at, self.retired_at) for s in self.signers)


def default_key_file(home: Path) -> Path:
    """Where the local checkpoint key file lives under ``LEDGER_HOME``."""
    return home / "keys" / "checkpoint-keys.json"


class LocalCheckpointKeyFile:
    """Checkpoint keys in a JSON file (mode 0600) under ``LEDGER_HOME``, created with one generation on first use.

    The file is re-read whenever it changed on disk, so a ``ledger serve`` process signs with the new
    generation as soon as ``ledger keys rotate`` (another process) has written it.
    """

    def __init__(self, path: Path, name: str, clock: Callable[[], datetime] | None = None) -> None:
        try:
            self._name = check_key_name(name, "checkpoint key name")
        except VerifierError as exc:
            raise ConfigurationError(exc.message) from None
        self._path = path
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stamp: tuple[int, int, int] | None = None
        self._generations: tuple[KeyGeneration, ...] = ()
        self._load(read_or_create_secret(path, lambda: _encode(name, [_new_generation(1, self._clock())])))

    @property
    def name(self) -> str:
        """The key name every generation signs under."""
        return self._name

    @property
    def current(self) -> KeyGeneration:
        """The generation that signs now."""
        self._refresh()
        return self._generations[-1]

    def signers(self) -> tuple[SeedSigner, ...]:
        """The current generation's Ed25519 and ML-DSA-44 signers."""
        return self.current.signers

    def verifier_keys(self) -> tuple[KeyWindow, ...]:
        """All generations' public keys with their windows, oldest first."""
        self._refresh()
        return tuple(w for g in self._generations for w in g.windows())

    def transitions(self) -> tuple[bytes, ...]:
        """Each generation after the first, vouched for by the previous generation's Ed25519 key. Ed25519
        signatures are deterministic, so the same notes come back every time from the same key file."""
        self._refresh()
        return tuple(
            sign_transition(new.number, [s.verifier_key for s in new.signers], old.signers[0])
            for old, new in itertools.pairwise(self._generations)
        )

    def rotate(self, now: datetime | None = None) -> KeyGeneration:
        """Retire the current generation at ``now`` and write a new one, under a lock against a concurrent rotate."""
        moment = now or self._clock()
        with self._locked():
            self._stamp = None
            self._refresh()
            old = self._generations[-1]
            # Times are whole seconds, as checkpoint timestamps are: the new key is valid from the second
            # it was made, the old one until the next second, so neither refuses a signature made meanwhile.
            retired = datetime.fromtimestamp(int(moment.timestamp()) + 1, UTC)
            retired = max(retired, old.created_at + timedelta(seconds=1))
            kept = [*self._generations[:-1], KeyGeneration(old.number, old.created_at, retired, old.signers)]
            rows = [*(_generation_row(g) for g in kept), _new_generation(old.number + 1, moment)]
            write_atomically(self._path, _encode(self._name, rows), mode=0o600)
            self._stamp = None
            self._refresh()
        return self._generations[-1]

    def _refresh(self) -> None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            msg = f"checkpoint key file {self._path} disappeared"
            raise KeyUnavailable(msg) from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._load(self._path.read_bytes())
            self._stamp = stamp

    def _load(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
            if doc.get("format") != _FORMAT:
                msg = f"checkpoint key file {self._path} is not in the {_FORMAT} format"
                raise KeyUnavailable(msg)
            generations = tuple(_decode_generation(g, doc["name"]) for g in doc["generations"])
        except (ValueError, KeyError, TypeError, VerifierError) as exc:
            msg = f"checkpoint key file {self._path} is unreadable: {exc}"
            raise KeyUnavailable(msg) from None
        if doc["name"] != self._name:
            msg = (
                f"checkpoint key file {self._path} holds keys named {doc['name']!r}, not {self._name!r};"
                " a key name is part of every key id, so it cannot change under existing keys"
            )
            raise ConfigurationError(msg)
        if not generations:
            msg = f"checkpoint key file {self._path} holds no key generation"
            raise KeyUnavailable(msg)
        self._generations = generations

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _new_generation(number: int, now: datetime) -> dict[str, Any]:
    return {
        "generation": number,
        "created_at": datetime.fromtimestamp(int(now.timestamp()), UTC).isoformat(),
        "retired_at": None,
        **{f: base64.b64encode(secrets.token_bytes(32)).decode() for f in _SEED_FIELDS.values()},
    }


def _decode_generation(raw: dict[str, Any], name: str) -> KeyGeneration:
    signers = tuple(
        SeedSigner(name, sig_type, base64.b64decode(raw[f], validate=True))
        for sig_type, f in _SEED_FIELDS.items()
    )
    retired = raw["retired_at"]
    return KeyGeneration(
        number=int(raw["generation"]),
        created_at=datetime.fromisoformat(raw["created_at"]),
        retired_at=datetime.fromisoformat(retired) if retired else None,
        signers=signers,
    )


def _encode(name: str, rows: list[dict[str, Any]]) -> bytes:
    return (json.dumps({"format": _FORMAT, "name": name, "generations": rows}, indent=2) + "\n").encode()


def _generation_row(g: KeyGeneration) -> dict[str, Any]:
    seeds = {s.signature_type: s.seed for s in g.signers}
    return {
        "generation": g.number,
        "created_at": g.created_at.isoformat(),
        "retired_at": g.retired_at.isoformat() if g.retired_at else None,
        **{f: base64.b64encode(seeds[t]).decode() for t, f in _SEED_FIELDS.items()},
    }
