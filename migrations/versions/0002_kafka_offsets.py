"""Kafka ingest: consumed offsets, stored in the same transaction as the events they produced.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One row per (consumer group, topic, partition): the next offset to consume. The Kafka worker moves
        -- it with a compare-and-set in the same transaction as the events it appended, so the ledger's own
        -- tables are the source of truth for "what has been consumed" (Kafka commits are for lag only).
        CREATE TABLE ledger_consumer_offsets (
            consumer_group  text NOT NULL,
            topic           text NOT NULL,
            partition       integer NOT NULL CHECK (partition >= 0),
            next_offset     bigint NOT NULL CHECK (next_offset >= 0),
            high_watermark  bigint CHECK (high_watermark IS NULL OR high_watermark >= 0),
            updated_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer_group, topic, partition)
        );
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                GRANT SELECT, INSERT, UPDATE ON ledger_consumer_offsets TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE ledger_consumer_offsets;")
