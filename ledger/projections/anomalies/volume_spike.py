"""``volume_spike``: an actor's accesses of one day far above their own baseline.

Accesses are counted per actor and local day (``proj_access_daily``). A day's count above mean + k·σ
(``LEDGER_ANOMALY_VOLUME_SIGMAS``) of the actor's previous ``LEDGER_ANOMALY_VOLUME_WINDOW_DAYS`` days
(from the first of those with any access, quiet days counting 0), and at least
``LEDGER_ANOMALY_VOLUME_MIN_COUNT``, raises one anomaly for that day, at the access that crosses it; an
actor with fewer than ``LEDGER_ANOMALY_VOLUME_MIN_HISTORY_DAYS`` active days in the window raises none.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import date, timedelta

from ledger.projections.anomalies.facts import ACCESSES, Facts, Rule, local, raise_anomaly, succeeded_access
from ledger.projections.state import Event
from ledger.settings import AnomalySettings

TABLE = "proj_access_daily"


def threshold(history: Sequence[int], settings: AnomalySettings) -> float | None:
    """The count a day must exceed given the previous days' counts (oldest first), or None when the
    history is too short to judge."""
    first = next((i for i, n in enumerate(history) if n > 0), len(history))
    days = history[first:]
    if sum(1 for n in days if n > 0) < settings.volume_min_history_days:
        return None
    return max(
        statistics.fmean(days) + settings.volume_sigmas * statistics.pstdev(days),
        settings.volume_min_count - 1,
    )


def check(facts: Facts, ev: Event) -> None:
    """Count the access; raise the anomaly when the day's count crosses the threshold."""
    if not succeeded_access(facts, ev):
        return
    day = local(facts, ev).date()
    key = (ev.tenant, ev.actor, day)
    row = facts.daily.get(key)
    if row is None:
        row = facts.daily[key] = {
            "tenant": ev.tenant,
            "actor": ev.actor,
            "day": day,
            "accesses": 0,
            "first_event_id": ev.id,
        }
    row.update(accesses=row["accesses"] + 1, **ev.stamp())
    facts.touch(TABLE, key)
    limit = threshold(_history(facts, ev, day), facts.settings)
    if limit is None or row["accesses"] <= limit:
        return
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.actor, day.isoformat()),
        f"{ev.actor} made {row['accesses']} accesses on {day} (local), above their baseline of"
        f" {limit:.1f} over the previous {facts.settings.volume_window_days} days",
        [row["first_event_id"], ev.id],
    )


def _history(facts: Facts, ev: Event, day: date) -> list[int]:
    window = facts.settings.volume_window_days
    rows = (facts.daily.get((ev.tenant, ev.actor, day - timedelta(days=k))) for k in range(window, 0, -1))
    return [int(r["accesses"]) if r else 0 for r in rows]


RULE = Rule("volume_spike", "medium", ACCESSES, check)
