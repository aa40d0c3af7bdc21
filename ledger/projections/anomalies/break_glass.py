"""``break_glass``: every emergency access (``access.break_glass``) is reviewed."""

from __future__ import annotations

from ledger.projections.anomalies.facts import Facts, Rule, raise_anomaly, text
from ledger.projections.state import Event

BREAK_GLASS = "access.break_glass"


def check(facts: Facts, ev: Event) -> None:
    """Raise the anomaly for a break-glass use."""
    if ev.type != BREAK_GLASS:
        return
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.id,),
        f"{ev.actor} used break-glass access to {ev.data.get('resource')}"
        f" (purpose {ev.data.get('purpose_of_use')})",
        [ev.id],
        dataset=text(ev.data.get("dataset")),
        item=text(ev.data.get("item")),
    )


RULE = Rule("break_glass", "medium", frozenset({BREAK_GLASS}), check)
