"""The small interface the Kafka path needs from a client library, and the factory choosing one.

Two implementations: ``kafka_python`` (the default, pure Python) and ``confluent`` (librdkafka, faster),
selected by ``LEDGER_KAFKA_CLIENT``. Neither library's types or exceptions leave its module: the worker sees
``Message`` objects and ``BrokerUnavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.settings import KafkaSettings

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed Kafka record."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None  # producer (CreateTime) or broker (LogAppendTime) time; None when unknown

    @property
    def origin(self) -> str:
        """``topic/partition/offset``: where the message is, as rejections and dead letters name it."""
        return f"{self.topic}/{self.partition}/{self.offset}"


class RebalanceListener(Protocol):
    """What the worker is told when the group coordinator moves partitions. Called inside ``poll``."""

    def assigned(self, partitions: list[int]) -> Mapping[int, int | None]:
        """Partitions now ours; return where to start each: an offset, or ``None`` for the beginning."""

    def revoked(self, partitions: list[int]) -> None:
        """Partitions no longer ours (or lost); nothing more of them may be committed by us."""


class ConsumerTransport(Protocol):
    """A group member reading one topic. Not thread-safe: one thread makes every call."""

    def subscribe(self, topic: str, listener: RebalanceListener) -> None:
        """Join the group for ``topic``; the listener positions each partition when it is assigned."""

    def poll(self, timeout: float, max_records: int) -> list[Message]:
        """Up to ``max_records`` messages, in offset order per partition; waits at most ``timeout`` seconds."""

    def seek(self, partition: int, offset: int | None) -> None:
        """Continue ``partition`` at ``offset`` (``None``: its beginning); prefetched records are dropped."""

    def commit(self, offsets: Mapping[int, int]) -> None:
        """Tell Kafka the next offsets (asynchronously, best effort): for lag monitoring only."""

    def high_watermark(self, partition: int) -> int | None:
        """The partition's end offset as of the last fetch, or ``None`` when not known yet."""

    def close(self) -> None:
        """Leave the group and release the connection."""


class ProducerTransport(Protocol):
    """Sends records with acks from every in-sync replica, idempotently where the client supports it."""

    def send(
        self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Headers = ()
    ) -> None:
        """Queue one record; delivery failures are reported by the next ``flush``."""

    def flush(self, timeout: float) -> None:
        """Wait until every queued record is acknowledged; raise ``BrokerUnavailable`` if any was not."""

    def close(self) -> None:
        """Flush what is left (briefly) and release the connection."""


def open_consumer(bootstrap: str, kafka: KafkaSettings) -> ConsumerTransport:
    """A consumer of group ``kafka.group`` with the client ``kafka.client``."""
    if kafka.client == "confluent":
        from ledger.kafka.confluent import ConfluentConsumer

        return ConfluentConsumer(bootstrap, kafka)
    from ledger.kafka.kafka_python import KafkaPythonConsumer

    return KafkaPythonConsumer(bootstrap, kafka)


def open_producer(bootstrap: str, kafka: KafkaSettings) -> ProducerTransport:
    """A producer with the client ``kafka.client``."""
    if kafka.client == "confluent":
        from ledger.kafka.confluent import ConfluentProducer

        return ConfluentProducer(bootstrap, kafka)
    from ledger.kafka.kafka_python import KafkaPythonProducer

    return KafkaPythonProducer(bootstrap, kafka)


def header(headers: Sequence[tuple[str, bytes | None]], name: str) -> bytes | None:
    """The last value of header ``name`` (Kafka allows repeats; the last one wins, as in most clients)."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found
