"""``bulk_export``: one export of more records than ``LEDGER_ANOMALY_BULK_EXPORT_RECORDS``."""

from __future__ import annotations

from ledger.projections.anomalies.facts import Facts, Rule, raise_anomaly, succeeded_access, text
from ledger.projections.state import Event

EXPORTED = "access.data_exported"


def check(facts: Facts, ev: Event) -> None:
    """Raise the anomaly for an export over the limit."""
    count = ev.data.get("record_count")
    if ev.type != EXPORTED or not succeeded_access(facts, ev) or not isinstance(count, int):
        return
    if count <= facts.settings.bulk_export_records:
        return
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.id,),
        f"{ev.actor} exported {count} records of {ev.data.get('resource')}"
        f" (more than {facts.settings.bulk_export_records})",
        [ev.id],
        dataset=text(ev.data.get("dataset")),
        item=text(ev.data.get("item")),
    )


RULE = Rule("bulk_export", "high", frozenset({EXPORTED}), check)
