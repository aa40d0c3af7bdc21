"""The Merkle half of the verifier, on in-memory rows and tiles: the tree rebuilt from the verified leaves,
cut anywhere, has the RFC 9162 roots and the tiles and edge appends store; any stored difference is a break
at the first leaf under the entry that differs, whatever the cuts."""

from __future__ import annotations

import functools
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain import merkle
from ledger.domain.hashing import leaf_hash
from ledger.domain.tree_verification import (
    RangeTiles,
    StoredTree,
    TreeFold,
    check_leaves,
    compare_tree,
    cut_piece,
)
from ledger.domain.verification import check_range, join
from tests.unit.test_chain_verification import build_chain, head_of


def leaves_of(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH by the RFC 9162 §2.1.1 definition, straight from the leaves."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def stored_from(leaves: list[bytes]) -> tuple[dict[tuple[int, int], bytes], list[list[bytes]]]:
    """The tiles and edge the append service stores for ``leaves``."""
    edge: list[list[bytes]] = []
    tiles = {(level, index): b"".join(entries) for level, index, entries in merkle.extend_edge(edge, leaves)}
    return tiles, edge


def fold_in_pieces(leaves: list[bytes], borders: list[int], sizes: list[int]) -> TreeFold:
    fold = TreeFold(sizes)
    ends = [*borders[1:], len(leaves)]
    for start, end in zip(borders, ends, strict=True):
        fold.add(cut_piece(start, leaves[start:end], sizes))
    return fold


@functools.cache
def many_leaves() -> list[bytes]:
    return leaves_of(66_000)  # past one level-1 tile (65,536 leaves)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_tree_folded_from_pieces_cut_anywhere_has_the_rfc_9162_roots_and_the_stored_edge(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(min_value=0, max_value=2_000), label="n")
    leaves = many_leaves()[:n]
    cuts = data.draw(st.sets(st.integers(min_value=1, max_value=max(n - 1, 1)), max_size=6), label="cuts")
    borders = [0, *sorted(c for c in cuts if c < n)]
    sizes = data.draw(st.lists(st.integers(min_value=1, max_value=max(n, 1)), max_size=6), label="sizes")
    fold = fold_in_pieces(leaves, borders, sizes)
    roots = fold.roots(fold.levels())
    assert fold.size == n
    for s in {*sizes, n}:
        if s <= n:
            assert roots[s] == reference_root(leaves[:s]), s
    _, edge = stored_from(leaves)
    assert fold.edge(fold.levels()) == edge


def test_past_one_level_1_tile_roots_edge_and_tiles_agree_with_what_appends_store() -> None:
    leaves = many_leaves()
    tiles, edge = stored_from(leaves)
    sizes = [65_535, 65_536, 65_537, 65_800]
    fold = fold_in_pieces(leaves, [0, 1000, 65_530, 65_600], sizes)
    upper = {k: v for k, v in tiles.items() if k[0] >= 1}
    assert upper, "the fixture must reach a level-1 tile"
    assert compare_tree("acme", fold, StoredTree(len(leaves), upper, edge), to_head=True) is None
    roots = fold.roots(fold.levels())
    for s in sizes:
        assert roots[s] == merkle.root(s, lambda start, size: reference_root(leaves[start : start + size]))


def test_a_changed_entry_of_a_level_1_tile_is_a_break_at_the_first_leaf_under_it() -> None:
    leaves = many_leaves()
    tiles, edge = stored_from(leaves)
    upper = {k: v for k, v in tiles.items() if k[0] >= 1}
    hashes = bytearray(upper[(1, 0)])
    hashes[40 * 32] ^= 1  # entry 40 of level 1 stands for leaves 40*256 .. 41*256-1
    upper[(1, 0)] = bytes(hashes)
    fold = fold_in_pieces(leaves, [0, 30_000], [])
    problem = compare_tree("acme", fold, StoredTree(len(leaves), upper, edge), to_head=True)
    assert problem is not None
    assert (problem.position, problem.details) == (40 * 256, {"level": 1, "tile": 0, "entry": 40})
    assert "tile 1/0" in problem.reason

    del upper[(1, 0)]
    problem = compare_tree("acme", fold, StoredTree(len(leaves), upper, edge), to_head=True)
    assert problem is not None
    assert (problem.position, problem.reason) == (0, "stored Merkle tile 1/0 is missing")


def test_a_changed_level_0_tile_entry_is_named_with_its_tile_and_stops_the_piece_there() -> None:
    leaves = leaves_of(600)
    tiles, _ = stored_from(leaves)
    level0 = {t: h for (lv, t), h in tiles.items() if lv == 0}
    hashes = bytearray(level0[1])
    hashes[7 * 32 + 5] ^= 1
    level0[1] = bytes(hashes)
    piece, problem = check_leaves("acme", 260, list(leaves[260:]), RangeTiles(level0, 600))
    assert problem is not None
    assert problem.position == 256 + 7
    assert problem.details == {"level": 0, "tile": 1, "entry": 7}
    assert piece.end == 263
    # A range that starts in the tile before reports it at the same position; one starting after, not.
    assert check_leaves("acme", 300, list(leaves[300:]), RangeTiles(level0, 600))[1] is None
    _, problem = check_leaves("acme", 0, list(leaves[:400]), RangeTiles(level0, 600))
    assert problem is not None
    assert problem.position == 263


def test_the_edge_the_head_keeps_must_be_the_recomputed_one() -> None:
    leaves = leaves_of(700)
    _, edge = stored_from(leaves)
    edge[0][3] = bytes(32)
    fold = fold_in_pieces(leaves, [0], [])
    problem = compare_tree("acme", fold, StoredTree(700, {}, edge), to_head=True)
    assert problem is not None
    assert problem.position == 512 + 3
    assert "right edge" in problem.reason
    assert compare_tree("acme", fold, StoredTree(700, {}, None), to_head=True) is not None


def test_a_stored_tile_past_the_head_says_the_log_was_cut_back() -> None:
    leaves = leaves_of(300)
    _, edge = stored_from(leaves)
    fold = fold_in_pieces(leaves, [0], [])
    problem = compare_tree("acme", fold, StoredTree(300, {}, edge, past_head=[(0, 1)]), to_head=True)
    assert problem is not None
    assert problem.position == 300
    assert "cut back" in problem.reason


# ---- with the row checker: one pass and any cut give the same first break -----------------------------

N = 600


@functools.cache
def chain() -> tuple:
    rows = build_chain(N)
    tiles, edge = stored_from([leaf_hash(r.canonical) for r in rows])
    return tuple(rows), tiles, edge


def judge(rows: list, tiles: dict, edge: list, head: tuple[int, bytes], borders: list[int], sizes: list[int]):
    level0 = {t: h for (lv, t), h in tiles.items() if lv == 0}
    upper = {k: h for k, h in tiles.items() if k[0] >= 1}
    segments = []
    for i, start in enumerate(borders):
        end = borders[i + 1] if i + 1 < len(borders) else None
        part = [r for r in rows if r.position >= start and (end is None or r.position < end)]
        segments.append(check_range("acme", part, start, RangeTiles(level0, head[0], tuple(sizes))))
    return join("acme", segments, head, StoredTree(head[0], upper, edge), sizes)


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_tree_tampering_is_found_at_the_same_place_however_the_rows_are_cut(data: st.DataObject) -> None:
    stored_rows, stored_tiles, stored_edge = chain()
    rows = list(stored_rows)
    tiles = dict(stored_tiles)
    edge = [list(r) for r in stored_edge]
    head = head_of(rows)
    kind = data.draw(st.sampled_from(["tile_byte", "tile_gone", "edge", "row", "none"]), label="kind")
    if kind == "tile_byte":
        t = data.draw(st.sampled_from(sorted(tiles)), label="tile")
        i = data.draw(st.integers(min_value=0, max_value=len(tiles[t]) - 1), label="byte")
        b = bytearray(tiles[t])
        b[i] ^= 1
        tiles[t] = bytes(b)
    elif kind == "tile_gone":
        del tiles[data.draw(st.sampled_from(sorted(tiles)), label="tile")]
    elif kind == "edge":
        edge[0][data.draw(st.integers(min_value=0, max_value=len(edge[0]) - 1), label="entry")] = bytes(32)
    elif kind == "row":
        p = data.draw(st.integers(min_value=0, max_value=N - 1), label="row")
        rows[p] = rows[p]._replace(actor=b"forged")
    cuts = data.draw(st.sets(st.integers(min_value=1, max_value=N), max_size=4), label="cuts")
    sizes = data.draw(st.lists(st.integers(min_value=1, max_value=N), max_size=3), label="sizes")
    whole = judge(rows, tiles, edge, head, [0], sizes)
    cut = judge(rows, tiles, edge, head, [0, *sorted(cuts)], sizes)
    assert (cut.first_break, cut.checked, cut.tree_size, cut.roots) == (
        whole.first_break,
        whole.checked,
        whole.tree_size,
        whole.roots,
    )
    assert whole.intact == (kind == "none")
    leaves = [leaf_hash(r.canonical) for r in stored_rows]
    for s, root in whole.roots.items():
        assert root == reference_root(leaves[:s])


@pytest.mark.parametrize("borders", [[0], [0, 100, 256, 300]])
def test_an_intact_log_reports_its_recomputed_root(borders: list[int]) -> None:
    rows, tiles, edge = chain()
    result = judge(list(rows), tiles, edge, head_of(list(rows)), borders, [1, 256, 257])
    assert result.intact, result.first_break
    leaves = [leaf_hash(r.canonical) for r in rows]
    assert result.roots[N] == reference_root(leaves)
    assert set(result.roots) == {1, 256, 257, N}
