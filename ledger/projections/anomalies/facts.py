"""What the access rules read and change for one batch, and how a rule raises an anomaly.

``Facts`` holds the rows a batch needs (loaded by the access projector) and the anomalies raised so far;
rules change it and nothing else, so they can be tested over lists of events without a database.
Assignments and credential periods are the workflow projection's rows, kept in its ``State`` and changed by
its own rules (``ledger.projections.workflow.apply_events``) as the batch goes, so an access meets the
assignments and credentials on the record before it in the log, as a rebuild replays them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from ledger.projections.state import Event, State
from ledger.settings import AnomalySettings

Row = dict[str, Any]
Severity = Literal["low", "medium", "high"]

ACCESSES = frozenset({"access.data_viewed", "access.data_exported"})
"""Access to data, whether the ledger recorded it (source ``urn:ledger``) or a producer posted it."""


@dataclass(frozen=True)
class Rule:
    """One anomaly rule: its name (the ``rule`` of its anomalies), severity, the event types it reads."""

    name: str
    severity: Severity
    types: frozenset[str]
    check: Callable[[Facts, Event], None]


@dataclass
class Facts:
    """Rows a batch may read or change, keyed as their tables are; ``dirty`` names the changed ones."""

    settings: AnomalySettings = field(default_factory=AnomalySettings)
    workflow: State = field(default_factory=State)  # assignments and credential periods
    endings: dict[tuple[str, int], str] = field(default_factory=dict)  # (log, position) → event id
    daily: dict[tuple[str, str, date], Row] = field(default_factory=dict)
    bursts: dict[tuple[str, str], Row] = field(default_factory=dict)
    test_items: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    anomalies: dict[tuple[str, str], Row] = field(default_factory=dict)
    assigned: list[Event] = field(default_factory=list)  # assignment.created events of the batch
    dirty: dict[str, set[Any]] = field(default_factory=dict)

    def touch(self, table: str, key: tuple[Any, ...]) -> None:
        """Mark the row of ``table`` under ``key`` as changed."""
        self.dirty.setdefault(table, set()).add(key)

    def raised(self) -> list[Row]:
        """The anomalies raised or reviewed in this batch."""
        return [self.anomalies[k] for k in sorted(self.dirty.get("proj_access_anomalies", ()))]


def anomaly_id(rule: str, tenant: str, key: Iterable[str]) -> str:
    """``<rule>:<24 hex>`` of SHA-256 over the tenant and the rule's key: the same on every rebuild."""
    digest = hashlib.sha256(json.dumps([tenant, *key], separators=(",", ":")).encode()).hexdigest()
    return f"{rule}:{digest[:24]}"


def raise_anomaly(
    facts: Facts,
    rule: Rule,
    ev: Event,
    key: Iterable[str],
    summary: str,
    evidence: Iterable[str],
    *,
    dataset: str | None = None,
    item: str | None = None,
) -> bool:
    """Raise ``rule``'s anomaly under ``key`` on ``ev`` unless it is raised already; True if it is new."""
    ident = anomaly_id(rule.name, ev.tenant, key)
    if (ev.tenant, ident) in facts.anomalies:
        return False
    facts.anomalies[(ev.tenant, ident)] = {
        "tenant": ev.tenant,
        "anomaly_id": ident,
        "rule": rule.name,
        "severity": rule.severity,
        "actor": ev.actor,
        "dataset": dataset,
        "item": item,
        "summary": summary,
        "evidence": list(dict.fromkeys(evidence)),
        "log": ev.rec.log,
        "position": ev.rec.position,
        "occurred_at": ev.occurred_at,
        "raised_at": ev.rec.recorded_at,
        "status": "open",
        "reviewed_by": None,
        "reviewed_at": None,
        "review_event_id": None,
        "reviews": 0,
    }
    facts.touch("proj_access_anomalies", (ev.tenant, ident))
    return True


def review(facts: Facts, ev: Event) -> None:
    """``ledger.anomaly_reviewed``: the latest review's decision is the anomaly's status; an unknown id
    changes nothing."""
    key = (ev.tenant, str(ev.data["anomaly_id"]))
    row = facts.anomalies.get(key)
    if row is None:
        return
    row.update(
        status=ev.data["decision"],
        reviewed_by=ev.data["reviewer"],
        reviewed_at=ev.rec.recorded_at,
        review_event_id=ev.id,
        reviews=row["reviews"] + 1,
    )
    facts.touch("proj_access_anomalies", key)


def succeeded_access(facts: Facts, ev: Event) -> bool:
    """True for a view or export of data that succeeded, by an actor whose role the rules watch (not one of
    ``LEDGER_ANOMALY_EXEMPT_ROLES``, by default the witness polling checkpoints round the clock)."""
    return (
        ev.type in ACCESSES
        and ev.data.get("outcome") == "success"
        and role(ev) not in facts.settings.exempt_roles
    )


def role(ev: Event) -> str:
    """The role the actor acted in."""
    return str(ev.body["actorrole"])


def text(value: object) -> str | None:
    """``value`` if it is a string."""
    return value if isinstance(value, str) else None


def local(facts: Facts, ev: Event) -> datetime:
    """When ``ev`` happened, in its tenant's working-hours time zone."""
    return ev.occurred_at.astimezone(facts.settings.zone(ev.tenant))
