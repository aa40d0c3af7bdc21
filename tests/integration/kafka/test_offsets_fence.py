"""The offsets fence: the compare-and-set that makes a batch commit only if it continues what is stored.

No broker here: the fence is exercised through the append service exactly as ``ledger consume`` calls it.
"""

from __future__ import annotations

import threading

import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.errors import OffsetConflict
from ledger.kafka.offsets import Advance, OffsetStore
from ledger.kafka.status import consumer_status, total_lag
from ledger.runtime import Ledger
from tests.conftest import make_event
from tests.integration.kafka.conftest import count_events


def _events(tenant: str, n: int) -> list:
    return [validate_event(make_event(tenant, "annotation.created")) for _ in range(n)]


def test_a_batch_commits_only_if_it_continues_the_stored_offset(
    ledger: Ledger, database_url: str, tenant: str
) -> None:
    store = OffsetStore(ledger.db, "g", "events")
    assert store.load([0, 1]) == {0: None, 1: None}

    ledger.appender.append(_events(tenant, 3), fence=store.fence({0: Advance(None, 3, high_watermark=10)}))
    assert store.load([0, 1]) == {0: 3, 1: None}

    # A consumer that also started from the beginning (a zombie of an earlier assignment) is refused,
    # and none of its events is recorded.
    with pytest.raises(OffsetConflict) as refused:
        ledger.appender.append(_events(tenant, 2), fence=store.fence({0: Advance(None, 2)}))
    assert refused.value.errors[0].field == "events/0"
    with pytest.raises(OffsetConflict):
        ledger.appender.append(_events(tenant, 2), fence=store.fence({0: Advance(1, 3)}))
    assert count_events(database_url) == 3

    # Several partitions move together or not at all.
    with pytest.raises(OffsetConflict):
        ledger.appender.append(_events(tenant, 2), fence=store.fence({0: Advance(3, 4), 1: Advance(7, 8)}))
    assert store.load([0, 1]) == {0: 3, 1: None}
    ledger.appender.append(_events(tenant, 2), fence=store.fence({0: Advance(3, 4), 1: Advance(None, 8)}))
    assert store.load([0, 1]) == {0: 4, 1: 8}
    assert count_events(database_url) == 5

    # The fence runs even when every event is a repeat (a replay): the offsets still move.
    replay = _events(tenant, 1)
    ledger.appender.append(replay, fence=store.fence({0: Advance(4, 5)}))
    ledger.appender.append(replay, fence=store.fence({0: Advance(5, 6)}))
    assert store.load([0]) == {0: 6}

    status = {s.partition: s for s in consumer_status(ledger.db, group="g")}
    assert (status[0].next_offset, status[0].high_watermark, status[0].lag) == (6, 10, 4)
    assert status[1].lag is None  # its end offset was never reported
    assert total_lag(list(status.values())) is None


def test_two_consumers_racing_for_the_same_offsets_commit_once(
    ledger: Ledger, database_url: str, tenant: str
) -> None:
    store = OffsetStore(ledger.db, "g", "events")
    ledger.appender.append([], fence=store.fence({0: Advance(None, 100)}))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def consume(batch: list) -> None:
        barrier.wait()
        try:
            ledger.appender.append(batch, fence=store.fence({0: Advance(100, 150)}))
            outcomes.append("committed")
        except OffsetConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=consume, args=(_events(tenant, 50),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["committed", "refused"]
    assert count_events(database_url) == 50
    assert store.load([0]) == {0: 150}
