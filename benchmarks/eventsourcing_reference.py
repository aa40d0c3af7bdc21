"""The reference of phase 2: the Python ``eventsourcing`` library saving batches of events on the same server.

Issue 12 compares HTTP batch ingest with "the eventsourcing library's batched save (no hashing, no
projections)". Measured here two ways, both with the library's own PostgreSQL persistence
(``PERSISTENCE_MODULE=eventsourcing.postgres``, its default ``PostgresApplicationRecorder``) in the
benchmark's database:

- **Application.save**: what a user of the library writes. One aggregate per batch, created with the first
  synthetic event and given the other 99 through a command method (the library's declarative ``@event``
  syntax), then ``app.save(aggregate)``: the library builds the domain events, maps and JSON-transcodes them,
  and inserts the 100 stored events in one transaction. Building and saving are both timed.
- **insert_events**: the library's storage floor. The same stored events (mapped by the library before the
  clock starts) inserted through the recorder's ``insert_events``, 100 per call, into a second table.

Each domain event carries one synthetic CloudEvent as a plain dict, so both store the same JSON per event
as the ledger receives (plus the library's own fields: id, version, timestamp).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent
from psycopg import sql
from sqlalchemy.engine import make_url


class Stream(Aggregate):
    """A user's aggregate: one stream of events, each carrying one synthetic CloudEvent."""

    @event("Started")
    def __init__(self, cloudevent: dict[str, Any]) -> None:
        self.size = 1

    @event("Recorded")
    def record(self, cloudevent: dict[str, Any]) -> None:
        """Record one more CloudEvent in this stream."""
        self.size += 1


class SaveBench(Application):
    """The application whose ``save`` is measured (its events table: ``savebench_events``)."""


class InsertBench(Application):
    """Only its recorder is used: ``insert_events`` into ``insertbench_events``."""


def postgres_env(url: str) -> dict[str, str]:
    """The library's settings for the server and database of ``url`` (a libpq URL with a host)."""
    parsed = make_url(url)
    if not parsed.host or not parsed.database:
        msg = f"eventsourcing needs a host and a database name in the URL, got {parsed!r}"
        raise RuntimeError(msg)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parsed.database,
        "POSTGRES_HOST": parsed.host,
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": parsed.username or "",
        "POSTGRES_PASSWORD": parsed.password or "",
        "POSTGRES_CONNECT_TIMEOUT": "30",
    }


def _stream(cloudevents: Sequence[dict[str, Any]]) -> Stream:
    stream = Stream(cloudevent=cloudevents[0])
    for cloudevent in cloudevents[1:]:
        stream.record(cloudevent=cloudevent)
    return stream


def _stored_rows(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else -1


def _require_rows(url: str, table: str, expected: int) -> None:
    found = _stored_rows(url, table)
    if found != expected:
        msg = f"eventsourcing table {table}: expected {expected} stored events, found {found}"
        raise RuntimeError(msg)


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def bench_application_save(
    url: str,
    cloudevents: Sequence[dict[str, Any]],
    warmup: Sequence[dict[str, Any]],
    batch: int,
    before_timing: Callable[[], bool],
    frozen: Callable[[], AbstractContextManager[None]],
) -> dict[str, Any]:
    """Time building one aggregate of ``batch`` events per batch and ``app.save`` of it."""
    app = SaveBench(env=postgres_env(url))
    try:
        table = app.recorder.events_table_name  # type: ignore[attr-defined]
        for chunk in _batches(warmup, batch):
            app.save(_stream(chunk))
        checkpointed = before_timing()
        build_s = save_s = 0.0
        with frozen():
            start = time.perf_counter()
            for chunk in _batches(cloudevents, batch):
                t0 = time.perf_counter()
                stream = _stream(chunk)
                t1 = time.perf_counter()
                app.save(stream)
                t2 = time.perf_counter()
                build_s += t1 - t0
                save_s += t2 - t1
            elapsed = time.perf_counter() - start
    finally:
        app.close()
    _require_rows(url, table, len(warmup) + len(cloudevents))
    n = len(cloudevents)
    return {
        "how": f"Application.save of one aggregate with {batch} pending events per call (build + save timed)",
        "table": table,
        "events": n,
        "batch_size": batch,
        "elapsed_s": elapsed,
        "events_per_s": n / elapsed,
        "build_s": build_s,
        "save_s": save_s,
        "save_only_events_per_s": n / save_s if save_s else None,
        "warmup_events_untimed": len(warmup),
        "checkpoint_before": checkpointed,
    }


def bench_insert_events(
    url: str,
    cloudevents: Sequence[dict[str, Any]],
    warmup: Sequence[dict[str, Any]],
    batch: int,
    before_timing: Callable[[], bool],
    frozen: Callable[[], AbstractContextManager[None]],
) -> dict[str, Any]:
    """Time the recorder's ``insert_events`` of already mapped stored events, ``batch`` per call."""
    app = InsertBench(env=postgres_env(url))
    try:
        table = app.recorder.events_table_name  # type: ignore[attr-defined]

        def mapped(events: Sequence[dict[str, Any]]) -> list[list[StoredEvent]]:
            return [
                [app.mapper.to_stored_event(e) for e in _stream(chunk).collect_events()]
                for chunk in _batches(events, batch)
            ]

        for stored in mapped(warmup):
            app.recorder.insert_events(stored)
        calls = mapped(cloudevents)
        checkpointed = before_timing()
        with frozen():  # the stored events mapped above, too
            start = time.perf_counter()
            for stored in calls:
                app.recorder.insert_events(stored)
            elapsed = time.perf_counter() - start
        state_bytes = sum(len(s.state) for stored in calls for s in stored)
    finally:
        app.close()
    _require_rows(url, table, len(warmup) + len(cloudevents))
    n = len(cloudevents)
    return {
        "how": f"ApplicationRecorder.insert_events of {batch} stored events per call, mapped before timing",
        "table": table,
        "events": n,
        "batch_size": batch,
        "elapsed_s": elapsed,
        "events_per_s": n / elapsed,
        "state_bytes": state_bytes,
        "warmup_events_untimed": len(warmup),
        "checkpoint_before": checkpointed,
    }
