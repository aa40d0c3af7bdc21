"""Webhook sources (issue 11): the annotation tools allowed to post, and where their objects were placed.

``webhook_sources`` holds one row per tool instance (``ledger sources add``): its name, kind
(``label-studio`` or ``cvat``), the one tenant its deliveries write to, and its mapping config (the TOML
document of ``ledger sources configure``, as jsonb). A Label Studio source keeps only the SHA-256 of its
bearer secret (``secret_sha256``): the secret is shown once, when added or rotated. A CVAT source keeps the
secret itself (``secret``), since checking ``X-Signature-256`` needs the HMAC key.

``webhook_places`` is a lookup cache, not the record: the (dataset, item) a tool object (``task/12``,
``annotation/42``, ``job/7``) was mapped to by an earlier delivery, so that a later delivery that no longer
says where the object is (a Label Studio deletion) can still be mapped. The events themselves are the
record; losing a row here makes such a delivery unmappable (a recorded rejection), never a wrong event.

Revision ID: 0010_webhook_sources
Revises: 0009_item_quality
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010_webhook_sources"
down_revision = "0009_item_quality"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhook_sources (
            name          text PRIMARY KEY,
            kind          text NOT NULL CHECK (kind IN ('label-studio', 'cvat')),
            tenant        text NOT NULL,
            secret        text,
            secret_sha256 text,
            config        jsonb NOT NULL DEFAULT '{}',
            created_at    timestamptz NOT NULL DEFAULT now(),
            rotated_at    timestamptz,
            -- Label Studio: the bearer secret's digest only; CVAT: the HMAC key itself.
            CHECK ((kind = 'label-studio') = (secret_sha256 IS NOT NULL AND secret IS NULL)),
            CHECK ((kind = 'cvat') = (secret IS NOT NULL AND secret_sha256 IS NULL))
        );

        CREATE TABLE webhook_places (
            source  text NOT NULL REFERENCES webhook_sources (name),
            ref     text NOT NULL,
            tenant  text NOT NULL,
            dataset text NOT NULL,
            item    text NOT NULL,
            PRIMARY KEY (source, ref)
        );
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                GRANT SELECT, INSERT, UPDATE ON webhook_sources, webhook_places TO ledger_app;
            END IF;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE webhook_places; DROP TABLE webhook_sources")
