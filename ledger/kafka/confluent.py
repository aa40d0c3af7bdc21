"""The transport over confluent-kafka (librdkafka): ``LEDGER_KAFKA_CLIENT=confluent``, the faster option.

librdkafka fetches on its own threads and calls the rebalance callbacks from inside ``consume`` on the
caller's thread, so the worker's listener can run there directly and the assignment can carry the
starting offsets read from PostgreSQL.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ledger.domain.errors import BrokerUnavailable
from ledger.kafka.transport import Headers, Message, RebalanceListener
from ledger.settings import KafkaSecurity, KafkaSettings

_SEND_BLOCK_SECONDS = 60.0  # how long send() waits for room in a full local queue before giving up


def _security(security: KafkaSecurity) -> dict[str, Any]:
    """librdkafka's names for the pass-through TLS and SASL options."""
    config: dict[str, Any] = {"security.protocol": security.protocol}
    optional = {
        "sasl.mechanism": security.sasl_mechanism,
        "sasl.username": security.sasl_username,
        "sasl.password": security.sasl_password,
        "ssl.ca.location": security.ssl_cafile and str(security.ssl_cafile),
        "ssl.certificate.location": security.ssl_certfile and str(security.ssl_certfile),
        "ssl.key.location": security.ssl_keyfile and str(security.ssl_keyfile),
        "ssl.key.password": security.ssl_password,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    if security.protocol in ("SSL", "SASL_SSL"):
        config["ssl.endpoint.identification.algorithm"] = "https" if security.ssl_check_hostname else "none"
    return config


class ConfluentConsumer:
    """``ConsumerTransport`` over ``confluent_kafka.Consumer``."""

    def __init__(self, bootstrap: str, settings: KafkaSettings) -> None:
        try:
            self._consumer = confluent_kafka.Consumer(
                {
                    "bootstrap.servers": bootstrap,
                    "group.id": settings.group,
                    "client.id": "ledger-consume",
                    # Offsets live in PostgreSQL; Kafka's are written by hand, for lag monitoring only.
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",  # aborted producer transactions never reach the ledger
                    "session.timeout.ms": settings.session_timeout_ms,
                    "heartbeat.interval.ms": settings.heartbeat_interval_ms,
                    **_security(settings.security),
                }
            )
        except KafkaException as exc:
            msg = f"cannot create the Kafka consumer: {exc}"
            raise BrokerUnavailable(msg) from exc
        self._topic = ""
        self._listener: RebalanceListener | None = None
        self._moved: set[int] = set()  # partitions a rebalance callback touched during the current call

    def subscribe(self, topic: str, listener: RebalanceListener) -> None:
        """Join the group for ``topic``."""
        self._topic = topic
        self._listener = listener
        self._consumer.subscribe(
            [topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )

    def _on_assign(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        assert self._listener is not None
        self._moved.update(tp.partition for tp in partitions)
        starts = self._listener.assigned(sorted(tp.partition for tp in partitions))
        for tp in partitions:
            offset = starts.get(tp.partition)
            tp.offset = confluent_kafka.OFFSET_BEGINNING if offset is None else offset
        consumer.assign(partitions)

    def _on_revoke(self, consumer: confluent_kafka.Consumer, partitions: list[TopicPartition]) -> None:
        assert self._listener is not None
        self._moved.update(tp.partition for tp in partitions)
        self._listener.revoked(sorted(tp.partition for tp in partitions))
        consumer.unassign()

    def poll(self, timeout: float, max_records: int) -> list[Message]:
        """Up to ``max_records`` messages; per-message errors that are not fatal are skipped.

        One message per librdkafka call, so that when a rebalance callback runs we know which messages
        came before it: those of the partitions it moved are dropped (the assignment set their start).
        """
        out: list[Message] = []
        wait = timeout
        while len(out) < max_records:
            self._moved.clear()
            try:
                m = self._consumer.poll(wait)
            except KafkaException as exc:
                msg = f"polling Kafka failed: {exc}"
                raise BrokerUnavailable(msg) from exc
            if self._moved:
                out = [x for x in out if x.partition not in self._moved]
            if m is None:
                break
            wait = 0  # drain what librdkafka has already fetched, without waiting for more
            error = m.error()
            if error is not None:
                if error.fatal():
                    msg = f"the Kafka consumer failed: {error.str()}"
                    raise BrokerUnavailable(msg)
                continue  # transient (broker down, partition EOF): librdkafka retries by itself
            kind, ts = m.timestamp()
            out.append(
                Message(
                    m.topic() or self._topic,
                    m.partition() or 0,
                    m.offset() or 0,
                    m.key(),
                    m.value(),
                    _headers(m.headers()),
                    ts if kind != confluent_kafka.TIMESTAMP_NOT_AVAILABLE and ts >= 0 else None,
                )
            )
        return out

    def seek(self, partition: int, offset: int | None) -> None:
        """Continue ``partition`` at ``offset`` (``None``: the beginning); librdkafka drops prefetched data."""
        target = confluent_kafka.OFFSET_BEGINNING if offset is None else offset
        try:
            self._consumer.seek(TopicPartition(self._topic, partition, target))
        except KafkaException as exc:
            msg = f"cannot seek {self._topic}/{partition} to {offset}: {exc}"
            raise BrokerUnavailable(msg) from exc

    def commit(self, offsets: Mapping[int, int]) -> None:
        """Asynchronous commit to Kafka, for lag monitoring; failures are harmless and ignored."""
        if not offsets:
            return
        # Not assigned any more, or a rebalance in progress: the next commit will do.
        with contextlib.suppress(KafkaException):
            self._consumer.commit(
                offsets=[TopicPartition(self._topic, p, o) for p, o in offsets.items()], asynchronous=True
            )

    def high_watermark(self, partition: int) -> int | None:
        """End offset from the last fetch response (no broker round trip)."""
        try:
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(self._topic, partition), cached=True
            )
        except KafkaException:
            return None
        return high if high >= 0 else None

    def close(self) -> None:
        """Leave the group (no commit: Kafka's offsets are not the source of truth)."""
        with contextlib.suppress(KafkaException, RuntimeError):  # best effort: the session timeout removes us
            self._consumer.close()


class ConfluentProducer:
    """``ProducerTransport`` over ``confluent_kafka.Producer``: idempotent (hence acks=all)."""

    def __init__(self, bootstrap: str, settings: KafkaSettings) -> None:
        try:
            self._producer = confluent_kafka.Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "client.id": "ledger-produce",
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    # Kafka's (and kafka-python's) murmur2 of the key, so a log lands in the same
                    # partition whichever client produced it; librdkafka's default is CRC32.
                    "partitioner": "murmur2_random",
                    **_security(settings.security),
                }
            )
        except KafkaException as exc:
            msg = f"cannot create the Kafka producer: {exc}"
            raise BrokerUnavailable(msg) from exc
        self._lock = threading.Lock()
        self._failures: list[str] = []

    def send(
        self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Headers = ()
    ) -> None:
        """Queue one record, waiting (bounded) for room when librdkafka's local queue is full."""
        deadline = time.monotonic() + _SEND_BLOCK_SECONDS
        while True:
            try:
                self._producer.produce(topic, value, key, headers=list(headers), on_delivery=self._delivered)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    msg = f"the Kafka producer queue stayed full for {_SEND_BLOCK_SECONDS:.0f} s"
                    raise BrokerUnavailable(msg) from None
                self._producer.poll(0.05)
            except KafkaException as exc:
                msg = f"cannot send to {topic}: {exc}"
                raise BrokerUnavailable(msg) from exc
        self._producer.poll(0)  # serve delivery callbacks of earlier records

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            with self._lock:
                self._failures.append(error.str())

    def flush(self, timeout: float) -> None:
        """Wait for every acknowledgement; raise if any record was refused or is still pending."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} record(s) still unacknowledged after {timeout:.0f} s")
        if failures:
            msg = f"{len(failures)} record(s) were not acknowledged by Kafka: {failures[0]}"
            raise BrokerUnavailable(msg)

    def close(self) -> None:
        """Flush briefly; librdkafka disconnects when the object goes away."""
        self._producer.flush(10)


def _headers(raw: Any) -> Headers:
    return tuple((str(k), v.encode() if isinstance(v, str) else v) for k, v in raw or ())
