"""The access-review report (HIPAA 164.308(a)(1)(ii)(D), 164.312(b)) over a range of days.

Per ISO week (Monday to Sunday, cut at the range's ends; UTC), what was raised (per rule and severity, by
``raised_at``), which reviews were recorded (by whom, deciding what, when), and at the end which anomalies
were still open, with their age. Reviews are read from the log itself (every ``ledger.anomaly_reviewed``
event, not only the latest the projection keeps), so an anomaly reviewed after the range counts as open at
its end, and one reviewed twice shows both reviews. :func:`summarize` is the pure part.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg.rows import dict_row

from ledger.domain.errors import FieldError, NotFound, ParameterInvalid
from ledger.domain.upcasting import upcast
from ledger.projections.anomaly_queries import DECISIONS, SEVERITIES
from ledger.reports import plots
from ledger.reports.report import Content, CsvRow, Report
from ledger.storage.database import Database

Row = dict[str, Any]
PERIOD = "week"
"""The report's period: ISO weeks, Monday to Sunday, the first and last cut at the range's ends."""
MAX_DAYS = 3660
"""The longest range one report covers (ten years of weekly periods)."""
CSV_COLUMNS = (
    "section", "period_start", "period_end", "key", "count", "tenant", "anomaly_id", "rule", "severity",
    "actor", "raised_at", "age_days", "reviewer", "decision", "reviewed_at", "review_event_id",
)  # fmt: skip


def check_range(first: date, last: date) -> None:
    """Refuse a range that ends before it starts or is longer than ``MAX_DAYS``, naming ``to``."""
    if last < first:
        msg = f"must not be before from ({first.isoformat()})"
    elif (last - first).days >= MAX_DAYS:
        msg = f"must be less than {MAX_DAYS} days after from"
    else:
        return
    raise ParameterInvalid(f"to {msg}", errors=[FieldError("to", msg)])


def build(db: Database, first: date, last: date, *, tenant: str | None = None) -> Report:
    """The report over ``first``..``last`` (both included) for one tenant, or every tenant when ``None``."""
    check_range(first, last)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    scope_sql, params = ("tenant = %s AND ", (tenant,)) if tenant else ("", ())
    with db.connect() as conn, conn.transaction():
        # One snapshot: the anomalies and the reviews of the same moment.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor(row_factory=dict_row) as cur:
            if tenant:
                cur.execute("SELECT 1 FROM ledger_log_heads WHERE tenant = %s LIMIT 1", (tenant,))
                if cur.fetchone() is None:
                    # Recording the report would create the log of a tenant that never recorded anything
                    # (a mistyped `ledger report access-review --tenant`; over HTTP the read itself is recorded).
                    msg = f"tenant {tenant!r} has no log: nothing was ever recorded for it"
                    raise NotFound(msg)
            cur.execute(
                "SELECT tenant, anomaly_id, rule, severity, actor, dataset, item, raised_at"
                f" FROM proj_access_anomalies WHERE {scope_sql}raised_at < %s"
                " ORDER BY raised_at, tenant, anomaly_id",
                (*params, end),
            )
            anomalies = list(cur.fetchall())
            cur.execute(
                "SELECT tenant, event_id, recorded_at, canonical FROM ledger_events"
                f" WHERE {scope_sql}type = 'ledger.anomaly_reviewed' AND recorded_at < %s"
                " ORDER BY recorded_at, log, position",
                (*params, end),
            )
            reviews = [_review(r) for r in cur.fetchall()]
    now = datetime.now(UTC)
    return report(summarize(anomalies, reviews, first, last, now=now), tenant or "all tenants", now)


def report(summary: Row, scope: str, generated_at: datetime) -> Report:
    """The report of a :func:`summarize` result over ``scope``."""
    content = {"scope": scope, **summary}
    totals = content["totals"]
    return Report(
        name="access_review",
        parameters={
            "from": content["from"].isoformat(),
            "to": content["to"].isoformat(),
            "period": PERIOD,
            "scope": scope,
        },
        generated_at=generated_at,
        scope=scope,
        content=content,
        records=totals["raised"] + totals["reviewed"] + totals["open_at_end"],
        template="access_review.html",
        csv_columns=CSV_COLUMNS,
        csv_rows=csv_rows,
        figures=figures,
    )


def _review(row: Row) -> Row:
    data = upcast(json.loads(bytes(row["canonical"]))["event"])["data"]
    return {
        "tenant": row["tenant"],
        "anomaly_id": data["anomaly_id"],
        "reviewer": data["reviewer"],
        "decision": data["decision"],
        "reviewed_at": row["recorded_at"],
        "event_id": row["event_id"],
    }


def periods(first: date, last: date) -> list[tuple[date, date]]:
    """The ISO weeks of ``first``..``last``, each cut to the range: (first day, last day) pairs."""
    out = []
    start = first
    while start <= last:
        sunday = start + timedelta(days=6 - start.weekday())
        out.append((start, min(sunday, last)))
        start = sunday + timedelta(days=1)
    return out


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def summarize(anomalies: list[Row], reviews: list[Row], first: date, last: date, *, now: datetime) -> Row:
    """The report's content from the anomalies raised before its end and the reviews recorded before it.

    ``anomalies`` need tenant, anomaly_id, rule, severity, actor, dataset, item, raised_at; ``reviews``
    need tenant, anomaly_id, reviewer, decision, reviewed_at, event_id. Ages are taken at the end of the
    range, or at ``now`` when the range has not ended yet."""
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    by_id = {(a["tenant"], a["anomaly_id"]): a for a in anomalies}
    reviewed = {(r["tenant"], r["anomaly_id"]) for r in reviews if r["reviewed_at"] < end}
    sections: list[Row] = []
    for start, stop in periods(first, last):
        raised = [a for a in anomalies if start <= _day(a["raised_at"]) <= stop]
        done = [r for r in reviews if start <= _day(r["reviewed_at"]) <= stop]
        sections.append(
            {
                "start": start,
                "end": stop,
                "raised": {
                    "total": len(raised),
                    "by_rule": dict(sorted(Counter(a["rule"] for a in raised).items())),
                    "by_severity": _tally((a["severity"] for a in raised), SEVERITIES),
                },
                "reviewed": {
                    "total": len(done),
                    "by_decision": _tally((r["decision"] for r in done), DECISIONS),
                    "reviews": [_with_anomaly(r, by_id.get((r["tenant"], r["anomaly_id"]))) for r in done],
                },
            }
        )
    as_of = min(end, now)
    still_open = [
        {
            **{k: a[k] for k in ("tenant", "anomaly_id", "rule", "severity", "actor", "dataset", "item")},
            "raised_at": a["raised_at"],
            "age_days": round(max((as_of - a["raised_at"]).total_seconds(), 0) / 86400, 1),
        }
        for a in anomalies
        if (a["tenant"], a["anomaly_id"]) not in reviewed
    ]
    return {
        "report": "access_review",
        "from": first,
        "to": last,
        "period": PERIOD,
        "open_as_of": as_of,
        "totals": {
            "raised": sum(s["raised"]["total"] for s in sections),
            "reviewed": sum(s["reviewed"]["total"] for s in sections),
            "open_at_end": len(still_open),
        },
        "periods": sections,
        "open_at_end": still_open,
    }


def _tally(values: Any, order: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(values)
    return {k: counts.get(k, 0) for k in order} | {k: n for k, n in sorted(counts.items()) if k not in order}


def _with_anomaly(review: Row, anomaly: Row | None) -> Row:
    """A review with the rule and severity of its anomaly (``None`` when the projection lost it)."""
    return {
        **review,
        "rule": anomaly["rule"] if anomaly else None,
        "severity": anomaly["severity"] if anomaly else None,
    }


def csv_rows(c: Content) -> Iterator[CsvRow]:
    """Per week the counts by rule, severity and decision and every review; then the open anomalies, the totals."""
    for p in c["periods"]:
        span = {"period_start": p["start"], "period_end": p["end"]}
        yield {"section": "raised", "key": "total", "count": p["raised"]["total"], **span}
        for rule, n in p["raised"]["by_rule"].items():
            yield {"section": "raised_by_rule", "key": rule, "count": n, **span}
        for severity, n in p["raised"]["by_severity"].items():
            yield {"section": "raised_by_severity", "key": severity, "count": n, **span}
        yield {"section": "reviewed", "key": "total", "count": p["reviewed"]["total"], **span}
        for decision, n in p["reviewed"]["by_decision"].items():
            yield {"section": "reviewed_by_decision", "key": decision, "count": n, **span}
        for r in p["reviewed"]["reviews"]:
            yield {"section": "review", "tenant": r["tenant"], "anomaly_id": r["anomaly_id"], "rule": r["rule"],
                   "severity": r["severity"], "reviewer": r["reviewer"], "decision": r["decision"],
                   "reviewed_at": r["reviewed_at"], "review_event_id": r["event_id"], **span}  # fmt: skip
    for a in c["open_at_end"]:
        yield {"section": "open", "tenant": a["tenant"], "anomaly_id": a["anomaly_id"], "rule": a["rule"],
               "severity": a["severity"], "actor": a["actor"], "raised_at": a["raised_at"], "age_days": a["age_days"]}  # fmt: skip
    for key in ("raised", "reviewed", "open_at_end"):
        yield {"section": "total", "period_start": c["from"], "period_end": c["to"], "key": key,
               "count": c["totals"][key]}  # fmt: skip


def figures(c: Content) -> Mapping[str, str]:
    """Anomalies raised in the range per rule (none when nothing was raised)."""
    per_rule: Counter[str] = Counter()
    for p in c["periods"]:
        per_rule.update(p["raised"]["by_rule"])
    if not per_rule:
        return {}
    return {"raised_by_rule": plots.bars("Raised per rule", dict(sorted(per_rule.items())))}
