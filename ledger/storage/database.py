"""A pooled PostgreSQL connection source (SQLAlchemy's pool over psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from ledger.domain.errors import StorageUnavailable


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
        """A pooled connection, rolled back and returned to the pool afterwards."""
        try:
            raw = self.engine.raw_connection()
        except Exception as exc:
            msg = f"cannot connect to PostgreSQL: {_first_line(exc)}"
            raise StorageUnavailable(msg) from exc
        try:
            conn = raw.driver_connection
            assert isinstance(conn, psycopg.Connection)
            yield conn
        except psycopg.OperationalError as exc:
            raw.invalidate()
            msg = f"PostgreSQL connection failed: {_first_line(exc)}"
            raise StorageUnavailable(msg) from exc
        finally:
            raw.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
