"""Reading the access anomalies (``proj_access_anomalies``): a filtered page, and one anomaly with its evidence.

Every query is scoped to one tenant: another tenant's anomaly is not found, exactly like one that does not
exist. Pages follow the log (``log, position, anomaly_id``), as compliance flags do, so a cursor never skips
or repeats an anomaly raised while a reader pages. ``since`` and ``until`` bound ``raised_at``, the time the
ledger recorded the event that raised the anomaly (``until`` exclusive): that is when a reviewer could first
have seen it, and unlike a producer's ``occurred_at`` it cannot be back-dated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.errors import FieldError, NotFound, ParameterInvalid
from ledger.domain.events import ANOMALY_DECISIONS
from ledger.domain.logs import owns_log
from ledger.projections.anomalies import RULES
from ledger.projections.tables import fetch_rows
from ledger.storage.database import Database
from ledger.storage.queries import EventQueries, decode_cursor, encode_cursor

Row = dict[str, Any]

ANOMALY_RULES = tuple(rule.name for rule in RULES)
"""The rule names (issue 9's shared contract), the values the ``rule`` filter accepts."""
DECISIONS = ANOMALY_DECISIONS
STATUSES = ("open", *DECISIONS)
SEVERITIES = ("low", "medium", "high")

_FIELDS = (
    "anomaly_id",
    "rule",
    "severity",
    "actor",
    "dataset",
    "item",
    "summary",
    "evidence",
    "log",
    "position",
    "occurred_at",
    "raised_at",
    "status",
    "reviewed_by",
    "reviewed_at",
    "review_event_id",
    "reviews",
)
_COLUMNS = ", ".join(_FIELDS)


@dataclass(frozen=True)
class AnomalyFilter:
    """Filters of ``GET /v1/anomalies``; ``since``/``until`` bound ``raised_at`` (``until`` exclusive)."""

    tenant: str
    rule: str | None = None
    actor: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        """Refuse a rule or status no anomaly can have, naming the parameter (it would match nothing)."""
        for name, value, allowed in (("rule", self.rule, ANOMALY_RULES), ("status", self.status, STATUSES)):
            if value is not None and value not in allowed:
                msg = f"{value!r} is not one of {', '.join(allowed)}"
                raise ParameterInvalid(f"{name} {msg}", errors=[FieldError(name, msg)])


class AnomalyQueries:
    """Read side of the anomaly projection, always scoped to one tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def page(self, flt: AnomalyFilter, *, cursor: str | None = None, limit: int = 100) -> Row:
        """Anomalies matching ``flt`` in log order, ``limit`` at a time, and the cursor of the next page."""
        clauses, params = ["tenant = %s"], [flt.tenant]
        for column, value in (("rule", flt.rule), ("actor", flt.actor), ("status", flt.status)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        bounds: list[Any] = []
        if flt.since is not None:
            clauses.append("raised_at >= %s")
            bounds.append(flt.since)
        if flt.until is not None:
            clauses.append("raised_at < %s")
            bounds.append(flt.until)
        if cursor is not None:
            log, position, anomaly_id = _decode_anomaly_cursor(cursor)
            if not owns_log(flt.tenant, log):  # another tenant's cursor continues nothing here
                return {"anomalies": [], "next_cursor": None}
            clauses.append("(log, position, anomaly_id) > (%s, %s, %s)")
            bounds.extend([log, position, anomaly_id])
        sql = (
            f"SELECT {_COLUMNS} FROM proj_access_anomalies WHERE {' AND '.join(clauses)}"
            " ORDER BY log, position, anomaly_id LIMIT %s"
        )
        with self._db.connect() as conn, conn.transaction():
            rows = fetch_rows(conn, sql, (*params, *bounds, limit + 1))
        page = rows[:limit]
        nxt = _encode_anomaly_cursor(page[-1]) if len(rows) > limit and page else None
        return {"anomalies": page, "next_cursor": nxt}

    def get(self, tenant: str, anomaly_id: str) -> Row:
        """One anomaly, or ``NotFound`` (also for another tenant's)."""
        with self._db.connect() as conn, conn.transaction():
            rows = fetch_rows(
                conn,
                f"SELECT {_COLUMNS} FROM proj_access_anomalies WHERE tenant = %s AND anomaly_id = %s",
                (tenant, anomaly_id),
            )
        if not rows:
            msg = f"no anomaly {anomaly_id!r} in tenant {tenant!r}"
            raise NotFound(msg)
        return rows[0]

    def with_evidence(self, tenant: str, anomaly_id: str) -> Row:
        """One anomaly and its evidence events as stored (sealed values stay sealed), oldest first."""
        anomaly = self.get(tenant, anomaly_id)
        events = EventQueries(self._db).many(tenant, list(anomaly["evidence"]))
        return {**anomaly, "evidence_events": [e.as_dict() for e in events]}


def _encode_anomaly_cursor(row: Row) -> str:
    # One event can raise anomalies of several rules, so the cursor names the anomaly too.
    return encode_cursor(f"{row['log']}\n{row['anomaly_id']}", row["position"])


def _decode_anomaly_cursor(cursor: str) -> tuple[str, int, str]:
    combined, position = decode_cursor(cursor)
    log, _, anomaly_id = combined.partition("\n")
    return log, position, anomaly_id
