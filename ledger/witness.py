"""A small witness an auditor runs (``ledger witness URL --state DIR``): it cosigns a log's checkpoint only
after checking that it extends the last one it saw.

Per round and log: fetch the latest checkpoint (``GET /v1/logs/{log}/checkpoint``), verify the ledger's
signature under keys pinned in the state directory on first use (or given), fetch a consistency proof from
the saved size (``GET /v1/logs/{log}/proofs/consistency``) and verify it against the two roots the witness
holds (RFC 9162 §2.1.4.2), then cosign (C2SP tlog-cosignature ``cosignature/v1``, Ed25519) and post the
cosigned note (``POST /v1/logs/{log}/cosignatures``). Only then is the new checkpoint saved. A checkpoint
that is smaller than, or does not extend, the saved one is refused and the saved state is left as it was.
The first checkpoint seen is accepted without a proof: RFC 9162 has none from the empty tree.

Uses the standard library, ``cryptography`` (through ``ledger.verifier``), ``ledger.domain.merkle`` and
httpx: no database, none of the ledger's storage code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ledger.domain.merkle import ProofError, verify_consistency
from ledger.files import write_atomically
from ledger.verifier.checkpoint import LOG_SIGNATURE_TYPES, Checkpoint, open_checkpoint, parse_checkpoint
from ledger.verifier.cosignature import cosign
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import (
    COSIGNATURE_ED25519,
    SeedSigner,
    VerifierKey,
    decode_base64,
    parse_signer_key,
    parse_vkey,
)
from ledger.verifier.note import parse_note
from ledger.verifier.transition import follow_transitions

PINNED_KEYS = "ledger.vkeys"
"""The file in the state directory holding the ledger's verifier keys, one vkey a line."""
STATE_SUFFIX = ".checkpoint"


class WitnessError(Exception):
    """The witness could not do its round (network, configuration, the ledger's answer): exit 2."""


@dataclass(frozen=True)
class Outcome:
    """What one log's round did: ``cosigned`` (a new size), ``current`` (nothing new) or ``refused``."""

    log: str
    status: str
    size: int
    message: str


# ---- keys --------------------------------------------------------------------------------------------


def keygen(path: Path, name: str) -> SeedSigner:
    """Create a witness key file (mode 0600, never overwritten) holding a new Ed25519 cosignature key."""
    signer = SeedSigner.generate(name, COSIGNATURE_ED25519)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        msg = f"{path} exists already; a witness key file is never overwritten"
        raise WitnessError(msg) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(signer.signer_key + "\n")
    return signer


def load_signer(path: Path) -> SeedSigner:
    """The witness's signing key from its key file (``ledger witness keygen``)."""
    try:
        signer = parse_signer_key(path.read_text().strip())
    except OSError as exc:
        msg = f"cannot read the witness key file {path}: {exc.strerror or exc}"
        raise WitnessError(msg) from None
    except VerifierError as exc:
        msg = f"{path} is not a witness key file: {exc.message}"
        raise WitnessError(msg) from None
    if signer.signature_type != COSIGNATURE_ED25519:
        msg = f"{path}: a witness key must be an Ed25519 cosignature/v1 key (type 0x04)"
        raise WitnessError(msg)
    return signer


# ---- the state directory -----------------------------------------------------------------------------


