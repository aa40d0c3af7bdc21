"""In-memory logs and keys for evidence bundle tests and the worked example of docs/verification.md.

Events are stored documents in RFC 8785 form (``log``, ``position``, ``recorded_at`` around the event), leaves
are their RFC 9162 leaf hashes, and proofs come from ``ledger.domain.merkle`` over the in-memory leaves,
so a bundle built here has the shape a bundle built from PostgreSQL has.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.bundles import CitedCheckpoint, EventRow, build_bundle, encode_bundle
from ledger.domain.canonical import canonicalize
from ledger.domain.merkle import consistency_proof, hash_entries, inclusion_proof, leaf_hash, root
from ledger.domain.stored import stored_document
from ledger.verifier.checkpoint import Checkpoint, checkpoint_key_name, origin_for, sign_checkpoint
from ledger.verifier.cosignature import cosign
from ledger.verifier.keys import COSIGNATURE_ED25519, COSIGNATURE_MLDSA44, ED25519, KeyWindow, SeedSigner

DEPLOYMENT = "ledger.example"
T0 = datetime(2027, 1, 4, 9, 0, 0, tzinfo=UTC)


def seed(label: str) -> bytes:
    """A fixed 32-byte seed named by ``label``, so examples are reproducible."""
    return hashlib.sha256(b"ledger test seed " + label.encode()).digest()


@dataclass(frozen=True)
class KeyGeneration:
    """The ledger's two checkpoint signers (Ed25519, ML-DSA-44) and their validity window."""

    ed25519: SeedSigner
    mldsa44: SeedSigner
    created_at: datetime
    retired_at: datetime | None = None

    @classmethod
    def make(cls, label: str, created_at: datetime = T0, retired_at: datetime | None = None) -> KeyGeneration:
        """A generation with seeds fixed by ``label``."""
        name = checkpoint_key_name(DEPLOYMENT)
        return cls(
            SeedSigner(name, ED25519, seed(label + "/ed25519")),
            SeedSigner(name, COSIGNATURE_MLDSA44, seed(label + "/mldsa44")),
            created_at,
            retired_at,
        )

    @property
    def signers(self) -> tuple[SeedSigner, SeedSigner]:
        """Ed25519 first, as the ledger signs."""
        return (self.ed25519, self.mldsa44)

    def windows(self) -> list[KeyWindow]:
        """The public keys with this generation's window."""
        return [KeyWindow(s.verifier_key, self.created_at, self.retired_at) for s in self.signers]


WITNESS = SeedSigner("witness.example/w1", COSIGNATURE_ED25519, seed("witness"))


@dataclass
class MemoryLog:
    """A log held in memory: canonical bytes per position, and its Merkle tree over their leaf hashes."""

    name: str
    rows: list[bytes] = field(default_factory=list)

    def append(self, event: dict[str, Any], recorded_at: datetime | None = None) -> EventRow:
        """Store ``event`` at the next position, as the ledger's append does."""
        position = len(self.rows)
        at = recorded_at or T0 + timedelta(seconds=position)
        self.rows.append(canonicalize(stored_document(event, self.name, position, at)))
        return self.row(position)

    def row(self, position: int) -> EventRow:
        """The stored row at ``position``."""
        return EventRow(self.name, position, self.rows[position])

    def subtree(self, start: int, size: int) -> bytes:
        """The hash of a perfect subtree, from the leaves."""
        return hash_entries([leaf_hash(r) for r in self.rows[start : start + size]])

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` events."""
        return root(size, self.subtree)

    def inclusion(self, log: str, position: int, tree_size: int) -> list[bytes]:
        """An inclusion proof, in the proof source shape ``build_bundle`` takes."""
        assert log == self.name
        return inclusion_proof(position, tree_size, self.subtree)

    def consistency(self, log: str, old: int, new: int) -> list[bytes]:
        """A consistency proof, in the proof source shape ``build_bundle`` takes."""
        assert log == self.name
        return consistency_proof(old, new, self.subtree)

    def checkpoint(
        self,
        size: int,
        keys: KeyGeneration,
        signed_at: datetime,
        *,
        witness: SeedSigner | None = None,
        signers: tuple[SeedSigner, ...] | None = None,
    ) -> CitedCheckpoint:
        """A signed checkpoint at ``size``, cosigned by ``witness`` if given."""
        cp = Checkpoint(origin_for(DEPLOYMENT, self.name), size, self.root(size))
        note = sign_checkpoint(cp, signers or keys.signers, int(signed_at.timestamp()))
        if witness is not None:
            note = note.with_signatures(cosign(cp, witness, int(signed_at.timestamp())))
        return CitedCheckpoint(self.name, note.to_bytes(), signed_at)


def annotation(n: int, tenant: str = "acme", **data: Any) -> dict[str, Any]:
    """A small annotation.created CloudEvent, the n-th of a test."""
    return {
        "specversion": "1.0",
        "id": f"evt-{tenant}-{n:04d}",
        "source": "urn:example:annotator-app",
        "type": "annotation.created",
        "time": "2027-01-04T08:59:00.000000Z",
        "subject": f"chest-ct-2026/1.2.826.0.1.{n}",
        "tenant": tenant,
        "actor": "annotator-7",
        "actorrole": "annotator",
        "data": {"dataset": "chest-ct-2026", "item": f"1.2.826.0.1.{n}", "label_class": "nodule", **data},
    }


def filled_log(name: str = "acme", events: int = 12) -> MemoryLog:
    """A log of ``events`` annotations."""
    log = MemoryLog(name)
    for n in range(events):
        log.append(annotation(n, tenant=name))
    return log


def make_bundle(
    log: MemoryLog,
    positions: list[int],
    checkpoints: list[CitedCheckpoint],
    keys: KeyGeneration,
    *,
    scope: dict[str, Any] | None = None,
    extra_windows: list[KeyWindow] | None = None,
    witness_keys: list[SeedSigner] | None = None,
    created_at: datetime | None = None,
) -> bytes:
    """A sealed bundle of the events at ``positions``, proven against ``checkpoints``."""
    doc = build_bundle(
        scope=scope or {"events": [json.loads(log.rows[p])["event"]["id"] for p in positions]},
        events=[log.row(p) for p in positions],
        checkpoints=checkpoints,
        keys=[*(extra_windows or []), *keys.windows()],
        witness_keys=[w.verifier_key for w in witness_keys or []],
        inclusion=log.inclusion,
        consistency=log.consistency,
        sealer=keys.ed25519,
        created_at=created_at or max(c.signed_at for c in checkpoints),
    )
    return encode_bundle(doc)
