"""The Kafka commands of ``ledger``: ``consume``, ``produce``, and ``demo --via-kafka``.

Kept apart from ``main.py`` so the Kafka path can grow without touching the other commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ledger.cli.progress import ProgressBar
from ledger.domain.errors import ConfigurationError, FieldError, ValidationFailed
from ledger.settings import KafkaSettings, Settings

Handler = Callable[[Settings, argparse.Namespace], int]
_CONSUME_POOL = 6  # the writer, offset reads, subject-key creation during sealing, the checkpointer (2)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add the Kafka subcommands to ``sub``; return their handlers by command name."""
    consume = sub.add_parser(
        "consume",
        help="append the Kafka events topic to the ledger (a consumer-group worker)",
        description="Consume LEDGER_KAFKA_TOPIC as a member of LEDGER_KAFKA_GROUP and append every event exactly "
        "once: each poll batch commits in one PostgreSQL transaction together with its offsets. Invalid "
        "messages go to the dead-letter topic and are recorded as ledger.ingest_rejected events. "
        "SIGTERM or Ctrl-C stops cleanly; a lost database is retried without losing the place.",
    )
    consume.add_argument("--topic", help="events topic (default LEDGER_KAFKA_TOPIC or ledger.events)")
    consume.add_argument("--group", help="consumer group (default LEDGER_KAFKA_GROUP or ledger)")
    consume.add_argument(
        "--dlq-topic", help="dead-letter topic (default LEDGER_KAFKA_DLQ_TOPIC or ledger.events.dlq)"
    )
    consume.add_argument(
        "--client", choices=("kafka-python", "confluent"), help="Kafka client (default LEDGER_KAFKA_CLIENT)"
    )
    consume.add_argument(
        "--batch-size", type=int, help="messages per transaction (default LEDGER_KAFKA_BATCH_SIZE or 1000)"
    )
    consume.add_argument(
        "--stop-after-idle",
        type=float,
        metavar="SECONDS",
        help="exit 0 once nothing arrived for this long and everything read is committed (for backfills)",
    )

    produce = sub.add_parser(
        "produce",
        help="send events from a JSON Lines file to the Kafka events topic",
        description="Send one CloudEvent per line of FILE (or standard input with -) to LEDGER_KAFKA_TOPIC, "
        "keyed by log, acknowledged by every in-sync replica. Sending a file again is safe: the ledger "
        "deduplicates by event id.",
    )
    produce.add_argument(
        "file", metavar="FILE.jsonl", help="one CloudEvent JSON object per line; - for stdin"
    )
    produce.add_argument("--topic", help="events topic (default LEDGER_KAFKA_TOPIC or ledger.events)")
    produce.add_argument(
        "--binary",
        action="store_true",
        help="CloudEvents binary mode (ce_* headers) instead of structured mode",
    )
    return {"consume": _consume, "produce": _produce}


def _kafka(settings: Settings, args: argparse.Namespace) -> KafkaSettings:
    """The Kafka settings with the command line's overrides."""
    overrides: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in ("topic", "group", "dlq_topic", "client", "batch_size")
        if getattr(args, name, None) is not None
    }
    if overrides.get("batch_size", 1) < 1:
        msg = "--batch-size must be at least 1"
        raise ConfigurationError(msg)
    return dataclasses.replace(settings.kafka, **overrides)


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        msg = "LEDGER_KAFKA_BOOTSTRAP is not set; name the Kafka bootstrap servers (host:port,…)"
        raise ConfigurationError(msg)
    return settings.kafka_bootstrap


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and the first Ctrl-C ask for a clean stop; a second Ctrl-C interrupts at once."""

    def ask(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        print(f"ledger: {signal.Signals(signum).name}: stopping after the batch in hand", file=sys.stderr)
        stop.set()

    previous = {s: signal.signal(s, ask) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _consume(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.alerts import alert_runner
    from ledger.checkpoints import CheckpointRunner
    from ledger.kafka.consumer import Worker
    from ledger.kafka.transport import open_consumer, open_producer
    from ledger.runtime import open_ledger

    kafka = _kafka(settings, args)
    bootstrap = _bootstrap(settings)
    stop = threading.Event()
    with _stop_on_signals(stop), open_ledger(settings, pool_size=_CONSUME_POOL) as ledger:
        dlq = open_producer(bootstrap, kafka)
        runner = CheckpointRunner(ledger.checkpoints).start()
        alerts = alert_runner(ledger.settings, ledger.db)  # Kafka is configured here: always a runner
        if alerts is not None:
            alerts.start()
        try:
            worker = Worker(
                db=ledger.db,
                appender=ledger.appender,
                consumer=open_consumer(bootstrap, kafka),
                dlq=dlq,
                kafka=kafka,
                stop=stop,
                after_commit=runner.poke,  # a batch may have made a log due: look at once
            )
            stats = worker.run(stop_after_idle=args.stop_after_idle)
        finally:
            if alerts is not None:
                alerts.stop()
            runner.stop()
            ledger.checkpoints.close()
            dlq.close()
    print(
        f"consumed {stats.committed:,} messages from {kafka.topic}: {stats.recorded:,} new events, "
        f"{stats.rejected:,} rejected to {kafka.dlq_topic}",
        file=sys.stderr,
    )
    return 0


def _produce(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.client import LedgerProducer

    kafka = _kafka(settings, args)
    name = "standard input" if args.file == "-" else args.file
    sent = 0
    started = time.monotonic()
    with _open_lines(args.file) as lines:
        producer = LedgerProducer(
            _bootstrap(settings), kafka=kafka, mode="binary" if args.binary else "structured"
        )
        with producer:
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                producer.send(_event_of(line, lineno, name, sent))
                sent += 1
    print(f"sent {sent:,} events to {kafka.topic} in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


@contextmanager
def _open_lines(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdin
        return
    try:
        handle = Path(path).open(encoding="utf-8")  # noqa: SIM115  # closed below
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise ConfigurationError(msg) from None
    with handle:
        yield handle


def _event_of(line: str, lineno: int, name: str, sent: int) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError as exc:
        problem = f"not JSON ({exc})"
    else:
        if isinstance(event, dict):
            return event
        problem = "not a JSON object"
    before = "no event before it was sent" if sent == 0 else f"the {sent:,} event(s) before it were sent"
    msg = (
        f"line {lineno} of {name} is {problem}; {before} "
        "(sending the file again after fixing it is safe: the ledger deduplicates by event id)"
    )
    raise ValidationFailed(msg, errors=[FieldError(f"line {lineno}", problem)])


def demo_via_kafka(settings: Settings, args: argparse.Namespace) -> int:
    """``ledger demo --via-kafka``: send the synthetic project to the events topic."""
    from ledger.client import LedgerProducer
    from ledger.synth.project import generate

    producer = LedgerProducer.from_settings(settings)
    started = time.monotonic()
    with producer, ProgressBar(args.events, "sending") as bar:
        for raw in generate(tenant=args.tenant, events=args.events, seed=args.seed, plants=args.plants):
            producer.send(raw)
            bar.advance()
    print(
        f"sent {args.events:,} events for tenant {args.tenant!r} to {producer.topic} in "
        f"{time.monotonic() - started:.1f}s; `ledger consume` appends them (it can run before or after)"
    )
    return 0