class State:
    """The witness's directory: the last checkpoint it cosigned per log (``<log>.checkpoint``, the note as
    served) and the ledger's pinned verifier keys (``ledger.vkeys``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, log: str) -> Path:
        """Where the last checkpoint of ``log`` is kept."""
        return self.root / (quote(log, safe="") + STATE_SUFFIX)

    def last(self, log: str) -> tuple[Checkpoint, bytes] | None:
        """The saved checkpoint of ``log`` and its note, if any."""
        path = self.path(log)
        if not path.exists():
            return None
        data = path.read_bytes()
        try:
            return parse_checkpoint(parse_note(data).text), data
        except VerifierError as exc:
            msg = f"the saved checkpoint {path} is damaged: {exc.message}"
            raise WitnessError(msg) from None

    def save(self, log: str, note: bytes) -> None:
        """Keep ``note`` as the last checkpoint of ``log`` (written whole, then renamed)."""
        write_atomically(self.path(log), note)

    def logs(self) -> list[str]:
        """The logs the directory holds a checkpoint of."""
        from urllib.parse import unquote

        return sorted(
            unquote(p.name[: -len(STATE_SUFFIX)])
            for p in self.root.glob("*" + STATE_SUFFIX)
            if not p.name.startswith(".")
        )

    def pinned_keys(self) -> list[VerifierKey] | None:
        """The ledger keys pinned on first use, or None."""
        path = self.root / PINNED_KEYS
        if not path.exists():
            return None
        try:
            return [parse_vkey(line) for line in path.read_text().splitlines() if line.strip()]
        except VerifierError as exc:
            msg = f"the pinned key file {path} is damaged: {exc.message}"
            raise WitnessError(msg) from None

    def pin(self, keys: Sequence[VerifierKey]) -> None:
        """Pin the ledger's keys."""
        write_atomically(self.root / PINNED_KEYS, "".join(k.vkey + "\n" for k in keys).encode())


# ---- one round -----------------------------------------------------------------------------------------


class LedgerClient:
    """The three reads and the one write the witness makes, over HTTP with a bearer token."""

    def __init__(self, url: str, token: str, client: httpx.Client | None = None) -> None:
        self._http = client or httpx.Client(base_url=url.rstrip("/"), timeout=30.0)
        self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            response = self._http.get(path, params=params or None)
        except httpx.HTTPError as exc:
            msg = f"GET {path}: {exc}"
            raise WitnessError(msg) from None
        if response.status_code != 200:
            msg = f"GET {path}: HTTP {response.status_code}: {response.text[:300]}"
            raise WitnessError(msg)
        return response

    def keys(self) -> list[VerifierKey]:
        """The ledger's checkpoint verifier keys (``GET /v1/keys``): every ``vkey`` string it lists."""
        found: list[VerifierKey] = []
        body = self._get("/v1/keys").json()
        listed = body.get("checkpoint_keys", body) if isinstance(body, dict) else body  # not witnesses'
        for text in _vkeys(listed):
            try:
                key = parse_vkey(text)
            except VerifierError as exc:
                msg = f"GET /v1/keys lists a key that does not parse: {exc.message}"
                raise WitnessError(msg) from None
            if key.signature_type in LOG_SIGNATURE_TYPES and key not in found:
                found.append(key)
        if not found:
            msg = "GET /v1/keys lists no checkpoint verifier key"
            raise WitnessError(msg)
        return found

    def transitions(self) -> list[bytes]:
        """The key transition notes ``GET /v1/keys`` lists (each generation vouched for by the one before)."""
        body = self._get("/v1/keys").json()
        listed = body.get("transitions", []) if isinstance(body, dict) else []
        return [t.encode() for t in listed if isinstance(t, str)]

    def checkpoint(self, log: str) -> bytes:
        """The latest signed checkpoint note of ``log``."""
        return self._get(f"/v1/logs/{quote(log, safe='')}/checkpoint").content

    def consistency(self, log: str, old: int, new: int) -> list[bytes]:
        """The hashes of the consistency proof from ``old`` to ``new`` (the roots it names are not used)."""
        body = self._get(
            f"/v1/logs/{quote(log, safe='')}/proofs/consistency", **{"from": old, "to": new}
        ).json()
        try:
            return [decode_base64(h, "a consistency proof hash") for h in body["hashes"]]
        except (KeyError, TypeError, VerifierError) as exc:
            msg = f"the consistency proof of log {log!r} from {old} to {new} is not readable: {exc}"
            raise WitnessError(msg) from None

    def post_cosignature(self, log: str, note: bytes) -> None:
        """Post the cosigned note."""
        path = f"/v1/logs/{quote(log, safe='')}/cosignatures"
        try:
            response = self._http.post(
                path, content=note, headers={"Content-Type": "text/plain; charset=utf-8"}
            )
        except httpx.HTTPError as exc:
            msg = f"POST {path}: {exc}"
            raise WitnessError(msg) from None
        if response.status_code not in (200, 201):
            msg = f"POST {path}: HTTP {response.status_code}: {response.text[:300]}"
            raise WitnessError(msg)


