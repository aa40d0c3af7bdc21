"""Posting events to the ledger over Kafka, for other services: ``LedgerProducer``.

    from ledger.client import LedgerProducer

    with LedgerProducer("kafka-1:9092,kafka-2:9092") as producer:
        producer.send(event)          # a CloudEvent dict, as documented in docs/events.md
    # leaving the block waits until Kafka acknowledged every event

Every record is keyed by the event's log (one log per tenant), so a log's events stay in one partition,
in the order they were sent. Records need the acknowledgement of every in-sync replica and the producer
is idempotent, so a retry inside the client never writes a record twice; the ledger also deduplicates by
event id, so sending an event again after a crash is always safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from ledger.domain.errors import ConfigurationError, FieldError, ValidationFailed
from ledger.domain.logs import log_for
from ledger.kafka.bindings import Mode, encode
from ledger.kafka.transport import ProducerTransport, open_producer
from ledger.settings import KafkaSettings, Settings

__all__ = ["LedgerProducer"]


class LedgerProducer:
    """Sends CloudEvents to the ledger's events topic (structured mode by default, or binary mode)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topic: str | None = None,
        kafka: KafkaSettings | None = None,
        mode: Mode = "structured",
    ) -> None:
        self._kafka = kafka or KafkaSettings()
        self.topic = topic or self._kafka.topic
        self.mode: Mode = mode
        self._producer: ProducerTransport = open_producer(bootstrap, self._kafka)

    @classmethod
    def from_settings(cls, settings: Settings, *, mode: Mode = "structured") -> LedgerProducer:
        """A producer for the ledger configured by ``LEDGER_KAFKA_*``; needs ``LEDGER_KAFKA_BOOTSTRAP``."""
        if not settings.kafka_bootstrap:
            msg = "LEDGER_KAFKA_BOOTSTRAP is not set; name the Kafka bootstrap servers (host:port,…)"
            raise ConfigurationError(msg)
        return cls(settings.kafka_bootstrap, kafka=settings.kafka, mode=mode)

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for its log's partition; ``flush`` (or leaving the ``with`` block) waits for it."""
        tenant = event.get("tenant")
        if not isinstance(tenant, str) or not tenant:
            raise ValidationFailed(
                "an event needs a tenant: it decides the log and so the partition",
                errors=[FieldError("tenant", "required")],
            )
        value, headers = encode(event, self.mode)
        self._producer.send(self.topic, value, key=log_for(tenant).encode(), headers=headers)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until Kafka acknowledged every queued event; ``BrokerUnavailable`` if any was refused."""
        self._producer.flush(timeout)

    def close(self) -> None:
        """Release the connection (after a short flush)."""
        self._producer.close()

    def __enter__(self) -> LedgerProducer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
