"""Access anomalies over PostgreSQL through the append service: each rule's planted pattern is raised with its
evidence and the case just below is not; the synthetic project raises none without plants and exactly one per
rule with them; reviews set the status; a rebuild gives the same rows."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ledger.domain.internal import ledger_event
from ledger.projections.anomalies import RULES
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger
from tests.anomaly_cases import CASES, AccessStory

TENANT = "acme"


def anomalies(ledger: Ledger) -> list[dict[str, Any]]:
    with psycopg.connect(ledger.db.url) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM proj_access_anomalies ORDER BY log, position, anomaly_id")
        return list(cur.fetchall())


def state(ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    access = next(p for p in all_projectors() if p.name == "access")
    out = {}
    with psycopg.connect(ledger.db.url) as conn, conn.cursor(row_factory=dict_row) as cur:
        for table in access.tables:
            cur.execute(f"SELECT * FROM {table}")
            out[table] = sorted(cur.fetchall(), key=repr)
    return out


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_planted_pattern_is_raised_with_its_evidence(ledger: Ledger, rule: str) -> None:
    story = AccessStory(TENANT)
    evidence = CASES[rule][0](story)
    for event in story.events:  # one event per append: every fact comes from the tables
        ledger.appender.append([event])

    (anomaly,) = anomalies(ledger)

    assert (anomaly["rule"], anomaly["evidence"], anomaly["status"]) == (rule, evidence, "open")
    assert anomaly["reviews"] == 0
    with psycopg.connect(ledger.db.url) as conn:
        raised_by = conn.execute(
            "SELECT event_id FROM ledger_events WHERE log = %s AND position = %s",
            (anomaly["log"], anomaly["position"]),
        ).fetchone()
    assert raised_by == (evidence[-1],)  # the event that raised it is its newest evidence


@pytest.mark.parametrize("rule", sorted(CASES))
def test_the_case_just_below_the_threshold_is_not_raised(ledger: Ledger, rule: str) -> None:
    story = AccessStory(TENANT)
    CASES[rule][1](story)
    ledger.appender.append(story.events)  # one batch: every fact comes from memory
    assert anomalies(ledger) == []


def test_the_synthetic_project_raises_no_anomaly_without_plants(ledger: Ledger) -> None:
    append_demo(ledger, plants=False)
    assert anomalies(ledger) == []


def test_the_demo_plants_one_anomaly_per_rule_reviews_set_their_status_and_a_rebuild_repeats_them(
    ledger: Ledger,
) -> None:
    append_demo(ledger, plants=True)
    raised = anomalies(ledger)
    assert sorted(a["rule"] for a in raised) == sorted(r.name for r in RULES)

    first, second = raised[0], raised[1]
    review(ledger, first["anomaly_id"], "benign")
    latest = review(ledger, first["anomaly_id"], "incident")
    review(ledger, second["anomaly_id"], "policy_violation")
    review(ledger, "break_glass:000000000000000000000000", "benign")  # names no anomaly: changes nothing
    reviewed = {a["anomaly_id"]: a for a in anomalies(ledger)}

    assert (reviewed[first["anomaly_id"]]["status"], reviewed[first["anomaly_id"]]["reviews"]) == (
        "incident",
        2,
    )
    assert reviewed[first["anomaly_id"]]["reviewed_by"] == "sec-1"
    assert reviewed[second["anomaly_id"]]["status"] == "policy_violation"
    untouched = [
        a for a in reviewed.values() if a["anomaly_id"] not in (first["anomaly_id"], second["anomaly_id"])
    ]
    assert {a["status"] for a in untouched} == {"open"}
    assert reviewed[first["anomaly_id"]]["review_event_id"] == latest

    before = state(ledger)
    rebuild(ledger.db, all_projectors())
    assert state(ledger) == before


def append_demo(ledger: Ledger, *, plants: bool) -> None:
    from ledger.domain.envelope import validate_event
    from ledger.synth.project import generate

    events = [validate_event(raw) for raw in generate(tenant=TENANT, events=20_000, seed=7, plants=plants)]
    for start in range(0, len(events), 1000):
        ledger.appender.append(events[start : start + 1000])


def review(ledger: Ledger, anomaly: str, decision: str) -> str:
    data = {"anomaly_id": anomaly, "reviewer": "sec-1", "decision": decision}
    (receipt,) = ledger.appender.append([ledger_event("ledger.anomaly_reviewed", TENANT, data)])
    return receipt.event_id
