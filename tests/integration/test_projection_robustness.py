"""Events older code accepted, holding times or integers no projection can hold, never break a reader.

Validation now refuses such values, but the log keeps what was accepted before, forever. These tests put
such events into the log as the old code did (through the append service, around validation), then call
every reader through the real HTTP server and again after a rebuild: nothing answers 5xx, and each such
event is flagged ``unprojectable_event`` instead of being applied.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from psycopg.rows import dict_row

from ledger.domain.canonical import canonicalize
from ledger.domain.envelope import ReceivedEvent
from ledger.domain.errors import StorageRefused
from ledger.domain.fields import in_time_range, parse_rfc3339
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.reports import retention
from ledger.runtime import Ledger
from ledger.storage import migrate
from ledger.storage.database import Database
from tests.conftest import TokenFactory, fresh_database
from tests.integration.test_projections import snapshot
from tests.stories import DATASET, Story, at

EARLY = "0001-01-01T00:00:00+14:00"  # year 0 once in UTC: PostgreSQL stores it, Python cannot read it back
LATE = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC
OUT_OF_RANGE = [EARLY, LATE, "1850-06-01T00:00:00Z"]  # the last one is holdable, but outside the rule
TOO_BIG = 2**31


def accepted_by_old_code(event: ReceivedEvent, *, time: str | None = None, **data: Any) -> ReceivedEvent:
    """``event`` with values today's validation refuses, as the code before it accepted them."""
    raw = json.loads(json.dumps(event.raw))
    raw["data"].update(data)
    envelope = event.envelope
    if time is not None:
        raw["time"] = time
        envelope = envelope.model_copy(update={"time": parse_rfc3339(time)})
    # The canonical bytes validation keeps follow the raw JSON, as the old code computed them from it.
    return dataclasses.replace(event, raw=raw, envelope=envelope, canonical=canonicalize(raw))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def read_everything(http: httpx.Client, auditor: dict[str, str], item: str) -> dict[str, httpx.Response]:
    """Every projection reader of the tenant, over HTTP."""
    return {
        "provenance": http.get(f"/v1/items/{DATASET}/{item}/provenance", headers=auditor),
        "labels": http.get(f"/v1/items/{DATASET}/{item}/labels", headers=auditor),
        "credentials": http.get("/v1/annotators/ann-1/credentials", headers=auditor),
        "credentials then": http.get(
            "/v1/annotators/ann-1/credentials", params={"as_of": "2026-03-02T09:00:00Z"}, headers=auditor
        ),
        "guidelines": http.get("/v1/guidelines", headers=auditor),
        "flags": http.get("/v1/compliance/flags", headers=auditor),
        **{
            f"retention {fmt}": http.get("/v1/reports/retention", params={"format": fmt}, headers=auditor)
            for fmt in ("json", "csv", "html")
        },
    }


def unprojectable(http: httpx.Client, auditor: dict[str, str]) -> list[dict[str, Any]]:
    response = http.get("/v1/compliance/flags", params={"kind": "unprojectable_event"}, headers=auditor)
    assert response.status_code == 200, response.text
    flags: list[dict[str, Any]] = response.json()["flags"]
    return flags


def history(tenant: str, bad: str) -> tuple[Story, dict[str, str]]:
    """One tenant's history with an unholdable value in every place a projection reads one."""
    story = Story(tenant)
    story.guideline("1.0", at(-100))
    story.credential("ann-1", "internal_level", at(-10), level="senior")
    ids = {
        "credential": story.credential("ann-1", "license", at(-10), cred="cred-bad"),
        "guideline": story.guideline("1.1", at(-50), supersedes="1.0"),
        "annotation time": story.annotate("ann-1", "item-1", "a1", at(1)),
        "annotation version": story.annotate("ann-1", "item-2", "a2", at(1)),
        "review version": story.review("ann-1", "item-2", "a2", at(2), level=2),
        "revocation": story.end_credential("ann-1", "internal_level", at(3)),
        "hold": story.add(
            "retention.hold_placed",
            at(4),
            "legal",
            {"hold_id": "h-1", "scope": {"log": tenant}, "reason": "litigation", "approver": "counsel"},
            role="admin",
        ),
    }
    e = story.events
    e[2] = accepted_by_old_code(e[2], valid_from=bad)
    e[3] = accepted_by_old_code(e[3], effective_from=bad)
    e[4] = accepted_by_old_code(e[4], time=bad)
    e[5] = accepted_by_old_code(e[5], version=TOO_BIG)
    e[6] = accepted_by_old_code(e[6], annotation_version=TOO_BIG)
    e[7] = accepted_by_old_code(e[7], effective_at=bad)
    e[8] = accepted_by_old_code(e[8], time=bad)
    return story, ids


