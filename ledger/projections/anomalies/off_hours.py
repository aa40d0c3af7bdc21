"""``off_hours``: access outside the tenant's working hours.

Hours and working days are ``LEDGER_ANOMALY_WORKING_HOURS`` / ``_WORKING_DAYS`` in the tenant's time zone
(``LEDGER_ANOMALY_TENANT_TIMEZONES``, else ``LEDGER_ANOMALY_TIMEZONE``), read at the access's own time. One
anomaly per actor and local day, raised by the first access outside the hours that day.
"""

from __future__ import annotations

from datetime import datetime

from ledger.projections.anomalies.facts import (
    ACCESSES,
    Facts,
    Rule,
    local,
    raise_anomaly,
    succeeded_access,
    text,
)
from ledger.projections.state import Event
from ledger.settings import WEEKDAYS, AnomalySettings


def outside_hours(at: datetime, settings: AnomalySettings) -> bool:
    """True if local time ``at`` falls on a day off or outside [start, end) of a working day."""
    return at.weekday() not in settings.working_days or not (
        settings.workday_start <= at.time() < settings.workday_end
    )


def check(facts: Facts, ev: Event) -> None:
    """Raise the anomaly for the actor's first off-hours access of the day."""
    if not succeeded_access(facts, ev):
        return
    at = local(facts, ev)
    if not outside_hours(at, facts.settings):
        return
    dataset, item = text(ev.data.get("dataset")), text(ev.data.get("item"))
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.actor, at.date().isoformat()),
        f"{ev.actor} accessed {ev.data.get('resource')} on {WEEKDAYS[at.weekday()]} {at:%Y-%m-%d %H:%M}"
        f" ({at.tzinfo}), outside working hours",
        [ev.id],
        dataset=dataset,
        item=item,
    )


RULE = Rule("off_hours", "low", ACCESSES, check)
