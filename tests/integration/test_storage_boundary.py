"""The storage boundary: every psycopg error leaves as a LedgerError, and the append transaction is bounded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import psycopg
import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.errors import StorageRefused, StorageUnavailable, ValidationFailed
from ledger.runtime import Ledger
from ledger.storage.append import AppendService, Recorded
from ledger.storage.verify import verify
from tests.conftest import TokenFactory
from tests.factories import example_event


def events(tenant: str, n: int = 1) -> list:
    return [validate_event(example_event("annotation.created", tenant=tenant)) for _ in range(n)]


def bounded(
    ledger: Ledger, *, lock: float = 0.2, statement: float = 30.0, projectors: Sequence = ()
) -> AppendService:
    return AppendService(
        ledger.db, ledger.sealer, projectors=projectors, lock_timeout=lock, statement_timeout=statement
    )


@pytest.fixture
def head_held(ledger: Ledger) -> Iterator[psycopg.Connection]:
    """Another session holding the head of log ``acme`` FOR UPDATE, as a writer stuck mid-batch would."""
    ledger.appender.append(events("acme"))
    with psycopg.connect(ledger.db.url) as other:
        other.execute("SELECT * FROM ledger_log_heads WHERE log = 'acme' FOR UPDATE")
        yield other
        other.rollback()


def test_a_writer_that_waits_longer_than_lock_timeout_for_a_head_is_told_to_retry(
    ledger: Ledger, head_held: psycopg.Connection
) -> None:
    with pytest.raises(StorageUnavailable, match="lock_timeout"):
        bounded(ledger, lock=0.2).append(events("acme"))

    head_held.rollback()  # the other writer finishes: the same batch now goes through
    assert bounded(ledger, lock=0.2).append(events("acme"))[0].position == 1
    assert verify(ledger.db).intact


def test_other_logs_are_not_held_up_by_a_held_head(ledger: Ledger, head_held: psycopg.Connection) -> None:
    assert bounded(ledger, lock=0.2).append(events("beta"))[0].position == 0


def test_a_statement_longer_than_statement_timeout_is_cancelled_and_nothing_is_recorded(
    ledger: Ledger,
) -> None:
    def slow_fence(conn: Any) -> None:
        conn.execute("SELECT pg_sleep(5)")

    with pytest.raises(StorageUnavailable, match="statement_timeout"):
        bounded(ledger, statement=0.2).append(events("acme"), fence=slow_fence)
    assert verify(ledger.db).checked == 0


def test_the_bounds_end_with_the_append_transaction(ledger: Ledger) -> None:
    appended_on: list[int] = []

    def note_backend(conn: Any) -> None:
        appended_on.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])

    bounded(ledger, lock=0.2, statement=0.3).append(events("acme"), fence=note_backend)
    with ledger.db.connect() as conn:  # the pool hands the same connection back: it must keep no bound
        assert conn.execute("SELECT pg_backend_pid()").fetchone() == (appended_on[0],), "another connection"
        assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_a_value_postgresql_cannot_store_refuses_the_batch_naming_event_and_field(ledger: Ledger) -> None:
    batch = events("acme", 3)
    # Past validation (which refuses NUL today): the storage boundary must still answer with a 4xx error.
    bad = batch[1].envelope.model_copy(update={"source": "urn:a\x00b"})
    batch[1] = dataclasses.replace(batch[1], envelope=bad)

    with pytest.raises(ValidationFailed) as refused:
        ledger.appender.append(batch)

    assert [(e.field, e.index) for e in refused.value.errors] == [("source", 1)], refused.value.errors
    assert "0x00" in refused.value.detail
    assert verify(ledger.db).checked == 0  # the batch is refused whole


class FailingProjector:
    """A projector whose statement the database refuses."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def apply(self, conn: Any, events: Sequence[Recorded]) -> None:
        conn.execute(self.sql)


def test_a_data_error_in_a_projector_refuses_the_batch_as_invalid(ledger: Ledger) -> None:
    appender = bounded(ledger, projectors=[FailingProjector("SELECT 2147483648::int4")])
    with pytest.raises(ValidationFailed, match="integer out of range"):
        appender.append(events("acme"))
    assert verify(ledger.db).checked == 0


def test_any_other_refusal_is_storage_refused_and_the_connection_stays_usable(ledger: Ledger) -> None:
    appender = bounded(ledger, projectors=[FailingProjector("SELECT * FROM no_such_table")])
    with pytest.raises(StorageRefused, match="42P01"):
        appender.append(events("acme"))
    with ledger.db.connect() as conn:  # the error came out of the transaction, the pool is fine
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_no_psycopg_error_leaves_a_connection(ledger: Ledger) -> None:
    for sql, expected in [
        ("SELECT 1/0", StorageRefused),
        ("SELECT 'x'::int", StorageRefused),
        (
            "INSERT INTO ledger_log_heads (log, tenant, size, head_hash) VALUES ('x', 'x', -1, '')",
            StorageRefused,
        ),
        ("SELECT pg_terminate_backend(pg_backend_pid())", StorageUnavailable),
    ]:
        with pytest.raises(expected), ledger.db.connect() as conn:
            conn.execute(sql)
    with ledger.db.connect() as conn:  # the terminated connection was not handed out again
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_held_head_answers_503_over_http(
    shared_ledger: Ledger, http: httpx.Client, token: TokenFactory, tenant: str
) -> None:
    """The served ledger bounds its appends with the default LEDGER_DB_LOCK_TIMEOUT (5 s)."""
    headers = {"authorization": f"Bearer {token('ingest', tenant=tenant)}"}
    assert (
        http.post(
            "/v1/events", json=example_event("annotation.created", tenant=tenant), headers=headers
        ).status_code
        == 201
    )
    with psycopg.connect(shared_ledger.db.url) as other:
        other.execute("SELECT * FROM ledger_log_heads WHERE log = %s FOR UPDATE", (tenant,))
        answer = http.post(
            "/v1/events", json=example_event("annotation.created", tenant=tenant), headers=headers
        )
        other.rollback()
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "storage_unavailable"
