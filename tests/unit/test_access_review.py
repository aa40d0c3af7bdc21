"""The access-review report's pure parts: weeks of a range, what was raised, reviewed and left open, rendering."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ledger.domain.errors import ParameterInvalid
from ledger.reports.access_review import check_range, periods, report, summarize
from ledger.reports.report import Report, render

NOW = datetime(2027, 1, 1, tzinfo=UTC)


def anomaly(anomaly_id: str, raised: datetime, *, rule: str = "break_glass", severity: str = "high",
            actor: str = "dr-a", tenant: str = "t1") -> dict[str, Any]:  # fmt: skip
    return {"tenant": tenant, "anomaly_id": anomaly_id, "rule": rule, "severity": severity, "actor": actor,
            "dataset": "ct", "item": "1.2.3", "raised_at": raised}  # fmt: skip


def review(
    anomaly_id: str, when: datetime, decision: str = "benign", reviewer: str = "sec-1"
) -> dict[str, Any]:
    return {"tenant": "t1", "anomaly_id": anomaly_id, "reviewer": reviewer, "decision": decision,
            "reviewed_at": when, "event_id": f"ledger:{anomaly_id}:{when.isoformat()}"}  # fmt: skip


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_periods_are_iso_weeks_cut_at_the_ends_of_the_range() -> None:
    # 2026-12-02 is a Wednesday; 2026-12-07 a Monday.
    assert periods(date(2026, 12, 2), date(2026, 12, 15)) == [
        (date(2026, 12, 2), date(2026, 12, 6)),
        (date(2026, 12, 7), date(2026, 12, 13)),
        (date(2026, 12, 14), date(2026, 12, 15)),
    ]
    assert periods(date(2026, 12, 9), date(2026, 12, 9)) == [(date(2026, 12, 9), date(2026, 12, 9))]


@pytest.mark.parametrize(("first", "last"), [(date(2026, 12, 9), date(2026, 12, 8)),
                                             (date(2015, 1, 1), date(2026, 1, 1))])  # fmt: skip
def test_a_range_backwards_or_too_long_is_refused_naming_to(first: date, last: date) -> None:
    with pytest.raises(ParameterInvalid) as refused:
        check_range(first, last)
    assert [e.field for e in refused.value.errors] == ["to"]


def test_raised_reviewed_and_open_per_week() -> None:
    first, last = date(2026, 12, 7), date(2026, 12, 20)  # two whole weeks
    anomalies = [
        anomaly("break_glass:1", at(date(2026, 11, 30))),  # before the range, still open at its end
        anomaly("break_glass:2", at(date(2026, 12, 8))),
        anomaly("login_failures:3", at(date(2026, 12, 9)), rule="login_failures", severity="medium"),
        anomaly("off_hours:4", at(date(2026, 12, 15)), rule="off_hours", severity="low"),
    ]
    reviews = [
        review("break_glass:2", at(date(2026, 12, 10)), "policy_violation"),
        review("off_hours:4", at(date(2026, 12, 16)), "benign"),
        review("off_hours:4", at(date(2026, 12, 17)), "incident", reviewer="sec-2"),  # a second look
    ]
    content = summarize(anomalies, reviews, first, last, now=NOW)

    week1, week2 = content["periods"]
    assert week1["raised"] == {"total": 2, "by_rule": {"break_glass": 1, "login_failures": 1},
                               "by_severity": {"low": 0, "medium": 1, "high": 1}}  # fmt: skip
    assert [
        (r["anomaly_id"], r["reviewer"], r["decision"], r["rule"]) for r in week1["reviewed"]["reviews"]
    ] == [("break_glass:2", "sec-1", "policy_violation", "break_glass")]
    assert week2["reviewed"]["by_decision"] == {"benign": 1, "policy_violation": 0, "incident": 1}
    assert content["totals"] == {"raised": 3, "reviewed": 3, "open_at_end": 2}
    still_open = {a["anomaly_id"]: a["age_days"] for a in content["open_at_end"]}
    # Ages at the end of the range (2026-12-21T00:00Z), not at the time the report is generated.
    assert still_open == {"break_glass:1": 20.5, "login_failures:3": 11.5}


def test_an_anomaly_reviewed_after_the_range_was_open_at_its_end() -> None:
    first = last = date(2026, 12, 8)
    content = summarize([anomaly("a:1", at(last, 9))], [review("a:1", at(last + timedelta(days=1)))], first, last,
                        now=NOW)  # fmt: skip
    assert [a["anomaly_id"] for a in content["open_at_end"]] == ["a:1"]
    assert content["totals"]["reviewed"] == 0


def test_ages_of_a_range_not_ended_yet_are_taken_now() -> None:
    today = date(2026, 12, 8)
    now = at(today, 18)
    content = summarize([anomaly("a:1", at(today, 6))], [], today, today, now=now)
    assert content["open_as_of"] == now
    assert content["open_at_end"][0]["age_days"] == 0.5


def _report() -> Report:
    first, last = date(2026, 12, 7), date(2026, 12, 13)
    anomalies = [
        anomaly("break_glass:1", at(date(2026, 12, 8)), actor="=HYPERLINK(<b>x</b>)"),
        anomaly("off_hours:2", at(date(2026, 12, 9)), rule="off_hours"),
    ]
    content = summarize(
        anomalies, [review("off_hours:2", at(date(2026, 12, 10)), "incident")], first, last, now=NOW
    )
    return report(content, "t1", NOW)


def test_json_holds_the_content() -> None:
    doc = json.loads(render(_report(), "json"))
    assert doc["report"] == "access_review"
    assert doc["totals"] == {"raised": 2, "reviewed": 1, "open_at_end": 1}
    assert doc["periods"][0]["reviewed"]["reviews"][0]["decision"] == "incident"
    assert doc["open_at_end"][0]["raised_at"] == "2026-12-08T12:00:00+00:00"


def test_csv_has_a_row_per_review_and_open_anomaly_and_no_formula() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(), "csv").decode())))
    assert [(r["anomaly_id"], r["decision"]) for r in rows if r["section"] == "review"] == [
        ("off_hours:2", "incident")
    ]
    [still_open] = [r for r in rows if r["section"] == "open"]
    assert still_open["anomaly_id"] == "break_glass:1"
    assert still_open["actor"] == "'=HYPERLINK(<b>x</b>)"  # a spreadsheet shows it, never runs it
    assert {r["key"]: r["count"] for r in rows if r["section"] == "total"} == {
        "raised": "2", "reviewed": "1", "open_at_end": "1",
    }  # fmt: skip


def test_html_is_a_page_with_every_value_escaped() -> None:
    page = render(_report(), "html").decode()
    assert page.startswith("<!doctype html>")
    assert "break_glass:1" in page
    assert "incident" in page
    assert "<b>x</b>" not in page
    assert "=HYPERLINK(&lt;b&gt;x&lt;/b&gt;)" in page


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        render(_report(), "pdf")
