"""The Merkle half of ``ledger verify``: rebuild each log's tree from the leaf hashes the row checker
recomputed, and compare it with the stored tiles and right edge (C2SP tlog-tiles, ``ledger.storage.tree``).

Pure, like the row checker it extends, and cut the same way: each position range turns its verified leaves
into a ``TreePiece`` (and compares them with the level-0 tiles it overlaps), the join folds the pieces in
position order (``TreeFold``) into the level-1 entries, builds the levels above, and compares those and
the edge. A break is placed at the first leaf of the first entry that differs, so the first break does not
depend on where the ranges were cut.

What the join holds is bounded: one 32-byte entry per 256 leaves (the level-1 entries), the leaves of one
partial tile, and at most eight hashes per checkpoint size it was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ledger.domain.errors import VerificationBreak
from ledger.domain.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    hash_entries,
    node_hash,
    tile_span,
)

TileKey = tuple[int, int]
"""(level, tile index)."""


def _unit(level: int) -> int:
    """Leaves under one entry of ``level``."""
    return 1 << (TILE_HEIGHT * level)


def mountains(leaves: Sequence[bytes]) -> tuple[bytes, ...]:
    """The perfect subtrees RFC 9162 splits ``leaves`` into (largest first), when they start at a multiple
    of the largest power of two not above their count: what ``merkle.root`` asks for, in order."""
    out, i = [], 0
    while i < len(leaves):
        size = 1 << ((len(leaves) - i).bit_length() - 1)
        out.append(hash_entries(leaves[i : i + size]))
        i += size
    return tuple(out)


def fold_mountains(hashes: Sequence[bytes]) -> bytes:
    """The root over perfect subtrees given largest first (RFC 9162: MTH splits off the largest power)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def compare_level(
    log: str, level: int, first: int, entries: Sequence[bytes], stored: Mapping[int, bytes], expected: int
) -> VerificationBreak | None:
    """Compare recomputed ``entries`` of ``level`` (``entries[i]`` is entry ``first + i``) with the stored
    tiles of that level (``stored``: tile index → its bytes), of which the head says ``expected`` are complete.

    A complete tile not stored, or stored with the wrong length, is a break at its first leaf, reported by
    whoever holds its first entry; a stored entry differing from its recomputed one is a break at the first
    leaf under it.
    """
    if not entries:
        return None
    unit = _unit(level)
    last = first + len(entries)
    for tile in range(first // TILE_WIDTH, (last - 1) // TILE_WIDTH + 1):
        base = tile * TILE_WIDTH
        hashes = stored.get(tile)
        if hashes is None or len(hashes) != TILE_WIDTH * HASH_SIZE:
            if base >= first and (hashes is not None or tile < expected):
                what = (
                    "is missing" if hashes is None else f"holds {len(hashes)} bytes, not {TILE_WIDTH} hashes"
                )
                return VerificationBreak(log, base * unit, f"stored Merkle tile {level}/{tile} {what}",
                                         {"level": level, "tile": tile})  # fmt: skip
            continue
        lo, hi = max(base, first), min(base + TILE_WIDTH, last)
        mine = b"".join(entries[lo - first : hi - first])
        theirs = hashes[(lo - base) * HASH_SIZE : (hi - base) * HASH_SIZE]
        if mine != theirs:
            at = next(i for i in range(lo, hi) if entries[i - first] != hashes[(i - base) * HASH_SIZE : (i - base + 1) * HASH_SIZE])  # fmt: skip
            reason = (
                f"stored Merkle tile {level}/{tile} differs from the tree recomputed from the events"
                f" at entry {at - base} (level {level} entry {at})"
            )
            return VerificationBreak(
                log, at * unit, reason, {"level": level, "tile": tile, "entry": at - base}
            )
    return None


@dataclass(frozen=True)
class TreePiece:
    """One range's verified leaves as the join needs them: the leaves before its first tile border
    (``head``), the roots of the level-0 tiles it holds whole (``roots``), the leaves after its last
    border (``tail``), and, per checkpoint size whose partial tile lies wholly in the range, that partial
    tile's perfect subtrees (``low``)."""

    start: int
    head: tuple[bytes, ...]
    roots: tuple[bytes, ...]
    tail: tuple[bytes, ...]
    low: Mapping[int, tuple[bytes, ...]] = field(default_factory=dict)

    @property
    def end(self) -> int:
        """The position after the piece's last leaf."""
        return self.start + len(self.head) + TILE_WIDTH * len(self.roots) + len(self.tail)


def cut_piece(start: int, leaves: Sequence[bytes], sizes: Sequence[int] = ()) -> TreePiece:
    """The ``TreePiece`` of ``leaves`` (positions from ``start``); ``sizes`` are the checkpoint sizes asked for."""
    end = start + len(leaves)
    border = min(end, -(-start // TILE_WIDTH) * TILE_WIDTH)
    last = max(border, end // TILE_WIDTH * TILE_WIDTH)
    roots = tuple(
        hash_entries(leaves[t - start : t - start + TILE_WIDTH]) for t in range(border, last, TILE_WIDTH)
    )
    low = {
        s: mountains(leaves[s // TILE_WIDTH * TILE_WIDTH - start : s - start])
        for s in sizes
        if s % TILE_WIDTH and border <= s // TILE_WIDTH * TILE_WIDTH and s <= end
    }
    return TreePiece(start, tuple(leaves[: border - start]), roots, tuple(leaves[last - start :]), low)


class TreeFold:
    """The tree of a log's verified leaves, folded from its pieces in position order."""

    def __init__(self, sizes: Sequence[int] = ()) -> None:
        self.size = 0
        self._pending: list[bytes] = []  # the leaves of the partial level-0 tile
        self._entries: list[bytes] = []  # level 1: the roots of the complete level-0 tiles
        self._sizes = sorted(set(sizes))
        self._low: dict[int, tuple[bytes, ...]] = {}

    def add(self, piece: TreePiece) -> None:
        """Append the next piece; it must start where the fold ends."""
        if piece.start != self.size:
            msg = f"a tree piece starting at {piece.start} does not follow a fold of {self.size} leaves"
            raise ValueError(msg)
        for s in self._sizes:
            if self.size < s <= self.size + len(piece.head) and s % TILE_WIDTH:
                self._low[s] = mountains([*self._pending, *piece.head[: s - self.size]])
        self._pending += piece.head
        if len(self._pending) == TILE_WIDTH:
            self._entries.append(hash_entries(self._pending))
            self._pending = []
        if piece.roots or piece.tail:
            assert not self._pending, "a piece's head runs to a tile border when it holds more"
            self._entries += piece.roots
            self._pending = list(piece.tail)
        self._low.update(piece.low)
        self.size = piece.end

    def levels(self) -> list[list[bytes]]:
        """Every level from 1 up: ``levels()[0]`` is level 1; each next level holds the roots of the
        complete tiles of the one below."""
        out = [self._entries]
        while len(out[-1]) >= TILE_WIDTH:
            below = out[-1]
            out.append([hash_entries(below[i : i + TILE_WIDTH]) for i in range(0, len(below) - TILE_WIDTH + 1, TILE_WIDTH)])  # fmt: skip
        return out

    def edge(self, levels: Sequence[Sequence[bytes]]) -> list[list[bytes]]:
        """The right edge of the folded tree, as ``merkle.extend_edge`` keeps it."""
        if self.size == 0:
            return []
        rows = [list(self._pending)] + [
            list(level[len(level) // TILE_WIDTH * TILE_WIDTH :]) for level in levels
        ]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def roots(self, levels: Sequence[Sequence[bytes]]) -> dict[int, bytes]:
        """The root at every size asked for that the fold reaches, and at the fold's own size."""
        return {s: self._root(levels, s) for s in {*self._sizes, self.size} if s <= self.size}

    def _root(self, levels: Sequence[Sequence[bytes]], size: int) -> bytes:
        base = size // TILE_WIDTH * TILE_WIDTH
        if size == self.size:
            low = mountains(self._pending)
        elif size % TILE_WIDTH:
            low = self._low[size]
        else:
            low = ()
        high, i = [], 0
        while i < base:  # the perfect subtrees of whole tiles, largest first, from the levels above 0
            step = 1 << ((base - i).bit_length() - 1)
            level, first, count = tile_span(i, step)
            high.append(hash_entries(levels[level - 1][first : first + count]))
            i += step
        return fold_mountains([*high, *low])


@dataclass(frozen=True)
class RangeTiles:
    """What one range's tree check needs from storage: the stored level-0 tiles it overlaps (tile index →
    bytes), the size the head claims, and the checkpoint sizes whose roots are wanted."""

    tiles: Mapping[int, bytes]
    head_size: int
    sizes: tuple[int, ...] = ()


def check_leaves(
    log: str, start: int, leaves: list[bytes], stored: RangeTiles
) -> tuple[TreePiece, VerificationBreak | None]:
    """Compare a range's verified leaves with the level-0 tiles; the piece stops at the first difference."""
    problem = compare_level(log, 0, start, leaves, stored.tiles, stored.head_size >> TILE_HEIGHT)
    if problem is not None:
        del leaves[problem.position - start :]
    return cut_piece(start, leaves, stored.sizes), problem


@dataclass(frozen=True)
class StoredTree:
    """What the database says of a log's tree: the head's size, the tiles above level 0, the right edge
    (None when it does not decode), and the first stored tile of each level the head does not cover."""

    size: int
    tiles: Mapping[TileKey, bytes]
    edge: Sequence[Sequence[bytes]] | None
    past_head: Sequence[TileKey] = ()


def compare_tree(log: str, fold: TreeFold, stored: StoredTree, *, to_head: bool) -> VerificationBreak | None:
    """The first difference between the folded tree and the stored one above level 0 (level 0 is compared
    range by range); the edge and the tiles beyond the head only when the rows verified ``to_head``."""
    levels = fold.levels()
    found = []
    for level, entries in enumerate(levels, start=1):
        tiles = {t: h for (lv, t), h in stored.tiles.items() if lv == level}
        problem = compare_level(log, level, 0, entries, tiles, stored.size >> (TILE_HEIGHT * (level + 1)))
        if problem is not None:
            found.append(problem)
    if found:
        return min(found, key=lambda b: (b.position, b.details.get("level", 0)))
    if not to_head:
        return None
    for level, tile in sorted(stored.past_head, key=lambda k: k[1] * _unit(k[0] + 1)):
        at = max(tile * _unit(level + 1), stored.size)
        reason = (
            f"stored Merkle tile {level}/{tile} covers leaves past the log's {stored.size} events:"
            " the log was cut back after the tile was written"
        )
        return VerificationBreak(log, at, reason, {"level": level, "tile": tile})
    return _compare_edge(log, fold, levels, stored)


def _compare_edge(
    log: str, fold: TreeFold, levels: Sequence[Sequence[bytes]], stored: StoredTree
) -> VerificationBreak | None:
    if stored.edge is None:
        return VerificationBreak(log, 0, "the stored right edge of the Merkle tree does not decode")
    mine, theirs = fold.edge(levels), [list(r) for r in stored.edge]
    while theirs and not theirs[-1]:
        theirs.pop()
    for level in range(max(len(mine), len(theirs))):
        a = mine[level] if level < len(mine) else []
        b = theirs[level] if level < len(theirs) else []
        if a == b:
            continue
        i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        done = (fold.size if level == 0 else len(levels[level - 1])) // TILE_WIDTH * TILE_WIDTH
        reason = (
            f"the stored right edge of the Merkle tree differs from the recomputed tree at level {level},"
            f" entry {i} ({len(b)} stored, {len(a)} recomputed)"
        )
        position = min((done + i) * _unit(level), max(fold.size - 1, 0))
        return VerificationBreak(log, position, reason, {"level": level, "entry": i})
    return None
