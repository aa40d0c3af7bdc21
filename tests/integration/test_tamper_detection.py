"""``verify`` finds each kind of tampering a superuser can do, at the right log and position."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ledger.domain.envelope import validate_event
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from tests.factories import example_event

SIZE = 20


@pytest.fixture
def chained(ledger: Ledger) -> Ledger:
    for tenant in ("acme", "beta"):
        ledger.appender.append(
            [validate_event(example_event("annotation.created", tenant=tenant)) for _ in range(SIZE)]
        )
    assert verify(ledger.db).intact
    return ledger


@pytest.fixture
def superuser(chained: Ledger) -> Iterator[psycopg.Connection]:
    """A superuser session with the append-only triggers disabled, as an attacker with DBA rights would have."""
    with psycopg.connect(chained.db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ledger_events DISABLE TRIGGER USER")
        yield conn
        conn.execute("ALTER TABLE ledger_events ENABLE TRIGGER USER")


def first_break(ledger: Ledger) -> tuple[str, int, str]:
    report = verify(ledger.db)
    assert not report.intact
    assert len(report.breaks) == 1, "only the tampered log should break"
    b = report.breaks[0]
    return b.log, b.position, b.reason


def test_one_changed_byte_in_the_canonical_bytes(chained: Ledger, superuser: psycopg.Connection) -> None:
    superuser.execute(
        "UPDATE ledger_events SET canonical = set_byte(canonical, 40, get_byte(canonical, 40) # 1)"
        " WHERE log = 'acme' AND position = 7"
    )
    assert first_break(chained)[:2] == ("acme", 7)


def test_one_changed_byte_in_a_hash(chained: Ledger, superuser: psycopg.Connection) -> None:
    superuser.execute(
        "UPDATE ledger_events SET hash = set_byte(hash, 0, get_byte(hash, 0) # 128) WHERE log = 'beta' AND position = 12"
    )
    assert first_break(chained)[:2] == ("beta", 12)


def test_a_deleted_row(chained: Ledger, superuser: psycopg.Connection) -> None:
    superuser.execute("DELETE FROM ledger_events WHERE log = 'acme' AND position = 5")
    log, position, reason = first_break(chained)
    assert (log, position) == ("acme", 5)
    assert "deleted" in reason


def test_two_rows_swapped(chained: Ledger, superuser: psycopg.Connection) -> None:
    superuser.execute("UPDATE ledger_events SET position = 1000000 WHERE log = 'acme' AND position = 3")
    superuser.execute("UPDATE ledger_events SET position = 3 WHERE log = 'acme' AND position = 9")
    superuser.execute("UPDATE ledger_events SET position = 9 WHERE log = 'acme' AND position = 1000000")
    assert first_break(chained)[:2] == ("acme", 3)


def test_rows_removed_from_the_tail(chained: Ledger, superuser: psycopg.Connection) -> None:
    superuser.execute("DELETE FROM ledger_events WHERE log = 'beta' AND position >= 17")
    log, position, reason = first_break(chained)
    assert (log, position) == ("beta", 17)
    assert "tail" in reason


def test_a_rewritten_event_with_recomputed_hashes_is_caught_at_the_head(
    chained: Ledger, superuser: psycopg.Connection
) -> None:
    """Rehashing the whole tail after an edit still cannot move the head the ledger keeps."""
    from ledger.domain.hashing import chain_hash, leaf_hash

    rows = superuser.execute(
        "SELECT position, prev_hash, canonical FROM ledger_events WHERE log = 'acme' ORDER BY position"
    ).fetchall()
    prev = bytes(rows[0][1])
    for position, _, canonical in rows:
        canonical = bytes(canonical)
        if position == 10:
            canonical = canonical.replace(b'"nodule"', b'"mass"')
        digest = chain_hash(prev, leaf_hash(canonical))
        superuser.execute(
            "UPDATE ledger_events SET canonical = %s, prev_hash = %s, hash = %s WHERE log = 'acme' AND position = %s",
            (canonical, prev, digest, position),
        )
        prev = digest
    log, position, reason = first_break(chained)
    assert (log, position) == ("acme", SIZE - 1)
    assert "head hash" in reason
