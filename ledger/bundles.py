"""Assemble an evidence bundle (``ledger-evidence-bundle/v1``) from rows, proofs, checkpoints and keys: pure.

Storage reads the events' stored rows, the cited signed checkpoints and the key windows, and passes two proof
functions over its tree; this module only arranges them in the format ``ledger.verifier.bundle`` checks, proves
each event against the smallest cited checkpoint of its log that holds it, links consecutive cited checkpoints
of a log by consistency proofs, and seals the members with the ledger's Ed25519 checkpoint key.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.errors import ParameterInvalid
from ledger.verifier.bundle_format import FORMAT, canonical_json, format_timestamp, member_digests, seal_text
from ledger.verifier.checkpoint import parse_checkpoint
from ledger.verifier.keys import ED25519, KeyWindow, Signer, VerifierKey, encode_base64
from ledger.verifier.note import Note, parse_note, sign_text

InclusionSource = Callable[[str, int, int], Sequence[bytes]]
"""``(log, position, tree_size) -> inclusion proof hashes`` (RFC 9162 PATH, leaf to root)."""
ConsistencySource = Callable[[str, int, int], Sequence[bytes]]
"""``(log, from_size, to_size) -> consistency proof hashes`` (RFC 9162 PROOF)."""


@dataclass(frozen=True)
class EventRow:
    """One stored event as the bundle carries it: its log, position and canonical bytes exactly as hashed."""

    log: str
    position: int
    canonical: bytes


@dataclass(frozen=True)
class CitedCheckpoint:
    """A signed checkpoint of ``log`` (the note bytes exactly as signed, cosignatures included) and when it was signed."""

    log: str
    note: bytes
    signed_at: datetime


def item_scope(dataset: str, item: str) -> dict[str, Any]:
    """The scope of ``ledger bundle --item DATASET/ITEM``."""
    return {"item": f"{dataset}/{item}"}


def release_scope(dataset: str, release: str) -> dict[str, Any]:
    """The scope of ``ledger bundle --release DATASET@RELEASE``."""
    return {"release": f"{dataset}@{release}"}


def events_scope(event_ids: Sequence[str]) -> dict[str, Any]:
    """The scope of ``ledger bundle --events ID,…``."""
    return {"events": list(event_ids)}


def log_scope(log: str, first: int, last: int) -> dict[str, Any]:
    """The scope of ``ledger bundle --log L --from P --to P`` (both positions included)."""
    return {"log": log, "from": first, "to": last}


def build_bundle(
    *,
    scope: dict[str, Any],
    events: Iterable[EventRow],
    checkpoints: Sequence[CitedCheckpoint],
    keys: Sequence[KeyWindow],
    witness_keys: Sequence[VerifierKey] = (),
    inclusion: InclusionSource,
    consistency: ConsistencySource,
    sealer: Signer,
    created_at: datetime,
) -> dict[str, Any]:
    """The bundle document; ``encode_bundle`` gives its bytes. Raises ``ParameterInvalid`` when an event lies
    beyond every cited checkpoint of its log (sign a checkpoint first) or the sealer is not an Ed25519 key."""
    if sealer.signature_type != ED25519:
        msg = (
            f"a bundle is sealed by the Ed25519 checkpoint key, not a type 0x{sealer.signature_type:02x} key"
        )
        raise ParameterInvalid(msg)
    cited = _cite(checkpoints)
    sizes: dict[str, list[int]] = {}
    for log, size in sorted(cited):
        sizes.setdefault(log, []).append(size)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "created_at": format_timestamp(created_at),
        "scope": scope,
        "keys": [
            {
                "vkey": w.key.vkey,
                "created_at": format_timestamp(w.created_at),
                "retired_at": None if w.retired_at is None else format_timestamp(w.retired_at),
            }
            for w in keys
        ],
        "witness_keys": [k.vkey for k in witness_keys],
        "checkpoints": [
            {"log": c.log, "note": c.note.decode(), "signed_at": format_timestamp(c.signed_at)}
            for c in cited.values()
        ],
        "consistency": [
            {"log": log, "from": old, "to": new, "hashes": _b64(consistency(log, old, new))}
            for log, found in sizes.items()
            for old, new in itertools.pairwise(found)
        ],
        "events": [_event(row, sizes.get(row.log, []), inclusion) for row in events],
    }
    text = seal_text(member_digests(doc))
    doc["seal"] = Note(text, (sign_text(text, sealer),)).to_bytes().decode()
    return doc


def encode_bundle(bundle: dict[str, Any]) -> bytes:
    """The bundle file: RFC 8785 JSON, so every byte of it is one the verifier reads."""
    return canonical_json(bundle)


def _cite(checkpoints: Sequence[CitedCheckpoint]) -> dict[tuple[str, int], CitedCheckpoint]:
    """The checkpoints by (log, size), each once, in the order given."""
    cited: dict[tuple[str, int], CitedCheckpoint] = {}
    for c in checkpoints:
        size = parse_checkpoint(parse_note(c.note).text).size
        cited.setdefault((c.log, size), c)
    return cited


def _event(row: EventRow, sizes: Sequence[int], inclusion: InclusionSource) -> dict[str, Any]:
    tree_size = next((s for s in sizes if s > row.position), None)
    if tree_size is None:
        msg = f"no cited checkpoint of log {row.log!r} holds position {row.position}: sign a checkpoint first"
        raise ParameterInvalid(msg)
    return {
        "log": row.log,
        "position": row.position,
        "canonical": encode_base64(row.canonical),
        "tree_size": tree_size,
        "inclusion": _b64(inclusion(row.log, row.position, tree_size)),
    }


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [encode_base64(h) for h in hashes]
