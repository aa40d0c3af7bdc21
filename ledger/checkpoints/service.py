"""Signing, recording and publishing checkpoints, and recording witnesses' cosignatures on them.

A checkpoint is signed under a PostgreSQL advisory lock per log, so two ledger processes never sign the
same log at once, and recorded through the one write path (``AppendService``) as a
``ledger.checkpoint_signed`` event with the id ``ledger:checkpoint:<size>``: it is on the record before it is
published, and a publication that fails is retried on the next round, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ledger.checkpoints.publication import DirectoryPublisher, Publisher
from ledger.checkpoints.store import CheckpointStore, LogState, SignedCheckpoint
from ledger.crypto.checkpoint_keys import CheckpointKeyProvider, KeyGeneration
from ledger.domain.errors import (
    ConfigurationError,
    FieldError,
    LedgerError,
    MalformedRequest,
    NotFound,
    ValidationFailed,
)
from ledger.domain.internal import CHECKPOINT_COSIGNED, CHECKPOINT_SIGNED, KEY_ROTATED, ledger_event
from ledger.domain.logs import log_for
from ledger.storage.append import AppendService
from ledger.storage.database import Database
from ledger.storage.tree import LogTrees
from ledger.verifier.checkpoint import Checkpoint, origin_for, parse_checkpoint, sign_checkpoint
from ledger.verifier.cosignature import verify_cosignatures
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import KeyWindow, VerifierKey
from ledger.verifier.note import parse_note

_log = logging.getLogger("ledger.checkpoints")
SIGNED, COSIGNED = CHECKPOINT_SIGNED, CHECKPOINT_COSIGNED
# pg_advisory_xact_lock(int4, int4): this constant ("LCKP") in the first half, hashtext(log) in the second.
_LOCK_CLASS = 0x4C434B50


@dataclass(frozen=True)
class Cosigned:
    """What a cosignature POST did: the checkpoint with its cosignatures now, and the witness keys whose
    lines were new (``recorded``) or on the record already (``repeated``)."""

    checkpoint: SignedCheckpoint
    recorded: tuple[str, ...]
    repeated: tuple[str, ...]


@dataclass(frozen=True)
class Rotation:
    """A key rotation: the key ids (``name+hex``) of the generation retired and of the new one."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    generation: KeyGeneration


