"""``unassigned_item``: an assignment-bound actor reads an item no active assignment gives them.

Annotators and reviewers (``LEDGER_ANOMALY_ASSIGNMENT_ROLES``) work on what they are assigned. An access
naming a dataset and item, by an actor acting in one of those roles, with no assignment to that actor
covering the item at the access's time, is an anomaly, one per actor and item. Auditors, security,
regulatory and admin readers are not bound to assignments and never raise it.
"""

from __future__ import annotations

from datetime import datetime

from ledger.projections.anomalies.facts import (
    ACCESSES,
    Facts,
    Row,
    Rule,
    raise_anomaly,
    role,
    succeeded_access,
    text,
)
from ledger.projections.state import Event


def covers(assignment: Row, actor: str, dataset: str, item: str, at: datetime) -> bool:
    """True if ``assignment`` gives ``actor`` the item at ``at`` (created by then, not yet revoked)."""
    return (
        assignment["assignee"] == actor
        and assignment["dataset"] == dataset
        and item in assignment["items"]
        and assignment["created_at"] <= at
        and (assignment["revoked_at"] is None or at < assignment["revoked_at"])
    )


def check(facts: Facts, ev: Event) -> None:
    """Raise the anomaly for an unassigned access."""
    dataset, item = text(ev.data.get("dataset")), text(ev.data.get("item"))
    if dataset is None or item is None or not succeeded_access(facts, ev):
        return
    if role(ev) not in facts.settings.assignment_roles:
        return
    at = ev.occurred_at
    if any(
        covers(a, ev.actor, dataset, item, at)
        for (tenant, _), a in facts.workflow.assignments.items()
        if tenant == ev.tenant
    ):
        return
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.actor, dataset, item),
        f"{ev.actor} ({role(ev)}) accessed {dataset}/{item} with no assignment covering it",
        [ev.id],
        dataset=dataset,
        item=item,
    )


RULE = Rule("unassigned_item", "medium", ACCESSES, check)
