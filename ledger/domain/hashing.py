"""RFC 9162 leaf hashing and the per-log hash chain (DESIGN §4)."""

from __future__ import annotations

import hashlib

GENESIS_HASH = bytes(32)
"""``prev_hash`` of position 0 in every log."""

_LEAF_PREFIX = b"\x00"  # RFC 9162 §2.1.1: leaves are domain-separated from interior nodes (0x01).


def leaf_hash(canonical: bytes) -> bytes:
    """SHA-256(0x00 ‖ canonical bytes): the RFC 9162 Merkle leaf hash of one stored event."""
    digest = hashlib.sha256(_LEAF_PREFIX)
    digest.update(canonical)
    return digest.digest()


def chain_hash(prev_hash: bytes, leaf: bytes) -> bytes:
    """SHA-256(prev_hash ‖ leaf_hash): links a position to everything before it."""
    return hashlib.sha256(prev_hash + leaf).digest()
