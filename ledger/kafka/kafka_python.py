"""The transport over kafka-python, the default client (pure Python, no native library).

kafka-python 3 runs its network loop on a background thread and may call the rebalance listener there.
The worker's state must only change on its own thread, so the listener here just records what happened;
``poll`` replays those events on the calling thread (revocations, then assignments with their seeks) and
drops any record of a partition that moved during the call, before the worker sees it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import kafka  # type: ignore[import-untyped]
import kafka.errors  # type: ignore[import-untyped]
from kafka.consumer.subscription_state import ConsumerRebalanceListener  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata, TopicPartition  # type: ignore[import-untyped]

from ledger.domain.errors import BrokerUnavailable
from ledger.kafka.transport import Headers, Message, RebalanceListener
from ledger.settings import KafkaSecurity, KafkaSettings


def _security(security: KafkaSecurity) -> dict[str, Any]:
    """kafka-python's names for the pass-through TLS and SASL options."""
    config: dict[str, Any] = {"security_protocol": security.protocol}
    optional = {
        "sasl_mechanism": security.sasl_mechanism,
        "sasl_plain_username": security.sasl_username,
        "sasl_plain_password": security.sasl_password,
        "ssl_cafile": security.ssl_cafile and str(security.ssl_cafile),
        "ssl_certfile": security.ssl_certfile and str(security.ssl_certfile),
        "ssl_keyfile": security.ssl_keyfile and str(security.ssl_keyfile),
        "ssl_password": security.ssl_password,
    }
    config.update({k: v for k, v in optional.items() if v is not None})
    config["ssl_check_hostname"] = security.ssl_check_hostname
    return config


@contextmanager
def _broker_errors(what: str) -> Iterator[None]:
    """kafka-python's exceptions become ``BrokerUnavailable``; none leaks to the worker."""
    try:
        yield
    except kafka.errors.KafkaError as exc:
        msg = f"{what}: {exc}"
        raise BrokerUnavailable(msg) from exc


class _Recorder(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base class
    """Remembers rebalance events for ``poll`` to replay on the worker's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[tuple[str, list[int]]] = []

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._record("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._record("assigned", assigned)

    def on_partitions_lost(self, lost: Any) -> None:
        self._record("revoked", lost)

    def _record(self, kind: str, partitions: Any) -> None:
        with self._lock:
            self._events.append((kind, sorted(tp.partition for tp in partitions)))

    def drain(self) -> list[tuple[str, list[int]]]:
        with self._lock:
            events, self._events = self._events, []
        return events


class KafkaPythonConsumer:
    """``ConsumerTransport`` over ``kafka.KafkaConsumer``."""

    def __init__(self, bootstrap: str, settings: KafkaSettings) -> None:
        with _broker_errors("cannot create the Kafka consumer"):
            self._consumer = kafka.KafkaConsumer(
                bootstrap_servers=bootstrap.split(","),
                group_id=settings.group,
                client_id="ledger-consume",
                # Offsets live in PostgreSQL; Kafka's are written by hand, for lag monitoring only.
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                max_poll_records=settings.batch_size,
                # Messages of aborted producer transactions never reach the ledger (librdkafka's default).
                isolation_level="read_committed",
                **_security(settings.security),
            )
        self._topic = ""
        self._listener: RebalanceListener | None = None
        self._recorder = _Recorder()

    def subscribe(self, topic: str, listener: RebalanceListener) -> None:
        """Join the group for ``topic``."""
        self._topic = topic
        self._listener = listener
        with _broker_errors(f"cannot subscribe to {topic}"):
            self._consumer.subscribe([topic], listener=self._recorder)

    def poll(self, timeout: float, max_records: int) -> list[Message]:
        """Records of positioned partitions only; rebalance events are applied on this thread.

        Events recorded before the call are applied first (their seeks precede this fetch). Events recorded
        during it are applied afterwards, and that partition's records from this call are dropped: they were
        fetched from wherever the client started, and the seek just made decides instead.
        """
        self._replay()
        with _broker_errors("polling Kafka failed"):
            fetched = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        moved = self._replay()
        out: list[Message] = []
        for tp, records in fetched.items():
            if tp.partition in moved:
                continue
            out.extend(
                Message(
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                    r.value,
                    _headers(r.headers),
                    r.timestamp if r.timestamp is not None and r.timestamp >= 0 else None,
                )
                for r in records
            )
        return out

    def _replay(self) -> set[int]:
        assert self._listener is not None, "subscribe first"
        moved: set[int] = set()
        for kind, partitions in self._recorder.drain():
            moved.update(partitions)
            if kind == "revoked":
                self._listener.revoked(partitions)
                continue
            for partition, offset in self._listener.assigned(partitions).items():
                self.seek(partition, offset)
        return moved

    def seek(self, partition: int, offset: int | None) -> None:
        """Continue ``partition`` at ``offset`` (``None``: the beginning)."""
        tp = TopicPartition(self._topic, partition)
        if tp not in self._consumer.assignment():
            return  # moved away meanwhile; the new owner positions it
        if offset is None:
            self._consumer.seek_to_beginning(tp)
        else:
            self._consumer.seek(tp, offset)

    def commit(self, offsets: Mapping[int, int]) -> None:
        """Asynchronous commit to Kafka, for lag monitoring; failures are harmless and ignored."""
        owned = {tp.partition for tp in self._consumer.assignment()}
        payload = {
            TopicPartition(self._topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in offsets.items()
            if p in owned
        }
        if payload:
            # A group in the middle of a rebalance refuses commits; the next one will do.
            with contextlib.suppress(kafka.errors.KafkaError):
                self._consumer.commit_async(payload)

    def high_watermark(self, partition: int) -> int | None:
        """End offset from the last fetch response."""
        value = self._consumer.highwater(TopicPartition(self._topic, partition))
        return int(value) if value is not None else None

    def close(self) -> None:
        """Leave the group promptly (no auto-commit: Kafka's offsets are not the source of truth)."""
        with contextlib.suppress(
            kafka.errors.KafkaError
        ):  # best effort: the session timeout removes us anyway
            self._consumer.close(autocommit=False, timeout_ms=5000)


class KafkaPythonProducer:
    """``ProducerTransport`` over ``kafka.KafkaProducer``: acks=all, idempotent."""

    def __init__(self, bootstrap: str, settings: KafkaSettings) -> None:
        with _broker_errors("cannot create the Kafka producer"):
            self._producer = kafka.KafkaProducer(
                bootstrap_servers=bootstrap.split(","),
                client_id="ledger-produce",
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                **_security(settings.security),
            )
        self._lock = threading.Lock()
        self._failures: list[str] = []

    def send(
        self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Headers = ()
    ) -> None:
        """Queue one record; kafka-python's default partitioner is Kafka's murmur2 of the key."""
        with _broker_errors(f"cannot send to {topic}"):
            future = self._producer.send(topic, value=value, key=key, headers=list(headers))
        future.add_errback(self._failed)

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._failures.append(str(exc) or type(exc).__name__)

    def flush(self, timeout: float) -> None:
        """Wait for every acknowledgement; raise if any record was refused or timed out."""
        with _broker_errors("flushing the Kafka producer failed"):
            self._producer.flush(timeout=timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            msg = f"{len(failures)} record(s) were not acknowledged by Kafka: {failures[0]}"
            raise BrokerUnavailable(msg)

    def close(self) -> None:
        """Flush briefly and disconnect."""
        with contextlib.suppress(kafka.errors.KafkaError):  # best effort: flush() reported failures already
            self._producer.close(timeout=10)


def _headers(raw: Any) -> Headers:
    return tuple((str(k), v) for k, v in raw or ())
