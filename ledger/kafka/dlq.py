"""Rejected messages: a dead letter for the DLQ topic, and a ``ledger.ingest_rejected`` event for the record.

Both are pure functions of the message (its bytes and its topic/partition/offset), so a batch replayed
after a crash rebuilds the very same rejection event: the append service sees a repeat of an id with the
same content and records nothing new. The dead letter may be produced twice in that case (it is sent
before the database commit, so that it can never be missing); readers of the DLQ tell repeats apart by
the ``ledger.original.*`` headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.domain.envelope import ReceivedEvent
from ledger.ingest import Rejection, rejection_event
from ledger.kafka.transport import Headers, Message, ProducerTransport

_FLUSH_TIMEOUT = 30.0  # seconds to wait for the DLQ's acknowledgements before the batch is retried

# Header names on a dead letter; the original headers are kept before them.
H_CODE = "ledger.rejection.code"
H_REASON = "ledger.rejection.reason"
H_ID = "ledger.rejection.id"
H_SHA256 = "ledger.raw.sha256"
H_TOPIC = "ledger.original.topic"
H_PARTITION = "ledger.original.partition"
H_OFFSET = "ledger.original.offset"


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message as it goes to the DLQ topic: original key, value and headers, plus the reason."""

    key: bytes | None
    value: bytes | None
    headers: Headers


def reject(
    message: Message, rejection: Rejection, *, default_tenant: str
) -> tuple[ReceivedEvent, DeadLetter]:
    """The ``ledger.ingest_rejected`` event recording ``message``'s rejection, and its dead letter."""
    event = rejection_event(
        rejection,
        transport="kafka",
        origin=message.origin,
        # The message's own timestamp, not "now": a replay must rebuild identical content.
        time=datetime.fromtimestamp((message.timestamp_ms or 0) / 1000, UTC),
        default_tenant=default_tenant,
    )
    letter = DeadLetter(
        key=message.key,
        value=message.value,
        headers=(
            *message.headers,
            (H_CODE, rejection.code.encode()),
            (H_REASON, event.raw["data"]["reason"].encode()),
            (H_ID, event.id.encode()),
            (H_SHA256, rejection.raw_sha256.encode()),
            (H_TOPIC, message.topic.encode()),
            (H_PARTITION, str(message.partition).encode()),
            (H_OFFSET, str(message.offset).encode()),
        ),
    )
    return event, letter


def send_dead_letters(producer: ProducerTransport, topic: str, letters: list[DeadLetter]) -> None:
    """Produce ``letters`` and wait for every acknowledgement; ``BrokerUnavailable`` if any is missing."""
    if not letters:
        return
    for letter in letters:
        producer.send(topic, letter.value, key=letter.key, headers=letter.headers)
    producer.flush(_FLUSH_TIMEOUT)
