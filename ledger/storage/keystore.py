"""Wrapped per-subject sealing keys in ``ledger_subject_keys`` (deletable, unlike the event table)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from ledger.crypto.sealing import SubjectRef, new_subject_key
from ledger.storage.database import Database


class PgSubjectKeyStore:
    """Keeps ``(kid, wrapped key)`` per ``(tenant, subject)``; erasure deletes the wrapped key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, subjects: Iterable[SubjectRef]) -> dict[SubjectRef, tuple[str, bytes]]:
        """Existing, unerased keys of these subjects."""
        refs = list(subjects)
        if not refs:
            return {}
        with self._db.connect() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT tenant, subject, kid, wrapped FROM ledger_subject_keys"
                " WHERE (tenant, subject) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                " AND wrapped IS NOT NULL",
                ([t for t, _ in refs], [s for _, s in refs]),
            ).fetchall()
        return {(str(t), str(s)): (str(k), bytes(w)) for t, s, k, w in rows}

    def get_or_create(self, subjects: Iterable[SubjectRef], wrap: Any) -> dict[SubjectRef, tuple[str, bytes]]:
        """Keys of these subjects, creating the missing ones (a concurrent creator wins, and its key is used)."""
        refs = sorted(set(subjects))
        found = self.get(refs)
        missing = [r for r in refs if r not in found]
        if missing:
            fresh = [(t, s, *new_subject_key(t, s, wrap)) for t, s in missing]
            with self._db.connect() as conn, conn.transaction():
                # ON CONFLICT is right here: keys are not ledger events, and the loser re-reads the winner's key.
                conn.execute(
                    "INSERT INTO ledger_subject_keys (tenant, subject, kid, wrapped)"
                    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[])"
                    " ON CONFLICT (tenant, subject) WHERE wrapped IS NOT NULL DO NOTHING",
                    (
                        [f[0] for f in fresh],
                        [f[1] for f in fresh],
                        [f[2] for f in fresh],
                        [f[3] for f in fresh],
                    ),
                )
            found.update(self.get(missing))
        return found


def live_kid(conn: psycopg.Connection[Any], tenant: str, subject: str) -> str | None:
    """The id of the subject's unerased key, locked until the transaction ends (``None``: there is none).

    The lock makes a concurrent erasure of the same subject wait, then find nothing left to erase."""
    row = conn.execute(
        "SELECT kid FROM ledger_subject_keys WHERE tenant = %s AND subject = %s AND wrapped IS NOT NULL FOR UPDATE",
        (tenant, subject),
    ).fetchone()
    return None if row is None else str(row[0])


def erase_key(conn: psycopg.Connection[Any], tenant: str, subject: str) -> list[str]:
    """Delete the subject's wrapped key in the caller's transaction (crypto-shredding); return the key ids.

    The row stays, with ``wrapped`` NULL and ``erased_at`` set: the key id a sealed value names is then
    known to have been erased, not lost. A later sealed event of the subject gets a fresh key (the unique
    index covers unerased keys only)."""
    rows = conn.execute(
        "UPDATE ledger_subject_keys SET wrapped = NULL, erased_at = now()"
        " WHERE tenant = %s AND subject = %s AND wrapped IS NOT NULL RETURNING kid",
        (tenant, subject),
    ).fetchall()
    return sorted(str(r[0]) for r in rows)
