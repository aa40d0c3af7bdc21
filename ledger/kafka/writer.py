"""Recording one batch: its dead letters first, then its events and its offsets fence in one transaction.

A lost database (or broker) is retried with backoff, the same batch again, never skipped; an
``IdempotencyConflict`` turns the events it names into rejections (or drops rejections already on record)
and tries again, never ending the worker; an ``OffsetConflict`` is returned to the worker, which re-reads
the stored offsets. A stop request abandons a batch that is waiting for a retry (nothing of it was
committed, so it is simply consumed again next time).

Batches are recorded on the polling thread, one after another. A writer thread overlapping the next
poll with this one's transaction was measured slower on two cores: validation and appending both hold
the GIL, and the hand-offs cost more than the database waits they hide (docs/performance.md).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ledger.domain.errors import BrokerUnavailable, IdempotencyConflict, OffsetConflict, StorageUnavailable
from ledger.kafka.batch import Batch
from ledger.kafka.dlq import send_dead_letters
from ledger.kafka.offsets import OffsetStore
from ledger.kafka.transport import ProducerTransport
from ledger.storage.append import AppendService

_log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0  # seconds: 0.5, 1, 2, 4, 8, 10, 10, …


@dataclass(frozen=True)
class Committed:
    """The batch's events and offsets are committed."""

    recorded: int  # events new to the ledger (the rest were repeats of ids already recorded)


@dataclass(frozen=True)
class Conflicted:
    """Rolled back: the stored offsets were not where the batch expected them."""

    error: OffsetConflict


@dataclass(frozen=True)
class Abandoned:
    """Not committed, because a stop was asked for while waiting to retry."""


Outcome = Committed | Conflicted | Abandoned


class BatchWriter:
    """Records batches through the append service, the only write path."""

    def __init__(
        self,
        appender: AppendService,
        offsets: OffsetStore,
        dlq: ProducerTransport,
        *,
        dlq_topic: str,
        default_tenant: str,
        stop: threading.Event,
    ) -> None:
        self._appender = appender
        self._offsets = offsets
        self._dlq = dlq
        self._dlq_topic = dlq_topic
        self._default_tenant = default_tenant
        self._stop = stop

    def write(self, batch: Batch) -> Outcome:
        """Record ``batch`` exactly once, or say why it was not."""
        delay = BACKOFF_FIRST
        while True:
            try:
                self._send_letters(batch)
                receipts = self._appender.append(batch.events, fence=self._offsets.fence(batch.advances))
            except (StorageUnavailable, BrokerUnavailable) as exc:
                # Nothing was committed (or, if only the commit's answer was lost, the fence says so on
                # the next try): the same batch is tried again, so the consumer never moves past it.
                _log.warning("%s; retrying the same batch in %.1f s", exc.detail, delay)
                if not self._wait(delay):
                    return Abandoned()
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except IdempotencyConflict as exc:
                # Each round replaces a producer's event by its rejection or drops a rejection already on
                # record, so the rounds end: at most two per event (a replaced event's rejection may
                # itself be on record, from an earlier ledger version's wording).
                if batch.reject_conflicts(exc.errors, default_tenant=self._default_tenant):
                    continue
                # A conflict naming no event cannot be isolated: the batch waits, visibly (status line,
                # lag), as for a lost database, instead of ending the worker.
                _log.error("%s; the conflict names no event: retrying in %.1f s", exc.detail, delay)
                if not self._wait(delay):
                    return Abandoned()
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            except OffsetConflict as exc:
                return Conflicted(exc)
            return Committed(sum(not r.duplicate for r in receipts))

    def _wait(self, delay: float) -> bool:
        """Wait ``delay`` seconds before a retry; False if a stop was asked for meanwhile."""
        if self._stop.wait(delay):
            _log.warning("stopping: the uncommitted batch will be consumed again")
            return False
        return True

    def _send_letters(self, batch: Batch) -> None:
        """Dead letters go out, acknowledged, before the commit: after a crash they may repeat, never miss."""
        unsent = batch.dead_letters[batch.letters_sent :]
        if unsent:
            send_dead_letters(self._dlq, self._dlq_topic, unsent)
            batch.letters_sent = len(batch.dead_letters)
