"""Each log's RFC 9162 Merkle tree as stored, in the manner of C2SP tlog-tiles (DESIGN §4).

Level L holds the hashes of the perfect subtrees of ``256**L`` leaves. A *complete tile* is 256 consecutive
entries of one level, one row of ``ledger_merkle_tiles`` (written once by the append that completes it;
append-only like the events). The partial tile of every level, fewer than 256 entries each, is the log's
*right edge*: ``ledger_log_heads.tree_edge``, rewritten with the head by every append, under the head lock.

A perfect subtree that ends within the tree never changes once written, in a tile or in the edge, so a
root or proof for any size up to the head's comes from the current rows, and never reads leaves: the
complete tiles a computation needs (``merkle.subtrees_needed``) are fetched in one query.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import psycopg

from ledger.domain import merkle
from ledger.domain.errors import (
    FieldError,
    NotFound,
    ParameterInvalid,
    VerificationBreak,
    VerificationError,
)
from ledger.domain.merkle import HASH_SIZE, TILE_HEIGHT, TILE_WIDTH
from ledger.storage.database import Database

Connection = psycopg.Connection[Any]
Edge = tuple[tuple[bytes, ...], ...]
"""A right edge: ``edge[L]`` holds the entries of level L's partial tile (fewer than 256)."""
Tile = tuple[int, int, list[bytes]]
"""A completed tile: (level, tile index, its 256 entries)."""
T = TypeVar("T")
INCLUSION_BATCH = 4096
"""Positions proved per tile query by ``LogTrees.inclusions``: bounds the tiles held at once (at most a
few thousand of 8 KiB each) while a bundle's contiguous events share them."""


# ---- the stored form of an edge (pure) -------------------------------------------------------------


def encode_edge(edge: Sequence[Sequence[bytes]]) -> bytes:
    """The bytes of ``tree_edge``: per level, from level 0 up, one byte giving the number of entries
    (0-255), then the entries (32 bytes each). The empty tree's edge is empty."""
    out = bytearray()
    for level, row in enumerate(edge):
        if len(row) >= TILE_WIDTH or any(len(h) != HASH_SIZE for h in row):
            msg = f"level {level} of an edge must hold fewer than {TILE_WIDTH} hashes of {HASH_SIZE} bytes"
            raise ValueError(msg)
        out.append(len(row))
        out += b"".join(row)
    return bytes(out)


def decode_edge(blob: bytes) -> Edge:
    """Reverse of ``encode_edge``; ``ValueError`` when the bytes are not an edge."""
    rows: list[tuple[bytes, ...]] = []
    i = 0
    while i < len(blob):
        end = i + 1 + blob[i] * HASH_SIZE
        if end > len(blob):
            msg = f"the edge's level {len(rows)} claims {blob[i]} hashes but the bytes end first"
            raise ValueError(msg)
        rows.append(tuple(blob[j : j + HASH_SIZE] for j in range(i + 1, end, HASH_SIZE)))
        i = end
    return tuple(rows)


def grow(edge: Edge, leaves: Sequence[bytes]) -> tuple[Edge, list[Tile]]:
    """The edge after appending ``leaves`` (leaf hashes), and the tiles that completed on the way."""
    rows = [list(row) for row in edge]
    done = merkle.extend_edge(rows, leaves)
    return tuple(tuple(row) for row in rows), done


# ---- writing ---------------------------------------------------------------------------------------


def store_tiles(conn: Connection, tiles: Sequence[tuple[str, Tile]]) -> None:
    """Insert completed tiles (``(log, tile)`` pairs) with one statement; nothing when there are none."""
    if not tiles:
        return
    conn.execute(
        "INSERT INTO ledger_merkle_tiles (log, level, tile, hashes)"
        " SELECT * FROM unnest(%s::text[], %s::int2[], %s::int8[], %s::bytea[])",
        (
            [log for log, _ in tiles],
            [level for _, (level, _, _) in tiles],
            [index for _, (_, index, _) in tiles],
            [b"".join(entries) for _, (_, _, entries) in tiles],
        ),
    )


# ---- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    """A log's tree as its head says: its size and right edge."""

    log: str
    size: int
    edge: Edge


