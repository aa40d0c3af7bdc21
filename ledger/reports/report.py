"""The one shape every report has: parameters → data → JSON, CSV or a printable HTML page.

A report module builds a ``Report`` (what was asked, the data, how its rows flatten to CSV and which Jinja
template prints it); ``render`` turns it into bytes the same way for every report, and
``ledger.reports.service`` records their SHA-256 before anyone receives them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

FORMATS = ("json", "csv", "html")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection"); actor ids and
# item names come from producers, so such a cell is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Content = dict[str, Any]
CsvRow = Mapping[str, Any]


@dataclass(frozen=True)
class Report:
    """A built report: what was asked, the data, and how it prints."""

    name: str
    """Its name in ``ledger.report_generated`` (``retention``, ``access_review``, ``lineage``)."""
    parameters: dict[str, str]
    """What it was asked, as recorded in ``ledger.report_generated``."""
    generated_at: datetime
    scope: str
    content: Content
    """The data: the JSON form is exactly this plus ``generated_at``."""
    records: int
    """How many records it holds: the record count of its access event."""
    template: str
    """The Jinja template (under ``ledger/reports/templates``) of its HTML form; it sees ``c`` (the
    content), ``report`` and ``figures``."""
    csv_columns: tuple[str, ...]
    csv_rows: Callable[[Content], Iterable[CsvRow]]
    """The content flattened to rows of ``csv_columns`` (a missing column is an empty cell)."""
    figures: Callable[[Content], Mapping[str, str]] = field(default=lambda _content: {})
    """Inline SVG figures for the HTML form, by name (``ledger.reports.plots``)."""
    json_indent: int | None = 2
    """Indentation of the JSON form; ``None`` writes it compact, with the standard library's C encoder
    (an indented document is written by its pure-Python encoder, seconds per 100,000 events)."""


def render(report: Report, fmt: str) -> bytes:
    """The report's bytes in ``fmt`` (json, csv or html)."""
    if fmt == "json":
        doc = {**report.content, "generated_at": report.generated_at}
        return (json.dumps(doc, indent=report.json_indent, default=text) + "\n").encode()
    if fmt == "csv":
        return _csv(report).encode()
    if fmt == "html":
        # The figures are SVG the plotting library drew from the content, its text escaped by it.
        figures = {name: Markup(svg) for name, svg in report.figures(report.content).items()}  # noqa: S704
        page = _environment().get_template(report.template)
        return page.render(c=report.content, report=report, figures=figures).encode()
    msg = f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
    raise ValueError(msg)


def text(value: Any) -> str:
    """A value as one CSV cell or JSON string: times in UTC ISO 8601, ``None`` empty."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    written = text(value)
    return "'" + written if isinstance(value, str) and written.startswith(_FORMULA_START) else written


def when(value: Any) -> str:
    """A time as a person reads it on paper: seconds, in UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return text(value)


def _csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.csv_columns)
    for row in report.csv_rows(report.content):
        writer.writerow([cell(row.get(column)) for column in report.csv_columns])
    return out.getvalue()


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ledger.reports", "templates"),
        autoescape=True,  # every value is escaped: actor ids, items and summaries come from producers
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env
