"""Signed checkpoints: the projection of ``ledger.checkpoint_signed`` and ``ledger.checkpoint_cosigned``.

One row per log and tree size: the signed note as the log signed it, when it was recorded and where
(the event's position), and the witnesses' ``cosignature/v1`` lines in the order they were recorded. Like
every projection it is derived state: ``ledger projections rebuild checkpoints`` replays it from the
events. There were no checkpoints before this revision, so there is nothing to build here.

Revision ID: 0006_checkpoints
Revises: 0005_merkle_tiles
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006_checkpoints"
down_revision = "0005_merkle_tiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE proj_checkpoints (
            log          text NOT NULL,
            tree_size    bigint NOT NULL CHECK (tree_size >= 0),
            tenant       text NOT NULL,
            root_hash    bytea NOT NULL CHECK (octet_length(root_hash) = 32),
            note         text NOT NULL,
            signed_at    timestamptz NOT NULL,
            event_id     text NOT NULL,
            position     bigint NOT NULL,
            cosignatures text[] NOT NULL DEFAULT '{}',
            PRIMARY KEY (log, tree_size)
        );
        CREATE INDEX proj_checkpoints_tenant ON proj_checkpoints (tenant);
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON proj_checkpoints TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE proj_checkpoints")
