"""Each log's Merkle tree as the append service grows it and ``ledger.storage.tree`` reads it, checked
against ``ledger.domain.merkle`` over the leaf hashes recomputed from the stored canonical bytes."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from ledger.domain import merkle
from ledger.domain.envelope import validate_event
from ledger.domain.errors import NotFound, ParameterInvalid, VerificationError
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger, wire
from ledger.storage import migrate, tree
from ledger.storage.database import Database
from tests.conftest import fresh_database
from tests.factories import example_event

BATCHES = (1, 255, 256, 257, 1000)
"""Awkward batch sizes: one leaf, a tile short, a tile, a tile over, several tiles (1769 in all)."""


def events(tenant: str, n: int) -> list:
    return [validate_event(example_event("annotation.created", tenant=tenant)) for _ in range(n)]


def leaves_of(db: Database, log: str) -> list[bytes]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT canonical FROM ledger_events WHERE log = %s ORDER BY position", (log,)
        ).fetchall()
    return [merkle.leaf_hash(bytes(r[0])) for r in rows]


def reference(leaves: list[bytes]) -> merkle.SubtreeHash:
    """Perfect subtree hashes straight from the leaves, by the RFC 9162 definition."""
    memo: dict[tuple[int, int], bytes] = {}

    def subtree(start: int, size: int) -> bytes:
        if (start, size) not in memo:
            half = size // 2
            memo[(start, size)] = (
                leaves[start]
                if size == 1
                else merkle.node_hash(subtree(start, half), subtree(start + half, half))
            )
        return memo[(start, size)]

    return subtree


def stored_tree(db: Database) -> tuple[list[tuple[str, int, int, bytes]], list[tuple[str, int, bytes]]]:
    with db.connect() as conn:
        tiles = conn.execute(
            "SELECT log, level, tile, hashes FROM ledger_merkle_tiles ORDER BY 1, 2, 3"
        ).fetchall()
        heads = conn.execute("SELECT log, size, tree_edge FROM ledger_log_heads ORDER BY log").fetchall()
    return [(r[0], r[1], r[2], bytes(r[3])) for r in tiles], [(r[0], r[1], bytes(r[2])) for r in heads]


def sizes_to_check(n: int) -> list[int]:
    """Sizes ending in and at the edges of partial tiles at levels 0 and 1, and a random sample."""
    around = {b + d for b in (1, 2, 255, 256, 512, 768, 1024, 1536, n) for d in (-1, 0, 1)}
    return sorted({s for s in around if 1 <= s <= n} | set(random.Random(5).sample(range(1, n + 1), 40)))


@pytest.fixture(scope="module")
def grown(
    pg_server: str, template_url: str, tmp_path_factory: pytest.TempPathFactory, signing_key
) -> Iterator[Ledger]:
    """One database whose two logs were appended to in batches of awkward sizes, mixed in each batch."""
    from tests.conftest import _settings

    with fresh_database(pg_server, f"ledger_test_tree_{os.getpid()}") as url:
        db = Database(url, pool_size=2)
        ledger = wire(_settings(tmp_path_factory.mktemp("tree-home"), url, signing_key), db, project=False)
        for n in BATCHES:
            batch = events("acme", n) + events("other", n // 3 + 1)
            random.Random(n).shuffle(batch)
            ledger.appender.append(batch)
            # the root right after each batch, as a checkpoint taken then would sign it
            size, root = ledger.trees.root("acme", tenant="acme")
            assert root == merkle.root(size, reference(leaves_of(db, "acme")))
        yield ledger
        db.dispose()


class TestTheTreeAppendsGrow:
    @pytest.mark.parametrize("log", ["acme", "other"])
    def test_every_root_equals_the_root_over_the_recomputed_leaves(self, grown: Ledger, log: str) -> None:
        leaves = leaves_of(grown.db, log)
        expected = reference(leaves)
        with grown.db.connect() as conn:
            head = tree.read_head(conn, log, tenant=None)
            assert head.size == len(leaves)
            for size in range(len(leaves) + 1):
                assert tree.compute(conn, head, lambda s, n=size: merkle.root(n, s)) == merkle.root(
                    size, expected
                ), size

    def test_inclusion_proofs_verify_and_equal_the_reference(self, grown: Ledger) -> None:
        leaves = leaves_of(grown.db, "acme")
        expected = reference(leaves)
        for size in sizes_to_check(len(leaves)):
            for index in sorted({0, size // 2, size - 1, min(255, size - 1), min(256, size - 1)}):
                proof = grown.trees.inclusion("acme", index, size, tenant="acme")
                assert proof.leaf_hash == leaves[index]
                assert list(proof.hashes) == merkle.inclusion_proof(index, size, expected)
                merkle.verify_inclusion(index, size, leaves[index], proof.hashes, merkle.root(size, expected))
                assert proof.root == merkle.root(size, expected)

    def test_consistency_proofs_verify_and_equal_the_reference(self, grown: Ledger) -> None:
        leaves = leaves_of(grown.db, "acme")
        expected = reference(leaves)
        sizes = sizes_to_check(len(leaves))  # RFC 9162 has no consistency proof from the empty tree
        for old in sizes[::3]:
            for new in (s for s in sizes[::4] if s >= old):
                proof = grown.trees.consistency("acme", old, new, tenant="acme")
                assert list(proof.hashes) == merkle.consistency_proof(old, new, expected)
                assert (proof.old_root, proof.new_root) == (
                    merkle.root(old, expected),
                    merkle.root(new, expected),
                )
                merkle.verify_consistency(old, new, proof.old_root, proof.new_root, proof.hashes)

    def test_sizes_default_to_the_current_one(self, grown: Ledger) -> None:
        n = len(leaves_of(grown.db, "other"))
        assert grown.trees.inclusion("other", 0, tenant="other").tree_size == n
        assert grown.trees.consistency("other", 1, tenant="other").new_size == n

    def test_complete_tiles_are_stored_once_and_the_edge_holds_the_rest(self, grown: Ledger) -> None:
        tiles, heads = stored_tree(grown.db)
        acme = [(level, index) for log, level, index, _ in tiles if log == "acme"]
        size = {log: n for log, n, _ in heads}["acme"]
        assert acme == [(0, i) for i in range(size // 256)]
        edge = tree.decode_edge({log: e for log, _, e in heads}["acme"])
        assert [len(row) for row in edge] == [size % 256, size // 256]

    def test_a_batch_of_repeats_changes_no_tree(self, grown: Ledger) -> None:
        batch = events("acme", 1)
        grown.appender.append(batch)
        before = stored_tree(grown.db)
        assert grown.appender.append(batch)[0].duplicate
        assert stored_tree(grown.db) == before

    def test_a_projection_rebuild_leaves_the_trees_alone(self, grown: Ledger) -> None:
        before = stored_tree(grown.db)
        rebuild(grown.db, all_projectors())
        assert stored_tree(grown.db) == before


class TestReadingAStoredTree:
    """Deeper trees than appends in a test can reach: tiles and edges written with the storage's own
    functions over synthetic leaves, read back at sizes ending inside the partial tile of each level."""

    def test_sizes_around_the_level_1_and_2_boundaries(self, ledger: Ledger) -> None:
        n = 256 * 256 + 256 * 3 + 7  # a complete level-1 tile, a partial one, and a partial level-0 tile
        leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
        edge, tiles = tree.grow((), leaves[:40_000])
        edge, more = tree.grow(edge, leaves[40_000:])
        with ledger.db.connect() as conn, conn.transaction():
            tree.store_tiles(conn, [("deep", t) for t in tiles + more])
            conn.execute(
                "INSERT INTO ledger_log_heads (log, tenant, size, head_hash, tree_edge) VALUES ('deep', 'deep', %s, %s, %s)",
                (n, bytes(32), tree.encode_edge(edge)),
            )
        assert [len(row) for row in edge] == [7, 3, 1]
        expected = reference(leaves)
        sizes = [65535, 65536, 65537, 65536 + 255, 65536 + 256, 65536 + 257, n - 1, n, 300, 256 * 255 + 1]
        for size in sizes:
            assert ledger.trees.root("deep", size, tenant="deep") == (size, merkle.root(size, expected))
            for index in (0, size - 1, size // 3):
                proof = ledger.trees.inclusion("deep", index, size, tenant="deep")
                assert list(proof.hashes) == merkle.inclusion_proof(index, size, expected)
        for old, new in ((65535, 65536), (65536, n), (256, 65537), (1, n), (65536 + 256, n - 1)):
            proof = ledger.trees.consistency("deep", old, new, tenant="deep")
            assert list(proof.hashes) == merkle.consistency_proof(old, new, expected)

    def test_a_missing_tile_is_reported_as_damage_not_a_wrong_proof(self, ledger: Ledger) -> None:
        ledger.appender.append(events("acme", 300))
        with psycopg.connect(ledger.db.url, autocommit=True) as conn:
            conn.execute("ALTER TABLE ledger_merkle_tiles DISABLE TRIGGER USER")
            conn.execute("DELETE FROM ledger_merkle_tiles")
        with pytest.raises(VerificationError, match="tile 0/0 is missing") as caught:
            ledger.trees.inclusion("acme", 3, tenant="acme")
        assert caught.value.breaks[0].position == 0


class TestRefusals:
    def test_sizes_and_positions_out_of_range_name_the_parameter(self, ledger: Ledger) -> None:
        ledger.appender.append(events("acme", 5))
        cases = [
            (lambda: ledger.trees.inclusion("acme", 5, tenant="acme"), "position"),
            (lambda: ledger.trees.inclusion("acme", 0, 6, tenant="acme"), "tree_size"),
            (lambda: ledger.trees.inclusion("acme", 0, 0, tenant="acme"), "position"),
            (lambda: ledger.trees.inclusion("acme", -1, tenant="acme"), "position"),
            (lambda: ledger.trees.consistency("acme", 3, 2, tenant="acme"), "from"),
            (lambda: ledger.trees.consistency("acme", 1, 6, tenant="acme"), "to"),
            (lambda: ledger.trees.root("acme", 6, tenant="acme"), "tree_size"),
        ]
        for call, name in cases:
            with pytest.raises(ParameterInvalid) as caught:
                call()
            assert [e.field for e in caught.value.errors] == [name]

    def test_another_tenants_log_is_not_found(self, ledger: Ledger) -> None:
        ledger.appender.append(events("acme", 2))
        with pytest.raises(NotFound, match="no log 'acme' in tenant 'other'"):
            ledger.trees.inclusion("acme", 0, tenant="other")

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE ledger_merkle_tiles SET tile = 9",
            "DELETE FROM ledger_merkle_tiles",
            "TRUNCATE ledger_merkle_tiles",
        ],
    )
    def test_tiles_are_append_only(self, ledger: Ledger, statement: str) -> None:
        ledger.appender.append(events("acme", 256))
        with (
            psycopg.connect(ledger.db.url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege) as caught,
        ):
            conn.execute(statement)
        assert "ledger_merkle_tiles is append-only" in str(caught.value)

    def test_the_application_role_may_only_insert_and_read_tiles(self, ledger: Ledger) -> None:
        with ledger.db.connect() as conn:
            privileges = conn.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = 'ledger_app' AND table_name = 'ledger_merkle_tiles' ORDER BY 1"
            ).fetchall()
        assert [p for (p,) in privileges] == ["INSERT", "SELECT"]

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ("size = size + 1, head_hash = '\\x01'", "grew without its Merkle tree"),
            ("tree_edge = '\\x00'", "may only move forward"),
        ],
    )
    def test_a_head_cannot_move_apart_from_its_tree(self, ledger: Ledger, change: str, message: str) -> None:
        ledger.appender.append(events("acme", 3))
        with (
            psycopg.connect(ledger.db.url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege) as caught,
        ):
            conn.execute(f"UPDATE ledger_log_heads SET {change}")
        assert message in str(caught.value)


def test_the_migration_builds_the_tree_appends_build(pg_server: str, tmp_path, signing_key) -> None:
    """Events appended, the tree dropped by going back to 0004, and rebuilt by 0005 from the stored events."""
    from tests.conftest import _settings

    with fresh_database(pg_server, f"ledger_test_tree_migration_{os.getpid()}", migrated=False) as url:
        db = Database(url, pool_size=1)
        try:
            migrate.upgrade(db)
            ledger = wire(_settings(tmp_path, url, signing_key), db, project=False)
            for n in (300, 1, 700):
                ledger.appender.append(events("acme", n) + events("other", n // 2))
            ledger.appender.append(events("tiny", 1))
            with db.connect() as conn, conn.transaction():  # a log with a head and no events yet
                conn.execute(
                    "INSERT INTO ledger_log_heads (log, tenant, size, head_hash) VALUES ('empty', 'empty', 0, %s)",
                    (bytes(32),),
                )
            built = stored_tree(db)
            assert len(built[0]) == 3 + 1  # acme's 1001 leaves fill 3 tiles, other's 500 one

            command.downgrade(migrate.alembic_config(db), "0004_projection_evidence")
            with db.connect() as conn:
                assert conn.execute("SELECT to_regclass('ledger_merkle_tiles')").fetchone() == (None,)
            migrate.upgrade(db)

            assert stored_tree(db) == built
            ledger.appender.append(events("acme", 100))  # and the rebuilt tree grows on
            size, root = ledger.trees.root("acme", tenant="acme")
            assert (size, root) == (1101, merkle.root(1101, reference(leaves_of(db, "acme"))))
        finally:
            db.dispose()
