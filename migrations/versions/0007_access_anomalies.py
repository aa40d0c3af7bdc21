"""Access anomalies (issue 9): the anomalies raised by the access rules, and the state those rules keep.

``proj_access_anomalies`` is the shared contract of issue 9: one row per anomaly, with its rule, severity,
evidence event ids and review status (``ledger.anomaly_reviewed`` sets it). The three state tables are the
access projector's own: per actor and local day, how many accesses (the volume baseline); per actor, the
login failures of the current burst; per dataset item, the test split of a release that holds it. Like every
projection they are derived state: ``ledger projections rebuild access`` replays them from the events.
There were no anomalies before this revision, so there is nothing to build here; run the rebuild once to
raise the anomalies of events recorded before it.

Revision ID: 0007_access_anomalies
Revises: 0006_checkpoints
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0007_access_anomalies"
down_revision = "0006_checkpoints"
branch_labels = None
depends_on = None

_TABLES = (
    "proj_access_anomalies",
    "proj_access_daily",
    "proj_login_failures",
    "proj_test_split_items",
    "proj_assignment_items",
)


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE proj_access_anomalies (
            tenant          text NOT NULL,
            anomaly_id      text NOT NULL,
            rule            text NOT NULL,
            severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
            actor           text NOT NULL,
            dataset         text,
            item            text,
            summary         text NOT NULL,
            evidence        text[] NOT NULL,
            log             text NOT NULL,
            position        bigint NOT NULL,
            occurred_at     timestamptz NOT NULL,
            raised_at       timestamptz NOT NULL,
            status          text NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'benign', 'policy_violation', 'incident')),
            reviewed_by     text,
            reviewed_at     timestamptz,
            review_event_id text,
            reviews         int NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant, anomaly_id)
        );
        CREATE INDEX proj_access_anomalies_raised ON proj_access_anomalies (tenant, raised_at);
        CREATE INDEX proj_access_anomalies_status ON proj_access_anomalies (tenant, status);

        -- Accesses per actor and day (in the tenant's working-hours time zone): the volume baseline.
        CREATE TABLE proj_access_daily (
            tenant         text NOT NULL,
            actor          text NOT NULL,
            day            date NOT NULL,
            accesses       bigint NOT NULL,
            first_event_id text NOT NULL,
            log            text NOT NULL,
            position       bigint NOT NULL,
            PRIMARY KEY (tenant, actor, day)
        );

        -- The failed logins of each actor's current burst (those within the window of its latest).
        CREATE TABLE proj_login_failures (
            tenant    text NOT NULL,
            actor     text NOT NULL,
            times     timestamptz[] NOT NULL,
            event_ids text[] NOT NULL,
            raised    boolean NOT NULL,
            log       text NOT NULL,
            position  bigint NOT NULL,
            PRIMARY KEY (tenant, actor)
        );

        -- Items in the test split of a release (the first release that put them there).
        CREATE TABLE proj_test_split_items (
            tenant   text NOT NULL,
            dataset  text NOT NULL,
            item     text NOT NULL,
            release  text NOT NULL,
            event_id text NOT NULL,
            log      text NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (tenant, dataset, item)
        );

        -- Which assignments name an item: the unassigned_item rule's lookup by item (proj_assignments keeps
        -- an assignment's items in an array, which no B-tree can serve).
        CREATE TABLE proj_assignment_items (
            tenant        text NOT NULL,
            dataset       text NOT NULL,
            item          text NOT NULL,
            assignee      text NOT NULL,
            assignment_id text NOT NULL,
            PRIMARY KEY (tenant, dataset, item, assignee, assignment_id)
        );
        """
    )
    grants = "".join(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO ledger_app; " for t in _TABLES)
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                {grants}
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {', '.join(_TABLES)}")
