"""The append service against a real PostgreSQL: chains, idempotency, concurrency, sealing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.errors import IdempotencyConflict
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from ledger.synth.project import generate
from tests.factories import example_event


def events(tenant: str, n: int, type_: str = "annotation.created") -> list:
    return [validate_event(example_event(type_, tenant=tenant)) for _ in range(n)]


def test_positions_are_gap_free_and_each_hash_chains_to_the_previous(ledger: Ledger) -> None:
    receipts = ledger.appender.append(events("acme", 5)) + ledger.appender.append(events("acme", 3))

    assert [r.position for r in receipts] == list(range(8))
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT position, prev_hash, hash FROM ledger_events ORDER BY position"
        ).fetchall()
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    assert verify(ledger.db).intact


def test_each_tenant_has_its_own_log(ledger: Ledger) -> None:
    a = ledger.appender.append(events("hospital-a", 2))
    b = ledger.appender.append(events("hospital-b", 2))
    assert [(r.log, r.position) for r in a + b] == [
        ("hospital-a", 0), ("hospital-a", 1), ("hospital-b", 0), ("hospital-b", 1)
    ]  # fmt: skip


def test_a_repeated_id_in_one_batch_is_recorded_once(ledger: Ledger) -> None:
    event = example_event("annotation.created", tenant="acme")
    receipts = ledger.appender.append([validate_event(event), validate_event(dict(event))])

    assert receipts[0].position == receipts[1].position == 0
    assert receipts[1].duplicate
    with ledger.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone() == (1,)


def test_a_conflicting_repost_inside_a_batch_records_nothing(ledger: Ledger) -> None:
    event = example_event("annotation.created", tenant="acme")
    changed = {**event, "data": {**event["data"], "label_class": "mass"}}
    fresh = example_event("annotation.created", tenant="acme")
    ledger.appender.append([validate_event(event)])

    with pytest.raises(IdempotencyConflict) as caught:
        ledger.appender.append([validate_event(fresh), validate_event(changed)])

    assert caught.value.errors[0].index == 1
    with ledger.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone() == (1,)


def test_one_id_twice_in_a_batch_with_different_content_records_nothing(ledger: Ledger) -> None:
    event = example_event("annotation.created", tenant="acme")
    changed = {**event, "data": {**event["data"], "label_class": "mass"}}

    with pytest.raises(IdempotencyConflict) as caught:
        ledger.appender.append([validate_event(event), validate_event(changed)])

    assert caught.value.errors[0].index == 1
    assert "twice in this batch" in caught.value.errors[0].message
    with ledger.db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM ledger_events").fetchone() == (0,)


def test_recorded_time_never_runs_backwards_in_a_log(ledger: Ledger) -> None:
    from ledger.storage.append import AppendService

    clock = iter([datetime(2026, 5, 1, 12, 0, tzinfo=UTC), datetime(2026, 5, 1, 11, 0, tzinfo=UTC)])
    appender = AppendService(ledger.db, ledger.sealer, clock=lambda: next(clock))
    first = appender.append(events("acme", 1))[0]
    second = appender.append(events("acme", 1))[0]
    assert second.recorded_at >= first.recorded_at


def test_concurrent_appenders_leave_every_log_gap_free_and_verifying(ledger: Ledger) -> None:
    tenants = ["site-1", "site-2", "site-3"]
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                # Batches span two logs in either order, so head locking order matters.
                pair = [tenants[(n + i) % 3], tenants[(n + i + 1) % 3]]
                ledger.appender.append([e for t in pair for e in events(t, 4)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors, errors
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT log, count(*), max(position) FROM ledger_events GROUP BY log ORDER BY log"
        ).fetchall()
    assert sum(r[1] for r in rows) == 6 * 15 * 8
    assert all(count == top + 1 for _, count, top in rows)  # positions 0..n-1, no gap
    report = verify(ledger.db)
    assert report.intact, report.breaks


def test_a_synthetic_project_appends_and_verifies(ledger: Ledger) -> None:
    batch = [validate_event(raw) for raw in generate(tenant="acme", events=3000, seed=11)]
    for start in range(0, len(batch), 500):
        ledger.appender.append(batch[start : start + 500])
    report = verify(ledger.db)
    assert report.intact
    assert report.checked == 3000


class TestSealing:
    def test_the_stored_and_hashed_form_never_holds_sensitive_plaintext(self, ledger: Ledger) -> None:
        raw = example_event("access.data_viewed", tenant="acme")
        ledger.appender.append([validate_event(raw)])
        with ledger.db.connect() as conn:
            (canonical,) = conn.execute("SELECT canonical FROM ledger_events").fetchone()
        stored = json.loads(bytes(canonical))["event"]["data"]

        assert b"10.20.1.17" not in bytes(canonical)
        assert b"AcmeViewer" not in bytes(canonical)
        assert raw["data"]["reason"].encode() not in bytes(canonical)
        assert set(stored["source_address"]["sealed"]) == {"kid", "alg", "nonce", "ct"}
        assert stored["resource"] == raw["data"]["resource"]  # not sensitive: kept as sent

    def test_sealed_values_open_with_the_subject_key(self, ledger: Ledger) -> None:
        raw = example_event("review.submitted", tenant="acme")
        ledger.appender.append([validate_event(raw)])
        stored = ledger.queries.get("acme", raw["id"]).document["event"]

        assert ledger.sealer.unseal(stored)["data"]["comment"] == raw["data"]["comment"]

    def test_a_sealed_value_moved_to_another_event_does_not_open(self, ledger: Ledger) -> None:
        from ledger.domain.errors import SealedValueTampered

        first = example_event("review.submitted", tenant="acme")
        second = example_event("review.submitted", tenant="acme")
        ledger.appender.append([validate_event(first), validate_event(second)])
        a = ledger.queries.get("acme", first["id"]).document["event"]
        b = ledger.queries.get("acme", second["id"]).document["event"]
        b["data"]["comment"] = a["data"]["comment"]

        with pytest.raises(SealedValueTampered):
            ledger.sealer.unseal(b)

    def test_erasing_a_subject_key_hides_values_and_the_chain_still_verifies(self, ledger: Ledger) -> None:
        raw = example_event("review.submitted", tenant="acme")
        ledger.appender.append([validate_event(raw)])
        with ledger.db.connect() as conn, conn.transaction():
            conn.execute(
                "UPDATE ledger_subject_keys SET wrapped = NULL, erased_at = now() WHERE tenant = %s AND subject = %s",
                ("acme", raw["actor"]),
            )
        ledger.sealer.forget("acme", raw["actor"])

        stored = ledger.queries.get("acme", raw["id"]).document["event"]
        assert ledger.sealer.unseal(stored)["data"]["comment"] == "[erased]"
        assert verify(ledger.db).intact

    def test_a_repost_of_a_sealed_event_is_recognised_as_the_same(self, ledger: Ledger) -> None:
        raw = example_event("access.data_viewed", tenant="acme")
        first = ledger.appender.append([validate_event(raw)])[0]
        again = ledger.appender.append([validate_event(json.loads(json.dumps(raw)))])[0]
        assert again.duplicate
        assert again.position == first.position


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE ledger_events SET type = 'x'",
            "DELETE FROM ledger_events",
            "TRUNCATE ledger_events",
        ],
    )
    def test_changing_history_is_refused_by_the_database(self, ledger: Ledger, statement: str) -> None:
        ledger.appender.append(events("acme", 2))
        with (
            psycopg.connect(ledger.db.url) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege) as caught,
        ):
            conn.execute(statement)
        assert "append-only" in str(caught.value)

    def test_the_application_role_may_only_insert_and_read_events(self, ledger: Ledger) -> None:
        with ledger.db.connect() as conn:
            privileges = conn.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = 'ledger_app' AND table_name = 'ledger_events' ORDER BY 1"
            ).fetchall()
        assert [p for (p,) in privileges] == ["INSERT", "SELECT"]


def test_event_time_is_stored_for_queries(ledger: Ledger) -> None:
    raw = example_event("annotation.created", tenant="acme", time="2026-03-02T10:15:27+01:00")
    ledger.appender.append([validate_event(raw)])
    with ledger.db.connect() as conn:
        (event_time,) = conn.execute("SELECT event_time FROM ledger_events").fetchone()
    assert event_time == datetime(2026, 3, 2, 9, 15, 27, tzinfo=UTC)
    assert event_time - datetime(2026, 3, 2, 9, 0, tzinfo=UTC) == timedelta(minutes=15, seconds=27)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_log_heads SET size = size - 1",
        "UPDATE ledger_log_heads SET head_hash = '\\x00'::bytea",
        "DELETE FROM ledger_log_heads",
        "TRUNCATE ledger_log_heads",
    ],
)
def test_a_log_head_only_moves_forward(ledger: Ledger, statement: str) -> None:
    ledger.appender.append(events("acme", 2))
    with psycopg.connect(ledger.db.url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
