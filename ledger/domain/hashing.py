"""RFC 9162 leaf hashing and the per-log hash chain (DESIGN §4)."""

from __future__ import annotations

import hashlib

from ledger.domain.merkle import leaf_hash

__all__ = ["GENESIS_HASH", "chain_hash", "leaf_hash"]

GENESIS_HASH = bytes(32)
"""``prev_hash`` of position 0 in every log."""


def chain_hash(prev_hash: bytes, leaf: bytes) -> bytes:
    """SHA-256(prev_hash ‖ leaf_hash): links a position to everything before it."""
    return hashlib.sha256(prev_hash + leaf).digest()
