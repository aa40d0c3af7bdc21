"""The six-year retention report (HIPAA 164.316(b)(2)(i), 21 CFR 11.10(c)) as of a date.

A record may leave retention six years after it was created; a guideline version or a credential six
years after it was last in effect. Anything under a legal hold stays. The report also states the
integrity status from the last ``ledger verify`` and the log positions it covers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger.domain.errors import NotFound
from ledger.domain.logs import log_for
from ledger.reports import plots
from ledger.reports.report import Content, CsvRow, Report
from ledger.storage.database import Database

RETENTION_YEARS = 6
# Guideline and credential records are kept from when they were last in effect, not from creation.
_FROM_LAST_IN_EFFECT = ("guideline.", "credential.", "training.")
Row = dict[str, Any]


def add_years(day: date, years: int) -> date:
    """``day`` plus whole years; 29 February becomes 1 March in a common year (the later date: keep longer)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def due_date(created: date) -> date:
    """The first day a record created on ``created`` may leave retention."""
    return add_years(created, RETENTION_YEARS)


CSV_COLUMNS = (
    "section", "log_or_tenant", "year", "type_or_id", "events", "oldest", "newest", "retain_until",
    "may_leave_retention", "on_legal_hold",
)  # fmt: skip
_SECTIONS = ("logs", "guidelines", "credentials", "legal_holds", "erasures")


def build(db: Database, as_of: date, *, tenant: str | None = None) -> Report:
    """The retention report of one tenant's logs (or of every log when ``tenant`` is None)."""
    scope_sql, params = ("WHERE tenant = %s", (tenant,)) if tenant else ("", ())
    end_of_day = datetime.combine(as_of, time.max, tzinfo=UTC)
    with db.connect() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        heads = _q(
            conn,
            f"SELECT log, tenant, size, head_hash FROM ledger_log_heads {scope_sql} ORDER BY log",
            params,
        )
        if tenant and not heads:
            # A report on nothing would say "intact" of a log that does not exist, and recording it would
            # create that log: a tenant is named only once it has recorded something.
            msg = f"tenant {tenant!r} has no log: nothing was ever recorded for it"
            raise NotFound(msg)
        # As of a past date, nothing recorded or in effect only later counts.
        buckets = [b for b in _q(conn, f"SELECT * FROM proj_retention {scope_sql} ORDER BY log, day, type", params)
                   if b["day"] <= as_of]  # fmt: skip
        guidelines = _q(
            conn,
            f"SELECT * FROM proj_guidelines {scope_sql} ORDER BY tenant, guideline_id, effective_from",
            params,
        )
        credentials = _q(
            conn,
            f"SELECT * FROM proj_credentials {scope_sql} ORDER BY tenant, annotator, credential_id, period",
            params,
        )
        holds = _q(conn, f"SELECT * FROM proj_holds {scope_sql} ORDER BY tenant, placed_at", params)
        erasures = _q(conn, f"SELECT * FROM proj_erasures {scope_sql} ORDER BY tenant, erasure_id", params)
        verification = _q(conn, "SELECT * FROM ledger_verifications ORDER BY finished_at DESC LIMIT 1", ())
    guidelines = [g for g in guidelines if g["effective_from"] <= end_of_day]
    credentials = [c for c in credentials if c["valid_from"] <= end_of_day]
    active_holds = [
        h
        for h in holds
        if h["placed_at"] <= end_of_day and (h["released_at"] is None or h["released_at"] > end_of_day)
    ]
    # A hold on a dataset or on items keeps the whole log of its tenant: the index counts records per
    # log, day and type, and keeping too much is safe where keeping too little is not. A hold only ever
    # holds its own tenant's log, whatever a scope stored by older code names (one tenant must never
    # change another's report).
    held_logs = {log_for(h["tenant"]) for h in active_holds}
    by_log: dict[str, list[Row]] = {}
    for b in buckets:
        by_log.setdefault(b["log"], []).append(b)
    logs = [
        _log_section(head, by_log.get(head["log"], []), as_of, head["log"] in held_logs) for head in heads
    ]
    content: Row = {
        "report": "retention",
        "retention_years": RETENTION_YEARS,
        "as_of": as_of.isoformat(),
        "scope": tenant or "all logs",
        "integrity": _integrity(verification, heads, scoped=tenant is not None),
        "logs": logs,
        "guidelines": [_entity(g, "guideline", g["effective_until"], as_of) for g in guidelines],
        "credentials": [_entity(c, "credential", _credential_end(c), as_of) for c in credentials],
        "legal_holds": [_hold(h) for h in active_holds],
        "erasures": [{k: e[k] for k in ("tenant", "erasure_id", "data_subject", "requested_at", "executed_at")}
                     for e in erasures if (e["requested_at"] or e["executed_at"]) and
                     (e["requested_at"] or e["executed_at"]) <= end_of_day],
        "totals": {
            "events": sum(s["events"] for s in logs),
            "may_leave_retention": sum(s["may_leave_retention"] for s in logs),
            "held": sum(s["events"] for s in logs if s["on_legal_hold"]),
        },
    }  # fmt: skip
    return Report(
        name="retention",
        parameters={"as_of": as_of.isoformat(), "scope": content["scope"]},
        generated_at=datetime.now(UTC),
        scope=content["scope"],
        content=content,
        records=sum(len(content[k]) for k in _SECTIONS),
        template="retention.html",
        csv_columns=CSV_COLUMNS,
        csv_rows=csv_rows,
        figures=figures,
    )


