"""The ingest benchmark's ratios, targets, table and notes, all computed from its result dictionary."""

from __future__ import annotations

from typing import Any

import preparation

# Issue 12's targets for ratios: (key in ratios(), what it compares, the least it must reach)
GOALS = (
    ("append_over_copy", "1a append + projections / 1b raw COPY", 0.25),
    ("http_over_copy", "2a HTTP batch 500 / 2c raw COPY of its rows", 0.2),
    ("http_over_eventsourcing_save", "2a HTTP batch 500 / 2d eventsourcing Application.save", 1.0),
)
GOAL_P99_MS = 10.0


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Every figure over its reference from the same run."""
    ap, cp = result["append"], result["copy"]["rows_per_s"]
    http = result["http_batch"]["clients_1"]["events_per_s"]
    es = result["eventsourcing"]
    return {
        "append_over_copy": ap["with_projections"]["events_per_s"] / cp,
        "append_without_projections_over_copy": ap["without_projections"]["events_per_s"] / cp,
        "append_2_callers_over_copy": result["append_concurrent"]["events_per_s"] / cp,
        "indexed_copy_over_copy": result["copy_indexed"]["rows_per_s"] / cp,
        "http_over_copy": http / result["copy_http"]["rows_per_s"],
        "http_over_eventsourcing_save": http / es["application_save"]["events_per_s"],
        "http_over_eventsourcing_insert_events": http / es["insert_events"]["events_per_s"],
    }


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of issue 12's targets this benchmark measures, with the figure and whether it is met."""
    out = [
        {"goal": key, "what": what, "measured": result["ratios"][key], "target": f">= {target}",
         "met": result["ratios"][key] >= target}
        for key, what, target in GOALS
    ]  # fmt: skip
    p99 = result["latency"]["ms"]["p99"]
    out.append({"goal": "single_post_p99_ms", "what": "3 single-event POST p99, ms", "measured": p99,
                "target": f"<= {GOAL_P99_MS}", "met": p99 <= GOAL_P99_MS})  # fmt: skip
    return out


def _row(label: str, count: int, elapsed: float, rate: float) -> str:
    return f"{label:<60} {count:>9,} {elapsed:>10.2f} {rate:>12,.0f}"


def _phase_rows(result: dict[str, Any]) -> list[str]:
    ap, cp, ac, ci = result["append"], result["copy"], result["append_concurrent"], result["copy_indexed"]
    aw, an = ap["with_projections"], ap["without_projections"]
    h1, h2, hc = result["http_batch"]["clients_1"], result["http_batch"]["clients_2"], result["copy_http"]
    es_save, es_insert = result["eventsourcing"]["application_save"], result["eventsourcing"]["insert_events"]
    lat = result["latency"]
    return [
        f"{'phase':<60} {'count':>9} {'elapsed s':>10} {'per second':>12}",
        f"{'-' * 60} {'-' * 9} {'-' * 10} {'-' * 12}",
        _row("1a append service + inline projections, batch 1000 (events)", aw["events"], aw["elapsed_s"], aw["events_per_s"]),
        _row("1e append service, NO projections, batch 1000 (events)", an["events"], an["elapsed_s"], an["events_per_s"]),
        _row("1b raw binary COPY of 1a's rows, plain table, 1000 (rows)", cp["rows"], cp["elapsed_s"], cp["rows_per_s"]),
        _row("1c append + projections, 2 callers, one log (events)", ac["events"], ac["elapsed_s"], ac["events_per_s"]),
        _row("1d raw binary COPY into ledger_events' indexes (rows)", ci["rows"], ci["elapsed_s"], ci["rows_per_s"]),
        _row("2a HTTP batch 500, 1 client, ledger serve (events)", h1["events"], h1["elapsed_s"], h1["events_per_s"]),
        _row("2b HTTP batch 500, 2 clients, 2 tenants (events)", h2["events"], h2["elapsed_s"], h2["events_per_s"]),
        _row("2c raw binary COPY of 2a's rows, plain table, 500 (rows)", hc["rows"], hc["elapsed_s"], hc["rows_per_s"]),
        _row("2d eventsourcing Application.save, 100 per aggregate (events)", es_save["events"], es_save["elapsed_s"], es_save["events_per_s"]),
        _row("2e eventsourcing recorder insert_events, 100 per call (events)", es_insert["events"], es_insert["elapsed_s"], es_insert["events_per_s"]),
        _row("3  single-event POST, ledger serve (requests)", lat["requests"], lat["elapsed_s"], lat["requests_per_s"]),
    ]  # fmt: skip


