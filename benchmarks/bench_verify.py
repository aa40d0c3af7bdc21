"""Verify benchmark: ``ledger verify`` against a raw binary COPY OUT of the ``canonical`` column, same run.

One fresh database (embedded, or a scratch database on ``LEDGER_BENCH_DATABASE_URL``), filled through the
append service (without projections, untimed) with the synthetic project's events in one log, then:

- raw COPY OUT: ``COPY (SELECT canonical FROM ledger_events) TO STDOUT (FORMAT BINARY)``, bytes read and
  dropped in Python: the floor of any verifier that reads the hashed bytes through psycopg;
- the reading floor of verify: its own COPY of the 13 columns, parsed into rows, nothing checked;
- ``verify`` with one process and with ``--jobs`` workers (default one per core);
- the per-event budget of the row checker, in CPU time on rows held in memory: hashing, JSON decoding,
  the canonical form check, the column comparison.

    python benchmarks/bench_verify.py                  # 1,000,000 events (the issue 12 target)
    python benchmarks/bench_verify.py --events 50000   # a quick look
"""

from __future__ import annotations

import argparse
import gc
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import bench_database, checkpoint, publish, run_header, say, server_settings

from ledger.domain import verification as checker
from ledger.domain.envelope import validate_event
from ledger.domain.hashing import chain_hash, leaf_hash
from ledger.domain.tree_verification import RangeTiles
from ledger.runtime import wire
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage.database import Database
from ledger.storage.verify import COLUMNS, ROW_TYPES, default_jobs, verify
from ledger.synth.project import generate

TENANT = "bench-verify"
FILL_BATCH = 1000
SEED = 11
SAMPLE = 20_000  # rows held in memory for the per-event budget
GOAL_RATIO = 0.5
GOAL_RATE = 250_000
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def fill(db: Database, settings: Settings, count: int) -> float:
    """Append ``count`` synthetic events to one log through the append service (no projections)."""
    appender = wire(settings, db, project=False).appender
    started = time.perf_counter()
    events = (validate_event(raw) for raw in generate(tenant=TENANT, events=count, seed=SEED))
    done = 0
    while batch := list(itertools.islice(events, FILL_BATCH)):
        appender.append(batch)
        done += len(batch)
        if done % 100_000 == 0:
            say(f"[fill] {done:,} events")
    return time.perf_counter() - started


