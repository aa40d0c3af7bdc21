"""Anomaly alerts: which access anomaly was sent to the Kafka topic ``ledger.alerts``, and when.

The anomaly projection runs inside the append transaction and never talks to a broker; the alert publisher of
``ledger serve`` and ``ledger consume`` sends every anomaly that has no row here, and writes the row only after
the broker acknowledged it (an outbox read off the projection). Not a projection: ``ledger projections
rebuild`` leaves it alone, and because anomaly ids are stable a rebuilt anomaly is not sent again.

Revision ID: 0008_anomaly_alerts
Revises: 0007_access_anomalies
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0008_anomaly_alerts"
down_revision = "0007_access_anomalies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger_anomaly_alerts (
            tenant     text NOT NULL,
            anomaly_id text NOT NULL,
            topic      text NOT NULL,
            sent_at    timestamptz NOT NULL,
            PRIMARY KEY (tenant, anomaly_id)
        );
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                GRANT SELECT, INSERT ON ledger_anomaly_alerts TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE ledger_anomaly_alerts")
