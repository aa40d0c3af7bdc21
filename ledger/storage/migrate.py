"""Run the Alembic migrations shipped in ``ledger.migrations``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files

import psycopg
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ledger.domain.errors import ConfigurationError, StorageUnavailable
from ledger.storage.database import Database, storage_error


def alembic_config(db: Database) -> Config:
    """An Alembic config pointing at the packaged migrations and this database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(files("ledger.migrations")))
    cfg.set_main_option(
        "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` under the migration advisory lock."""
    cfg = alembic_config(db)
    with _connected(db) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with _connected(db) as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _connected(db: Database) -> Iterator[Connection]:
    """A connection for Alembic; what goes wrong comes out as a ``LedgerError``, as at ``Database.connect``."""
    try:
        with db.engine.connect() as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        msg = f"cannot reach PostgreSQL to check or migrate the schema: {str(exc.orig or exc).strip().splitlines()[0]}"
        raise StorageUnavailable(msg) from exc
    except DBAPIError as exc:
        if isinstance(exc.orig, psycopg.Error):
            raise storage_error(exc.orig) from exc
        raise
    except CommandError as exc:
        # e.g. the database is at a revision this ledger does not know: a newer ledger migrated it
        msg = f"the schema migrations cannot run: {exc}"
        raise ConfigurationError(msg) from exc
