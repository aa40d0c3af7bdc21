"""The alert publisher of ``ledger serve`` and ``ledger consume``: a background thread, like the checkpointer.

Each round, under the publishers' advisory lock, it chooses unsent anomalies, produces their CloudEvents,
waits for the broker's acknowledgement, and only then marks them sent and commits. A broker that does not
acknowledge leaves them unsent, for the next round.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

from ledger.alerts import outbox
from ledger.domain.errors import LedgerError
from ledger.settings import KafkaSettings, Settings
from ledger.storage.database import Database

if TYPE_CHECKING:
    from ledger.kafka.transport import ProducerTransport

_log = logging.getLogger("ledger.alerts")
TICK_SECONDS = 1.0
"""How often unsent anomalies are looked for (one indexed anti-join over the anomaly table)."""
_FLUSH_TIMEOUT = 10.0  # seconds to wait for the broker's acknowledgement; a miss is retried next round


class AlertSender(Protocol):
    """Where alerts go."""

    topic: str

    def send(self, anomalies: list[outbox.Row]) -> None:
        """Deliver every alert of ``anomalies``; raise (a ``LedgerError``) unless all were acknowledged."""
        ...

    def close(self) -> None:
        """Release what the sender holds."""
        ...


class KafkaAlertSender:
    """The topic ``ledger.alerts``: structured-mode CloudEvents keyed by tenant, acknowledged by every
    in-sync replica. The producer is opened on first use, so a ledger without anomalies never connects."""

    def __init__(
        self, bootstrap: str, kafka: KafkaSettings, *, deployment: str, topic: str = outbox.TOPIC
    ) -> None:
        self._bootstrap = bootstrap
        self._kafka = kafka
        self._deployment = deployment
        self.topic = topic
        self._producer: ProducerTransport | None = None

    def send(self, anomalies: list[outbox.Row]) -> None:
        """Produce each alert, then wait for the acknowledgement of all (``BrokerUnavailable`` otherwise)."""
        from ledger.kafka.bindings import encode
        from ledger.kafka.transport import open_producer

        if self._producer is None:
            self._producer = open_producer(self._bootstrap, self._kafka)
        for anomaly in anomalies:
            value, headers = encode(outbox.alert_event(anomaly, deployment=self._deployment), "structured")
            self._producer.send(self.topic, value, key=str(anomaly["tenant"]).encode(), headers=headers)
        self._producer.flush(_FLUSH_TIMEOUT)

    def close(self) -> None:
        """Close the producer, if one was opened."""
        if self._producer is not None:
            self._producer.close()
            self._producer = None


def send_pending(db: Database, sender: AlertSender, *, limit: int = outbox.BATCH) -> int:
    """One round: send up to ``limit`` unsent anomalies and mark them sent; return how many were sent
    (0 also when another publisher holds the lock)."""
    with db.connect() as conn, conn.transaction():
        if not outbox.lock(conn):
            return 0
        anomalies = outbox.pending(conn, limit)
        if anomalies:
            sender.send(anomalies)  # raises unless acknowledged: then nothing is marked
            outbox.mark_sent(conn, anomalies, sender.topic)
    return len(anomalies)


class AlertRunner:
    """Sends unsent anomalies every ``tick`` seconds until ``stop`` (at once again while a round was full)."""

    def __init__(self, db: Database, sender: AlertSender, *, tick: float = TICK_SECONDS) -> None:
        self._db = db
        self._sender = sender
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-alerts", daemon=True)

    def start(self) -> AlertRunner:
        """Start the thread; returns ``self``."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the round in hand, wait for the thread, and close the sender."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sender.close()

    def __enter__(self) -> AlertRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = 0
            try:
                sent = send_pending(self._db, self._sender)
            except LedgerError as exc:  # the database or the broker away: the next round tries again
                _log.warning("alert round failed: %s", exc.detail)
            except Exception:
                _log.exception("alert round failed unexpectedly")
            if sent < outbox.BATCH:
                self._stop.wait(self._tick)


def alert_runner(settings: Settings, db: Database) -> AlertRunner | None:
    """The alert publisher when Kafka is configured (``LEDGER_KAFKA_BOOTSTRAP``), not started; else ``None``."""
    if not settings.kafka_bootstrap:
        return None
    sender = KafkaAlertSender(
        settings.kafka_bootstrap, settings.kafka, deployment=settings.checkpoints.deployment
    )
    return AlertRunner(db, sender)