def _vkeys(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "vkey" and isinstance(v, str):
                yield v
            else:
                yield from _vkeys(v)
    elif isinstance(value, list):
        for v in value:
            yield from _vkeys(v)


class Witness:
    """One auditor's witness over one ledger."""

    def __init__(
        self,
        client: LedgerClient,
        state: State,
        signer: SeedSigner,
        *,
        ledger_keys: Sequence[VerifierKey] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._state = state
        self._signer = signer
        self._given_keys = list(ledger_keys)
        self._clock = clock

    def keys(self) -> list[VerifierKey]:
        """The keys the ledger's signature must verify under: given, else pinned, else fetched and pinned."""
        if self._given_keys:
            return self._given_keys
        pinned = self._state.pinned_keys()
        if pinned is None:
            pinned = self._client.keys()
            self._state.pin(pinned)
        return pinned

    def round(self, logs: Sequence[str]) -> list[Outcome]:
        """Check and cosign the latest checkpoint of each log; a refusal of one does not stop the others."""
        keys = self.keys()
        return [self._one(log, keys) for log in logs]

    def _follow_rotation(self, keys: Sequence[VerifierKey]) -> list[VerifierKey] | None:
        """After ``ledger keys rotate``: the pinned keys plus those a pinned key vouched for (transition
        notes of ``GET /v1/keys``), pinned from now on; None when nothing new is vouched for, or when the
        keys were given on the command line (the operator's choice stands)."""
        if self._given_keys:
            return None
        followed = follow_transitions(keys, self._client.transitions())
        if len(followed) == len(keys):
            return None
        self._state.pin(followed)
        return followed

    def _one(self, log: str, keys: Sequence[VerifierKey]) -> Outcome:
        served = self._client.checkpoint(log)
        try:
            signed = open_checkpoint(served, keys)
        except VerifierError as exc:
            followed = self._follow_rotation(keys)
            if followed is None:
                return Outcome(log, "refused", 0, f"log {log}: the checkpoint does not verify: {exc.message}")
            return self._one(log, followed)
        new = signed.checkpoint
        if not new.origin.endswith(f"/logs/{log}"):
            return Outcome(
                log,
                "refused",
                new.size,
                f"log {log}: the checkpoint's origin {new.origin!r} is another log's",
            )
        saved = self._state.last(log)
        if saved is not None:
            problem = self._extends(log, saved[0], new)
            if problem is not None:
                return Outcome(log, "refused", new.size, problem)
            if saved[0].size == new.size:
                return Outcome(log, "current", new.size, f"log {log}: size {new.size} is cosigned already")
        line = cosign(new, self._signer, int(self._clock()))
        cosigned = signed.note.with_signatures(line).to_bytes()
        self._client.post_cosignature(log, cosigned)
        self._state.save(log, cosigned)
        since = "first checkpoint seen" if saved is None else f"extends size {saved[0].size}"
        return Outcome(log, "cosigned", new.size, f"log {log}: cosigned size {new.size} ({since})")

    def _extends(self, log: str, old: Checkpoint, new: Checkpoint) -> str | None:
        """Why ``new`` does not extend ``old`` (None when it does)."""
        if new.origin != old.origin:
            return f"log {log}: the checkpoint's origin {new.origin!r} is not the saved one's {old.origin!r}"
        if new.size < old.size:
            return (
                f"log {log}: the ledger's checkpoint has size {new.size}, smaller than the {old.size} this"
                " witness cosigned: the log was rolled back"
            )
        if new.size == old.size:
            if new.root != old.root:
                return f"log {log}: a different root at size {new.size} than the one this witness cosigned"
            return None
        proof = self._client.consistency(log, old.size, new.size)
        try:
            verify_consistency(old.size, new.size, old.root, new.root, proof)
        except ProofError as exc:
            return f"log {log}: the checkpoint at size {new.size} does not extend the saved one at size {old.size}: {exc}"
        return None