def csv_rows(c: Content) -> Iterator[CsvRow]:
    """One row per log period, guideline version and credential period, then the total."""
    for log in c["logs"]:
        for p in log["periods"]:
            yield {"section": "log", "log_or_tenant": log["log"], "year": p["year"], "type_or_id": p["type"],
                   "events": p["events"], "oldest": p["oldest"], "newest": p["newest"],
                   "retain_until": p["latest_due"] or p["due_rule"],
                   "may_leave_retention": p["may_leave_retention"], "on_legal_hold": log["on_legal_hold"]}  # fmt: skip
    for g in c["guidelines"]:
        yield {"section": "guideline", "log_or_tenant": g["tenant"], "type_or_id": f"{g['guideline_id']} {g['version']}",
               "oldest": g["effective_from"], "newest": g["last_in_effect"],
               "retain_until": g["retain_until"] or "in effect", "may_leave_retention": g["may_leave_retention"]}  # fmt: skip
    for cr in c["credentials"]:
        yield {"section": "credential", "log_or_tenant": cr["tenant"],
               "type_or_id": f"{cr['credential_id']}#{cr['period']} ({cr['annotator']})",
               "oldest": cr["valid_from"], "newest": cr["last_in_effect"],
               "retain_until": cr["retain_until"] or "in effect", "may_leave_retention": cr["may_leave_retention"]}  # fmt: skip
    totals = c["totals"]
    yield {"section": "total", "log_or_tenant": c["scope"], "events": totals["events"],
           "may_leave_retention": totals["may_leave_retention"], "on_legal_hold": totals["held"]}  # fmt: skip


def figures(c: Content) -> Mapping[str, str]:
    """Events per year over every log of the report (none for a report on empty logs)."""
    per_year: Counter[int] = Counter()
    for log in c["logs"]:
        for p in log["periods"]:
            per_year[p["year"]] += p["events"]
    if not per_year:
        return {}
    return {"events_per_year": plots.bars("Events per year", {str(y): per_year[y] for y in sorted(per_year)})}


