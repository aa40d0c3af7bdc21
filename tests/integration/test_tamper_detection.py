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


# One pass over each log, ranges of 6 positions joined in this process, and the same in two workers
# (the logs hold 20 events: borders at 6, 12 and 18). Each must name the same first break.
WAYS = {
    "one pass": {"jobs": 1},
    "ranges": {"jobs": 1, "range_size": 6},
    "workers": {"jobs": 2, "range_size": 6},
}


@pytest.fixture(params=list(WAYS))
def how(request: pytest.FixtureRequest) -> dict:
    return WAYS[request.param]


def first_break(ledger: Ledger, how: dict) -> tuple[str, int, str]:
    report = verify(ledger.db, **how)
    assert not report.intact
    assert len(report.breaks) == 1, "only the tampered log should break"
    b = report.breaks[0]
    return b.log, b.position, b.reason


def test_one_changed_byte_in_the_canonical_bytes(
    chained: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    superuser.execute(
        "UPDATE ledger_events SET canonical = set_byte(canonical, 40, get_byte(canonical, 40) # 1)"
        " WHERE log = 'acme' AND position = 7"
    )
    assert first_break(chained, how)[:2] == ("acme", 7)


def test_one_changed_byte_in_a_hash(chained: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    superuser.execute(
        "UPDATE ledger_events SET hash = set_byte(hash, 0, get_byte(hash, 0) # 128) WHERE log = 'beta' AND position = 12"
    )
    assert first_break(chained, how)[:2] == ("beta", 12)


def test_a_deleted_row(chained: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    superuser.execute("DELETE FROM ledger_events WHERE log = 'acme' AND position = 5")
    log, position, reason = first_break(chained, how)
    assert (log, position) == ("acme", 5)
    assert "deleted" in reason


def test_two_rows_swapped(chained: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    superuser.execute("UPDATE ledger_events SET position = 1000000 WHERE log = 'acme' AND position = 3")
    superuser.execute("UPDATE ledger_events SET position = 3 WHERE log = 'acme' AND position = 9")
    superuser.execute("UPDATE ledger_events SET position = 9 WHERE log = 'acme' AND position = 1000000")
    assert first_break(chained, how)[:2] == ("acme", 3)


def test_rows_removed_from_the_tail(chained: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    superuser.execute("DELETE FROM ledger_events WHERE log = 'beta' AND position >= 17")
    log, position, reason = first_break(chained, how)
    assert (log, position) == ("beta", 17)
    assert "tail" in reason


def test_a_rewritten_event_with_recomputed_hashes_is_caught_at_the_head(
    chained: Ledger, superuser: psycopg.Connection, how: dict
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
    log, position, reason = first_break(chained, how)
    assert (log, position) == ("acme", SIZE - 1)
    assert "head hash" in reason


def append_as_an_older_ledger(conn: psycopg.Connection, event: dict) -> int:
    """Record ``event`` as the ledger did before times were bounded: chained, hashed, headed, not validated
    (and its Merkle tree grown, as migration 0005 grows it for such rows).

    Returns its position. Rows like this exist in ledgers that accepted them; verification must still work.
    """
    import hashlib
    from datetime import UTC, datetime

    from ledger.domain.canonical import canonicalize
    from ledger.domain.fields import parse_rfc3339
    from ledger.domain.hashing import chain_hash, leaf_hash
    from ledger.domain.stored import stored_document
    from ledger.storage import tree

    log = event["tenant"]
    size, prev, edge = conn.execute(
        "SELECT size, head_hash, tree_edge FROM ledger_log_heads WHERE log = %s FOR UPDATE", (log,)
    ).fetchone()
    recorded = datetime.now(UTC)
    canonical = canonicalize(stored_document(event, log, size, recorded))
    digest = chain_hash(bytes(prev), leaf_hash(canonical))
    conn.execute(
        "INSERT INTO ledger_events (log, position, tenant, event_id, type, source, subject, actor, event_time,"
        " recorded_at, content_digest, canonical, prev_hash, hash) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (log, size, event["tenant"], event["id"], event["type"], event["source"], event.get("subject"),
         event["actor"], parse_rfc3339(event["time"]), recorded, hashlib.sha256(canonicalize(event)).digest(),
         canonical, prev, digest),
    )  # fmt: skip
    grown, tiles = tree.grow(tree.decode_edge(bytes(edge)), [leaf_hash(canonical)])
    tree.store_tiles(conn, [(log, t) for t in tiles])
    conn.execute(
        "UPDATE ledger_log_heads SET size = %s, head_hash = %s, recorded_at = %s, tree_edge = %s WHERE log = %s",
        (size + 1, digest, recorded, tree.encode_edge(grown), log),
    )
    return int(size)


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_event_time_no_python_datetime_can_hold_verifies_and_a_change_to_it_is_caught(
    chained: Ledger, superuser: psycopg.Connection, time: str, how: dict
) -> None:
    """In UTC these are years 0 and 10000: PostgreSQL stores them, psycopg cannot load them as datetimes."""
    position = append_as_an_older_ledger(
        superuser, example_event("annotation.created", tenant="acme", time=time)
    )
    with pytest.raises(psycopg.DataError):  # what the old verifier tripped over, on every run
        superuser.execute(
            "SELECT event_time FROM ledger_events WHERE log = 'acme' AND position = %s", (position,)
        ).fetchone()
    report = verify(chained.db, **how)
    assert report.intact, report.breaks
    assert report.checked == 2 * SIZE + 1

    superuser.execute(
        "UPDATE ledger_events SET event_time = event_time + interval '1 microsecond'"
        " WHERE log = 'acme' AND position = %s",
        (position,),
    )
    log, at, reason = first_break(chained, how)
    assert (log, at) == ("acme", position)
    assert "event_time" in reason


def test_one_log_verifies_alone_on_a_clean_database_and_with_a_break(
    chained: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    report = verify(chained.db, log="acme", **how)
    assert report.intact
    assert [r.log for r in report.logs] == ["acme"]
    assert report.checked == SIZE

    superuser.execute("DELETE FROM ledger_events WHERE log = 'beta' AND position = 4")
    assert verify(chained.db, log="acme", **how).intact  # the other log's break is not this log's
    [beta] = verify(chained.db, log="beta", **how).logs
    assert beta.first_break is not None
    assert beta.first_break.position == 4


def test_a_log_that_does_not_exist_is_not_found(chained: Ledger) -> None:
    from ledger.domain.errors import NotFound

    with pytest.raises(NotFound, match="there is no log 'acmee'"):
        verify(chained.db, log="acmee")


def test_a_whole_range_deleted_is_named_at_its_first_missing_position(
    chained: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    superuser.execute("DELETE FROM ledger_events WHERE log = 'acme' AND position BETWEEN 5 AND 12")
    log, position, reason = first_break(chained, how)
    assert (log, position) == ("acme", 5)
    assert "the next row is at position 13" in reason


def test_a_border_row_whose_prev_hash_was_changed(
    chained: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    superuser.execute(
        "UPDATE ledger_events SET prev_hash = set_byte(prev_hash, 3, get_byte(prev_hash, 3) # 1)"
        " WHERE log = 'beta' AND position = 12"
    )
    log, position, reason = first_break(chained, how)
    assert (log, position) == ("beta", 12)
    assert "prev_hash" in reason


def test_every_way_counts_the_same_events(chained: Ledger, how: dict) -> None:
    report = verify(chained.db, **how)
    assert (report.intact, report.checked) == (True, 2 * SIZE)
    assert [(r.log, r.checked, r.head_size) for r in report.logs] == [
        ("acme", SIZE, SIZE),
        ("beta", SIZE, SIZE),
    ]