class CheckpointService:
    """Signs each log's tree head when due, records it, publishes it; records cosignatures."""

    def __init__(
        self,
        *,
        db: Database,
        trees: LogTrees,
        appender: AppendService,
        keys: Callable[[], CheckpointKeyProvider],
        deployment: str,
        every: int,
        seconds: float,
        directory: DirectoryPublisher,
        publishers: Sequence[Publisher] = (),
        witness_keys: Sequence[VerifierKey] = (),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._db = db
        self._trees = trees
        self._appender = appender
        self._keys_factory = keys
        self._keys: CheckpointKeyProvider | None = None
        self.deployment = deployment
        self.every = every
        self.seconds = seconds
        self.directory = directory
        self._publishers: tuple[Publisher, ...] = (directory, *publishers)
        self.witness_keys = tuple(witness_keys)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.store = CheckpointStore(db)
        self._unpublished: dict[tuple[str, str, int], SignedCheckpoint] = {}

    @property
    def keys(self) -> CheckpointKeyProvider:
        """The key provider, opened on first use (the local key file is created then)."""
        if self._keys is None:
            self._keys = self._keys_factory()
        return self._keys

    def origin(self, log: str) -> str:
        """The origin line of ``log``'s checkpoints: ``<deployment>/logs/<log>``."""
        return origin_for(self.deployment, log)

    def verifier_keys(self) -> tuple[KeyWindow, ...]:
        """Every generation's public keys with their validity windows, oldest first."""
        return self.keys.verifier_keys()

    def key_transitions(self) -> tuple[bytes, ...]:
        """The signed notes by which each key generation vouches for the next (``GET /v1/keys``)."""
        return self.keys.transitions()

    # ---- signing -------------------------------------------------------------------------------------

    def due(self, log: str) -> bool:
        """True if ``log`` grew since its latest checkpoint by ``every`` leaves, or ``seconds`` passed."""
        states = self.store.states(log)
        return bool(states) and self._due(states[0])

    def _due(self, state: LogState) -> bool:
        if not state.grown:
            return False
        last = state.latest
        if last is None or state.new_events >= self.every:
            return True
        return (self._clock() - last.signed_at).total_seconds() >= self.seconds

    def sign(self, log: str) -> SignedCheckpoint | None:
        """Sign, record and publish ``log``'s tree head now; ``None`` when the log did not grow since its
        latest checkpoint (checkpoint bookkeeping aside). ``NotFound`` when there is no such log."""
        with self._locked(log):
            states = self.store.states(log)
            if not states:
                msg = f"there is no log {log!r}"
                raise NotFound(msg)
            state = states[0]
            if not state.grown:
                return None
            signed = self._sign(state)
        self._publish(signed)
        return signed

    def sign_due(self) -> list[SignedCheckpoint]:
        """Sign every log that is due; a log that fails is logged and tried again next round."""
        signed = []
        for state in self.store.states():
            if not self._due(state):
                continue
            try:
                cp = self.sign(state.log)
            except LedgerError as exc:
                _log.warning(
                    "checkpoint of log %s not signed: %s; trying again next round", state.log, exc.detail
                )
                continue
            if cp is not None:
                signed.append(cp)
        return signed

    def _sign(self, state: LogState) -> SignedCheckpoint:
        if log_for(state.tenant) != state.log:
            msg = f"log {state.log!r} is not the log of its tenant {state.tenant!r}: its checkpoint has no log to go to"
            raise ConfigurationError(msg)
        size, root = self._trees.root(state.log, tenant=None)
        now = self._clock()
        note = sign_checkpoint(
            Checkpoint(self.origin(state.log), size, root), self.keys.signers(), int(now.timestamp())
        )
        text = note.to_bytes().decode()
        data = {"log": state.log, "tree_size": size, "root_hash": root.hex(), "note": text}
        event = ledger_event(SIGNED, state.tenant, data, event_id=f"checkpoint:{size}")
        receipt = self._appender.append([event])[0]
        _log.info(
            "signed checkpoint of log %s at size %d (event at position %d)", state.log, size, receipt.position
        )
        return SignedCheckpoint(
            state.log, size, state.tenant, root, text, receipt.recorded_at, receipt.event_id, receipt.position
        )

    @contextmanager
    def _locked(self, log: str) -> Iterator[None]:
        """Hold ``log``'s checkpoint lock (a transaction-scoped advisory lock on a connection of its own:
        it ends with that transaction however the work inside ends)."""
        with self._db.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, log))
            yield

    # ---- publication ---------------------------------------------------------------------------------

    def publish_pending(self) -> None:
        """Publish again what failed before, and every log's latest checkpoint missing from the directory
        (signed by a process that stopped before publishing it)."""
        for key, cp in list(self._unpublished.items()):
            del self._unpublished[key]
            self._publish(cp, only=key[0])
        for state in self.store.states():
            if state.latest is not None and not self.directory.published(state.latest):
                self._publish(state.latest)

    def _publish(self, cp: SignedCheckpoint, *, only: str | None = None) -> None:
        for publisher in self._publishers:
            if only is not None and publisher.name != only:
                continue
            try:
                publisher.publish(cp)
            except (OSError, LedgerError) as exc:
                why = exc.detail if isinstance(exc, LedgerError) else str(exc)
                _log.warning(
                    "checkpoint of log %s at size %d not published to %s: %s; trying again next round",
                    cp.log, cp.tree_size, publisher.name, why,
                )  # fmt: skip
                self._unpublished[(publisher.name, cp.log, cp.tree_size)] = cp

    def close(self) -> None:
        """Release the publishers (a Kafka producer)."""
        for publisher in self._publishers:
            publisher.close()

    # ---- cosignatures --------------------------------------------------------------------------------

    def cosign(self, log: str, body: bytes, *, tenant: str | None) -> Cosigned:
        """Record the witnesses' ``cosignature/v1`` lines on a stored checkpoint of ``log``.

        ``body`` is the checkpoint note (as ``GET /v1/logs/{log}/checkpoint`` serves it) with the witness's
        line(s) added; lines of keys not in ``LEDGER_WITNESS_KEYS`` are ignored, but at least one line must
        verify under a configured witness key, and a line of a configured key that does not verify
        refuses the whole body.
        """
        try:
            note = parse_note(body)
            claimed = parse_checkpoint(note.text)
        except VerifierError as exc:
            msg = f"the body is not a signed checkpoint note: {exc.message}"
            raise MalformedRequest(msg, errors=[FieldError("body", exc.message)]) from None
        if not self.witness_keys:
            msg = "this ledger accepts no cosignatures: no witness key is configured (LEDGER_WITNESS_KEYS)"
            raise ValidationFailed(msg, errors=[FieldError("cosignature", msg)])
        try:
            verified = verify_cosignatures(note, self.witness_keys)
        except VerifierError as exc:
            msg = f"cosignature refused: {exc.message}"
            raise ValidationFailed(msg, errors=[FieldError("cosignature", exc.message)]) from None
        with self._locked(log):
            stored = self.store.at(log, claimed.size, tenant=tenant)
            if stored is None:
                msg = f"log {log!r} has no checkpoint at tree size {claimed.size}"
                raise NotFound(msg)
            if parse_note(stored.note.encode()).text != note.text:
                msg = (
                    f"the cosigned checkpoint is not the one log {log!r} signed at tree size {claimed.size}:"
                    " its origin, root hash or extension lines differ"
                )
                raise ValidationFailed(msg, errors=[FieldError("body", msg)])
            # One cosignature per witness key and checkpoint: each new timestamp would otherwise add a line,
            # and past 100 signature lines the note is one no signed-note reader accepts.
            held = {(s.name, s.key_id) for s in parse_note(stored.full_note.encode()).signatures}
            fresh = []
            for v in verified:
                if (v.signature.name, v.signature.key_id) not in held:
                    held.add((v.signature.name, v.signature.key_id))
                    fresh.append(v)
            events = [
                ledger_event(
                    COSIGNED,
                    stored.tenant,
                    {
                        "log": log,
                        "tree_size": stored.tree_size,
                        "root_hash": stored.root.hex(),
                        "witness_key": v.key.vkey,
                        "cosignature": v.signature.line,
                    },
                    event_id=f"cosignature:{stored.tree_size}:{v.key.key_id:08x}:{v.signature.timestamp}",
                )
                for v in fresh
            ]
            self._appender.append(events)
        lines = tuple(v.signature.line for v in fresh)
        after = replace(stored, cosignatures=(*stored.cosignatures, *lines))
        if fresh:
            self._publish(after)  # the published copy carries the witnesses' lines too
        return Cosigned(
            after,
            recorded=tuple(v.key.label for v in fresh),
            repeated=tuple(v.key.label for v in verified if v not in fresh),
        )

    # ---- keys ----------------------------------------------------------------------------------------

    def rotate_keys(self, system_tenant: str) -> Rotation:
        """Start a new key generation and record it as ``ledger.key_rotated`` in ``system_tenant``'s log."""
        old = tuple(_label(s.name, s.key_id) for s in self.keys.signers())
        generation = self.keys.rotate()
        new = tuple(_label(s.name, s.key_id) for s in generation.signers)
        data = {"key_id": ",".join(new), "purpose": "checkpoint_signing", "previous_key_id": ",".join(old)}
        event_id = f"key-rotated:checkpoint:{generation.number}:{generation.signers[0].key_id:08x}"
        self._appender.append([ledger_event(KEY_ROTATED, system_tenant, data, event_id=event_id)])
        return Rotation(old, new, generation)


def _label(name: str, key_id: int) -> str:
    return f"{name}+{key_id:08x}"
