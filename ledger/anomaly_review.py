"""Reviewing access anomalies on the record (HIPAA 164.308(a)(1)(ii)(D) information system activity review).

A review is an event: ``ledger.anomaly_reviewed`` (anomaly, reviewer, decision, sealed comment), appended to
the tenant's log through the one append service. The anomaly projection applies it in the same transaction,
so the status read back after the append is the one the review set. The handlers of ``ledger.api.anomalies``
call these functions and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.domain.internal import ANOMALY_REVIEWED, ledger_event
from ledger.projections.anomaly_queries import AnomalyFilter, AnomalyQueries

if TYPE_CHECKING:
    from ledger.runtime import Ledger
    from ledger.storage.append import Receipt


Row = dict[str, Any]


@dataclass(frozen=True)
class Review:
    """What a reviewer decided about one anomaly; ``comment`` is sealed before it is stored."""

    anomaly_id: str
    reviewer: str
    decision: str
    comment: str | None = None

    def data(self) -> Row:
        """The ``ledger.anomaly_reviewed`` data."""
        data: Row = {"anomaly_id": self.anomaly_id, "reviewer": self.reviewer, "decision": self.decision}
        if self.comment is not None:
            data["comment"] = self.comment
        return data


@dataclass(frozen=True)
class Reviewed:
    """Where a review was recorded, and the anomaly as it stands after it."""

    receipt: Receipt
    anomaly: Row


def list_anomalies(ledger: Ledger, flt: AnomalyFilter, *, cursor: str | None, limit: int) -> Row:
    """A page of the tenant's anomalies in log order and the cursor of the next page."""
    return AnomalyQueries(ledger.db).page(flt, cursor=cursor, limit=limit)


def show_anomaly(ledger: Ledger, tenant: str, anomaly_id: str) -> Row:
    """One anomaly of ``tenant`` with its evidence events as stored; ``NotFound`` otherwise."""
    return AnomalyQueries(ledger.db).with_evidence(tenant, anomaly_id)


def review_anomaly(ledger: Ledger, tenant: str, review: Review) -> Reviewed:
    """Append the review of an anomaly of ``tenant`` (``NotFound`` for any other) and read its new status."""
    queries = AnomalyQueries(ledger.db)
    queries.get(tenant, review.anomaly_id)  # another tenant's anomaly is not found: nothing is recorded
    event = ledger_event(
        ANOMALY_REVIEWED,
        tenant,
        review.data(),
        subject=review.anomaly_id,
        actor=review.reviewer,  # the reviewer, so GET /v1/events?actor= finds their reviews
        actorrole="security",
    )
    receipt = ledger.appender.append([event])[0]
    return Reviewed(receipt, queries.get(tenant, review.anomaly_id))
