"""Events the ledger writes about itself (``ledger.*``): reports generated, rejections, checkpoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ledger.domain.envelope import ReceivedEvent, validate_event
from ledger.domain.fields import LEDGER_ID_PREFIX
from ledger.domain.stored import format_time

CHECKPOINT_SIGNED = "ledger.checkpoint_signed"
CHECKPOINT_COSIGNED = "ledger.checkpoint_cosigned"
KEY_ROTATED = "ledger.key_rotated"
ANOMALY_REVIEWED = "ledger.anomaly_reviewed"
CHECKPOINT_BOOKKEEPING = (CHECKPOINT_SIGNED, CHECKPOINT_COSIGNED)
"""The ledger's own checkpoint records: events of these types alone never make a log "grown", or an idle log
would checkpoint itself (and a witness cosign it) for ever."""

LEDGER_ACTOR = "ledger"
LEDGER_SOURCE = "urn:ledger"
READ = "read:"
"""Id infix of the reads the ledger records (``ledger:read:<hex>``)."""
WITNESS_READ = "witness-read:"
"""Id infix of the reads a witness makes (checkpoints, proofs, keys): recorded like every read, they alone
never make a log "grown", or each witness poll would cause the next checkpoint, for ever."""


LEDGER_ROLE = "system"
"""The ``actorrole`` of every event the ledger writes as itself (checkpoints, reports, rejections)."""


def ledger_event(
    type_: str,
    tenant: str,
    data: dict[str, Any],
    *,
    event_id: str | None = None,
    subject: str | None = None,
    actor: str = LEDGER_ACTOR,
    actorrole: str = LEDGER_ROLE,
) -> ReceivedEvent:
    """A validated event the ledger writes for ``tenant``; a deterministic ``event_id`` makes a retry a duplicate.

    Its id is ``ledger:<event_id>`` (``ledger:<random hex>`` without one): producers cannot use that prefix.
    ``actor``/``actorrole`` name the principal the ledger acted for (a recorded read, a review, an erasure's
    requester), else the ledger itself."""
    return ledger_envelope(
        type_,
        tenant,
        data,
        event_id=LEDGER_ID_PREFIX + (event_id or uuid.uuid4().hex),
        time=datetime.now(UTC),
        subject=subject,
        actor=actor,
        actorrole=actorrole,
    )


def ledger_envelope(
    type_: str,
    tenant: str,
    data: dict[str, Any],
    *,
    event_id: str,
    time: datetime,
    subject: str | None = None,
    actor: str = LEDGER_ACTOR,
    actorrole: str = LEDGER_ROLE,
) -> ReceivedEvent:
    """The one envelope of the ledger's own events, with the id and time exactly as given (aware ``time``).

    ``ledger_event`` gives it a reserved id and the ledger's clock; a rejection gives it an id and time
    derived from the rejected message alone, so that a replay rebuilds the very same event."""
    raw = envelope_dict(
        type_, tenant, data, event_id=event_id, time=time, subject=subject, actor=actor, actorrole=actorrole
    )
    return validate_event(raw, allow_internal=True)


def envelope_dict(
    type_: str,
    tenant: str,
    data: dict[str, Any],
    *,
    event_id: str,
    time: datetime,
    source: str = LEDGER_SOURCE,
    subject: str | None = None,
    actor: str = LEDGER_ACTOR,
    actorrole: str = LEDGER_ROLE,
) -> dict[str, Any]:
    """The CloudEvents dict of an event the ledger builds, not yet validated: its own events
    (``ledger_envelope``) and the ones it maps from a tool's webhook (``ledger.webhooks.model.envelope``,
    with the tool's ``source``). ``time`` is written as every stored time is (UTC, microseconds, ``Z``)."""
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": format_time(time),
        "datacontenttype": "application/json",
        "tenant": tenant,
        "actor": actor,
        "actorrole": actorrole,
        "data": data,
    }
    if subject is not None:
        raw["subject"] = subject
    return raw


def recorded_read(event: dict[str, Any]) -> bool:
    """Whether ``event`` is the ledger's record of a read of its own API (not a producer's access event)."""
    ident = event.get("id")
    return isinstance(ident, str) and ident.startswith(
        (LEDGER_ID_PREFIX + READ, LEDGER_ID_PREFIX + WITNESS_READ)
    )