@pytest.mark.parametrize("bad", OUT_OF_RANGE)
def test_every_reader_answers_and_every_such_event_is_flagged(
    http: httpx.Client, token: TokenFactory, shared_ledger: Ledger, tenant: str, bad: str
) -> None:
    story, ids = history(tenant, bad)
    shared_ledger.appender.append(story.events)
    auditor = bearer(token("auditor", tenant=tenant, mfa=True))  # the report is an export: MFA

    for item in ("item-1", "item-2"):
        answers = read_everything(http, auditor, item)
        failed = {name: r.status_code for name, r in answers.items() if r.status_code >= 500}
        assert failed == {}
    flags = {f["evidence"][0]: f for f in unprojectable(http, auditor)}
    assert set(flags) == set(ids.values())
    assert bad in flags[ids["credential"]]["detail"]
    assert "data.valid_from" in flags[ids["credential"]]["detail"]
    assert str(TOO_BIG) in flags[ids["annotation version"]]["detail"]
    assert all(in_time_range(parse_rfc3339(f["occurred_at"])) for f in flags.values())

    # Not applied: the license, the guideline version and the unholdable annotations are not in the state.
    credentials = http.get("/v1/annotators/ann-1/credentials", headers=auditor).json()
    assert [c["credential_id"] for c in credentials["credentials"]] == ["cred-ann-1-internal_level"]
    assert credentials["credentials"][0]["ended_at"] is None  # the revocation had no time to end it at
    assert [g["version"] for g in http.get("/v1/guidelines", headers=auditor).json()["guidelines"]] == ["1.0"]
    assert http.get(f"/v1/items/{DATASET}/item-1/labels", headers=auditor).status_code == 404
    # A legal hold is kept: at its recorded time, since its own time cannot be held.
    report = http.get("/v1/reports/retention", params={"as_of": date.today().isoformat()}, headers=auditor)
    assert [h["hold_id"] for h in report.json()["legal_holds"]] == ["h-1"]

    # Later work by the same actor is recorded and projected as usual.
    later = Story(tenant)
    later.annotate("ann-1", "item-3", "a3", at(5))
    later.review("ann-1", "item-3", "a3", at(6), level=2)
    ingest = {**bearer(token("ingest", tenant=tenant)), "content-type": "application/cloudevents-batch+json"}
    response = http.post("/v1/events", content=json.dumps([e.raw for e in later.events]), headers=ingest)
    assert response.status_code == 201, response.text
    assert http.get(f"/v1/items/{DATASET}/item-3/labels", headers=auditor).json()["annotations"][0][
        "status"
    ] == ("reviewed")


def test_rebuild_replays_such_events_into_the_same_rows(ledger: Ledger) -> None:
    story, _ = history("acme", EARLY)
    ledger.appender.append(story.events)
    inline = snapshot(ledger)

    assert rebuild(ledger.db, all_projectors()) == len(story.events)

    assert snapshot(ledger) == inline
    assert len([f for f in inline["proj_flags"] if f["kind"] == "unprojectable_event"]) == 7


def test_rebuild_replaces_rows_the_old_projection_wrote_from_such_events(ledger: Ledger) -> None:
    """The code before this rule projected the value as it came: a row no reader can load until rebuilt."""
    story = Story("acme")
    story.credential("ann-1", "internal_level", at(-10))
    story.credential("ann-1", "license", at(-10))
    story.events[-1] = accepted_by_old_code(story.events[-1], valid_from=EARLY)
    ledger.appender.append(story.events)
    with ledger.db.connect() as conn, conn.transaction():  # what the old projection wrote
        conn.execute(
            "INSERT INTO proj_credentials (tenant, credential_id, period, annotator, kind, issuer, valid_from,"
            " event_id, log, position) VALUES ('acme', 'c', 1, 'ann-1', 'license', 'Board', %s, 'e', 'acme', 0)",
            (EARLY,),
        )
    with pytest.raises(StorageRefused, match="timestamp too small"):  # wrapped at the storage boundary
        ledger.projections.credentials("acme", "ann-1", at(0))

    rebuild(ledger.db, all_projectors())

    periods = ledger.projections.credentials("acme", "ann-1", at(0))["credentials"]
    assert [p["credential_id"] for p in periods] == ["cred-ann-1-internal_level"]
    assert [f["kind"] for f in ledger.projections.flags("acme")["flags"]] == ["unprojectable_event"]


