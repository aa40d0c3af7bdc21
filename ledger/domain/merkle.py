"""RFC 9162 Merkle tree math (§2.1): hashing, roots, inclusion and consistency proofs (DESIGN §4).

Pure, and importing nothing beyond the standard library, so the offline verifier (``ledger.verifier``) uses
the same code as the ledger that produced the proofs.

Proofs are generated over a ``SubtreeHash``: a function giving the hash of a *perfect* subtree, one of
``2**k`` leaves starting at a multiple of ``2**k``. Those are exactly the hashes a tiled tree stores
(C2SP tlog-tiles), so a proof never reads all leaves. ``subtrees_needed`` says which perfect subtrees a
computation will ask for, so storage can fetch them in one query before computing.

Leaves are leaf *hashes* (``leaf_hash``), as everywhere in RFC 9162 once the data is hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 §2.1.1): e3b0c442…"""

SubtreeHash = Callable[[int, int], bytes]
"""``(start, size) -> MTH(D[start:start+size])`` for a perfect subtree: ``size`` a power of two, ``start`` a
multiple of ``size``, ``start + size`` within the tree."""


class ProofError(ValueError):
    """A proof or its parameters do not check; the message says which part."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of one leaf (leaves are domain-separated from interior nodes)."""
    digest = hashlib.sha256(b"\x00")
    digest.update(data)
    return digest.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): where RFC 9162 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_perfect(size: int) -> bool:
    return size & (size - 1) == 0


def range_hash(start: int, end: int, subtree: SubtreeHash) -> bytes:
    """MTH(D[start:end]) for a range the RFC 9162 recursion reaches (``start`` a multiple of a power of two
    at least ``end - start``), built from perfect subtrees."""
    size = end - start
    if size <= 0:
        return EMPTY_ROOT
    if _is_perfect(size):
        return subtree(start, size)
    k = _split(size)
    return node_hash(subtree(start, k), range_hash(start + k, end, subtree))


def root(size: int, subtree: SubtreeHash) -> bytes:
    """MTH of the first ``size`` leaves."""
    return range_hash(0, size, subtree)


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            path.append(subtree(start, k))
            start += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1) for 0 < old_size <= new_size; empty when they are equal.

    Every tree extends the empty one, so there is no proof from size 0 (``verify_consistency`` refuses one).
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"cannot prove a tree of size {old_size} consistent with one of size {new_size}")
    if old_size == 0:
        raise ProofError(_FROM_EMPTY)
    if old_size == new_size:
        return []
    path: list[bytes] = []
    start, end, m, whole = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            path.append(subtree(start, k))
            start, m, whole = start + k, m - k, False
    if not whole:
        path.append(range_hash(start, end, subtree))
    path.reverse()
    return path


def subtrees_needed(compute: Callable[[SubtreeHash], object]) -> list[tuple[int, int]]:
    """The perfect subtrees ``compute`` asks for, in first-asked order. Which ones it asks for depends only on
    the sizes and indices, never on hash values, so a dry run with placeholder hashes finds them."""
    asked: dict[tuple[int, int], None] = {}

    def record(start: int, size: int) -> bytes:
        asked[(start, size)] = None
        return bytes(HASH_SIZE)

    compute(record)
    return list(asked)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` whose root is ``expected_root``
    (RFC 9162 §2.1.3.2); raise ``ProofError`` naming what does not hold."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf) != HASH_SIZE:  # else a tree of one leaf would "prove" any leaf equal to the root given
        raise ProofError(f"the leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"the inclusion proof is too long for index {index} in a tree of size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the inclusion proof is too short for index {index} in a tree of size {size}")
    if r != expected_root:
        raise ProofError(f"the inclusion proof for index {index} does not lead to the root of size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` (``new_root``) extends the one of ``old_size`` (``old_root``)
    (RFC 9162 §2.1.4.2); raise ``ProofError`` naming what does not hold."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of size {new_size} cannot extend one of size {old_size}")
    if old_size == 0:
        # As transparency-dev/merkle and its published vectors: a proof from 0 would prove nothing at all.
        raise ProofError(_FROM_EMPTY)
    _check_hashes(proof)
    if old_size == new_size:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same size {old_size}")
        return
    if not proof:
        raise ProofError(f"the consistency proof from {old_size} to {new_size} is empty")
    path = list(proof)
    if _is_perfect(old_size):
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"the consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"the consistency proof from {old_size} to {new_size} is too short")
    if fr != old_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"the consistency proof does not lead to the root of size {new_size}")


_FROM_EMPTY = "there is no consistency proof from the empty tree: every tree extends it"


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(h)} bytes, not {HASH_SIZE}")


# Tiles (C2SP tlog-tiles): level L holds the hashes of perfect subtrees of 256**L leaves; a tile is 256 of
# them. A perfect subtree of 2**k leaves is 2**(k % 8) consecutive entries of level k // 8, inside one tile.
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


def tile_span(start: int, size: int) -> tuple[int, int, int]:
    """Where a perfect subtree's hash comes from: (level, first entry, number of entries) in that level."""
    level = (size.bit_length() - 1) // TILE_HEIGHT
    unit = 1 << (TILE_HEIGHT * level)
    return level, start // unit, size // unit


def hash_entries(entries: Sequence[bytes]) -> bytes:
    """The root over a power-of-two run of same-level entries (one perfect subtree)."""
    level = list(entries)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def extend_edge(edge: list[list[bytes]], leaves: Sequence[bytes]) -> list[tuple[int, int, list[bytes]]]:
    """Append leaf hashes to a tree's right edge, in place; return the tiles it completed.

    ``edge[L]`` holds the entries of level L's partial (not yet full) tile, fewer than 256. A completed tile
    comes back as ``(level, tile index, its 256 entries)``, and its root becomes the next entry of level L+1.
    The edge alone says how many leaves it stands for (``edge_size``), so a tile's index needs no other state.
    """
    done: list[tuple[int, int, list[bytes]]] = []
    for leaf in leaves:
        carry, level = leaf, 0
        while True:
            if level == len(edge):
                edge.append([])
            row = edge[level]
            row.append(carry)
            if len(row) < TILE_WIDTH:
                break
            index = (_level_size(edge, level) - TILE_WIDTH) // TILE_WIDTH
            done.append((level, index, list(row)))
            carry = hash_entries(row)
            row.clear()
            level += 1
    return done


def _level_size(edge: Sequence[Sequence[bytes]], level: int) -> int:
    """Entries level ``level`` has in all (complete tiles' included), read off the edge above it."""
    above = sum(len(edge[h]) << (TILE_HEIGHT * (h - level)) for h in range(level + 1, len(edge)))
    return above + len(edge[level])


def edge_size(edge: Sequence[Sequence[bytes]]) -> int:
    """The number of leaves a right edge stands for."""
    return sum(len(row) << (TILE_HEIGHT * level) for level, row in enumerate(edge))
