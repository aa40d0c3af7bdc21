"""Alerts: each new access anomaly sent to the Kafka topic ``ledger.alerts`` as a CloudEvent."""

from ledger.alerts.outbox import TOPIC, alert_event
from ledger.alerts.runner import AlertRunner, KafkaAlertSender, alert_runner, send_pending

__all__ = ["TOPIC", "AlertRunner", "KafkaAlertSender", "alert_event", "alert_runner", "send_pending"]
