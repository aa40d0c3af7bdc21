"""The Kafka commands as an operator runs them: ``ledger produce``, ``ledger demo --via-kafka``,
``ledger consume``, then ``ledger verify``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_event
from tests.integration.kafka.conftest import (
    TopicFactory,
    count_events,
    ids_in_log_order,
    ledger_env,
    run_ledger,
)


def test_produce_demo_and_consume_from_the_command_line(
    database_url: str, make_topics: TopicFactory, kafka_client: str, tmp_path: Path, tenant: str
) -> None:
    topics = make_topics(2)
    env = ledger_env(tmp_path / "home", database_url, topics, kafka_client)
    events = [make_event(tenant, "annotation.created") for _ in range(5)]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in events[:3]) + "\n")
    binary = tmp_path / "binary.jsonl"
    binary.write_text("".join(json.dumps(e) + "\n" for e in events[3:]))

    produced = run_ledger(env, "produce", str(jsonl))
    assert produced.returncode == 0, produced.stderr
    assert "sent 3 events" in produced.stderr
    assert run_ledger(env, "produce", "--binary", str(binary)).returncode == 0
    demo = run_ledger(env, "demo", "--via-kafka", "--events", "400", "--tenant", "demo-t")
    assert demo.returncode == 0, demo.stderr
    assert "sent 400 events" in demo.stdout

    consumed = run_ledger(env, "consume", "--stop-after-idle", "4", timeout=180)
    assert consumed.returncode == 0, consumed.stderr
    assert "consumed 405 messages" in consumed.stderr
    assert "status group=" in consumed.stderr  # the status line: position and lag per partition
    assert ids_in_log_order(database_url, tenant) == [e["id"] for e in events]
    assert count_events(database_url) == 405
    verified = run_ledger(env, "verify")
    assert verified.returncode == 0, verified.stdout

    # Running it again finds nothing new: the stored offsets say where it stands.
    again = run_ledger(env, "consume", "--stop-after-idle", "3", timeout=180)
    assert "consumed 0 messages" in again.stderr, again.stderr
    assert count_events(database_url) == 405


def test_produce_refuses_a_line_that_is_not_json(
    database_url: str, make_topics: TopicFactory, tmp_path: Path
) -> None:
    topics = make_topics(1)
    env = ledger_env(tmp_path / "home", database_url, topics, "kafka-python")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(make_event("acme", "annotation.created")) + "\n{oops\n")
    result = run_ledger(env, "produce", str(bad))
    assert result.returncode == 2
    assert "line 2" in result.stderr
    assert "the 1 event(s) before it were sent" in result.stderr


def test_consume_without_a_broker_configured_says_what_to_set(database_url: str, make_topics: TopicFactory,
                                                              tmp_path: Path) -> None:  # fmt: skip
    env = ledger_env(tmp_path / "home", database_url, make_topics(1), "kafka-python")
    del env["LEDGER_KAFKA_BOOTSTRAP"]
    result = run_ledger(env, "consume")
    assert result.returncode == 2
    assert "LEDGER_KAFKA_BOOTSTRAP" in result.stderr
