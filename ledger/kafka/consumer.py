"""``ledger consume``: the worker that appends the events topic to the ledger with exactly-once effect.

The loop: poll a batch, turn each message into an event or a rejection, record the batch (dead letters,
then events and offsets fence in one transaction), tell Kafka the new offsets (for lag monitoring only).

Positions. For each partition it owns the worker keeps the next offset to record. It starts at the
offset stored in PostgreSQL when the partition is assigned (or at the beginning of the partition when
nothing is stored) and moves past a batch's messages only when the batch committed. A batch's fence
expects exactly that position, so a batch commits only if it continues what is stored. When it does not
(an ``OffsetConflict``: another member got there first), the worker drops what it polled, re-reads the
stored offsets and seeks there: it never moves past anything it has not recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ledger.domain.errors import BrokerUnavailable, StorageUnavailable
from ledger.kafka.batch import Batch
from ledger.kafka.offsets import Advance, OffsetStore
from ledger.kafka.transport import ConsumerTransport, Message, ProducerTransport
from ledger.kafka.writer import BACKOFF_FIRST, BACKOFF_MAX, Abandoned, BatchWriter, Committed, Conflicted
from ledger.settings import KafkaSettings
from ledger.storage.append import AppendService
from ledger.storage.database import Database

_log = logging.getLogger("ledger.kafka")
POLL_SECONDS = 0.5  # how long one poll waits for messages; also how quickly a stop request is noticed


@dataclass
class Stats:
    """What the worker has done, for the status line and for benchmarks."""

    started: float = field(default_factory=time.monotonic)
    first_message: float | None = None
    last_message: float | None = None
    last_commit: float | None = None
    committed: int = 0  # messages whose batch committed (each is an event or a rejection)
    recorded: int = 0  # events new to the ledger
    rejected: int = 0  # messages rejected (in committed batches)
    batches: int = 0
    conflicts: int = 0
    skipped_offsets: int = 0  # offsets the client skipped over (transaction markers, compaction)


class Worker:
    """One member of the consumer group; also its own rebalance listener."""

    def __init__(
        self,
        *,
        db: Database,
        appender: AppendService,
        consumer: ConsumerTransport,
        dlq: ProducerTransport,
        kafka: KafkaSettings,
        stop: threading.Event | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._kafka = kafka
        self._after_commit = after_commit  # e.g. the checkpointer's poke: told after each committed batch
        self._consumer = consumer
        self.stop = stop or threading.Event()
        self._store = OffsetStore(db, kafka.group, kafka.topic)
        self._writer = BatchWriter(
            appender, self._store, dlq, dlq_topic=kafka.dlq_topic, default_tenant=kafka.rejection_tenant,
            stop=self.stop,
        )  # fmt: skip
        self.stats = Stats()
        self._positions: dict[int, int | None] = {}  # owned partition → next offset to record
        self._needs_resync = False
        self._last_status = time.monotonic()

    # ---- the loop ------------------------------------------------------------------------------------

    def run(
        self, *, stop_after_idle: float | None = None, until: Callable[[Stats], bool] | None = None
    ) -> Stats:
        """Consume until ``stop`` is set (a signal), ``until(stats)`` holds, or nothing came for a while."""
        self._consumer.subscribe(self._kafka.topic, self)
        _log.info(
            "consuming %s as group %s (client %s, batches of %d); dead letters to %s",
            self._kafka.topic, self._kafka.group, self._kafka.client, self._kafka.batch_size, self._kafka.dlq_topic,
        )  # fmt: skip
        try:
            while not self.stop.is_set():
                if self._needs_resync:
                    self._resync()
                    continue
                batch = self._batch(self._poll())
                if batch.messages and not self.stop.is_set():
                    self._record(batch)
                self._report()
                if until is not None and until(self.stats):
                    break
                if stop_after_idle is not None and self._idle_for() >= stop_after_idle:
                    _log.info("nothing to consume for %.0f s: stopping", stop_after_idle)
                    break
        finally:
            self._report(force=True)
            self._consumer.close()
            _log.info("stopped")
        return self.stats

    def _poll(self) -> list[Message]:
        try:
            return self._consumer.poll(POLL_SECONDS, self._kafka.batch_size)
        except BrokerUnavailable as exc:
            _log.warning("%s; polling again shortly", exc.detail)
            self.stop.wait(BACKOFF_FIRST)
            return []

    def _batch(self, messages: list[Message]) -> Batch:
        """The messages at each owned partition's position, as one batch with each partition's advance."""
        batch = Batch()
        positions = dict(self._positions)
        for m in messages:
            if m.partition not in positions:
                continue  # not ours (any more)
            position = positions[m.partition]
            if position is not None and m.offset < position:
                continue  # a redelivery of something already recorded
            if position is not None and m.offset > position:
                self.stats.skipped_offsets += m.offset - position
            batch.add(m, default_tenant=self._kafka.rejection_tenant)
            positions[m.partition] = m.offset + 1
        batch.advances = {
            p: Advance(self._positions[p], end, self._consumer.high_watermark(p))
            for p, end in positions.items()
            if end is not None and end != self._positions[p]
        }
        if batch.messages:
            now = time.monotonic()
            self.stats.first_message = self.stats.first_message or now
            self.stats.last_message = now
        return batch

    def _record(self, batch: Batch) -> None:
        outcome = self._writer.write(batch)
        if isinstance(outcome, Committed):
            for p, advance in batch.advances.items():
                self._positions[p] = advance.next
            self.stats.committed += batch.messages
            self.stats.recorded += outcome.recorded
            self.stats.rejected += batch.rejected
            self.stats.batches += 1
            self.stats.last_commit = time.monotonic()
            self._consumer.commit({p: a.next for p, a in batch.advances.items()})
            if self._after_commit is not None:
                self._after_commit()
        elif isinstance(outcome, Conflicted):
            self.stats.conflicts += 1
            _log.warning("%s; re-reading the stored offsets", outcome.error.detail)
            self._needs_resync = True
        else:
            assert isinstance(outcome, Abandoned)

    # ---- positions -----------------------------------------------------------------------------------

    def assigned(self, partitions: list[int]) -> Mapping[int, int | None]:
        """Rebalance listener: start each new partition where PostgreSQL says its consumption stands."""
        stored = self._load(partitions)
        if stored is None:
            return {}  # stopping: the partitions stay unowned, their messages are ignored
        self._positions.update(stored)
        _log.info("assigned %s: starting at %s", _names(self._kafka.topic, partitions), _show(stored))
        return stored

    def revoked(self, partitions: list[int]) -> None:
        """Rebalance listener: forget the partitions (no batch is ever in flight while polling)."""
        if partitions:
            for p in partitions:
                self._positions.pop(p, None)
            _log.info("revoked %s", _names(self._kafka.topic, partitions))

    def _resync(self) -> None:
        """Re-read the stored offsets of every owned partition and seek there."""
        owned = sorted(self._positions)
        stored = self._load(owned)
        if stored is None:
            return  # stopping
        try:
            for p, offset in stored.items():
                self._consumer.seek(p, offset)
        except BrokerUnavailable as exc:  # stay unsynced: the loop tries again, never polling meanwhile
            _log.warning("%s; re-positioning again shortly", exc.detail)
            self.stop.wait(BACKOFF_FIRST)
            return
        self._positions.update(stored)
        self._needs_resync = False
        _log.info("re-positioned %s at %s", _names(self._kafka.topic, owned), _show(stored))

    def _load(self, partitions: list[int]) -> dict[int, int | None] | None:
        """Stored offsets, retrying a lost database with backoff; None if asked to stop meanwhile."""
        delay = BACKOFF_FIRST
        while not self.stop.is_set():
            try:
                return self._store.load(partitions)
            except StorageUnavailable as exc:
                _log.warning("%s; reading offsets again in %.1f s", exc.detail, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        return None

    # ---- status --------------------------------------------------------------------------------------

    def _idle_for(self) -> float:
        return time.monotonic() - (self.stats.last_message or self.stats.started)

    def lag(self) -> dict[int, int | None]:
        """Per owned partition: messages not yet recorded, when the partition's end offset is known."""
        out: dict[int, int | None] = {}
        for p, position in self._positions.items():
            high = self._consumer.high_watermark(p)
            out[p] = None if high is None else max(high - (position or 0), 0)
        return out

    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_status < self._kafka.status_interval:
            return
        self._last_status = now
        lag = self.lag()
        parts = " ".join(
            f"p{p}@{_show_one(self._positions.get(p))}(lag {'?' if lag[p] is None else lag[p]})"
            for p in sorted(lag)
        )
        elapsed = max(now - self.stats.started, 1e-9)
        _log.info(
            "status group=%s topic=%s committed=%s lag=%d | %s events recorded, %d rejected, %d batches, "
            "%.0f msg/s since start, %d offset conflicts",
            self._kafka.group, self._kafka.topic, parts or "(no partitions)", sum(v or 0 for v in lag.values()),
            f"{self.stats.recorded:,}", self.stats.rejected, self.stats.batches, self.stats.committed / elapsed,
            self.stats.conflicts,
        )  # fmt: skip


def _names(topic: str, partitions: Iterable[int]) -> str:
    return ", ".join(f"{topic}/{p}" for p in partitions) or "nothing"


def _show(positions: Mapping[int, int | None]) -> str:
    return ", ".join(f"{p}:{_show_one(o)}" for p, o in sorted(positions.items())) or "-"


def _show_one(offset: int | None) -> str:
    return "start" if offset is None else str(offset)
