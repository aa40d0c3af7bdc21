"""``ledger verify`` against the Merkle tree and the checkpoints: what a database superuser rewrites or rolls
back is found, because the tree is rebuilt from the events and checkpoints live outside the database."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from ledger.domain.envelope import validate_event
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from tests.factories import example_event

SIZE = 600  # two complete level-0 tiles and a partial one

WAYS = {
    "one pass": {"jobs": 1},
    "ranges": {"jobs": 1, "range_size": 100},
    "workers": {"jobs": 2, "range_size": 100},
}


@pytest.fixture(params=list(WAYS))
def how(request: pytest.FixtureRequest) -> dict:
    return WAYS[request.param]


@pytest.fixture
def grown(ledger: Ledger) -> Ledger:
    events = [validate_event(example_event("annotation.created", tenant="acme")) for _ in range(SIZE)]
    for i in range(0, SIZE, 200):
        ledger.appender.append(events[i : i + 200])
    report = verify(ledger.db)
    assert report.intact, report.breaks
    return ledger


@pytest.fixture
def superuser(grown: Ledger) -> Iterator[psycopg.Connection]:
    """A superuser session with every append-only trigger disabled."""
    tables = ("ledger_events", "ledger_merkle_tiles", "ledger_log_heads")
    with psycopg.connect(grown.db.url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield conn
        for table in tables:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def only_break(ledger: Ledger, how: dict):
    report = verify(ledger.db, **how)
    assert not report.intact
    [found] = report.breaks
    return found


def test_a_tile_altered_alone_is_reported_with_its_level_tile_and_the_leaf_under_it(
    grown: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    superuser.execute(
        "UPDATE ledger_merkle_tiles SET hashes = set_byte(hashes, 32 * 9 + 4, get_byte(hashes, 32 * 9 + 4) # 1)"
        " WHERE log = 'acme' AND level = 0 AND tile = 1"
    )
    found = only_break(grown, how)
    assert (found.log, found.position) == ("acme", 256 + 9)
    assert found.details == {"level": 0, "tile": 1, "entry": 9}
    assert "tile 0/1" in found.reason


def test_a_deleted_tile_is_reported(grown: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    superuser.execute("DELETE FROM ledger_merkle_tiles WHERE log = 'acme' AND level = 0 AND tile = 0")
    found = only_break(grown, how)
    assert (found.position, found.reason) == (0, "stored Merkle tile 0/0 is missing")


def test_an_altered_right_edge_is_reported(grown: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    # The edge of 600 leaves: level 0 holds 88 leaves (count byte, then hashes); change leaf 512 + 2's.
    superuser.execute(
        "UPDATE ledger_log_heads SET tree_edge = set_byte(tree_edge, 1 + 32 * 2, get_byte(tree_edge, 1 + 32 * 2) # 1)"
        " WHERE log = 'acme'"
    )
    found = only_break(grown, how)
    assert found.position == 512 + 2
    assert "right edge" in found.reason
