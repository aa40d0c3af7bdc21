"""Lineage benchmark: the reference-standard lineage report of a release on a large ledger.

One fresh database (embedded, or a scratch database on ``LEDGER_BENCH_DATABASE_URL``); one tenant's synthetic
project appended through the append service *with* its inline projections (as ``ledger serve`` appends), then
a release of its first ``--items`` items (splits train/tune/test 50/20/30, at most ``MAX_ITEMS_PER_EVENT``
items per ``dataset.release_created`` event), then ``ledger.reports.lineage.build`` timed (collection and
composition apart) beside the reference (reading the same evidence events' stored bytes and nothing else) and
each format rendered. The settings carry the demo's QC policy (``ledger/synth/qc-policy.toml``). The aim
(issue 10): 10,000 items on a 1,000,000-event ledger in under 10 s. See benchmarks/README.md.

    python benchmarks/bench_lineage.py --events 1000000 --items 10000   # the published size
    python benchmarks/bench_lineage.py                                  # a smoke run (20,000 events, 300 items)
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import bench_database, load_average, publish, require_complete, run_header, say

from ledger.domain.canonical import canonicalize
from ledger.domain.envelope import validate_event
from ledger.domain.fields import MAX_ITEMS_PER_EVENT
from ledger.quality.policy import load_policy
from ledger.reports import lineage_data
from ledger.reports.lineage import build, compose
from ledger.reports.report import render
from ledger.runtime import wire
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage.bundles import release_scope
from ledger.storage.database import Database
from ledger.synth.project import QC_POLICY, generate

TENANT = "bench-lineage"
DATASET = "bench-lineage-ds"
RELEASE = "bench"
SEED = 17
FILL_BATCH = 1000
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPLITS = (("train", 0.5), ("tune", 0.2), ("test", 0.3))


def fill(
    settings: Settings, db: Database, url: str, count: int
) -> tuple[dict[str, Any], dict[str, tuple[str, str]]]:
    """``count`` synthetic events with projections; the final label of each item as the project reached it."""
    appender = wire(settings, db).appender
    labels: dict[str, tuple[str, str]] = {}
    raws = generate(tenant=TENANT, events=count, seed=SEED, dataset=DATASET)
    done, started, last = 0, time.perf_counter(), None
    while batch := list(itertools.islice(raws, FILL_BATCH)):
        for raw in batch:
            data, kind = raw["data"], raw["type"]
            if kind == "annotation.created" and data.get("origin") == "human" and data["dataset"] == DATASET:
                labels.setdefault(data["item"], (data["label_class"], data["annotation_id"]))
            elif kind == "adjudication.completed":
                labels[data["item"]] = (data["final_label_class"], data["final_annotation_id"])
            last = raw["time"]
        appender.append([validate_event(raw) for raw in batch])
        done += len(batch)
        if done % 50_000 == 0:
            say(f"[fill] {done:,} events ({done / (time.perf_counter() - started):,.0f}/s)")
    elapsed = time.perf_counter() - started
    require_complete(url, TENANT, count)
    return {"events": count, "elapsed_s": elapsed, "events_per_s": count / elapsed, "last_time": last}, labels


def release(
    settings: Settings, db: Database, labels: dict[str, tuple[str, str]], items: int, after: str
) -> int:
    """Release the first ``items`` labelled items; the number of release events posted."""
    chosen = list(labels.items())[:items]
    if len(chosen) < items:
        msg = f"the project labelled {len(chosen)} items, fewer than --items {items}: raise --events"
        raise SystemExit(msg)
    when = datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(minutes=5)
    events, start = [], 0
    for n, (split, share) in enumerate(SPLITS):
        stop = items if n == len(SPLITS) - 1 else start + round(items * share)
        part = [
            {"item": i, "label_class": label, "annotation_id": ann} for i, (label, ann) in chosen[start:stop]
        ]
        for k in range(0, len(part), MAX_ITEMS_PER_EVENT):
            chunk = part[k : k + MAX_ITEMS_PER_EVENT]
            events.append(validate_event({
                "specversion": "1.0", "id": f"{TENANT}-release-{split}-{k}", "source": "urn:bench", "type":
                "dataset.release_created", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "tenant": TENANT,
                "actor": "data-lead", "actorrole": "admin",
                "data": {"dataset": DATASET, "release": RELEASE, "split": split, "items": chunk,
                         "items_sha256": hashlib.sha256(canonicalize(chunk)).hexdigest()},
            }))  # fmt: skip
        start = stop
    wire(settings, db).appender.append(events)
    return len(events)


def measure(settings: Settings, db: Database, runs: int) -> dict[str, Any]:
    """The report built ``runs`` times (collection and composition apart), then rendered in each format."""
    scope = release_scope(f"{DATASET}@{RELEASE}")
    policy, roles = settings.qc_policy, settings.anomalies.test_set_roles
    collect_s, compose_s = [], []
    content: dict[str, Any] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        collected = lineage_data.collect(db, scope, tenant=TENANT)
        t1 = time.perf_counter()
        content = compose(collected, policy=policy, test_set_roles=roles, resamples=1000)
        t2 = time.perf_counter()
        collect_s.append(t1 - t0)
        compose_s.append(t2 - t1)
    reference_s = [_read_evidence(db, collected.evidence.positions) for _ in range(runs)]
    report = build(db, scope, tenant=TENANT, policy=policy, test_set_roles=roles)
    rendered = {}
    for fmt in ("json", "csv", "html"):
        t0 = time.perf_counter()
        body = render(report, fmt)
        rendered[fmt] = {"seconds": time.perf_counter() - t0, "bytes": len(body)}
    best = min(c + p for c, p in zip(collect_s, compose_s, strict=True))
    return {
        "runs": runs,
        "collect_s": collect_s,
        "compose_s": compose_s,
        "best_build_s": best,
        "reference_read_evidence_s": reference_s,
        "best_reference_s": min(reference_s),
        "items": len(content["items"]),
        "item_events": sum(len(i["events"]) for i in content["items"]),
        "evidence_events": content["evidence"]["events"],
        "render": rendered,
    }


def _read_evidence(db: Database, positions: list[tuple[str, int]]) -> float:
    """The reference: seconds to read the stored bytes of the report's evidence events and nothing else
    (the floor the database sets for any report resting on these events)."""
    t0 = time.perf_counter()
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT e.canonical FROM ledger_events e JOIN unnest(%s::text[], %s::bigint[]) AS u(log, position)"
            " ON e.log = u.log AND e.position = u.position",
            ([log for log, _ in positions], [position for _, position in positions]),
        )
        total = sum(len(row[0]) for row in cur)
    if total == 0:
        msg = "the reference read no evidence bytes"
        raise RuntimeError(msg)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="events in the ledger (default 20,000)")
    parser.add_argument("--items", type=int, default=300, help="items in the release (default 300)")
    parser.add_argument(
        "--runs", type=int, default=3, help="timed builds (default 3; the best is the figure)"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default results/lineage-DATE.json)"
    )
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-lineage-"))
    try:
        with bench_database(home) as (url, where):
            # The demo's QC policy: the tasks' scales (the grading task is ordinal) and the quality projector on.
            settings = Settings(home=home, database_url=url, qc_policy=load_policy(QC_POLICY))
            db = Database(url, pool_size=2)
            try:
                migrate.upgrade(db)
                header = run_header("lineage", started, url, where)
                say(f"[fill] {args.events:,} events with inline projections")
                filled, labels = fill(settings, db, url, args.events)
                released = release(settings, db, labels, args.items, filled["last_time"])
                say(f"[report] {args.items:,} items in {released} release events")
                result = measure(settings, db, args.runs)
            finally:
                db.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)  # the embedded server may still be writing as it stops
    doc = {**header, "load_average": load_average(), "fill": filled, "release_events": released,
           "parameters": {"events": args.events, "items": args.items}, "report": result}  # fmt: skip
    text = (
        f"lineage report of {result['items']:,} items ({result['item_events']:,} item events, "
        f"{result['evidence_events']:,} evidence events) on {args.events:,} events: best build "
        f"{result['best_build_s']:.2f} s (collect {min(result['collect_s']):.2f} s, compose "
        f"{min(result['compose_s']):.2f} s; reading the evidence events' bytes alone "
        f"{result['best_reference_s']:.2f} s); render json {result['render']['json']['seconds']:.2f} s, "
        f"csv {result['render']['csv']['seconds']:.2f} s, html {result['render']['html']['seconds']:.2f} s"
    )
    path = args.json or RESULTS_DIR / f"lineage-{started.date().isoformat()}.json"
    publish(text, doc, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