def _goal_rows(result: dict[str, Any]) -> list[str]:
    r = result["ratios"]
    out = ["issue 12 targets (each figure over its reference from this run):"]
    for g in result["goals"]:
        out.append(f"  {g['what']:<62} {g['measured']:>8.3f}  target {g['target']:<6} "
                   f"{'met' if g['met'] else 'NOT met'}")  # fmt: skip
    out += [
        "other ratios:",
        f"  {'2a HTTP batch 500 / 2e eventsourcing insert_events (its floor)':<62} {r['http_over_eventsourcing_insert_events']:>8.3f}",
        f"  {'1e append, no projections / 1b raw COPY':<62} {r['append_without_projections_over_copy']:>8.3f}",
        f"  {'1c append + projections, 2 callers / 1b raw COPY':<62} {r['append_2_callers_over_copy']:>8.3f}",
        f"  {'1d COPY into the indexes / 1b raw COPY (storage floor)':<62} {r['indexed_copy_over_copy']:>8.3f}",
    ]  # fmt: skip
    return out


def per_event_us(result: dict[str, Any]) -> dict[str, float]:
    """Microseconds per event (1e6 / rate) of the figures the budget lines compare."""
    aw, an = result["append"]["with_projections"], result["append"]["without_projections"]
    return {
        "1a": aw["us_per_event"],
        "1e": an["us_per_event"],
        "1b": 1e6 / result["copy"]["rows_per_s"],
        "2a": 1e6 / result["http_batch"]["clients_1"]["events_per_s"],
        "2c": 1e6 / result["copy_http"]["rows_per_s"],
        "2d": 1e6 / result["eventsourcing"]["application_save"]["events_per_s"],
        "2e": 1e6 / result["eventsourcing"]["insert_events"]["events_per_s"],
    }


def _budget_rows(result: dict[str, Any]) -> list[str]:
    per = result["us_per_event"]
    return [
        "time per event, us (1e6 / rate):",
        f"  append: 1a {per['1a']:.1f} = 1e {per['1e']:.1f} without projections"
        f" + {per['1a'] - per['1e']:.1f} for the inline projections; 1b raw COPY {per['1b']:.1f}",
        f"  HTTP:   2a {per['2a']:.1f} through ledger serve; 2c raw COPY of its rows {per['2c']:.1f};"
        f" eventsourcing 2d save {per['2d']:.1f}, 2e insert_events {per['2e']:.1f}",
    ]


def render(result: dict[str, Any]) -> str:
    """The human-readable table."""
    m, db, load = result["machine"], result["database"], result["load_average_1min"]
    aw = result["append"]["with_projections"]
    es_save = result["eventsourcing"]["application_save"]
    bms, ms = aw["batch_ms"], result["latency"]["ms"]
    return "\n".join([
        f"Ingest benchmark, {result['started_at']} to {result['finished_at']}",
        f"machine : {m['cpu_model']} | {m['cores']} cores ({m['cores_usable']} usable)"
        f" | {m['ram_gib']} GiB RAM | {m['platform']}",
        f"          Python {m['python']} | {m['postgresql']}",
        f"database: {db['where']}",
        "          " + ", ".join(f"{k}={v}" for k, v in db["settings"].items()),
        f"eventsourcing {result['eventsourcing']['version']} on the same server and database",
        f"load    : 1-minute load average {load['start']} at the start, {load['end']} at the end"
        f" (on {m['cores']} cores; other work is not subtracted from any figure)",
        "",
        *_phase_rows(result),
        "",
        *_goal_rows(result),
        "",
        *_budget_rows(result),
        "",
        *preparation.lines(result["preparation"], aw["us_per_event"]),
        "",
        f"1a per append(1000) call, ms: p50 {bms['p50']:.1f}  p99 {bms['p99']:.1f}  max {bms['max']:.1f}",
        f"2d of which building the aggregates {es_save['build_s']:.2f} s, Application.save {es_save['save_s']:.2f} s"
        f" (save alone {es_save['save_only_events_per_s']:,.0f} events/s)",
        f"3  latency, ms: p50 {ms['p50']:.2f}  p90 {ms['p90']:.2f}  p99 {ms['p99']:.2f}  max {ms['max']:.2f}"
        f"  (mean {ms['mean']:.2f})",
        "",
        "notes:",
        *(f"  - {n}" for n in result["notes"]),
    ])  # fmt: skip


