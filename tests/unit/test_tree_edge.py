"""The stored form of a tree's right edge, and growing it (ledger.storage.tree, no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain import merkle
from ledger.storage import tree


def leaves(n: int, start: int = 0) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(start, start + n)]


@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=600))
def test_an_edge_round_trips_and_spells_its_size(n: int, more: int) -> None:
    edge, _ = tree.grow((), leaves(n))
    edge, _ = tree.grow(edge, leaves(more, n))
    assert tree.decode_edge(tree.encode_edge(edge)) == edge
    assert merkle.edge_size(tree.decode_edge(tree.encode_edge(edge))) == n + more


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 65_535, 65_536, 65_537 + 256])
def test_the_edge_after_n_leaves_holds_the_digits_of_n_in_base_256(n: int) -> None:
    edge, tiles = tree.grow((), leaves(n))
    assert tree.decode_edge(tree.encode_edge(edge)) == edge
    assert merkle.edge_size(edge) == n
    assert [len(row) for row in edge] == [(n >> (8 * level)) & 255 for level in range(len(edge))]
    assert len(tiles) == n // 256 + n // 65_536


def test_the_empty_tree_has_an_empty_edge() -> None:
    assert tree.encode_edge(()) == b""
    assert tree.decode_edge(b"") == ()


def test_the_encoding_is_a_count_byte_then_the_hashes_per_level() -> None:
    edge, _ = tree.grow((), leaves(257))
    blob = tree.encode_edge(edge)
    assert blob == b"\x01" + edge[0][0] + b"\x01" + merkle.hash_entries(leaves(256))


def test_growing_in_steps_is_growing_at_once() -> None:
    at_once, tiles = tree.grow((), leaves(1000))
    edge, stepped = (), []
    for start, n in ((0, 1), (1, 255), (256, 256), (512, 257), (769, 231)):
        edge, done = tree.grow(edge, leaves(n, start))
        stepped += done
    assert edge == at_once
    assert stepped == tiles


@pytest.mark.parametrize(
    "blob",
    [b"\x01", b"\x02" + bytes(32), b"\x00\x01" + bytes(31)],
    ids=["count without hashes", "one hash short", "truncated hash"],
)
def test_bytes_that_are_no_edge_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError, match="bytes end first"):
        tree.decode_edge(blob)


def test_a_full_or_malformed_level_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="fewer than 256"):
        tree.encode_edge([[bytes(32)] * 256])
    with pytest.raises(ValueError, match="fewer than 256"):
        tree.encode_edge([[b"short"]])
