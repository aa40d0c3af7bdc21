"""Two consumers in one group, the second joining in the middle of a live stream: the partitions are
rebalanced between them while events keep coming, and nothing is lost or recorded twice."""

from __future__ import annotations

import random
import signal
from pathlib import Path

from ledger.synth.project import generate
from tests.integration.kafka.conftest import (
    ConsumerLauncher,
    StreamProducer,
    TopicFactory,
    assert_exactly_once_in_order,
    count_events,
    encoded_stream,
    ledger_env,
    run_ledger,
    tenants_on_partitions,
    wait_until,
)

PARTITIONS = 4
EVENTS_PER_LOG = 3_000
RATE = 1_500  # events/s: the stream lasts about 8 s, long enough for the second member to join mid-way


def test_a_second_consumer_joining_mid_stream_loses_and_duplicates_nothing(
    database_url: str,
    make_topics: TopicFactory,
    kafka_client: str,
    consumers: ConsumerLauncher,
    tmp_path: Path,
) -> None:
    topics = make_topics(PARTITIONS)
    tenants = tenants_on_partitions(topics)
    streams = {t: list(generate(tenant=t, events=EVENTS_PER_LOG, seed=i)) for i, t in enumerate(tenants)}
    records = encoded_stream(streams, random.Random(3))
    total = len(records)
    env = ledger_env(tmp_path / "home", database_url, topics, kafka_client, LEDGER_KAFKA_BATCH_SIZE="200")

    with StreamProducer(topics, records, kafka_client, per_second=RATE):
        first = consumers.start(env)
        wait_until(
            lambda: count_events(database_url) >= total // 6, timeout=90, what="the first consumer's progress"
        )
        second = consumers.start(env)
        wait_until(lambda: "assigned" in second.output(), timeout=90, what="the second consumer's assignment")
        at_rebalance = count_events(database_url)
    wait_until(lambda: count_events(database_url) >= total, timeout=120, what=f"{total} events in the ledger")

    assert first.stop(signal.SIGTERM) == 0, first.output()[-3000:]
    assert second.stop(signal.SIGTERM) == 0, second.output()[-3000:]
    assert at_rebalance < total, "the rebalance came after the stream was consumed"
    assert "revoked" in first.output()  # the first member gave partitions up
    assert count_events(database_url) == total
    assert_exactly_once_in_order(database_url, streams)
    verified = run_ledger(env, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
