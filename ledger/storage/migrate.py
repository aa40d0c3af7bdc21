"""Run the Alembic migrations shipped in ``ledger.migrations``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from ledger.domain.errors import StorageUnavailable
from ledger.storage.database import Database


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
    try:
        with db.engine.connect() as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        msg = f"cannot reach PostgreSQL to check or migrate the schema: {str(exc.orig or exc).strip().splitlines()[0]}"
        raise StorageUnavailable(msg) from exc
