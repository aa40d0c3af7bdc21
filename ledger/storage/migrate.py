"""Run the Alembic migrations shipped in ``ledger.migrations``."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config

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
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