def read_head(conn: Connection, log: str, *, tenant: str | None) -> TreeHead:
    """The tree head of ``log``; ``NotFound`` when there is no such log (in ``tenant``, unless ``None``)."""
    row = conn.execute(
        "SELECT size, tree_edge FROM ledger_log_heads WHERE log = %s AND (%s::text IS NULL OR tenant = %s)",
        (log, tenant, tenant),
    ).fetchone()
    if row is None:
        where = "" if tenant is None else f" in tenant {tenant!r}"
        msg = f"there is no log {log!r}{where}"
        raise NotFound(msg)
    try:
        edge = decode_edge(bytes(row[1]))
    except ValueError as exc:
        raise _damaged(log, int(row[0]), str(exc)) from None
    head = TreeHead(log, int(row[0]), edge)
    if merkle.edge_size(edge) != head.size:
        raise _damaged(log, head.size, f"its right edge stands for {merkle.edge_size(edge)} leaves")
    return head


def compute(conn: Connection, head: TreeHead, calculation: Callable[[merkle.SubtreeHash], T]) -> T:
    """Run ``calculation`` (a root or proof of ``ledger.domain.merkle``) over ``head``'s tree, fetching the
    complete tiles it needs in one query. Every size it uses must be at most ``head.size``."""
    needed = merkle.subtrees_needed(calculation)
    return calculation(_subtrees(conn, head, needed))


