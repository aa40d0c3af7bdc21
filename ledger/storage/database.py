"""A pooled PostgreSQL connection source (SQLAlchemy's pool over psycopg 3), and the storage boundary.

Every psycopg error raised while a connection is in use leaves here as a ``LedgerError`` (``storage_error``):
what retrying can cure (a lost connection, a lock or statement timeout, a serialization failure, a read-only
standby after failover) is ``StorageUnavailable``; anything else is ``StorageRefused``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from ledger.domain.errors import LedgerError, StorageRefused, StorageUnavailable


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form of a libpq URL, always using the psycopg 3 driver."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


class Database:
    """Hands out psycopg connections from a pool; the hot paths use psycopg directly for COPY."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.engine: Engine = create_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            pool_recycle=1800,
        )

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A pooled connection, rolled back and returned to the pool afterwards; psycopg errors raised
        while it is in use come out as ``LedgerError``s (``storage_error``)."""
        try:
            raw = self.engine.raw_connection()
        except Exception as exc:
            msg = f"cannot connect to PostgreSQL: {first_line(exc)}"
            raise StorageUnavailable(msg) from exc
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            yield conn
        except psycopg.Error as exc:
            if conn.broken or conn.closed:
                raw.invalidate()  # a connection that lost its server must not go back to the pool
            raise storage_error(exc) from exc
        finally:
            raw.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


# Errors a retry can cure: the operational ones (connection, resources, serialization, deadlock), and two
# psycopg does not class so: a standby refusing writes until failover completes, and a session the server
# ended for idling in a transaction.
_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    pg.ReadOnlySqlTransaction,
    pg.IdleInTransactionSessionTimeout,
)


def storage_error(exc: psycopg.Error) -> LedgerError:
    """The ledger error for a psycopg error: the one mapping of the storage boundary."""
    first = first_line(exc)
    if isinstance(exc, pg.LockNotAvailable):
        return StorageUnavailable(f"PostgreSQL did not grant a lock within lock_timeout, try again: {first}")
    if isinstance(exc, pg.QueryCanceled):
        return StorageUnavailable(
            f"PostgreSQL cancelled a statement that ran longer than statement_timeout, try again: {first}"
        )
    if isinstance(exc, _TRANSIENT):
        return StorageUnavailable(f"PostgreSQL connection failed: {first}")
    state = f" ({exc.sqlstate})" if exc.sqlstate else ""
    return StorageRefused(f"PostgreSQL refused a statement{state}: {first}")


def first_line(exc: BaseException) -> str:
    """The first line of a driver error's text: what a message may quote of it."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
