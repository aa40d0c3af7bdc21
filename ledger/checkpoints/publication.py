"""Publishing checkpoints where a database superuser cannot roll them back: a directory and a Kafka topic.

Each destination is a ``Publisher``. Publishing the same checkpoint twice is harmless (the file is
replaced by the same bytes; a topic reader keys by log and reads the size from the note).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ledger.checkpoints.store import SignedCheckpoint
from ledger.files import write_atomically
from ledger.settings import KafkaSettings

if TYPE_CHECKING:
    from ledger.kafka.transport import ProducerTransport

TOPIC = "ledger.checkpoints"
"""The Kafka topic every checkpoint is produced to, keyed by log, the signed note as value."""
_FLUSH_TIMEOUT = 10.0  # seconds to wait for the broker's acknowledgement; a miss is retried next round


class Publisher(Protocol):
    """A place checkpoints are published to."""

    @property
    def name(self) -> str:
        """How log lines name this destination."""
        ...

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        """Put ``checkpoint`` there; raise (``OSError`` or a ``LedgerError``) if it could not be."""
        ...

    def close(self) -> None:
        """Release what the publisher holds."""
        ...


class DirectoryPublisher:
    """``<dir>/<log>/<tree size>.checkpoint``: the signed note (with its cosignatures when published
    again), written whole (temporary file, fsync, rename, fsync of the directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def name(self) -> str:
        """The directory."""
        return str(self.root)

    def path(self, checkpoint: SignedCheckpoint) -> Path:
        """Where ``checkpoint`` is published."""
        return self.root / checkpoint.log / checkpoint.filename

    def published(self, checkpoint: SignedCheckpoint) -> bool:
        """True if its file exists."""
        return self.path(checkpoint).exists()

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        """Write the file atomically."""
        write_atomically(self.path(checkpoint), checkpoint.full_note.encode())

    def close(self) -> None:
        """Nothing to release."""


class KafkaPublisher:
    """The topic ``ledger.checkpoints``: key the log, value the signed note, acknowledged by every
    in-sync replica. The producer is opened on first use, so commands that sign nothing never connect."""

    def __init__(self, bootstrap: str, kafka: KafkaSettings, topic: str = TOPIC) -> None:
        self._bootstrap = bootstrap
        self._kafka = kafka
        self.topic = topic
        self._producer: ProducerTransport | None = None

    @property
    def name(self) -> str:
        """The topic."""
        return f"Kafka topic {self.topic}"

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        """Produce and wait for the acknowledgement (``BrokerUnavailable`` otherwise)."""
        from ledger.kafka.transport import open_producer

        if self._producer is None:
            self._producer = open_producer(self._bootstrap, self._kafka)
        producer = self._producer
        headers = (
            ("ledger.log", checkpoint.log.encode()),
            ("ledger.tree_size", str(checkpoint.tree_size).encode()),
        )
        producer.send(self.topic, checkpoint.full_note.encode(), key=checkpoint.log.encode(), headers=headers)
        producer.flush(_FLUSH_TIMEOUT)

    def close(self) -> None:
        """Close the producer, if one was opened."""
        if self._producer is not None:
            self._producer.close()
            self._producer = None
