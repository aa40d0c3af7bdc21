"""SIGKILL at random points: every event ends up in the ledger exactly once, in order, every log gap-free.

A stream of 20,000 synthetic events over three logs (three partitions), with poison messages among them,
is consumed by ``ledger consume`` subprocesses that are killed with SIGKILL at random moments while they
work: in the middle of validating a batch, of appending it, of producing its dead letters, between the
database commit and the Kafka commit. Each is replaced by a fresh process; a last one drains the topic.
The same again with two processes in one consumer group, one of them killed at a time while the other
keeps working, so kills also land during rebalances and while the survivor takes over the partitions.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from ledger.synth.project import generate
from tests.integration.kafka.conftest import (
    ConsumerLauncher,
    ConsumerProcess,
    Record,
    TopicFactory,
    Topics,
    assert_exactly_once_in_order,
    count_events,
    encoded_stream,
    ledger_env,
    origins,
    produce_raw,
    read_topic,
    rejection_origins,
    run_ledger,
    tenants_on_partitions,
    wait_until,
)

EVENTS = 20_000
LOGS = 3
POISON = 12
KILLS = 6  # the issue asks for at least 5
BATCH = 250  # messages per transaction: many commit points for the kills to fall between
PROGRESS_SECONDS = 90.0  # a restarted consumer must make progress within this (group join included)
POISON_PREFIX = b'{"specversion": "1.0", "broken": '


@pytest.mark.parametrize("members", [1, 2], ids=["one-member", "two-members"])
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    database_url: str,
    make_topics: TopicFactory,
    kafka_client: str,
    consumers: ConsumerLauncher,
    tmp_path: Path,
    members: int,
) -> None:
    seed = int(os.environ.get("LEDGER_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    print(f"crash test seed {seed} (LEDGER_TEST_SEED={seed} repeats the kill points)")
    topics = make_topics(LOGS)
    tenants = tenants_on_partitions(topics)
    streams = {
        t: list(generate(tenant=t, events=EVENTS // LOGS + (i < EVENTS % LOGS), seed=i))
        for i, t in enumerate(tenants)
    }
    records = encoded_stream(streams, rng)
    _add_poison(records, tenants, rng)
    poison = _poison_origins(topics, records)
    produce_raw(topics, records, kafka_client)
    total = EVENTS + POISON  # each poison message becomes one rejection event

    env = ledger_env(
        tmp_path / "home", database_url, topics, kafka_client, LEDGER_KAFKA_BATCH_SIZE=str(BATCH)
    )
    running = [consumers.start(env) for _ in range(members)]
    kills = 0
    while kills < KILLS and (done := count_events(database_url)) < total:
        # Kill somewhere in the next stretch of the stream, so that every kill lands mid-stream.
        target = done + rng.randint(1, max((total - done) // (KILLS - kills + 1), 1))
        wait_until(
            lambda t=target: count_events(database_url) >= t or any(p.proc.poll() is not None for p in running),
            timeout=PROGRESS_SECONDS, what=f"consumer progress past {target}", every=0.02,
        )  # fmt: skip
        for p in running:
            assert p.proc.poll() is None, f"ledger consume exited on its own:\n{p.output()[-3000:]}"
        time.sleep(rng.uniform(0, 0.25))  # off the commit boundary, to anywhere in the next batches
        victim = _victim(running, rng)
        running[victim].stop(signal.SIGKILL)
        kills += 1
        running[victim] = consumers.start(env)
    assert kills == KILLS, f"the stream was consumed after {kills} kills"

    wait_until(lambda: count_events(database_url) >= total, timeout=180, what=f"{total} events in the ledger")
    time.sleep(1.0)  # anything extra (a duplicate) would show up now
    for p in running:
        assert p.stop(signal.SIGTERM) == 0, p.output()[-3000:]

    assert count_events(database_url) == total
    assert_exactly_once_in_order(database_url, streams)
    assert sorted(rejection_origins(database_url)) == sorted(poison)  # each poison message, once
    letters = read_topic(topics.bootstrap, topics.dlq, expect=POISON)
    assert set(origins(letters)) == set(
        poison
    )  # repeats are allowed (a kill before the commit), gaps are not
    assert {dict(letter.headers)["ledger.rejection.code"] for letter in letters} == {b"malformed_request"}

    verified = run_ledger(env, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(
        f"{members} member(s), {kills} kills; {len(letters) - POISON} repeated dead letter(s); "
        f"{verified.stdout.strip().splitlines()[-1]}"
    )


def _victim(running: list[ConsumerProcess], rng: random.Random) -> int:
    """Which member to kill: one that was given partitions (so it is working), else any."""
    working = [i for i, p in enumerate(running) if "assigned" in p.output()]
    return rng.choice(working or list(range(len(running))))


def _add_poison(records: list[Record], tenants: list[str], rng: random.Random) -> None:
    """Drop POISON messages (truncated JSON) into ``records`` at random places."""
    for n, i in enumerate(sorted(rng.sample(range(len(records)), POISON))):
        records.insert(i, (rng.choice(tenants).encode(), POISON_PREFIX + str(n).encode(), ()))


def _poison_origins(topics: Topics, records: list[Record]) -> list[str]:
    """``topic/partition/offset`` of each poison message once sent in this order (keyed by tenant)."""
    next_offset = dict.fromkeys(range(topics.partitions), 0)
    found = []
    for key, value, _ in records:
        assert key is not None
        partition = topics.partition_of(key.decode())
        if value is not None and value.startswith(POISON_PREFIX):
            found.append(f"{topics.events}/{partition}/{next_offset[partition]}")
        next_offset[partition] += 1
    assert len(found) == POISON
    return found


pytestmark = pytest.mark.slow
