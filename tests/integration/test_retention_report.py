"""The retention report's counts and due dates, at the boundaries: exactly six years, leap days, holds."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, date, datetime

import pytest

from ledger.projections.registry import all_projectors
from ledger.reports import retention
from ledger.reports.report import render
from ledger.reports.retention import add_years, due_date
from ledger.reports.service import retention_report
from ledger.runtime import Ledger
from ledger.storage.append import AppendService
from tests.stories import Story, at


def test_six_years_from_a_leap_day_is_the_first_of_march() -> None:
    assert add_years(date(2020, 2, 29), 6) == date(2026, 3, 1)
    assert add_years(date(2020, 2, 29), 4) == date(2024, 2, 29)
    assert due_date(date(2020, 3, 15)) == date(2026, 3, 15)


def recorded_on(ledger: Ledger, when: datetime, story: Story) -> None:
    """Append ``story`` as if the server clock said ``when`` (recorded_at is server time)."""
    AppendService(ledger.db, ledger.sealer, clock=lambda: when, projectors=all_projectors()).append(
        story.events
    )


def may_leave(ledger: Ledger, as_of: date, tenant: str = "acme") -> int:
    return retention.build(ledger.db, as_of, tenant=tenant).content["totals"]["may_leave_retention"]


@pytest.fixture
def history(ledger: Ledger) -> Ledger:
    leap = Story("acme")
    leap.guideline("1.0", at(0))
    for i in range(3):
        leap.view("ann-1", f"item-{i}", at(i))
    recorded_on(ledger, datetime(2020, 2, 29, 23, 59, tzinfo=UTC), leap)  # 1 guideline + 3 views
    spring = Story("acme")
    for i in range(2):
        spring.view("ann-1", f"item-{i}", at(i))
    recorded_on(ledger, datetime(2020, 3, 15, 0, 0, tzinfo=UTC), spring)
    return ledger


def test_records_become_due_exactly_six_years_after_creation(history: Ledger) -> None:
    assert may_leave(history, date(2026, 2, 28)) == 0  # leap-day records: due 1 March 2026
    assert may_leave(history, date(2026, 3, 1)) == 3  # the guideline event follows its own rule
    assert may_leave(history, date(2026, 3, 14)) == 3
    assert may_leave(history, date(2026, 3, 15)) == 5


def test_counts_per_year_and_type_with_oldest_and_newest(history: Ledger) -> None:
    content = retention.build(history.db, date(2026, 1, 1), tenant="acme").content
    [log] = content["logs"]
    periods = {(p["year"], p["type"]): p for p in log["periods"]}
    views = periods[(2020, "access.data_viewed")]
    assert views["events"] == 5
    assert views["oldest"] == datetime(2020, 2, 29, 23, 59, tzinfo=UTC)
    assert views["newest"] == datetime(2020, 3, 15, tzinfo=UTC)
    assert (views["earliest_due"], views["latest_due"]) == (date(2026, 3, 1), date(2026, 3, 15))
    assert log["positions"] == [0, 5]
    assert content["totals"]["events"] == 6


def test_a_guideline_is_kept_six_years_after_it_was_last_in_effect(ledger: Ledger) -> None:
    story = Story("acme")
    story.guideline("1.0", datetime(2019, 1, 1, tzinfo=UTC))
    story.retire("1.0", datetime(2021, 6, 30, 12, 0, tzinfo=UTC))
    recorded_on(ledger, datetime(2021, 7, 1, tzinfo=UTC), story)

    [g] = retention.build(ledger.db, date(2027, 6, 29), tenant="acme").content["guidelines"]
    assert (g["retain_until"], g["may_leave_retention"]) == (date(2027, 6, 30), False)
    [g] = retention.build(ledger.db, date(2027, 6, 30), tenant="acme").content["guidelines"]
    assert g["may_leave_retention"] is True


def test_a_credential_still_in_effect_is_never_due(ledger: Ledger) -> None:
    story = Story("acme")
    story.credential("rad-1", "license", datetime(2010, 1, 1, tzinfo=UTC))
    recorded_on(ledger, datetime(2010, 1, 2, tzinfo=UTC), story)
    [c] = retention.build(ledger.db, date(2040, 1, 1), tenant="acme").content["credentials"]
    assert (c["status"], c["retain_until"], c["may_leave_retention"]) == ("in effect", None, False)


def test_a_legal_hold_on_the_log_keeps_everything(history: Ledger) -> None:
    hold = Story("acme")
    hold.add("retention.hold_placed", at(0), "legal", {"hold_id": "lh-1", "scope": {"log": "acme"},
                                                       "reason": "Litigation 2026-17", "approver": "gc-1"})  # fmt: skip
    recorded_on(history, datetime(2021, 1, 1, tzinfo=UTC), hold)
    content = retention.build(history.db, date(2030, 1, 1), tenant="acme").content
    assert content["totals"]["may_leave_retention"] == 0
    assert [h["hold_id"] for h in content["legal_holds"]] == ["lh-1"]

    release = Story("acme")
    release.add("retention.hold_released", at(0), "legal", {"hold_id": "lh-1", "scope": {"log": "acme"},
                                                            "reason": "Settled", "approver": "gc-1"})  # fmt: skip
    recorded_on(history, datetime(2022, 1, 1, tzinfo=UTC), release)
    assert may_leave(history, date(2030, 1, 1)) == 5 + 2  # the hold's own two records are due by then too


def test_a_hold_on_a_dataset_keeps_its_tenants_log(history: Ledger) -> None:
    hold = Story("acme")
    hold.add("retention.hold_placed", at(0), "legal", {"hold_id": "lh-2", "scope": {"dataset": "chest-ct-2026"},
                                                       "reason": "FDA inquiry", "approver": "gc-1"})  # fmt: skip
    recorded_on(history, datetime(2021, 1, 1, tzinfo=UTC), hold)
    [log] = retention.build(history.db, date(2030, 1, 1), tenant="acme").content["logs"]
    assert (log["on_legal_hold"], log["may_leave_retention"]) == (True, 0)


def test_the_report_names_its_integrity_status(history: Ledger) -> None:
    from ledger.storage.verify import record, verify

    assert retention.build(history.db, date(2026, 1, 1)).content["integrity"]["status"] == "never verified"
    report = verify(history.db)
    record(history.db, report, datetime.now(UTC), datetime.now(UTC))
    integrity = retention.build(history.db, date(2026, 1, 1)).content["integrity"]
    assert (integrity["status"], integrity["events_checked"], integrity["logs_grown_since"]) == (
        "intact",
        6,
        [],
    )


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_generating_a_report_records_its_digest(history: Ledger, fmt: str) -> None:
    generated = retention_report(history, date(2026, 3, 15), fmt, tenant="acme", requested_by="auditor-1")

    assert generated.sha256 == hashlib.sha256(generated.body).hexdigest()
    stored = history.queries.get("acme", generated.receipt.event_id).document["event"]
    assert stored["type"] == "ledger.report_generated"
    assert stored["data"]["sha256"] == generated.sha256
    assert stored["data"]["parameters"] == {"as_of": "2026-03-15", "format": fmt, "scope": "acme",
                                            "requested_by": "auditor-1"}  # fmt: skip


def test_the_three_formats_carry_the_same_totals(history: Ledger) -> None:
    report = retention.build(history.db, date(2026, 3, 15), tenant="acme")
    as_json = json.loads(render(report, "json"))
    rows = list(csv.DictReader(io.StringIO(render(report, "csv").decode())))
    page = render(report, "html").decode()

    assert as_json["totals"] == {"events": 6, "may_leave_retention": 5, "held": 0}
    total = next(r for r in rows if r["section"] == "total")
    assert (total["events"], total["may_leave_retention"]) == ("6", "5")
    assert "<h1>Record retention report</h1>" in page
    assert "2026-03-15" in page
    assert "0–5" in page  # the log positions covered


def test_a_report_as_of_a_past_date_ignores_what_came_later(history: Ledger) -> None:
    later = Story("acme")
    later.view("ann-1", "item-9", at(0))
    later.credential("rad-9", "license", datetime(2024, 1, 1, tzinfo=UTC))
    recorded_on(history, datetime(2024, 1, 1, tzinfo=UTC), later)
    content = retention.build(history.db, date(2023, 12, 31), tenant="acme").content
    assert content["totals"]["events"] == 6
    assert content["credentials"] == []


def test_a_tenants_report_names_no_other_tenants_log(history: Ledger) -> None:
    from ledger.storage.verify import record, verify

    other = Story("beta")
    other.view("ann-1", "item-1", at(0))
    recorded_on(history, datetime(2021, 1, 1, tzinfo=UTC), other)
    report = verify(history.db)
    report.logs[[r.log for r in report.logs].index("beta")].first_break = __import__(
        "ledger.domain.errors", fromlist=["VerificationBreak"]
    ).VerificationBreak("beta", 0, "planted for the test")
    record(history.db, report, datetime.now(UTC), datetime.now(UTC))

    integrity = retention.build(history.db, date(2026, 1, 1), tenant="acme").content["integrity"]
    assert integrity["status"] == "intact"
    assert "beta" not in json.dumps(integrity, default=str)
    assert retention.build(history.db, date(2026, 1, 1)).content["integrity"]["status"] == "BROKEN"


def test_a_tenant_with_no_log_has_no_report_and_gets_no_log(history: Ledger) -> None:
    from ledger.domain.errors import NotFound

    with pytest.raises(NotFound, match="tenant 'nosuch' has no log"):
        retention_report(history, date(2026, 1, 1), "json", tenant="nosuch", requested_by="auditor-1")
    with history.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ledger_log_heads WHERE log = 'nosuch'").fetchone() == (0,)


def test_rendering_records_nothing_until_the_report_is_recorded(history: Ledger) -> None:
    from ledger.reports.service import record, render_retention

    def size() -> int:
        with history.db.connect() as conn:
            return int(conn.execute("SELECT count(*) FROM ledger_events").fetchone()[0])

    before = size()
    rendered = render_retention(history, date(2026, 3, 15), "html", tenant="acme", requested_by="cli")
    assert size() == before
    generated = record(history, rendered)
    assert size() == before + 1
    assert (generated.body, generated.sha256) == (rendered.body, rendered.sha256)


def test_every_format_carries_the_whole_head_hash(history: Ledger) -> None:
    with history.db.connect() as conn:
        head = bytes(
            conn.execute("SELECT head_hash FROM ledger_log_heads WHERE log = 'acme'").fetchone()[0]
        ).hex()
    report = retention.build(history.db, date(2026, 3, 15), tenant="acme")
    assert [lg["head_hash"] for lg in json.loads(render(report, "json"))["logs"]] == [head]
    assert head in render(report, "html").decode()
