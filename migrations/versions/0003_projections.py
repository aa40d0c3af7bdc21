"""Projections: label state, lineage, credentials, guidelines, assignments, compliance flags, item
provenance index, retention index; and the record of verification runs.

Projection tables are derived state: not append-only, rebuildable from the log, every row stamped with
the (log, position) of the last event that changed it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = (
    "proj_annotations",
    "proj_annotation_revisions",
    "proj_final_labels",
    "proj_credentials",
    "proj_trainings",
    "proj_guidelines",
    "proj_assignments",
    "proj_flags",
    "proj_item_events",
    "proj_retention",
    "proj_holds",
    "proj_erasures",
    "ledger_verifications",
)


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE proj_annotations (
            tenant            text NOT NULL,
            annotation_id     text NOT NULL,
            dataset           text NOT NULL,
            item              text NOT NULL,
            version           int NOT NULL,
            label_class       text NOT NULL,
            geometry          jsonb NOT NULL,
            origin            text NOT NULL,
            model_name        text,
            model_version     text,
            guideline_id      text NOT NULL,
            guideline_version text NOT NULL,
            status            text NOT NULL,
            review_level      int,
            reviewers         text[] NOT NULL DEFAULT '{}',
            created_by        text NOT NULL,
            created_at        timestamptz NOT NULL,
            updated_at        timestamptz NOT NULL,
            log               text NOT NULL,
            position          bigint NOT NULL,
            PRIMARY KEY (tenant, annotation_id)
        );
        CREATE INDEX proj_annotations_item ON proj_annotations (tenant, dataset, item);

        CREATE TABLE proj_annotation_revisions (
            tenant            text NOT NULL,
            annotation_id     text NOT NULL,
            log               text NOT NULL,
            position          bigint NOT NULL,
            event_id          text NOT NULL,
            change            text NOT NULL,
            version           int,
            actor             text NOT NULL,
            label_class       text,
            guideline_version text,
            review_level      int,
            decision          text,
            occurred_at       timestamptz NOT NULL,
            PRIMARY KEY (tenant, annotation_id, log, position)
        );

        CREATE TABLE proj_final_labels (
            tenant        text NOT NULL,
            dataset       text NOT NULL,
            item          text NOT NULL,
            annotation_id text NOT NULL,
            label_class   text NOT NULL,
            method        text NOT NULL,
            level         int NOT NULL,
            decided_by    text NOT NULL,
            decided_at    timestamptz NOT NULL,
            event_id      text NOT NULL,
            log           text NOT NULL,
            position      bigint NOT NULL,
            PRIMARY KEY (tenant, dataset, item)
        );

        -- One row per granted or renewed period of a credential; revocation or expiry closes it.
        CREATE TABLE proj_credentials (
            tenant        text NOT NULL,
            credential_id text NOT NULL,
            period        int NOT NULL,
            annotator     text NOT NULL,
            kind          text NOT NULL,
            level         text,
            specialty     text,
            issuer        text NOT NULL,
            valid_from    timestamptz NOT NULL,
            valid_until   timestamptz,
            ended_at      timestamptz,
            ended_by      text,
            event_id      text NOT NULL,
            log           text NOT NULL,
            position      bigint NOT NULL,
            PRIMARY KEY (tenant, credential_id, period)
        );
        CREATE INDEX proj_credentials_annotator ON proj_credentials (tenant, annotator);

        CREATE TABLE proj_trainings (
            tenant            text NOT NULL,
            event_id          text NOT NULL,
            annotator         text NOT NULL,
            course            text NOT NULL,
            completed_at      timestamptz NOT NULL,
            valid_until       timestamptz,
            guideline_id      text,
            guideline_version text,
            log               text NOT NULL,
            position          bigint NOT NULL,
            PRIMARY KEY (tenant, event_id)
        );
        CREATE INDEX proj_trainings_annotator ON proj_trainings (tenant, annotator);

        CREATE TABLE proj_guidelines (
            tenant          text NOT NULL,
            guideline_id    text NOT NULL,
            version         text NOT NULL,
            title           text NOT NULL,
            document_sha256 text NOT NULL,
            effective_from  timestamptz NOT NULL,
            effective_until timestamptz,
            supersedes      text,
            superseded_by   text,
            log             text NOT NULL,
            position        bigint NOT NULL,
            PRIMARY KEY (tenant, guideline_id, version)
        );

        CREATE TABLE proj_assignments (
            tenant        text NOT NULL,
            assignment_id text NOT NULL,
            dataset       text NOT NULL,
            items         text[] NOT NULL,
            assignee      text NOT NULL,
            role          text NOT NULL,
            active        boolean NOT NULL,
            created_at    timestamptz NOT NULL,
            revoked_at    timestamptz,
            log           text NOT NULL,
            position      bigint NOT NULL,
            PRIMARY KEY (tenant, assignment_id)
        );
        CREATE INDEX proj_assignments_assignee ON proj_assignments (tenant, assignee);

        CREATE TABLE proj_flags (
            tenant      text NOT NULL,
            flag_id     text NOT NULL,
            kind        text NOT NULL,
            rule        text NOT NULL,
            actor       text NOT NULL,
            dataset     text,
            item        text,
            detail      text NOT NULL,
            evidence    text[] NOT NULL,
            occurred_at timestamptz NOT NULL,
            log         text NOT NULL,
            position    bigint NOT NULL,
            PRIMARY KEY (tenant, flag_id)
        );
        CREATE INDEX proj_flags_order ON proj_flags (tenant, log, position);

        -- Every event that touches an item, for provenance: the events themselves are read by (log, position).
        CREATE TABLE proj_item_events (
            tenant   text NOT NULL,
            dataset  text NOT NULL,
            item     text NOT NULL,
            log      text NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (tenant, dataset, item, log, position)
        );

        CREATE TABLE proj_retention (
            log      text NOT NULL,
            day      date NOT NULL,
            type     text NOT NULL,
            tenant   text NOT NULL,
            events   bigint NOT NULL,
            oldest   timestamptz NOT NULL,
            newest   timestamptz NOT NULL,
            position bigint NOT NULL,
            PRIMARY KEY (log, day, type)
        );
        CREATE INDEX proj_retention_tenant ON proj_retention (tenant);

        CREATE TABLE proj_holds (
            tenant      text NOT NULL,
            hold_id     text NOT NULL,
            scope       jsonb NOT NULL,
            reason      text NOT NULL,
            approver    text NOT NULL,
            placed_at   timestamptz NOT NULL,
            released_at timestamptz,
            log         text NOT NULL,
            position    bigint NOT NULL,
            PRIMARY KEY (tenant, hold_id)
        );

        CREATE TABLE proj_erasures (
            tenant       text NOT NULL,
            erasure_id   text NOT NULL,
            data_subject text NOT NULL,
            requested_at timestamptz,
            executed_at  timestamptz,
            log          text NOT NULL,
            position     bigint NOT NULL,
            PRIMARY KEY (tenant, erasure_id)
        );

        -- What `ledger verify` found, so reports can state the integrity status they were checked against.
        CREATE TABLE ledger_verifications (
            id             bigserial PRIMARY KEY,
            started_at     timestamptz NOT NULL,
            finished_at    timestamptz NOT NULL,
            intact         boolean NOT NULL,
            events_checked bigint NOT NULL,
            logs           jsonb NOT NULL
        );
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                GRANT SELECT, INSERT, UPDATE, DELETE ON """
        + ", ".join(_TABLES)
        + """ TO ledger_app;
                GRANT USAGE ON SEQUENCE ledger_verifications_id_seq TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE " + ", ".join(_TABLES))
