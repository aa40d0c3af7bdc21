"""``login_failures``: ``LEDGER_ANOMALY_LOGIN_FAILURES`` failed logins by one actor within
``LEDGER_ANOMALY_LOGIN_FAILURE_MINUTES`` minutes, raised once per burst.

A burst is a run of failures each within the window of the latest before it (``proj_login_failures``
keeps those still within the window); it ends when a failure comes later than that. The anomaly is raised
at the failure that makes the count, with the failures in the window as evidence.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ledger.projections.anomalies.facts import Facts, Row, Rule, raise_anomaly
from ledger.projections.state import Event
from ledger.settings import AnomalySettings

FAILED = "auth.login_failed"
TABLE = "proj_login_failures"


def add_failure(
    burst: Row | None, at: datetime, event_id: str, settings: AnomalySettings
) -> tuple[Row, bool]:
    """The burst after a failure at ``at``, and whether it now first holds enough failures to raise."""
    window = timedelta(minutes=settings.login_failure_minutes)
    if burst is None or at > max(burst["times"]) + window:
        burst = {"times": [], "event_ids": [], "raised": False}
    failures = sorted([*zip(burst["times"], burst["event_ids"], strict=True), (at, event_id)])
    latest = failures[-1][0]
    kept = [(t, e) for t, e in failures if t >= latest - window]
    fire = not burst["raised"] and len(kept) >= settings.login_failures
    return {
        "times": [t for t, _ in kept],
        "event_ids": [e for _, e in kept],
        "raised": burst["raised"] or fire,
    }, fire


def check(facts: Facts, ev: Event) -> None:
    """Add the failure to the actor's burst; raise the anomaly when the burst first reaches the count."""
    if ev.type != FAILED:
        return
    key = (ev.tenant, ev.actor)
    burst, fire = add_failure(facts.bursts.get(key), ev.occurred_at, ev.id, facts.settings)
    facts.bursts[key] = {"tenant": ev.tenant, "actor": ev.actor, **burst, **ev.stamp()}
    facts.touch(TABLE, key)
    if fire:
        raise_anomaly(
            facts,
            RULE,
            ev,
            (ev.actor, burst["event_ids"][0]),
            f"{len(burst['event_ids'])} failed logins by {ev.actor} within"
            f" {facts.settings.login_failure_minutes} minutes",
            burst["event_ids"],
        )


RULE = Rule("login_failures", "medium", frozenset({FAILED}), check)
