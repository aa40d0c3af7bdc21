"""Merkle trees: each log's complete 256-hash tiles (append-only) and its right edge (with the log head),
in the manner of C2SP tlog-tiles; the trees of the events recorded before this revision are built here.

``ledger_merkle_tiles`` holds one row per complete tile: level L, tile N, the 256 hashes of the perfect
subtrees of 256**L leaves it covers, concatenated. ``ledger_log_heads.tree_edge`` holds the partial tile of
every level: per level from 0 up, one byte counting its hashes (0-255), then the hashes. The edge and tile
forms are written out here as they are at this revision (``ledger.storage.tree`` reads them; the
migration test checks that an upgraded database has the tree that appends build). The hashing comes from
``ledger.domain.merkle`` (RFC 9162 leaf and node hashes, and the C2SP tile layout): those are fixed by the
standards, not by this code.

Revision ID: 0005_merkle_tiles
Revises: 0004_projection_evidence
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alembic import op

from ledger.domain.merkle import extend_edge, leaf_hash

revision = "0005_merkle_tiles"
down_revision = "0004_projection_evidence"
branch_labels = None
depends_on = None

_LEAVES_PER_STEP = 65_536  # leaves hashed between two tile inserts: bounds the memory of a long log


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger_merkle_tiles (
            log     text NOT NULL,
            level   smallint NOT NULL CHECK (level >= 0),
            tile    bigint NOT NULL CHECK (tile >= 0),
            hashes  bytea NOT NULL CHECK (octet_length(hashes) = 8192),
            PRIMARY KEY (log, level, tile)
        );
        ALTER TABLE ledger_log_heads ADD COLUMN tree_edge bytea NOT NULL DEFAULT '';

        -- One refusal for every append-only table, naming the table.
        CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % is refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Corrections are new events; history is never rewritten.';
        END
        $$;
        CREATE TRIGGER ledger_merkle_tiles_no_update_delete BEFORE UPDATE OR DELETE ON ledger_merkle_tiles
            FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
        CREATE TRIGGER ledger_merkle_tiles_no_truncate BEFORE TRUNCATE ON ledger_merkle_tiles
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
        """
    )
    # Nobody appends while the trees are built: a writer waits for the head locks, and then meets the
    # trigger below, which refuses a head that grows without its tree (a ledger of an older revision).
    op.execute("SELECT log FROM ledger_log_heads ORDER BY log FOR UPDATE")
    conn = op.get_bind().connection.driver_connection
    logs = [str(r[0]) for r in conn.execute("SELECT log FROM ledger_log_heads ORDER BY log").fetchall()]
    for log in logs:
        _build_tree(conn, log)
    op.execute(
        """
        CREATE OR REPLACE FUNCTION ledger_head_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'a log head is never deleted' USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.log <> OLD.log OR NEW.tenant <> OLD.tenant OR NEW.size < OLD.size
               OR (NEW.size = OLD.size AND (NEW.head_hash <> OLD.head_hash OR NEW.tree_edge <> OLD.tree_edge)) THEN
                RAISE EXCEPTION 'log head % may only move forward (size % -> %)', OLD.log, OLD.size, NEW.size
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            -- The edge's counts spell the size, so a head that grows changes its edge: one that does not
            -- was advanced by a writer that keeps no tree.
            IF NEW.size <> OLD.size AND NEW.tree_edge = OLD.tree_edge THEN
                RAISE EXCEPTION 'log head % grew without its Merkle tree', OLD.log
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'Every ledger process must run the revision the schema is at.';
            END IF;
            RETURN NEW;
        END
        $$;
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                REVOKE ALL ON ledger_merkle_tiles FROM ledger_app;
                GRANT SELECT, INSERT ON ledger_merkle_tiles TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def _build_tree(conn: Any, log: str) -> None:
    """Hash ``log``'s stored events in position order into tiles and an edge, as appends would have."""
    edge: list[list[bytes]] = []
    size = 0
    for leaves in _leaf_hashes(conn, log):
        _insert_tiles(conn, log, extend_edge(edge, leaves))
        size += len(leaves)
    head = conn.execute("SELECT size FROM ledger_log_heads WHERE log = %s", (log,)).fetchone()
    if head is None or int(head[0]) != size:
        msg = f"log {log!r} holds {size} events but its head says {head and head[0]}; run `ledger verify`"
        raise RuntimeError(msg)
    encoded = b"".join(bytes([len(row)]) + b"".join(row) for row in edge)
    conn.execute("UPDATE ledger_log_heads SET tree_edge = %s WHERE log = %s", (encoded, log))


def _leaf_hashes(conn: Any, log: str) -> Iterator[list[bytes]]:
    """The leaf hashes of ``log`` in position order, a step at a time, read with one binary COPY."""
    step: list[bytes] = []
    query = "COPY (SELECT canonical FROM ledger_events WHERE log = %s ORDER BY position) TO STDOUT (FORMAT BINARY)"
    with conn.cursor().copy(query, (log,)) as copy:
        copy.set_types(["bytea"])
        for (canonical,) in copy.rows():
            step.append(leaf_hash(bytes(canonical)))
            if len(step) == _LEAVES_PER_STEP:
                yield step
                step = []
    if step:
        yield step


def _insert_tiles(conn: Any, log: str, tiles: list[tuple[int, int, list[bytes]]]) -> None:
    if tiles:
        conn.execute(
            "INSERT INTO ledger_merkle_tiles (log, level, tile, hashes)"
            " SELECT %s, * FROM unnest(%s::int2[], %s::int8[], %s::bytea[])",
            (log, [t[0] for t in tiles], [t[1] for t in tiles], [b"".join(t[2]) for t in tiles]),
        )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE ledger_merkle_tiles;
        CREATE OR REPLACE FUNCTION ledger_head_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'a log head is never deleted' USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.log <> OLD.log OR NEW.tenant <> OLD.tenant OR NEW.size < OLD.size
               OR (NEW.size = OLD.size AND NEW.head_hash <> OLD.head_hash) THEN
                RAISE EXCEPTION 'log head % may only move forward (size % -> %)', OLD.log, OLD.size, NEW.size
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END
        $$;
        CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger_events is append-only: % is refused', TG_OP
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Corrections are new events; history is never rewritten.';
        END
        $$;
        ALTER TABLE ledger_log_heads DROP COLUMN tree_edge;
        """
    )
