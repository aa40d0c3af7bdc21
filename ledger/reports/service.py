"""Generating a report: build, render, and put its SHA-256 on the record as ``ledger.report_generated``.

A report never leaves the ledger unrecorded: callers deliver the bytes only after ``record`` returned
(the CLI stages them in a file beside ``--output`` first, so an unwritable path records nothing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.domain.envelope import ReceivedEvent
from ledger.domain.internal import ledger_event
from ledger.domain.logs import SYSTEM_TENANT
from ledger.reports import access_review, lineage, retention
from ledger.reports.report import MEDIA_TYPES, Report, render
from ledger.runtime import Ledger
from ledger.storage.append import Receipt
from ledger.storage.bundles import ReleaseScope


@dataclass(frozen=True)
class RenderedReport:
    """A report's bytes and what its ``ledger.report_generated`` event will say, not yet recorded."""

    body: bytes
    media_type: str
    sha256: str
    tenant: str
    data: dict[str, Any]
    records: int = 0
    """How many records (rows, events) the report holds: the record count of its access event."""


@dataclass(frozen=True)
class GeneratedReport:
    """A rendered report and where its generation was recorded."""

    body: bytes
    media_type: str
    sha256: str
    receipt: Receipt


def render_retention(
    ledger: Ledger, as_of: date, fmt: str, *, tenant: str | None, requested_by: str
) -> RenderedReport:
    """Build and render the retention report (``NotFound`` for a tenant with no log); record nothing yet."""
    report = retention.build(ledger.db, as_of, tenant=tenant)
    return rendered(report, fmt, tenant=tenant, requested_by=requested_by)


def report_event(rendered: RenderedReport) -> ReceivedEvent:
    """The ``ledger.report_generated`` event of ``rendered``."""
    return ledger_event("ledger.report_generated", rendered.tenant, rendered.data)


def render_access_review(
    ledger: Ledger, first: date, last: date, fmt: str, *, tenant: str | None, requested_by: str
) -> RenderedReport:
    """Build and render the access-review report of ``first``..``last``; record nothing yet."""
    report = access_review.build(ledger.db, first, last, tenant=tenant)
    return rendered(report, fmt, tenant=tenant, requested_by=requested_by)


def rendered(report: Report, fmt: str, *, tenant: str | None, requested_by: str) -> RenderedReport:
    """``report`` rendered in ``fmt`` for ``tenant`` (the system log when ``None``) and the event that will
    record it: its name, SHA-256 and parameters (what it was asked, the format and who asked)."""
    body = render(report, fmt)
    digest = hashlib.sha256(body).hexdigest()
    parameters = {**report.parameters, "format": fmt, "requested_by": requested_by}
    data: dict[str, Any] = {"report": report.name, "sha256": digest, "parameters": parameters}
    return RenderedReport(body, MEDIA_TYPES[fmt], digest, tenant or SYSTEM_TENANT, data, report.records)


def record(ledger: Ledger, rendered: RenderedReport) -> GeneratedReport:
    """Append the ``ledger.report_generated`` event of ``rendered``; deliver its bytes only after this."""
    receipt = ledger.appender.append([report_event(rendered)])[0]
    return GeneratedReport(rendered.body, rendered.media_type, rendered.sha256, receipt)


def retention_report(
    ledger: Ledger, as_of: date, fmt: str, *, tenant: str | None, requested_by: str
) -> GeneratedReport:
    """Build and render the retention report, then record its digest in the ledger before returning it."""
    return record(ledger, render_retention(ledger, as_of, fmt, tenant=tenant, requested_by=requested_by))


def render_lineage(
    ledger: Ledger, scope: ReleaseScope, fmt: str, *, tenant: str | None, requested_by: str
) -> RenderedReport:
    """Build and render the lineage report of a release (``NotFound`` when no event names it); record nothing
    yet. Tasks, scales and bands come from the QC policy of the settings (``LEDGER_QC_POLICY``)."""
    settings = ledger.settings
    report = lineage.build(
        ledger.db,
        scope,
        tenant=tenant,
        policy=settings.qc_policy,
        test_set_roles=settings.anomalies.test_set_roles,
    )
    return rendered(report, fmt, tenant=report.scope, requested_by=requested_by)
