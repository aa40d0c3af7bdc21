"""Each new access anomaly is sent to the ``ledger.alerts`` topic of a real Kafka-protocol broker as a
structured CloudEvent whose id is the anomaly id, and marked sent only once the broker acknowledged it."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import psycopg
import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from ledger.alerts import TOPIC, KafkaAlertSender, alert_runner, send_pending
from ledger.domain.envelope import validate_event
from ledger.domain.errors import LedgerError
from ledger.runtime import Ledger
from tests.factories import example_event
from tests.integration.kafka.conftest import read_topic, wait_until


def _topic(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ledger-tests")
    with contextlib.suppress(Exception):  # made by an earlier test of this session already
        admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    admin.close()


def _sent(database_url: str, tenant: str) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT anomaly_id FROM ledger_anomaly_alerts WHERE tenant = %s AND topic = %s", (tenant, TOPIC)
        ).fetchall()
    return [str(r[0]) for r in rows]


def _anomaly_ids(database_url: str, tenant: str) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT anomaly_id FROM proj_access_anomalies WHERE tenant = %s", (tenant,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_new_anomaly_appears_on_the_alerts_topic(
    ledger: Ledger, database_url: str, tenant: str, kafka_bootstrap: str, kafka_client: str
) -> None:
    _topic(kafka_bootstrap)
    kafka = dataclasses.replace(ledger.settings.kafka, client=kafka_client)
    settings = dataclasses.replace(ledger.settings, kafka_bootstrap=kafka_bootstrap, kafka=kafka)
    glass = example_event("access.break_glass", tenant=tenant)
    ledger.appender.append([validate_event(glass)])
    [anomaly_id] = [a for a in _anomaly_ids(database_url, tenant) if a.startswith("break_glass:")]
    assert _sent(database_url, tenant) == []

    runner = alert_runner(settings, ledger.db)
    assert runner is not None
    with runner:  # the publisher thread `ledger serve` and `ledger consume` run
        wait_until(
            lambda: anomaly_id in _sent(database_url, tenant), timeout=60, what="the alert to be marked sent"
        )

    records = [r for r in read_topic(kafka_bootstrap, TOPIC, expect=1) if r.key == tenant.encode()]
    alerts = [json.loads(r.value) for r in records]
    [alert] = [a for a in alerts if a["id"] == anomaly_id]
    assert (alert["specversion"], alert["type"], alert["tenant"]) == ("1.0", "ledger.anomaly_raised", tenant)
    assert alert["source"] == f"urn:ledger:{settings.checkpoints.deployment}:{tenant}"
    assert alert["data"]["rule"] == "break_glass"
    assert alert["data"]["evidence"] == [glass["id"]]
    assert dict(records[0].headers)["content-type"].startswith(b"application/cloudevents+json")
    # Marked sent: the next round sends nothing again.
    sender = KafkaAlertSender(kafka_bootstrap, kafka, deployment=settings.checkpoints.deployment)
    try:
        assert send_pending(ledger.db, sender) == 0
    finally:
        sender.close()


def test_an_alert_the_broker_did_not_acknowledge_stays_unsent(
    ledger: Ledger, database_url: str, tenant: str
) -> None:
    ledger.appender.append([validate_event(example_event("access.break_glass", tenant=tenant))])
    kafka = dataclasses.replace(ledger.settings.kafka, client="kafka-python")
    # Nothing listens on port 9 (discard): no acknowledgement ever comes.
    sender = KafkaAlertSender("127.0.0.1:9", kafka, deployment="ledger.local")
    try:
        with pytest.raises(LedgerError):
            send_pending(ledger.db, sender)
    finally:
        with contextlib.suppress(Exception):
            sender.close()
    assert _sent(database_url, tenant) == []
