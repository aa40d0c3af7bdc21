"""Invalid messages never stall a partition: each goes to the dead-letter topic with its reason and the
original topic/partition/offset, and the ledger records a ``ledger.ingest_rejected`` event for it, in the
same transaction as the valid events around it. Replaying the topic records nothing twice."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import psycopg

from ledger.domain.envelope import validate_event
from ledger.ingest import Rejection, raw_sha256
from ledger.kafka import dlq
from ledger.kafka.bindings import encode
from ledger.kafka.consumer import Stats, Worker
from ledger.kafka.status import consumer_status
from ledger.kafka.transport import Headers, Message, open_consumer, open_producer
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from tests.conftest import make_event
from tests.integration.kafka.conftest import (
    TopicFactory,
    Topics,
    count_events,
    ids_in_log_order,
    produce_raw,
    read_topic,
    rejection_events,
)

WORKER_SECONDS = 90.0


def run_worker(ledger: Ledger, topics: Topics, client: str, *, until_committed: int) -> Stats:
    """The worker of ``ledger consume``, in this process, until it committed that many messages (bounded)."""
    kafka = topics.kafka_settings(client)
    stop = threading.Event()
    timer = threading.Timer(WORKER_SECONDS, stop.set)
    timer.start()
    producer = open_producer(topics.bootstrap, kafka)
    try:
        worker = Worker(
            db=ledger.db,
            appender=ledger.appender,
            consumer=open_consumer(topics.bootstrap, kafka),
            dlq=producer,
            kafka=kafka,
            stop=stop,
        )
        stats = worker.run(until=lambda s: s.committed >= until_committed)
    finally:
        timer.cancel()
        producer.close()
    assert not stop.is_set(), (
        f"the worker did not commit {until_committed} messages in {WORKER_SECONDS:.0f} s"
    )
    return stats


def structured(event: dict[str, Any]) -> tuple[bytes, bytes, Headers]:
    value, headers = encode(event, "structured")
    return event["tenant"].encode(), value, headers


def binary(event: dict[str, Any]) -> tuple[bytes, bytes, Headers]:
    value, headers = encode(event, "binary")
    return event["tenant"].encode(), value, headers


def test_poison_messages_go_to_the_dlq_and_are_recorded_as_rejections(
    ledger: Ledger, database_url: str, make_topics: TopicFactory, kafka_client: str, tenant: str
) -> None:
    topics = make_topics(1)
    first = make_event(tenant, "annotation.created")
    valid = [
        first,
        make_event(tenant, "review.submitted"),
        make_event(tenant, "annotation.created"),
        make_event(tenant, "access.data_viewed"),
        make_event(tenant, "annotation.created"),
    ]
    bad_geometry = make_event(tenant, "annotation.created")
    bad_geometry["data"]["geometry"] = {"kind": "bbox", "x": 1, "y": 1, "width": -4, "height": 3}
    ssn = make_event(tenant, "review.submitted", data_comment="patient SSN is 123-45-6789")
    reused_id = make_event(tenant, "review.submitted", id=first["id"])  # same id, other content
    key = tenant.encode()
    records: list[tuple[bytes | None, bytes | None, Headers]] = [
        structured(valid[0]),
        binary(valid[1]),
        (key, b'{"specversion": "1.0", "id": "x", oops', ()),  # not JSON
        structured(valid[2]),
        (key, b"[1, 2, 3]", ()),  # JSON, not a CloudEvent
        structured(make_event(tenant, "annotation.created", type="annotation.exploded")),  # unknown type
        structured(bad_geometry),  # schema violation
        structured(ssn),  # forbidden identifier
        structured(
            make_event(tenant, "annotation.created", type="ledger.ingest_rejected")
        ),  # reserved for the ledger itself
        (key, None, ()),  # a tombstone
        binary(valid[3]),
        structured(reused_id),  # idempotency conflict with the first event
        structured(valid[4]),
    ]
    expected_codes = {
        2: "malformed_request", 4: "not_cloudevent", 5: "unknown_type", 6: "validation_failed",
        7: "forbidden_identifier", 8: "reserved_type", 9: "not_cloudevent", 11: "idempotency_conflict",
    }  # fmt: skip
    produce_raw(topics, records, kafka_client)

    stats = run_worker(ledger, topics, kafka_client, until_committed=len(records))

    assert stats.rejected == len(expected_codes)
    # The valid events are all there, in the order sent, with the rejections of their tenant between them.
    in_log = ids_in_log_order(database_url, tenant)
    assert [i for i in in_log if not i.startswith("rejected-")] == [e["id"] for e in valid]
    rejections = rejection_events(database_url)
    assert {r["data"]["origin"]: r["data"]["reason"].split(":", 1)[0] for r in rejections} == {
        f"{topics.events}/0/{offset}": code for offset, code in expected_codes.items()
    }
    for r in rejections:
        offset = int(r["data"]["origin"].rsplit("/", 1)[1])
        value = records[offset][1] or b""
        assert r["data"]["raw_sha256"] == hashlib.sha256(value).hexdigest()
        assert (r["actor"], r["source"], r["data"]["transport"]) == ("ledger", "urn:ledger", "kafka")
        # Where the message named a usable tenant, its rejection is on that tenant's log.
        assert r["tenant"] == (tenant if offset in (5, 6, 7, 8, 11) else "ledger")
    assert "123-45-6789" not in json.dumps(rejections)  # the reason names the field, never the value

    letters = read_topic(topics.bootstrap, topics.dlq, expect=len(expected_codes))
    assert len(letters) == len(expected_codes)
    for letter in letters:
        h = dict(letter.headers)
        offset = int(h[dlq.H_OFFSET])
        assert h[dlq.H_CODE].decode() == expected_codes[offset]
        assert (h[dlq.H_TOPIC].decode(), h[dlq.H_PARTITION]) == (topics.events, b"0")
        assert letter.value == records[offset][1]
        assert letter.key == records[offset][0]
        assert h[dlq.H_REASON].decode().startswith(expected_codes[offset])
        assert h[dlq.H_SHA256].decode() == hashlib.sha256(letter.value or b"").hexdigest()
    assert verify(ledger.db).intact
    # The position and lag the serve process reports (GET /health) come from the offsets table.
    [status] = consumer_status(ledger.db, group=topics.group)
    assert (status.topic, status.partition, status.next_offset, status.lag) == (
        topics.events,
        0,
        len(records),
        0,
    )

    # Replaying the whole topic (as after a crash before any commit) records nothing new: the
    # rejection events are rebuilt identically, so they are repeats, not second rejections.
    total = count_events(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM ledger_consumer_offsets")
    again = run_worker(ledger, topics, kafka_client, until_committed=len(records))
    assert again.recorded == 0
    assert count_events(database_url) == total
    assert verify(ledger.db).intact


def test_a_batch_of_nothing_but_poison_still_moves_the_partition(
    ledger: Ledger, database_url: str, make_topics: TopicFactory, kafka_client: str
) -> None:
    topics = make_topics(1)
    produce_raw(topics, [(None, b"not json at all", ()), (b"x", b"{}", ())], kafka_client)
    run_worker(ledger, topics, kafka_client, until_committed=2)
    assert count_events(database_url, type_="ledger.ingest_rejected") == 2
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT next_offset FROM ledger_consumer_offsets WHERE topic = %s", (topics.events,)
        ).fetchone()
    assert row == (2,)


def test_a_reused_id_whose_rejection_is_already_on_record_does_not_end_the_worker(
    ledger: Ledger, database_url: str, make_topics: TopicFactory, kafka_client: str, tenant: str
) -> None:
    # A batch of one message reusing a recorded id, whose own rejection is also on record already, worded
    # differently (as after a replay by a later ledger version): two rounds of conflicts for one event.
    topics = make_topics(1)
    first = make_event(tenant, "annotation.created")
    ledger.appender.append([validate_event(first)])
    produce_raw(topics, [structured(make_event(tenant, "review.submitted", id=first["id"]))], kafka_client)
    [record] = read_topic(topics.bootstrap, topics.events, expect=1)
    as_consumed = Message(
        topics.events, 0, 0, record.key, record.value, tuple(record.headers), record.timestamp
    )
    earlier, _ = dlq.reject(
        as_consumed,
        Rejection("idempotency_conflict", "worded by an earlier version", raw_sha256(record.value), tenant),
        default_tenant="ledger",
    )
    ledger.appender.append([earlier])
    before = count_events(database_url)

    stats = run_worker(ledger, topics, kafka_client, until_committed=1)

    assert (stats.committed, stats.recorded, stats.rejected) == (1, 0, 1)
    assert count_events(database_url) == before  # the rejection on record stands; nothing is replaced
    [letter] = read_topic(topics.bootstrap, topics.dlq, expect=1)
    assert dict(letter.headers)[dlq.H_ID].decode() == earlier.id
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT next_offset FROM ledger_consumer_offsets WHERE topic = %s", (topics.events,)
        ).fetchone()
    assert row == (1,)  # the partition moved on
    assert verify(ledger.db).intact
