"""Projections: the event behind each annotation, guideline and assignment row (evidence for the flags on
events that would rewrite them), and projection rows older code derived from values outside the accepted
range removed, so that no reader meets a time it cannot convert.

Projection tables are derived state. The new columns are NULL on rows projected before this revision,
and flags the new rules raise are missing from them, until ``ledger projections rebuild`` runs once.

Revision ID: 0004_projection_evidence
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op

revision = "0004_projection_evidence"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE proj_annotations ADD COLUMN created_event_id text;
        ALTER TABLE proj_guidelines ADD COLUMN event_id text;
        ALTER TABLE proj_assignments ADD COLUMN event_id text;
        """
    )
    # The accepted range of ledger.domain.fields as of this revision: [1900-01-01, 2200-01-01) UTC.
    # A legal hold is kept with its times brought into range (held from the earliest time, never released
    # early): keeping too much is safe where keeping too little is not. Any other projection row holding
    # such a time is removed; the rebuild no longer projects it.
    op.execute(
        """
        UPDATE proj_holds SET placed_at = '1900-01-01T00:00:00Z'
            WHERE placed_at < '1900-01-01T00:00:00Z' OR placed_at >= '2200-01-01T00:00:00Z';
        UPDATE proj_holds SET released_at = NULL
            WHERE released_at < '1900-01-01T00:00:00Z' OR released_at >= '2200-01-01T00:00:00Z';
        DO $$
        DECLARE c record;
        BEGIN
            FOR c IN
                SELECT table_name, column_name FROM information_schema.columns
                WHERE table_schema = current_schema() AND left(table_name, 5) = 'proj_'
                  AND data_type = 'timestamp with time zone' AND table_name <> 'proj_holds'
            LOOP
                EXECUTE 'DELETE FROM ' || quote_ident(c.table_name)
                    || ' WHERE ' || quote_ident(c.column_name) || ' < ''1900-01-01T00:00:00Z'''
                    || ' OR ' || quote_ident(c.column_name) || ' >= ''2200-01-01T00:00:00Z''';
            END LOOP;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE proj_annotations DROP COLUMN created_event_id;
        ALTER TABLE proj_guidelines DROP COLUMN event_id;
        ALTER TABLE proj_assignments DROP COLUMN event_id;
        """
    )
