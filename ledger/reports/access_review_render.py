"""Rendering the access-review report as JSON, CSV or a printable HTML page (a Jinja template)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import jinja2

from ledger.reports.access_review import AccessReviewReport

FORMATS = ("json", "csv", "html")
_CSV_COLUMNS = [
    "section", "period_start", "period_end", "key", "count", "tenant", "anomaly_id", "rule", "severity",
    "actor", "raised_at", "age_days", "reviewer", "decision", "reviewed_at", "review_event_id",
]  # fmt: skip
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection"); actor ids and
# item names come from producers, so such a cell is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def render(report: AccessReviewReport, fmt: str) -> bytes:
    """The report's bytes in ``fmt`` (json, csv or html)."""
    if fmt == "json":
        doc = {**report.content, "generated_at": report.generated_at}
        return (json.dumps(doc, indent=2, default=_text) + "\n").encode()
    if fmt == "csv":
        return _csv(report).encode()
    if fmt == "html":
        return _template().render(c=report.content, generated_at=report.generated_at).encode()
    msg = f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
    raise ValueError(msg)


def _cell(value: Any) -> str:
    text = _text(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA_START) else text


def _csv(report: AccessReviewReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)

    def row(**cells: Any) -> None:
        writer.writerow([_cell(cells.get(column)) for column in _CSV_COLUMNS])

    c = report.content
    for p in c["periods"]:
        span = {"period_start": p["start"], "period_end": p["end"]}
        row(section="raised", key="total", count=p["raised"]["total"], **span)
        for rule, n in p["raised"]["by_rule"].items():
            row(section="raised_by_rule", key=rule, count=n, **span)
        for severity, n in p["raised"]["by_severity"].items():
            row(section="raised_by_severity", key=severity, count=n, **span)
        row(section="reviewed", key="total", count=p["reviewed"]["total"], **span)
        for decision, n in p["reviewed"]["by_decision"].items():
            row(section="reviewed_by_decision", key=decision, count=n, **span)
        for r in p["reviewed"]["reviews"]:
            row(section="review", tenant=r["tenant"], anomaly_id=r["anomaly_id"], rule=r["rule"],
                severity=r["severity"], reviewer=r["reviewer"], decision=r["decision"],
                reviewed_at=r["reviewed_at"], review_event_id=r["event_id"], **span)  # fmt: skip
    for a in c["open_at_end"]:
        row(section="open", tenant=a["tenant"], anomaly_id=a["anomaly_id"], rule=a["rule"],
            severity=a["severity"], actor=a["actor"], raised_at=a["raised_at"], age_days=a["age_days"])  # fmt: skip
    totals = c["totals"]
    for key in ("raised", "reviewed", "open_at_end"):
        row(section="total", period_start=c["from"], period_end=c["to"], key=key, count=totals[key])
    return out.getvalue()


def _when(value: Any) -> str:
    """A time as a person reads it on paper: seconds, in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return _text(value)


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ledger.reports", "templates"),
        autoescape=True,  # every value is escaped: actor ids and summaries come from producers
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env.get_template("access_review.html")