def _subtrees(conn: Connection, head: TreeHead, needed: Iterable[tuple[int, int]]) -> merkle.SubtreeHash:
    spans = {(start, size): merkle.tile_span(start, size) for start, size in needed}
    wanted = sorted(
        {
            (level, first // TILE_WIDTH)
            for level, first, _ in spans.values()
            if first // TILE_WIDTH < head.size >> (TILE_HEIGHT * (level + 1))  # complete, not in the edge
        }
    )
    tiles: dict[tuple[int, int], bytes] = {}
    if wanted:
        rows = conn.execute(
            "SELECT t.level, t.tile, t.hashes FROM ledger_merkle_tiles t"
            " JOIN unnest(%s::int2[], %s::int8[]) AS u(level, tile) USING (level, tile) WHERE t.log = %s",
            ([level for level, _ in wanted], [tile for _, tile in wanted], head.log),
        ).fetchall()
        tiles = {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}
    known: dict[tuple[int, int], bytes] = {}

    def subtree(start: int, size: int) -> bytes:
        key = (start, size)
        if key not in known:
            level, first, count = spans.get(key) or merkle.tile_span(start, size)
            known[key] = merkle.hash_entries(_entries(head, tiles, level, first, count))
        return known[key]

    return subtree


def _entries(
    head: TreeHead, tiles: dict[tuple[int, int], bytes], level: int, first: int, count: int
) -> Sequence[bytes]:
    tile, offset = divmod(first, TILE_WIDTH)
    if tile < head.size >> (TILE_HEIGHT * (level + 1)):
        hashes = tiles.get((level, tile))
        if hashes is None or len(hashes) != TILE_WIDTH * HASH_SIZE:
            leaf = tile * TILE_WIDTH << (TILE_HEIGHT * level)
            raise _damaged(head.log, leaf, f"tile {level}/{tile} is missing or not {TILE_WIDTH} hashes")
        return [hashes[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(offset, offset + count)]
    row = head.edge[level] if level < len(head.edge) else ()
    entries = row[offset : offset + count]
    if len(entries) != count:  # a size past the head: a caller's bug, the sizes are checked before
        msg = f"subtree at level {level}, entry {first}, lies past the tree of size {head.size}"
        raise ValueError(msg)
    return entries


def _damaged(log: str, position: int, what: str) -> VerificationError:
    msg = f"the Merkle tree of log {log!r} is damaged: {what}; run `ledger verify`"
    return VerificationError(msg, breaks=[VerificationBreak(log, position, "merkle_tree_damaged")])


# ---- roots and proofs, as the API serves them --------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 §2.1.3: the leaf at ``leaf_index`` is in the tree of ``tree_size`` with ``root``."""

    log: str
    tree_size: int
    root: bytes
    leaf_index: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the API serves, hashes in base64. The API adds the signed checkpoint of
        ``tree_size`` beside it as ``"checkpoint"`` (``ledger.api.proofs.inclusion_body``)."""
        return {
            "log": self.log,
            "tree_size": self.tree_size,
            "root": _b64(self.root),
            "leaf_index": self.leaf_index,
            "leaf_hash": _b64(self.leaf_hash),
            "hashes": [_b64(h) for h in self.hashes],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 §2.1.4: the tree of ``new_size`` (``new_root``) extends the one of ``old_size``."""

    log: str
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the API serves, hashes in base64."""
        return {
            "log": self.log,
            "from": self.old_size,
            "to": self.new_size,
            "from_root": _b64(self.old_root),
            "to_root": _b64(self.new_root),
            "hashes": [_b64(h) for h in self.hashes],
        }


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class LogTrees:
    """Sizes, roots and proofs of the logs' trees. ``tenant`` scopes a request's read to its own logs
    (another tenant's log is not found); ``None`` is for the ledger's own callers, such as checkpointing."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def root(self, log: str, size: int | None = None, *, tenant: str | None) -> tuple[int, bytes]:
        """``(size, root)`` of the tree of ``size`` leaves (default: the log's current size)."""
        with self._db.connect() as conn, conn.transaction():
            head = read_head(conn, log, tenant=tenant)
            size = _size("tree_size", size, head)
            return size, compute(conn, head, lambda s: merkle.root(size, s))

    def inclusion(
        self, log: str, position: int, tree_size: int | None = None, *, tenant: str | None
    ) -> InclusionProof:
        """The inclusion proof of the event at ``position`` in the tree of ``tree_size`` (default current)."""
        with self._db.connect() as conn, conn.transaction():
            head = read_head(conn, log, tenant=tenant)
            size = _size("tree_size", tree_size, head)
            if not 0 <= position < size:
                _refuse("position", f"must be a position in the tree of size {size}: 0 to {size - 1}")

            def prove(s: merkle.SubtreeHash) -> tuple[bytes, bytes, list[bytes]]:
                return merkle.root(size, s), s(position, 1), merkle.inclusion_proof(position, size, s)

            root, leaf, path = compute(conn, head, prove)
        return InclusionProof(log, size, root, position, leaf, tuple(path))

    def inclusions(
        self, log: str, positions: Sequence[int], tree_size: int, *, tenant: str | None
    ) -> list[tuple[bytes, ...]]:
        """The inclusion paths of many ``positions`` in the tree of ``tree_size``, in their order: one
        transaction, and one tile query per ``INCLUSION_BATCH`` positions (an evidence bundle's thousands
        of events would otherwise cost a transaction each). Sorted positions share the most tiles."""
        with self._db.connect() as conn, conn.transaction():
            head = read_head(conn, log, tenant=tenant)
            size = _size("tree_size", tree_size, head)
            outside = [p for p in positions if not 0 <= p < size]
            if outside:
                _refuse("position", f"must be a position in the tree of size {size}: {outside[0]} is not")
            paths: list[tuple[bytes, ...]] = []
            for start in range(0, len(positions), INCLUSION_BATCH):
                chunk = positions[start : start + INCLUSION_BATCH]

                def prove(s: merkle.SubtreeHash, chunk: Sequence[int] = chunk) -> list[tuple[bytes, ...]]:
                    return [tuple(merkle.inclusion_proof(p, size, s)) for p in chunk]

                paths += compute(conn, head, prove)
        return paths

    def consistency(
        self, log: str, old_size: int, new_size: int | None = None, *, tenant: str | None
    ) -> ConsistencyProof:
        """The consistency proof from the tree of ``old_size`` to that of ``new_size`` (default current)."""
        with self._db.connect() as conn, conn.transaction():
            head = read_head(conn, log, tenant=tenant)
            new = _size("to", new_size, head)
            if not 1 <= old_size <= new:
                # RFC 9162 has no proof from the empty tree: every tree extends it.
                _refuse("from", f"must be a tree size from 1 to {new} (to)")

            def prove(s: merkle.SubtreeHash) -> tuple[bytes, bytes, list[bytes]]:
                old_root, new_root = merkle.root(old_size, s), merkle.root(new, s)
                return old_root, new_root, merkle.consistency_proof(old_size, new, s)

            old_root, new_root, path = compute(conn, head, prove)
        return ConsistencyProof(log, old_size, new, old_root, new_root, tuple(path))


def _size(name: str, size: int | None, head: TreeHead) -> int:
    if size is None:
        return head.size
    if not 0 <= size <= head.size:
        _refuse(name, f"must be a tree size from 0 to {head.size}, the size of log {head.log!r} now")
    return size


def _refuse(name: str, message: str) -> NoReturn:
    raise ParameterInvalid(f"{name} {message}", errors=[FieldError(name, message)])