def test_the_migration_removes_rows_no_reader_can_load_and_keeps_holds(pg_server: str) -> None:
    with fresh_database(pg_server, f"ledger_test_migration_{os.getpid()}", migrated=False) as url:
        db = Database(url, pool_size=1)
        try:
            migrate.upgrade(db, "0003")
            with db.connect() as conn, conn.transaction():
                for valid_from, credential in (
                    (EARLY, "bad-early"),
                    (LATE, "bad-late"),
                    ("2026-01-01Z", "good"),
                ):
                    conn.execute(
                        "INSERT INTO proj_credentials (tenant, credential_id, period, annotator, kind, issuer,"
                        " valid_from, event_id, log, position) VALUES ('acme', %s, 1, 'ann-1', 'license', 'Board',"
                        " %s, 'e', 'acme', 0)",
                        (credential, valid_from),
                    )
                conn.execute(
                    "INSERT INTO proj_holds (tenant, hold_id, scope, reason, approver, placed_at, released_at, log,"
                    " position) VALUES ('acme', 'h', '{\"log\": \"acme\"}', 'r', 'a', %s, %s, 'acme', 1)",
                    (EARLY, LATE),
                )

            migrate.upgrade(db)

            with db.connect() as conn, conn.cursor(row_factory=dict_row) as cur:
                credentials = cur.execute("SELECT credential_id FROM proj_credentials").fetchall()
                hold = cur.execute("SELECT placed_at, released_at FROM proj_holds").fetchone()
            assert credentials == [{"credential_id": "good"}]
            assert hold == {"placed_at": datetime(1900, 1, 1, tzinfo=UTC), "released_at": None}
            report = retention.build(db, date(2030, 1, 1))
            assert [h["hold_id"] for h in report.content["legal_holds"]] == ["h"]
        finally:
            db.dispose()


class TestLegalHoldsStayInTheirTenant:
    def test_a_hold_naming_another_tenants_log_holds_nothing_and_is_flagged(self, ledger: Ledger) -> None:
        acme, other = Story("acme"), Story("other")
        acme.view("ann-1", "item-1", at(1))
        other.view("ann-9", "item-9", at(1))
        hold = {"reason": "litigation", "approver": "counsel"}
        foreign = other.add(
            "retention.hold_placed",
            at(2),
            "legal",
            {"hold_id": "h-x", "scope": {"log": "other"}, **hold},
            role="admin",
        )
        # Validation now refuses a scope outside the producer's tenant; the code before it accepted it.
        other.events[-1] = accepted_by_old_code(other.events[-1], scope={"log": "acme"})
        ledger.appender.append([*acme.events, *other.events])

        report = retention.build(ledger.db, date(2030, 1, 1))  # every log, as `ledger report retention`

        on_hold = {s["log"]: s["on_legal_hold"] for s in report.content["logs"]}
        assert on_hold == {"acme": False, "other": False}
        assert report.content["legal_holds"] == []
        [flag] = ledger.projections.flags("other", kind="hold_outside_tenant")["flags"]
        assert flag["evidence"] == [foreign]
        assert "'acme'" in flag["detail"]
        assert ledger.projections.flags("acme")["flags"] == []

    def test_a_hold_on_its_own_log_holds_it(self, ledger: Ledger) -> None:
        other = Story("other")
        other.add(
            "retention.hold_placed",
            at(2),
            "legal",
            {"hold_id": "h-1", "scope": {"log": "other"}, "reason": "litigation", "approver": "counsel"},
            role="admin",
        )
        ledger.appender.append(other.events)

        report = retention.build(ledger.db, date(2030, 1, 1))

        assert {s["log"]: s["on_legal_hold"] for s in report.content["logs"]} == {"other": True}
        assert ledger.projections.flags("other")["flags"] == []
