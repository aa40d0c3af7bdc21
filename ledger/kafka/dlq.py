"""Rejected messages: a dead letter for the DLQ topic, and a ``ledger.ingest_rejected`` event for the record.

Both are pure functions of the message (its bytes and its topic/partition/offset), so a batch replayed
after a crash rebuilds the very same rejection event: the append service sees a repeat of an id with the
same content and records nothing new. The dead letter may be produced twice in that case (it is sent
before the database commit, so that it can never be missing); readers of the DLQ tell repeats apart by
the ``ledger.original.*`` headers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.domain.envelope import TENANT_PATTERN, ReceivedEvent, validate_event
from ledger.kafka.bindings import Rejection
from ledger.kafka.transport import Headers, Message, ProducerTransport

REJECTED_TYPE = "ledger.ingest_rejected"
LEDGER_SOURCE = "urn:ledger"
LEDGER_ACTOR = "ledger"
_REASON_MAX = 2000  # IngestRejected.reason
_TENANT = re.compile(TENANT_PATTERN)
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


def raw_sha256(message: Message) -> str:
    """SHA-256 (hex) of the message value exactly as received (of no bytes for a tombstone)."""
    return hashlib.sha256(message.value or b"").hexdigest()


def rejection_id(message: Message, digest: str) -> str:
    """A deterministic event id: the same message at the same place always gets the same id."""
    seed = f"kafka:{message.origin}#{digest}".encode()
    return "rejected-" + hashlib.sha256(seed).hexdigest()[:40]


def reject(
    message: Message, rejection: Rejection, *, default_tenant: str
) -> tuple[ReceivedEvent, DeadLetter]:
    """The ``ledger.ingest_rejected`` event recording ``message``'s rejection, and its dead letter."""
    digest = raw_sha256(message)
    event_id = rejection_id(message, digest)
    tenant = rejection.tenant if rejection.tenant and _TENANT.fullmatch(rejection.tenant) else default_tenant
    reason = f"{rejection.code}: {rejection.reason}"
    if len(reason) > _REASON_MAX:
        reason = reason[: _REASON_MAX - 1] + "…"
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": LEDGER_SOURCE,
        "type": REJECTED_TYPE,
        # The message's own timestamp, not "now": a replay must rebuild identical content.
        "time": _rfc3339(message.timestamp_ms or 0),
        "datacontenttype": "application/json",
        "tenant": tenant,
        "actor": LEDGER_ACTOR,
        "actorrole": LEDGER_ACTOR,
        "data": {
            "raw_sha256": digest,
            "reason": reason,
            "transport": "kafka",
            "origin": message.origin[:500],
        },
    }
    event = validate_event(raw, allow_internal=True)
    letter = DeadLetter(
        key=message.key,
        value=message.value,
        headers=(
            *message.headers,
            (H_CODE, rejection.code.encode()),
            (H_REASON, reason.encode()),
            (H_ID, event_id.encode()),
            (H_SHA256, digest.encode()),
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


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
