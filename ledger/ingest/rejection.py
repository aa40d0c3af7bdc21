"""Refusals on the record: a ``Rejection`` (a ``LedgerError.code``, its reason, the body's SHA-256) and the
``ledger.ingest_rejected`` event that keeps it, for every transport.

The event is a pure function of the rejection and of where and when the message arrived, so a message
refused again after a crash rebuilds the very same event: the append service sees a repeat of an id with
the same content and records nothing new.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from ledger.domain.envelope import TENANT_PATTERN, ReceivedEvent
from ledger.domain.errors import LedgerError
from ledger.domain.internal import ledger_envelope
from ledger.ingest.request import Binding, Transport

REJECTED_TYPE = "ledger.ingest_rejected"
_REASON_MAX = 2000  # IngestRejected.reason
_ORIGIN_MAX = 500  # IngestRejected.origin
_MAX_ERRORS_IN_REASON = 10
_TENANT = re.compile(TENANT_PATTERN)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot enter the ledger: ``code`` (a ``LedgerError.code``) and a sentence for people.

    ``raw_sha256`` is the SHA-256 (hex) of the body exactly as received (of no bytes when there was none);
    ``tenant`` the tenant the message names, when one could be read, so the rejection is recorded in that
    tenant's log.
    """

    code: str
    reason: str
    raw_sha256: str
    tenant: str | None = None


def raw_sha256(body: bytes | None) -> str:
    """SHA-256 (hex) of a body exactly as received (of no bytes when there was none)."""
    return hashlib.sha256(body or b"").hexdigest()


def refusal(
    exc: LedgerError, body: bytes | None, binding: Binding | None = None, *, tenant: str | None = None
) -> Rejection:
    """The ``Rejection`` of ``body`` for ``exc``: its code, and its detail with the fields it names."""
    detail = exc.detail
    if binding is not None and binding.body_name != "body" and detail.startswith("the body is"):
        detail = f"the {binding.body_name} is" + detail[len("the body is") :]
    # A field error the detail already states (``field: message``, as a webhook mapping's) is not repeated.
    named = [e for e in exc.errors if exc.detail not in (e.message, f"{e.field}: {e.message}")]
    if named:
        details = "; ".join(f"{e.field}: {e.message}" for e in named[:_MAX_ERRORS_IN_REASON])
        more = max(exc.error_count, len(named)) - _MAX_ERRORS_IN_REASON
        detail += f": {details}" + (f"; and {more} more" if more > 0 else "")
    return Rejection(exc.code, detail, raw_sha256(body), tenant)


def rejection_id(transport: Transport, origin: str, digest: str) -> str:
    """A deterministic event id: the same body at the same place always gets the same id."""
    seed = f"{transport}:{origin}#{digest}".encode()
    return "rejected-" + hashlib.sha256(seed).hexdigest()[:40]


def rejection_event(
    rejection: Rejection, *, transport: Transport, origin: str, time: datetime, default_tenant: str
) -> ReceivedEvent:
    """The ``ledger.ingest_rejected`` event recording ``rejection``.

    ``origin`` says where the message was (``topic/partition/offset``, a route and delivery id); ``time``
    when it arrived by the transport's own record of it (a Kafka timestamp, never "now" where a replay
    must rebuild identical content). It goes to the tenant the message names when that is a tenant name,
    else to ``default_tenant``.
    """
    named = rejection.tenant
    tenant = named if named and _TENANT.fullmatch(named) else default_tenant
    reason = f"{rejection.code}: {rejection.reason}"
    if len(reason) > _REASON_MAX:
        reason = reason[: _REASON_MAX - 1] + "…"
    data = {
        "raw_sha256": rejection.raw_sha256,
        "reason": reason,
        "transport": transport,
        "origin": origin[:_ORIGIN_MAX],
    }
    event_id = rejection_id(transport, origin, rejection.raw_sha256)
    return ledger_envelope(REJECTED_TYPE, tenant, data, event_id=event_id, time=time)
