"""The ledger core: append-only events, log heads, subject keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE ledger_log_heads (
            log          text PRIMARY KEY,
            tenant       text NOT NULL,
            size         bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
            head_hash    bytea NOT NULL,
            recorded_at  timestamptz
        );

        -- The event table. `canonical` holds the exact bytes hashed; every other column is derived from it
        -- and checked against it by `ledger verify`.
        CREATE TABLE ledger_events (
            log            text NOT NULL,
            position       bigint NOT NULL CHECK (position >= 0),
            tenant         text NOT NULL,
            event_id       text NOT NULL,
            type           text NOT NULL,
            source         text NOT NULL,
            subject        text,
            actor          text NOT NULL,
            event_time     timestamptz NOT NULL,
            recorded_at    timestamptz NOT NULL,
            content_digest bytea NOT NULL,
            canonical      bytea NOT NULL,
            prev_hash      bytea NOT NULL,
            hash           bytea NOT NULL,
            PRIMARY KEY (log, position),
            UNIQUE (tenant, event_id)
        );
        CREATE INDEX ledger_events_tenant_type ON ledger_events (tenant, type, event_time);
        CREATE INDEX ledger_events_tenant_subject ON ledger_events (tenant, subject) WHERE subject IS NOT NULL;
        CREATE INDEX ledger_events_tenant_actor ON ledger_events (tenant, actor);
        CREATE INDEX ledger_events_tenant_time ON ledger_events (tenant, event_time);

        CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger_events is append-only: % is refused', TG_OP
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Corrections are new events; history is never rewritten.';
        END
        $$;
        CREATE TRIGGER ledger_events_no_update_delete BEFORE UPDATE OR DELETE ON ledger_events
            FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
        CREATE TRIGGER ledger_events_no_truncate BEFORE TRUNCATE ON ledger_events
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

        -- A head only moves forward: cutting a log's tail and moving its head back would otherwise need
        -- no rehashing at all. (A superuser can still disable this; verification does not rely on it.)
        CREATE FUNCTION ledger_head_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
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
        CREATE TRIGGER ledger_log_heads_only_grow BEFORE UPDATE OR DELETE ON ledger_log_heads
            FOR EACH ROW EXECUTE FUNCTION ledger_head_only_grows();
        CREATE TRIGGER ledger_log_heads_no_truncate BEFORE TRUNCATE ON ledger_log_heads
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

        -- Wrapped per-subject sealing keys. Not append-only: erasure clears `wrapped` (crypto-shredding).
        CREATE TABLE ledger_subject_keys (
            kid         text PRIMARY KEY,
            tenant      text NOT NULL,
            subject     text NOT NULL,
            wrapped     bytea,
            created_at  timestamptz NOT NULL DEFAULT now(),
            erased_at   timestamptz
        );
        CREATE UNIQUE INDEX ledger_subject_keys_live ON ledger_subject_keys (tenant, subject)
            WHERE wrapped IS NOT NULL;
        """
    )
    # The role services should connect as in production: it may add and read events, never change them.
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
                BEGIN
                    CREATE ROLE ledger_app NOLOGIN;
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE NOTICE 'cannot create role ledger_app; grant INSERT, SELECT on ledger_events by hand';
                    RETURN;
                END;
            END IF;
            REVOKE ALL ON ledger_events FROM ledger_app;
            GRANT SELECT, INSERT ON ledger_events TO ledger_app;
            GRANT SELECT, INSERT, UPDATE ON ledger_log_heads, ledger_subject_keys TO ledger_app;
            -- the service checks the schema revision at start-up
            GRANT SELECT ON alembic_version TO ledger_app;
        END
        $$;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE ledger_subject_keys;
        DROP TABLE ledger_events;
        DROP TABLE ledger_log_heads;
        DROP FUNCTION ledger_refuse_change();
        DROP FUNCTION ledger_head_only_grows();
        """
    )