def _q(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def _log_section(head: Row, buckets: list[Row], as_of: date, on_hold: bool) -> Row:
    periods: dict[tuple[int, str], Row] = {}
    for b in buckets:
        key = (b["day"].year, b["type"])
        p = periods.setdefault(key, {"year": key[0], "type": key[1], "events": 0, "oldest": b["oldest"],
                                     "newest": b["newest"], "may_leave_retention": 0})  # fmt: skip
        p["events"] += b["events"]
        p["oldest"], p["newest"] = min(p["oldest"], b["oldest"]), max(p["newest"], b["newest"])
        from_effect = b["type"].startswith(_FROM_LAST_IN_EFFECT)
        if not from_effect and not on_hold and due_date(b["day"]) <= as_of:
            p["may_leave_retention"] += b["events"]
    rows = []
    for p in (periods[k] for k in sorted(periods)):
        from_effect = p["type"].startswith(_FROM_LAST_IN_EFFECT)
        rows.append({**p, "earliest_due": None if from_effect else due_date(p["oldest"].astimezone(UTC).date()),
                     "latest_due": None if from_effect else due_date(p["newest"].astimezone(UTC).date()),
                     "due_rule": "six years after last in effect (see guidelines, credentials)" if from_effect
                     else "six years after creation"})  # fmt: skip
    size = int(head["size"])
    return {
        "log": head["log"], "tenant": head["tenant"], "events": sum(p["events"] for p in rows),
        "positions": [0, size - 1] if size else None, "head_hash": bytes(head["head_hash"]).hex(),
        "oldest": min((p["oldest"] for p in rows), default=None), "on_legal_hold": on_hold,
        "may_leave_retention": sum(p["may_leave_retention"] for p in rows), "periods": rows,
    }  # fmt: skip


def _credential_end(c: Row) -> datetime | None:
    ends = [e for e in (c["valid_until"], c["ended_at"]) if e is not None]
    return min(ends) if ends else None


def _entity(row: Row, kind: str, last_in_effect: datetime | None, as_of: date) -> Row:
    due = due_date(last_in_effect.astimezone(UTC).date()) if last_in_effect is not None else None
    ident = (
        {"guideline_id": row["guideline_id"], "version": row["version"], "effective_from": row["effective_from"]}
        if kind == "guideline"
        else {"credential_id": row["credential_id"], "period": row["period"], "annotator": row["annotator"],
              "kind": row["kind"], "valid_from": row["valid_from"]}
    )  # fmt: skip
    return {
        "tenant": row["tenant"], **ident, "last_in_effect": last_in_effect,
        "status": "in effect" if last_in_effect is None or last_in_effect.astimezone(UTC).date() > as_of else "ended",
        "retain_until": due, "may_leave_retention": due is not None and due <= as_of,
    }  # fmt: skip


def _hold(h: Row) -> Row:
    return {k: h[k] for k in ("tenant", "hold_id", "scope", "reason", "approver", "placed_at")}


def _integrity(verification: list[Row], heads: Iterable[Row], *, scoped: bool) -> Row:
    """The last verification's verdict on the logs this report covers (a tenant's report names no other log)."""
    if not verification:
        return {"status": "never verified", "detail": "run `ledger verify` before handing this report over"}
    v = verification[0]
    current = {h["log"]: int(h["size"]) for h in heads}
    entries = [e for e in v["logs"] if e["log"] in current] if scoped else list(v["logs"])
    checked = {e["log"]: e for e in entries}
    missing = sorted(set(current) - set(checked))
    behind = sorted(
        log for log, size in current.items() if log in checked and checked[log].get("size") != size
    )
    broken = [e for e in entries if e.get("first_break")]
    status = "BROKEN" if broken else ("not verified" if missing else "intact")
    detail = "; ".join(
        f"{e['log']} at position {e['first_break']['position']}: {e['first_break']['reason']}" for e in broken
    ) or (
        "every log verified" if not missing else f"not covered by the last verification: {', '.join(missing)}"
    )
    return {
        "status": status,
        "verified_at": v["finished_at"],
        "events_checked": sum(int(e.get("events_checked") or 0) for e in entries),
        "logs_grown_since": behind,
        "detail": detail,
    }