def settle(url: str) -> None:
    """VACUUM ANALYZE and one untimed full read, so no timed phase sets hint bits or warms the cache."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE ledger_events")
    raw_copy_out(url)
    checkpoint(url)


def raw_copy_out(url: str) -> tuple[int, int]:
    """Rows and bytes of the binary COPY OUT of the canonical column, read and dropped."""
    total = 0
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(
            "COPY (SELECT canonical FROM ledger_events) TO STDOUT (FORMAT BINARY)"
        ) as copy:
            for data in copy:
                total += len(data)
        rows = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    return int(rows[0]) if rows else 0, total


def rows_out(url: str, limit: int | None = None) -> list[tuple[Any, ...]]:
    """The rows as verify reads them (binary COPY, its column types), parsed into tuples."""
    query = f"SELECT {COLUMNS} FROM ledger_events ORDER BY log, position" + (
        f" LIMIT {limit}" if limit else ""
    )
    with (
        psycopg.connect(url) as conn,
        conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy,
    ):
        copy.set_types(ROW_TYPES)
        return list(copy.rows())


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


def cpu_us_per_row(rows: list[Any], step: Callable[[Any], Any]) -> float:
    """CPU microseconds per row of ``step`` over ``rows`` (process time: less disturbed by other load)."""
    started = time.process_time()
    for row in rows:
        step(row)
    return (time.process_time() - started) / len(rows) * 1e6


def budget(url: str) -> dict[str, Any]:
    """Where the checker's time goes, per event, on rows held in memory (the garbage collector frozen out)."""
    rows = rows_out(url, SAMPLE)
    with psycopg.connect(url) as conn:
        head_size = int(
            conn.execute("SELECT size FROM ledger_log_heads WHERE log = %s", (TENANT,)).fetchone()[0]
        )
        tiles = {
            int(t): bytes(h)
            for t, h in conn.execute(
                "SELECT tile, hashes FROM ledger_merkle_tiles WHERE log = %s AND level = 0 AND tile < %s",
                (TENANT, -(-SAMPLE // 256)),
            )
        }
    docs = [checker._decode(r[12]) for r in rows]
    pairs = list(zip(rows, docs, strict=True))

    def claims(pair: tuple[Any, Any]) -> Any:
        # The same ten values, in the same order, as the checker's own comparison (domain/verification.py).
        row, doc = pair
        event = doc["event"]
        subject = event.get("subject")
        claimed = (doc["log"].encode(), doc["position"], event["id"].encode(), event["type"].encode(),
                   event["tenant"].encode(), event["source"].encode(),
                   None if subject is None else subject.encode(), event["actor"].encode(),
                   checker._instant(event["time"]), checker._instant(doc["recorded_at"]))  # fmt: skip
        if claimed != tuple(row[:10]):
            msg = "the benchmark's columns differ from the row's: the budget would measure nothing"
            raise AssertionError(msg)

    gc.collect()
    gc.freeze()
    try:
        decode = cpu_us_per_row(rows, lambda r: checker._decode(r[12]))
        decode_and_form = cpu_us_per_row(rows, lambda r: checker._canonical_document(r[12]))
        checker._instant.cache_clear()
        parts = {
            "hashing (leaf + chain, SHA-256 x2)": cpu_us_per_row(
                rows, lambda r: chain_hash(r[10], leaf_hash(r[12]))
            ),
            "JSON decode (msgspec)": decode,
            "canonical form check (beyond the decode)": decode_and_form - decode,
            "columns against the document": cpu_us_per_row(pairs, claims),
        }
        checker._instant.cache_clear()  # as a fresh verify meets them (a batch still shares recorded_at)
        started = time.process_time()
        checker.check_range(TENANT, rows, 0)
        parts["check_range, rows"] = (time.process_time() - started) / len(rows) * 1e6
        checker._instant.cache_clear()
        started = time.process_time()
        segment = checker.check_range(TENANT, rows, 0, RangeTiles(tiles, head_size))
        parts["check_range, rows and Merkle tiles"] = (time.process_time() - started) / len(rows) * 1e6
        if segment.first_break is not None:
            msg = f"the benchmark's rows do not verify: {segment.first_break}"
            raise AssertionError(msg)
    finally:
        gc.unfreeze()
    return {
        "sample_rows": len(rows),
        "mean_canonical_bytes": sum(len(r[12]) for r in rows) / len(rows),
        "us_per_event_cpu": parts,
    }  # fmt: skip


def bench(url: str, db: Database, jobs: int) -> dict[str, Any]:
    """The timed phases, in one run on one settled database."""
    say("[raw] COPY OUT of the canonical column ...")
    raw_s, (raw_rows, raw_bytes) = timed(lambda: raw_copy_out(url))
    say("[read] verify's COPY of 13 columns, parsed, unchecked ...")
    read_s, read = timed(lambda: len(rows_out(url)))
    say("[verify] one process ...")
    one_s, one = timed(lambda: verify(db, jobs=1))
    say(f"[verify] {jobs} worker processes ...")
    par_s, par = timed(lambda: verify(db, jobs=jobs))
    for report in (one, par):
        if not report.intact or report.checked != raw_rows:
            msg = f"verify did not check {raw_rows} intact events: {report.checked}, {report.breaks}"
            raise RuntimeError(msg)
    return {
        "raw_copy_out": {"rows": raw_rows, "bytes": raw_bytes, "elapsed_s": raw_s, "rows_per_s": raw_rows / raw_s},
        "read_rows": {"rows": read, "elapsed_s": read_s, "rows_per_s": read / read_s},
        "verify_1": {"events": one.checked, "elapsed_s": one_s, "events_per_s": one.checked / one_s},
        "verify_jobs": {"jobs": jobs, "events": par.checked, "elapsed_s": par_s, "events_per_s": par.checked / par_s},
    }  # fmt: skip


def render(result: dict[str, Any]) -> str:
    """The human-readable table."""
    m, f = result["machine"], result["figures"]
    raw, read, one, par = f["raw_copy_out"], f["read_rows"], f["verify_1"], f["verify_jobs"]
    ratio = par["events_per_s"] / raw["rows_per_s"]
    lines = [
        f"Verify benchmark, {result['started_at']}",
        f"machine : {m['cpu_model']} | {m['cores']} cores ({m['cores_usable']} usable) | {m['ram_gib']} GiB RAM",
        f"          Python {m['python']} | {m['postgresql']}",
        f"database: {result['database']['where']}",
        f"filled  : {result['events']:,} events in one log in {result['fill_s']:.1f} s (untimed)",
        "",
        f"{'phase':<50} {'count':>10} {'elapsed s':>10} {'per second':>12}",
        f"{'raw COPY OUT of canonical (rows)':<50} {raw['rows']:>10,} {raw['elapsed_s']:>10.2f} {raw['rows_per_s']:>12,.0f}",
        f"{'verify COPY, 13 columns parsed, unchecked':<50} {read['rows']:>10,} {read['elapsed_s']:>10.2f} {read['rows_per_s']:>12,.0f}",
        f"{'verify, 1 process (events)':<50} {one['events']:>10,} {one['elapsed_s']:>10.2f} {one['events_per_s']:>12,.0f}",
        f"{'verify, ' + str(par['jobs']) + ' workers (events)':<50} {par['events']:>10,} {par['elapsed_s']:>10.2f} {par['events_per_s']:>12,.0f}",
        f"ratio verify ({par['jobs']} workers) / raw COPY OUT: {ratio:.2f} (goal >= {GOAL_RATIO});"
        f" {par['events_per_s']:,.0f} events/s (goal >= {GOAL_RATE:,} on 1M events)",
        "",
        f"per-event budget of the row checker, CPU µs ({result['budget']['sample_rows']:,} rows in memory,"
        f" {result['budget']['mean_canonical_bytes']:.0f} B canonical on average):",
        *(f"  {name:<40} {us:>6.2f}" for name, us in result["budget"]["us_per_event_cpu"].items()),
        "",
        "notes:",
        "  - fill, VACUUM ANALYZE and one full untimed read come first; a CHECKPOINT precedes the timed phases.",
        "  - raw COPY OUT reads bytes without parsing rows; verify parses 13 columns per row, re-hashes, decodes",
        "    and re-encodes every document, compares every derived column, and rebuilds the Merkle tree",
        "    (its level-0 tiles read beside the rows, 32 bytes per event, and compared; tile roots hashed).",
        "  - workers each hold a connection and read one exported snapshot; PostgreSQL's backends share the",
        "    same cores, so on a machine with few cores the worker figure is bounded by server and client alike.",
    ]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the log (default 1000000)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="workers (default one per core)")
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default results/verify-DATE.json)"
    )
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"verify-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-verify-"))
    try:
        with bench_database(home) as (url, where):
            db = Database(url, pool_size=4)
            try:
                migrate.upgrade(db)
                settings = Settings(home=home, database_url=url)
                say(f"[fill] appending {args.events:,} events (untimed) ...")
                fill_s = fill(db, settings, args.events)
                settle(url)
                result: dict[str, Any] = {
                    **run_header("verify", started, url, where),
                    "database": {"where": where, "settings": server_settings(url)},
                    "events": args.events,
                    "fill_s": fill_s,
                    "figures": bench(url, db, args.jobs),
                    "budget": budget(url),
                }
                result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            finally:
                db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    publish(render(result), result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
