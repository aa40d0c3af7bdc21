"""An anomaly's alert is a CloudEvent whose id is the anomaly id; filters of GET /v1/anomalies refuse what
no anomaly can have; a page's cursor names the anomaly after which the next page starts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ledger.alerts import alert_event
from ledger.domain.errors import ParameterInvalid
from ledger.kafka.bindings import encode
from ledger.projections.anomaly_queries import AnomalyFilter, _decode_anomaly_cursor, _encode_anomaly_cursor

ANOMALY = {
    "tenant": "t1", "anomaly_id": "break_glass:0123456789abcdef01234567", "rule": "break_glass",
    "severity": "high", "actor": "dr-a", "dataset": "ct", "item": None, "summary": "break-glass access",
    "evidence": ["ev-1"], "log": "t1", "position": 7, "status": "open",
    "occurred_at": datetime(2026, 12, 8, 3, 0, tzinfo=UTC), "raised_at": datetime(2026, 12, 8, 3, 0, 1, tzinfo=UTC),
}  # fmt: skip


def test_the_alert_is_a_structured_cloudevent_identified_by_the_anomaly() -> None:
    event = alert_event(ANOMALY, deployment="ledger.example")
    assert (event["specversion"], event["type"], event["id"]) == (
        "1.0",
        "ledger.anomaly_raised",
        ANOMALY["anomaly_id"],
    )
    assert event["source"] == "urn:ledger:ledger.example:t1"  # ids are unique per tenant, so per source
    assert event["time"] == "2026-12-08T03:00:01.000000Z"
    assert event["data"]["evidence"] == ["ev-1"]
    assert event["data"]["href"] == f"/v1/anomalies/{ANOMALY['anomaly_id']}"
    value, headers = encode(event, "structured")
    assert dict(headers)["content-type"].startswith(b"application/cloudevents+json")
    assert json.loads(value) == event


def test_the_same_anomaly_gives_the_same_alert() -> None:
    assert alert_event(ANOMALY, deployment="d") == alert_event(dict(ANOMALY), deployment="d")


@pytest.mark.parametrize(("name", "value"), [("rule", "not_a_rule"), ("status", "closed")])
def test_a_filter_no_anomaly_can_match_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ParameterInvalid) as refused:
        AnomalyFilter("t1", **{name: value})
    assert [e.field for e in refused.value.errors] == [name]


def test_the_cursor_names_log_position_and_anomaly() -> None:
    cursor = _encode_anomaly_cursor(ANOMALY)
    assert _decode_anomaly_cursor(cursor) == ("t1", 7, ANOMALY["anomaly_id"])
    with pytest.raises(ParameterInvalid):
        _decode_anomaly_cursor(cursor[:-3] + "!!!")
