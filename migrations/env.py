"""Alembic environment: runs under an advisory lock with lock and statement timeouts (as PyPI's warehouse does)."""

from alembic import context
from sqlalchemy import create_engine, text

# Any constant works; it only has to be the same for every process migrating this database.
_MIGRATION_LOCK = 0x1ED6E5


def run_migrations_online() -> None:
    """Run pending migrations on the connection handed in by ``ledger.storage.migrate``, or on the URL."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            _run(conn)
    else:
        _run(connection)


def _run(connection) -> None:
    connection.execute(text("SET lock_timeout = '20s'"))
    connection.execute(text("SET statement_timeout = '15min'"))
    connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
    try:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
        connection.commit()


run_migrations_online()
