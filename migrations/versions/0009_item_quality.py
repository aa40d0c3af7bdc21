"""Item quality (issue 10): per item and QC-policy application, the agreement among its readers' first reads.

``proj_item_quality`` is what the lineage report and ``GET /v1/quality/items`` read: how many readers and
reader pairs an item has under an application of ``LEDGER_QC_POLICY``, the smallest IoU and Dice between
readers giving it the same class, the share of reader pairs giving it the same class, whether that falls
below the application's thresholds (and why), the annotation event ids it rests on, and the SHA-256 of the
policy it was held to. Derived state like every projection: ``ledger projections rebuild quality`` replays
it (and the workflow projection, whose annotation rules it applies); run it once after this revision, and
after every change of the policy file, to hold the items recorded before to the policy in force.

Revision ID: 0009_item_quality
Revises: 0008_anomaly_alerts
Create Date: 2026-12-15
"""

from __future__ import annotations

from alembic import op

revision = "0009_item_quality"
down_revision = "0008_anomaly_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE proj_item_quality (
            tenant          text NOT NULL,
            dataset         text NOT NULL,
            item            text NOT NULL,
            application     text NOT NULL,
            readers         int NOT NULL,
            pairs           int NOT NULL,
            min_iou         double precision,
            min_dice        double precision,
            class_agreement double precision,
            below_policy    boolean NOT NULL,
            reasons         text[] NOT NULL,
            evidence        text[] NOT NULL,
            policy_sha256   text,
            log             text NOT NULL,
            position        bigint NOT NULL,
            PRIMARY KEY (tenant, dataset, item, application)
        );
        -- GET /v1/quality/items?below_policy=true pages through a tenant's items in key order.
        CREATE INDEX proj_item_quality_below ON proj_item_quality (tenant, dataset, item) WHERE below_policy;
        -- GET /v1/quality/annotators/{actor} finds the items an actor read among the human annotations.
        CREATE INDEX proj_annotations_human_reader ON proj_annotations (tenant, created_by) WHERE origin = 'human';
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON proj_item_quality TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX proj_annotations_human_reader; DROP TABLE proj_item_quality")
