"""Rendering a report as JSON, CSV or a printable HTML page."""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import UTC, date, datetime
from typing import Any

from ledger.reports.retention import RetentionReport

FORMATS = ("json", "csv", "html")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def _default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def render(report: RetentionReport, fmt: str) -> bytes:
    """The report's bytes in ``fmt`` (json, csv or html)."""
    if fmt == "json":
        doc = {**report.content, "generated_at": report.generated_at}
        return (json.dumps(doc, indent=2, default=_default, sort_keys=False) + "\n").encode()
    if fmt == "csv":
        return _csv(report).encode()
    if fmt == "html":
        return _html(report).encode()
    msg = f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
    raise ValueError(msg)


def _csv(report: RetentionReport) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "log_or_tenant", "year", "type_or_id", "events", "oldest", "newest", "retain_until",
                "may_leave_retention", "on_legal_hold"])  # fmt: skip
    c = report.content
    for log in c["logs"]:
        for p in log["periods"]:
            w.writerow(["log", log["log"], p["year"], p["type"], p["events"], _default(p["oldest"]), _default(p["newest"]),
                        _default(p["latest_due"]) if p["latest_due"] else p["due_rule"], p["may_leave_retention"],
                        log["on_legal_hold"]])  # fmt: skip
    for g in c["guidelines"]:
        w.writerow(["guideline", g["tenant"], "", f"{g['guideline_id']} {g['version']}", "", _default(g["effective_from"]),
                    _default(g["last_in_effect"]) if g["last_in_effect"] else "", _default(g["retain_until"]) if g["retain_until"] else "in effect",
                    g["may_leave_retention"], ""])  # fmt: skip
    for cr in c["credentials"]:
        w.writerow(["credential", cr["tenant"], "", f"{cr['credential_id']}#{cr['period']} ({cr['annotator']})", "",
                    _default(cr["valid_from"]), _default(cr["last_in_effect"]) if cr["last_in_effect"] else "",
                    _default(cr["retain_until"]) if cr["retain_until"] else "in effect", cr["may_leave_retention"], ""])  # fmt: skip
    w.writerow(["total", c["scope"], "", "", c["totals"]["events"], "", "", "", c["totals"]["may_leave_retention"],
                c["totals"]["held"]])  # fmt: skip
    return out.getvalue()


