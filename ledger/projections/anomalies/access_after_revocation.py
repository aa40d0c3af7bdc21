"""``access_after_revocation``: access by an actor whose credential was revoked and who holds no valid one.

Credentials are the workflow projection's periods (``credential.granted`` / ``.renewed`` / ``.revoked`` /
``.expired``). The ledger has no account-disabled event: a revoked credential is how an actor's access is
withdrawn. An access at a time when one of the actor's credentials had been revoked and none of them was
valid raises one anomaly per revoked period, with the revocation and the first such access as evidence.
"""

from __future__ import annotations

from datetime import datetime

from ledger.projections.anomalies.facts import (
    ACCESSES,
    Facts,
    Row,
    Rule,
    raise_anomaly,
    succeeded_access,
    text,
)
from ledger.projections.state import Event


def valid(period: Row, at: datetime) -> bool:
    """True if the credential period is in force at ``at``."""
    return (
        period["valid_from"] <= at
        and (period["valid_until"] is None or at < period["valid_until"])
        and (period["ended_at"] is None or at < period["ended_at"])
    )


def revoked_without_valid(periods: list[Row], at: datetime) -> Row | None:
    """The latest period revoked by ``at``, if no period is valid at ``at``; else None."""
    if any(valid(p, at) for p in periods):
        return None
    revoked = [p for p in periods if p["ended_by"] == "revoked" and p["ended_at"] <= at]
    return max(revoked, key=lambda p: (p["ended_at"], p["credential_id"], p["period"]), default=None)


def check(facts: Facts, ev: Event) -> None:
    """Raise the anomaly for an access after a revocation."""
    if not succeeded_access(facts, ev):
        return
    period = revoked_without_valid(facts.workflow.periods.get((ev.tenant, ev.actor), []), ev.occurred_at)
    if period is None:
        return
    revocation = facts.endings.get((period["log"], int(period["position"])))
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.actor, period["credential_id"], str(period["period"])),
        f"{ev.actor} accessed {ev.data.get('resource')} after credential {period['credential_id']} was"
        f" revoked ({period['ended_at']:%Y-%m-%d %H:%M} UTC), holding no valid credential",
        [e for e in (revocation, ev.id) if e is not None],
        dataset=text(ev.data.get("dataset")),
        item=text(ev.data.get("item")),
    )


RULE = Rule("access_after_revocation", "high", ACCESSES, check)
