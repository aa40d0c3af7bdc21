"""The access-anomaly rules as pure functions of a history: each planted pattern is found with its evidence,
the case just below its threshold is not (no database: ``apply_events`` over in-memory facts)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from ledger.domain.envelope import ReceivedEvent
from ledger.projections.access import apply_events
from ledger.projections.anomalies import RULES
from ledger.projections.anomalies.facts import Facts, anomaly_id
from ledger.projections.anomalies.login_failures import add_failure
from ledger.projections.anomalies.off_hours import outside_hours
from ledger.projections.anomalies.volume_spike import threshold
from ledger.projections.state import Event
from ledger.settings import AnomalySettings
from ledger.storage.append import Recorded
from tests.anomaly_cases import CASES, AccessStory

RECORDED = datetime(2026, 12, 1, tzinfo=UTC)


def project(events: list[ReceivedEvent], settings: AnomalySettings | None = None) -> Facts:
    facts = Facts(settings=settings or AnomalySettings())
    batch = []
    for position, received in enumerate(events):
        body = dict(received.raw)
        batch.append(Event(Recorded(f"tenant/{body['tenant']}", position, RECORDED, body), body))
    apply_events(facts, batch)
    return facts


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_planted_pattern_raises_one_anomaly_with_its_evidence(rule: str) -> None:
    story = AccessStory("acme")
    evidence = CASES[rule][0](story)
    (anomaly,) = project(story.events).anomalies.values()
    assert anomaly["rule"] == rule
    assert anomaly["evidence"] == evidence
    assert anomaly["status"] == "open"
    assert anomaly["anomaly_id"].startswith(f"{rule}:")
    assert anomaly["severity"] == next(r.severity for r in RULES if r.name == rule)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_the_case_just_below_each_threshold_raises_nothing(rule: str) -> None:
    story = AccessStory("acme")
    CASES[rule][1](story)
    assert project(story.events).anomalies == {}


def test_every_rule_has_a_case() -> None:
    assert sorted(r.name for r in RULES) == sorted(CASES)


def test_anomaly_ids_are_stable_and_apart_per_tenant() -> None:
    assert anomaly_id("bulk_export", "acme", ["e1"]) == anomaly_id("bulk_export", "acme", ["e1"])
    assert anomaly_id("bulk_export", "acme", ["e1"]) != anomaly_id("bulk_export", "beta", ["e1"])
    assert len(anomaly_id("bulk_export", "acme", ["e1"]).split(":")[1]) == 24


def test_working_hours_follow_the_tenant_time_zone() -> None:
    settings = AnomalySettings(tenant_timezones={"acme": "America/New_York"})
    story = AccessStory("acme")
    story.access("auditor-1", datetime(2026, 3, 2, 13, 0, tzinfo=UTC), role="auditor")  # 08:00 in New York
    assert project(story.events, settings).anomalies == {}
    story.access("auditor-1", datetime(2026, 3, 2, 11, 0, tzinfo=UTC), role="auditor")  # 06:00 there
    assert [a["rule"] for a in project(story.events, settings).anomalies.values()] == ["off_hours"]


def test_outside_hours_and_days() -> None:
    s = AnomalySettings(workday_start=time(7), workday_end=time(19), working_days=frozenset(range(5)))
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    assert not outside_hours(monday.replace(hour=7), s)
    assert outside_hours(monday.replace(hour=6, minute=59), s)
    assert outside_hours(monday.replace(hour=19), s)
    assert outside_hours((monday + timedelta(days=5)).replace(hour=10), s)  # Saturday


def test_volume_threshold_needs_history_and_a_minimum() -> None:
    s = AnomalySettings(volume_min_count=50, volume_min_history_days=7, volume_sigmas=3)
    assert threshold([20] * 6, s) is None  # six days of history are too few
    assert threshold([0] * 10 + [20] * 7, s) == 49  # 20 +- 0, but at least 50 must be counted
    high = threshold([100, 40] * 5, s)
    assert high == pytest.approx(70 + 3 * 30)


def test_a_burst_of_failures_raises_once_and_a_late_one_starts_a_new_burst() -> None:
    s = AnomalySettings(login_failures=3, login_failure_minutes=10)
    t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    burst, fired = None, []
    for k, minute in enumerate([0, 4, 9, 10, 30]):
        burst, fire = add_failure(burst, t + timedelta(minutes=minute), f"e{k}", s)
        fired.append(fire)
    assert fired == [False, False, True, False, False]
    assert burst["event_ids"] == ["e4"]
