"""Which anomalies are still to be sent (``ledger_anomaly_alerts``, migration 0008), and the CloudEvent of one.

An outbox read off the projection: an anomaly with no row in ``ledger_anomaly_alerts`` is unsent. The row is
written after the broker acknowledged the alert, in the transaction that chose the anomalies, so a crash in
between sends the alert again: at least once, and the CloudEvent ``id`` (the anomaly id, unique within its
``source``, one per tenant) lets a consumer drop the repeat (CloudEvents 1.0 §id).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

TOPIC = "ledger.alerts"
"""The Kafka topic alerts are produced to, keyed by tenant (one tenant's alerts stay in order)."""
ALERT_TYPE = "ledger.anomaly_raised"
BATCH = 500
"""Alerts chosen, sent and marked in one round."""
# One publisher at a time across every `ledger serve` and `ledger consume` of a database: two would send
# each alert twice. A transaction-level advisory lock is let go by the commit, and by a crash.
_LOCK = 0x6C65_6467_6572_0009  # "ledger", migration 0008

Row = dict[str, Any]

_FIELDS = (
    "anomaly_id", "rule", "severity", "actor", "dataset", "item", "summary", "evidence", "log", "position",
    "occurred_at", "raised_at", "status",
)  # fmt: skip


def lock(conn: psycopg.Connection[Any]) -> bool:
    """Take the publisher's lock for this transaction; ``False`` when another publisher holds it."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK,)).fetchone()
    return bool(row and row[0])


def pending(conn: psycopg.Connection[Any], limit: int = BATCH) -> list[Row]:
    """Anomalies not sent yet, oldest raised first."""
    columns = ", ".join(f"a.{c}" for c in ("tenant", *_FIELDS))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {columns} FROM proj_access_anomalies a"
            " WHERE NOT EXISTS (SELECT 1 FROM ledger_anomaly_alerts s"
            "                   WHERE s.tenant = a.tenant AND s.anomaly_id = a.anomaly_id)"
            " ORDER BY a.raised_at, a.tenant, a.anomaly_id LIMIT %s",
            (limit,),
        )
        return list(cur.fetchall())


def mark_sent(conn: psycopg.Connection[Any], anomalies: list[Row], topic: str) -> None:
    """Record that ``anomalies`` were acknowledged by the broker on ``topic``."""
    now = datetime.now(UTC)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ledger_anomaly_alerts (tenant, anomaly_id, topic, sent_at) VALUES (%s, %s, %s, %s)",
            [(a["tenant"], a["anomaly_id"], topic, now) for a in anomalies],
        )


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_event(anomaly: Row, *, deployment: str) -> Row:
    """The structured-mode CloudEvent of an anomaly (``tenant`` and the projection's columns)."""
    data = {k: anomaly[k] for k in _FIELDS}
    data["evidence"] = list(anomaly["evidence"])
    data["occurred_at"], data["raised_at"] = _time(anomaly["occurred_at"]), _time(anomaly["raised_at"])
    data["href"] = f"/v1/anomalies/{anomaly['anomaly_id']}"
    return {
        "specversion": "1.0",
        "id": anomaly["anomaly_id"],
        # Anomaly ids are unique within a tenant: the source names the deployment and the tenant.
        "source": f"urn:ledger:{deployment}:{anomaly['tenant']}",
        "type": ALERT_TYPE,
        "time": data["raised_at"],
        "subject": anomaly["anomaly_id"],
        "datacontenttype": "application/json",
        "tenant": anomaly["tenant"],
        "severity": anomaly["severity"],
        "data": data,
    }
