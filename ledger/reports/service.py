"""Generating a report: build, render, and put its SHA-256 on the record as ``ledger.report_generated``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from ledger.domain.internal import ledger_event
from ledger.reports import render, retention
from ledger.runtime import Ledger
from ledger.storage.append import Receipt

SYSTEM_TENANT = "ledger"
"""The log of operator actions that span tenants (a report over every log, run from the CLI)."""


@dataclass(frozen=True)
class GeneratedReport:
    """A rendered report and where its generation was recorded."""

    body: bytes
    media_type: str
    sha256: str
    receipt: Receipt


def retention_report(
    ledger: Ledger, as_of: date, fmt: str, *, tenant: str | None, requested_by: str
) -> GeneratedReport:
    """Build and render the retention report, then record its digest in the ledger before returning it."""
    report = retention.build(ledger.db, as_of, tenant=tenant)
    body = render.render(report, fmt)
    digest = hashlib.sha256(body).hexdigest()
    event = ledger_event(
        "ledger.report_generated",
        tenant or SYSTEM_TENANT,
        {
            "report": "retention",
            "sha256": digest,
            "parameters": {
                "as_of": as_of.isoformat(),
                "format": fmt,
                "scope": report.scope,
                "requested_by": requested_by,
            },
        },
    )
    receipt = ledger.appender.append([event])[0]
    return GeneratedReport(body, render.MEDIA_TYPES[fmt], digest, receipt)