_CSS = """
body { font: 11pt/1.4 Georgia, serif; margin: 2cm; color: #111; }
h1 { font-size: 18pt; margin-bottom: 0; } h2 { font-size: 13pt; margin-top: 1.6em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; font-size: 9.5pt; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eee; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td { overflow-wrap: anywhere; } /* full 64-hex head hashes wrap rather than widen the page */
.meta td:first-child { width: 14em; font-weight: bold; } .ok { color: #064; } .bad { color: #a00; font-weight: bold; }
tfoot td { font-weight: bold; background: #f6f6f6; }
@media print { body { margin: 1cm; } h2 { page-break-after: avoid; } tr { page-break-inside: avoid; } }
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):  # a person reads this page: seconds in UTC are precise enough
        return html.escape(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    return html.escape(value.isoformat() if isinstance(value, date) else str(value))


def _table(
    headers: list[str], rows: list[list[Any]], numeric: set[int], foot: list[Any] | None = None
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>" for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    tfoot = ("<tfoot><tr>" + "".join(f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
             for i, v in enumerate(foot)) + "</tr></tfoot>") if foot else ""  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td colspan=99>none</td></tr>'}</tbody>{tfoot}</table>"


def _html(report: RetentionReport) -> str:
    c = report.content
    integ = c["integrity"]
    status_class = "ok" if integ["status"] == "intact" else "bad"
    meta = [
        ("Report", "Record retention, six years (HIPAA 45 CFR 164.316(b)(2)(i); 21 CFR 11.10(c))"),
        ("As of", c["as_of"]), ("Scope", c["scope"]), ("Generated", report.generated_at),
        ("Integrity", f'<span class="{status_class}">{_e(integ["status"])}</span> {_e(integ.get("detail", ""))}'),
        ("Verified at", _e(integ.get("verified_at"))), ("Events re-hashed", _e(integ.get("events_checked"))),
    ]  # fmt: skip
    if integ.get("logs_grown_since"):
        meta.append(("Events recorded since in", _e(", ".join(integ["logs_grown_since"]))))
    meta_rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{v if k == 'Integrity' else _e(v)}</td></tr>" for k, v in meta
    )
    logs = _table(
        ["Log", "Tenant", "Positions", "Events", "Oldest record", "Legal hold", "May leave retention", "Head hash"],
        [[lg["log"], lg["tenant"], f"{lg['positions'][0]}–{lg['positions'][1]}" if lg["positions"] else "empty",
          lg["events"], lg["oldest"], "yes" if lg["on_legal_hold"] else "no", lg["may_leave_retention"],
          lg["head_hash"]] for lg in c["logs"]],
        {3, 6},
        ["Total", "", "", c["totals"]["events"], "", c["totals"]["held"] or "", c["totals"]["may_leave_retention"], ""],
    )  # fmt: skip
    periods = "".join(
        f"<h3>{_e(lg['log'])}</h3>" + _table(
            ["Year", "Event type", "Events", "Oldest", "Newest", "Retain until (latest)", "May leave retention"],
            [[p["year"], p["type"], p["events"], p["oldest"], p["newest"], p["latest_due"] or p["due_rule"],
              p["may_leave_retention"]] for p in lg["periods"]], {2, 6})
        for lg in c["logs"]
    )  # fmt: skip
    guidelines = _table(
        ["Tenant", "Guideline", "Version", "Effective from", "Last in effect", "Retain until", "May leave"],
        [[g["tenant"], g["guideline_id"], g["version"], g["effective_from"], g["last_in_effect"] or "in effect",
          g["retain_until"] or "—", "yes" if g["may_leave_retention"] else "no"] for g in c["guidelines"]], set())  # fmt: skip
    credentials = _table(
        ["Tenant", "Annotator", "Credential", "Kind", "Valid from", "Last in effect", "Retain until", "May leave"],
        [[cr["tenant"], cr["annotator"], f"{cr['credential_id']} #{cr['period']}", cr["kind"], cr["valid_from"],
          cr["last_in_effect"] or "in effect", cr["retain_until"] or "—", "yes" if cr["may_leave_retention"] else "no"]
         for cr in c["credentials"]], set())  # fmt: skip
    holds = _table(["Tenant", "Hold", "Scope", "Reason", "Approver", "Placed"],
                   [[h["tenant"], h["hold_id"], json_scope(h["scope"]), h["reason"], h["approver"], h["placed_at"]]
                    for h in c["legal_holds"]], set())  # fmt: skip
    erasures = _table(["Tenant", "Erasure", "Data subject", "Requested", "Executed"],
                      [[e["tenant"], e["erasure_id"], e["data_subject"], e["requested_at"], e["executed_at"]]
                       for e in c["erasures"]], set())  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Retention report as of {_e(c["as_of"])}</title>
<style>{_CSS}</style></head><body>
<h1>Record retention report</h1>
<table class="meta">{meta_rows}</table>
<h2>Logs</h2>{logs}
<h2>Records by year and type</h2>{periods}
<h2>Guideline versions (kept six years after last in effect)</h2>{guidelines}
<h2>Annotator credentials (kept six years after last in effect)</h2>{credentials}
<h2>Legal holds in force</h2>{holds}
<h2>Erasures (crypto-shredding; the hashed records remain)</h2>{erasures}
<p>Every count above comes from the ledger's retention index, which is rebuilt from the hash-chained log by
<code>ledger projections rebuild</code>. The SHA-256 of this file is recorded in the ledger as a
<code>ledger.report_generated</code> event.</p>
</body></html>
"""


def json_scope(scope: dict[str, Any]) -> str:
    """A hold's scope in one line."""
    return ", ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in scope.items() if v)