def notes(result: dict[str, Any]) -> list[str]:
    """What the reader must know to interpret the figures."""
    refused = "" if result["copy"]["checkpoint_before"] else " (refused by the server: not done)"
    return [
        "1a/1e: events are generated and validated (pydantic) BEFORE the clock starts; validation is "
        "timed separately in 4. 1a times sealing, content digests, canonicalisation, hashing, head "
        "locks, dedupe, COPY into the indexed ledger_events, the inline projections (as `ledger serve` "
        "wires them: runtime.wire, projections.registry.all_projectors), head update and commit: one "
        "transaction per batch. 1e is the same service wired without projections (wire(project=False)), "
        "on its own tenant, its batches alternating with 1a's so both meet the same table sizes and load.",
        "1b copies exactly the rows 1a wrote (fetched into Python tuples before timing) into a plain "
        "logged table with the same column types and no keys, indexes, checks or triggers, 1000 rows "
        "per transaction; 2c does the same with 2a's rows, 500 per transaction, as 2a posts them.",
        "2a/2b/3 go through `ledger serve` started as a separate process (python -m ledger.cli.main serve, "
        "LEDGER_DATABASE_URL = this run's database, so inline projections on, its own connection pool), "
        "from a client in this process over keep-alive HTTP/1.1 (httpx): the server's HTTP handling, "
        "JSON parsing, validation, token check, append and projections are inside the figures; request "
        "bodies are serialised before timing; only 201 answers count; row counts are checked afterwards.",
        "2b: two client threads, each posting its own tenant's events (separate logs, no shared head lock).",
        "1c: two threads append their halves of fresh events, batches of 1000, with projections, into ONE "
        "log at once: one caller's preparation overlaps the other's locked insert and commit. 1d: 1b's rows "
        "COPY-ed into CREATE TABLE ... (LIKE ledger_events INCLUDING ALL): the keys and indexes the ledger "
        "keeps, no triggers, no Python work.",
        "the client (this process), the `ledger serve` process and PostgreSQL share the machine's cores; "
        "the eventsourcing figures run in this process, with the server idle.",
        f"2d: the eventsourcing library ({result['eventsourcing']['version']}, PERSISTENCE_MODULE="
        "eventsourcing.postgres, its PostgresApplicationRecorder, default settings) in the same database: "
        "per batch of 100 synthetic CloudEvents one aggregate is created with the first and given the "
        "other 99 by a command method (@event), then app.save(aggregate) - building the aggregate and "
        "saving are both timed (no hashing, no projections, no HTTP, no validation). 2e: the same events, "
        "mapped to stored events by the library before timing, inserted by the recorder's insert_events, "
        "100 per call. Both store the CloudEvent's JSON (plus the library's id, version, timestamp).",
        "4: each step is called from the benchmark as AppendService._prepare and the API call it, timed "
        "on its own over 1a's events in batches of 1000, after 1a (subject keys cached); nothing in ledger/ "
        "is wrapped. Shares are of 1a's time per event; validation is not part of 1a, it is part of 2a.",
        f"warm-up excluded: {result['parameters']['warmup_batches']} batches before 1a/1e, 1b, 2a, 2c, 2d and 2e (own tenants / tables), "
        f"{result['parameters']['warmup_requests']} requests before 3.",
        f"a CHECKPOINT runs before each timed phase{refused}; later phases write to a larger "
        "database than earlier ones; all phases share one fresh database on one server.",
        "before each timed phase the pre-built inputs are frozen out of the cyclic GC (gc.freeze), so GC "
        "pauses in the figures come from the work measured, not from the benchmark's held events.",
        "other work on the machine is not measured, only the load average at the start and end: a "
        "figure taken while other work runs is not this machine's speed; publish only from an idle machine.",
    ]
