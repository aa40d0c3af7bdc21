"""Turning polled messages into one append batch: valid events, rejections, and each partition's advance.

Every message of a batch either becomes an event or a rejection (a ``ledger.ingest_rejected`` event plus
a dead letter), in offset order per partition, so the batch covers its offsets completely: the offsets
fence moves a partition past exactly the messages whose effect the same transaction records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger.domain.envelope import ReceivedEvent
from ledger.domain.errors import FieldError, IdempotencyConflict
from ledger.domain.internal import LEDGER_SOURCE
from ledger.ingest import KAFKA, REJECTED_TYPE, Rejection, raw_sha256, receive
from ledger.kafka.bindings import request_of
from ledger.kafka.dlq import DeadLetter, reject
from ledger.kafka.offsets import Advance
from ledger.kafka.transport import Message

_log = logging.getLogger(__name__)


@dataclass
class Batch:
    """What one append transaction records, and where it leaves each partition."""

    events: list[ReceivedEvent] = field(default_factory=list)
    sources: list[Message] = field(default_factory=list)  # sources[i] is the message events[i] came from
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Dead letters already acknowledged by the DLQ: a batch retried after a lost database resends none.
    letters_sent: int = 0
    advances: dict[int, Advance] = field(default_factory=dict)
    messages: int = 0  # messages covered (a repeated rejection may leave fewer events than messages)
    rejected: int = 0

    def add(self, message: Message, *, default_tenant: str) -> None:
        """Append ``message`` as its event, or as the rejection recording why it is not one."""
        self.messages += 1
        outcome = read_event(message)
        if isinstance(outcome, Rejection):
            self._add_rejection(message, outcome, default_tenant)
        else:
            self.events.append(outcome)
            self.sources.append(message)

    def _add_rejection(self, message: Message, rejection: Rejection, default_tenant: str) -> None:
        event, letter = reject(message, rejection, default_tenant=default_tenant)
        self.events.append(event)
        self.sources.append(message)
        self.dead_letters.append(letter)
        self.rejected += 1
        _log.warning("rejected %s (%s): %s", message.origin, rejection.code, rejection.reason)

    def reject_conflicts(self, errors: list[FieldError], *, default_tenant: str) -> bool:
        """Turn the events an ``IdempotencyConflict`` named into rejections, so the batch can be retried.

        A conflicting *rejection* event means this very message was rejected before with another reason
        (by an earlier version of the ledger): it is already on the record, so it is dropped, not replaced.
        Returns False when the errors name no event, so nothing could be isolated.
        """
        indexes = sorted({e.index for e in errors if e.index is not None}, reverse=True)
        for i in indexes:
            event, message = self.events.pop(i), self.sources.pop(i)
            if event.event_type.name == REJECTED_TYPE and event.envelope.source == LEDGER_SOURCE:
                continue
            # The same words whether the first use of the id is in this batch or an earlier one, so a
            # replay rebuilds an identical rejection event.
            reason = f"event id {event.id!r} is already used by another event with different content"
            rejected, letter = reject(
                message,
                Rejection(IdempotencyConflict.code, reason, raw_sha256(message.value), event.tenant),
                default_tenant=default_tenant,
            )
            self.events.insert(i, rejected)
            self.sources.insert(i, message)
            self.dead_letters.append(letter)
            self.rejected += 1
            _log.warning("rejected %s (%s): %s", message.origin, IdempotencyConflict.code, reason)
        return bool(indexes)


def read_event(message: Message) -> ReceivedEvent | Rejection:
    """The validated event a message carries, or the rejection saying why it carries none."""
    # Judged by the ledger's clock when read, as over HTTP: an event's time is then never more than
    # MAX_FUTURE_SKEW after the moment it is recorded, however late the consumer runs.
    outcome = receive(request_of(message), KAFKA, received_at=datetime.now(UTC))
    return outcome if isinstance(outcome, Rejection) else outcome.events[0]
