"""Erasure that keeps every proof (GDPR art. 17, end of contract): crypto-shredding of one data subject.

The subject's sealed values were encrypted under their key (``ledger.crypto.sealing``); deleting the key
makes every one of them unreadable while the stored bytes, and so every hash, Merkle root, checkpoint and
bundle, stay exactly as they were. ``erasure.executed`` is recorded through the one append service, and
the key is deleted by the append's fence, in the same transaction: neither happens without the other.

**The subject's records** are the events holding a value sealed under the subject's live key: an event
whose data subject is the subject (its actor, or the data field its type names, e.g. a credential's
``annotator``) and whose stored bytes name that key id. Values under a key erased before are gone
already; events without sealed values lose nothing.

**The hold rule.** A legal hold in force (in ``proj_holds``, not released, or released only at a time
still to come) refuses the erasure, naming the hold, when it covers any of those records: a hold on the
tenant's log covers all of them; one on a dataset, those about that dataset; one on items, those about
the items (of the hold's dataset, when it names one too), as the item index ``proj_item_events`` has them.

The fence holds the tenant's log head ``FOR UPDATE`` first: a hold placed concurrently is recorded
either before (and seen here) or after the erasure, never in between.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ledger.crypto.sealing import Sealer
from ledger.domain.canonical import canonicalize
from ledger.domain.errors import (
    AlreadyErased,
    ErasureHeld,
    FieldError,
    IdempotencyConflict,
    ValidationFailed,
)
from ledger.domain.fields import LEDGER_ID_PREFIX, MAX_IDENTIFIER_LENGTH
from ledger.domain.internal import ledger_event
from ledger.domain.logs import log_for
from ledger.domain.registry import EVENT_TYPES
from ledger.domain.stored import format_time
from ledger.storage.append import AppendService, Receipt
from ledger.storage.database import Database
from ledger.storage.keystore import erase_key, live_kid

Connection = psycopg.Connection[Any]

ERASURE_EXECUTED = "erasure.executed"
_ID_PREFIX = "erasure:"
MAX_ERASURE_ID_LENGTH = MAX_IDENTIFIER_LENGTH - len(LEDGER_ID_PREFIX + _ID_PREFIX)
"""An erasure id fits the event id ``ledger:erasure:<erasure_id>`` (at most 200 characters)."""
ERASURE_ID_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f/]+$"
"""No space, control character or '/': the event id stays addressable as ``GET /v1/events/{id}``."""
_SUBJECT_TYPES = sorted(name for name, t in EVENT_TYPES.items() if t.subject_field)
"""Types whose data subject is a data field, not the actor: their values may be sealed under anyone."""
# Where validation names a field of the event it built, the caller knows it by the request's name.
_REQUEST_FIELD = {
    "data.data_subject": "subject",
    "data.reason": "reason",
    "data.approver": "approver",
    "data.erasure_id": "erasure_id",
    "id": "erasure_id",
    "actor": "requested_by",
}


@dataclass(frozen=True)
class ErasureRequest:
    """Who asks to erase whom, why, and who approved it; ``erasure_id`` makes a retry a repeat."""

    tenant: str
    subject: str
    reason: str
    approver: str
    requested_by: str
    role: str = "admin"
    erasure_id: str | None = None


@dataclass(frozen=True)
class Erasure:
    """What an erasure did: the key ids deleted, how many events' sealed values they made unreadable,
    and the receipt of its ``erasure.executed``. ``receipt.duplicate``: the same erasure was recorded
    before, and nothing was done again."""

    erasure_id: str
    tenant: str
    subject: str
    keys_erased: list[str]
    sealed_events: int
    receipt: Receipt

    def as_dict(self) -> dict[str, Any]:
        """The JSON form returned by ``POST /v1/erasures`` and ``ledger erase --json``."""
        return {
            "erasure_id": self.erasure_id,
            "tenant": self.tenant,
            "subject": self.subject,
            "keys_erased": self.keys_erased,
            "sealed_events": self.sealed_events,
            "receipt": self.receipt.as_dict(),
        }


@dataclass(frozen=True)
class Preview:
    """What erasing a subject would do now (``ledger erase`` shows it before asking)."""

    tenant: str
    subject: str
    kid: str | None
    sealed_events: int
    holds: list[str]
    earlier: list[str] = field(default_factory=list)


class _Repeated(Exception):  # a signal out of the fence, never raised to a caller
    """The erasure event is on the record already; carries its stored row."""

    def __init__(self, row: tuple[Any, ...]) -> None:
        super().__init__("repeated")
        self.row = row


class ErasureService:
    """Erases a data subject: records ``erasure.executed`` and deletes their key in one transaction."""

    def __init__(self, db: Database, appender: AppendService, sealer: Sealer) -> None:
        self._db = db
        self._appender = appender
        self._sealer = sealer

    def erase(self, request: ErasureRequest) -> Erasure:
        """Erase, or refuse: 409 ``erasure_held`` naming the hold, 409 ``already_erased``, 422 naming the field."""
        erasure_id = request.erasure_id or uuid.uuid4().hex
        event = _erasure_event(request, erasure_id)
        done: dict[str, Any] = {}

        def fence(conn: Connection) -> None:
            done.update(_erase_locked(conn, request.tenant, request.subject, event.id))

        try:
            (receipt,) = self._appender.append([event], fence=fence)
        except _Repeated as repeated:
            return _repeat(request, erasure_id, event.raw["data"], repeated.row)
        finally:
            # Whatever happened, this process's cached key must not outlive the row (reads show [erased]).
            self._sealer.forget(request.tenant, request.subject)
        return Erasure(
            erasure_id, request.tenant, request.subject, done["keys"], done["sealed_events"], receipt
        )

    def preview(self, tenant: str, subject: str) -> Preview:
        """What ``erase`` would find now, without erasing (nothing is locked beyond this short read)."""
        with self._db.connect() as conn, conn.transaction():
            kid = live_kid(conn, tenant, subject)
            count = _sealed_count(conn, tenant, subject, kid) if kid else 0
            holds = _covering_holds(conn, tenant, subject, kid) if kid and count else []
            return Preview(tenant, subject, kid, count, holds, _earlier_erasures(conn, tenant, subject))


def _erasure_event(request: ErasureRequest, erasure_id: str) -> Any:
    """The validated ``erasure.executed``; a refusal names the request's fields."""
    errors = []
    if not request.reason.strip():
        errors.append(FieldError("reason", "must say why the subject is erased"))
    if request.approver == request.requested_by:
        errors.append(FieldError("approver", "must be someone other than the requester (four eyes)"))
    if len(erasure_id) > MAX_ERASURE_ID_LENGTH:
        errors.append(FieldError("erasure_id", f"must be at most {MAX_ERASURE_ID_LENGTH} characters"))
    elif "/" in erasure_id or any(c.isspace() or not c.isprintable() for c in erasure_id):
        errors.append(FieldError("erasure_id", "must not hold a space, a control character or '/'"))
    if errors:
        raise ValidationFailed("the erasure request is not valid", errors=errors)
    data = {
        "erasure_id": erasure_id,
        "data_subject": request.subject,
        "reason": request.reason,
        "approver": request.approver,
    }
    try:
        return ledger_event(
            ERASURE_EXECUTED,
            request.tenant,
            data,
            event_id=_ID_PREFIX + erasure_id,
            actor=request.requested_by,
            actorrole=request.role,
        )
    except ValidationFailed as exc:
        renamed = [FieldError(_REQUEST_FIELD.get(e.field, e.field), e.message) for e in exc.errors]
        raise type(exc)(exc.detail, errors=renamed, error_count=exc.error_count) from None


def _erase_locked(conn: Connection, tenant: str, subject: str, event_id: str) -> dict[str, Any]:
    """The fence: under the tenant's log head lock, check and delete; raising rolls everything back."""
    conn.execute("SELECT 1 FROM ledger_log_heads WHERE log = %s FOR UPDATE", (log_for(tenant),))
    row = conn.execute(
        "SELECT log, position, hash, recorded_at, canonical FROM ledger_events"
        " WHERE tenant = %s AND event_id = %s",
        (tenant, event_id),
    ).fetchone()
    if row is not None:
        raise _Repeated(row)
    kid = live_kid(conn, tenant, subject)
    if kid is None:
        earlier = _earlier_erasures(conn, tenant, subject)
        if earlier:
            msg = (
                f"subject {subject!r} of tenant {tenant!r} has no key left to erase: erasure "
                f"{earlier[0]!r} deleted it and nothing was sealed under the subject since"
            )
            raise AlreadyErased(msg, errors=[FieldError("subject", f"already erased by {earlier[0]!r}")])
        return {"keys": [], "sealed_events": 0}  # nothing was ever sealed under the subject: on the record
    count = _sealed_count(conn, tenant, subject, kid)
    holds = _covering_holds(conn, tenant, subject, kid) if count else []
    if holds:
        named = ", ".join(repr(h) for h in holds)
        msg = (
            f"legal hold {named} covers records of subject {subject!r} whose sealed values the erasure "
            "would make unreadable; release the hold first. Nothing was erased."
        )
        raise ErasureHeld(msg, holds=holds)
    return {"keys": erase_key(conn, tenant, subject), "sealed_events": count}


def _repeat(request: ErasureRequest, erasure_id: str, data: dict[str, Any], row: tuple[Any, ...]) -> Erasure:
    """The same erasure asked for again: its original receipt, or 409 when it differs."""
    log, position, hash_, recorded_at, canonical = row
    recorded = json.loads(bytes(canonical))["event"]
    if recorded.get("type") != ERASURE_EXECUTED or recorded.get("data") != data:
        msg = f"erasure {erasure_id!r} was recorded before with a different subject, reason or approver"
        raise IdempotencyConflict(msg, errors=[FieldError("erasure_id", msg)])
    receipt = Receipt(str(recorded["id"]), str(log), int(position), bytes(hash_), recorded_at, duplicate=True)
    return Erasure(erasure_id, request.tenant, request.subject, [], 0, receipt)


# ---- the subject's records ------------------------------------------------------------------------------

# The events whose stored bytes name the key id: `"kid":"<kid>"` appears only in a sealed box under that
# key (a kid is 12 random hex digits and the subject, see new_subject_key). The data-subject filter keeps
# the scan on the subject's own events (the actor index, and the few types with a data subject field).
_MINE = (
    "SELECT e.log, e.position, e.canonical FROM ledger_events e WHERE e.tenant = %(tenant)s"
    " AND (e.actor = %(subject)s OR e.type = ANY(%(types)s)) AND position(%(needle)s IN e.canonical) > 0"
)


def _params(tenant: str, subject: str, kid: str) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "subject": subject,
        "types": _SUBJECT_TYPES,
        "needle": b'"kid":' + canonicalize(kid),
    }


def _sealed_count(conn: Connection, tenant: str, subject: str, kid: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM ({_MINE}) m", _params(tenant, subject, kid)).fetchone()
    return int(row[0]) if row else 0


def _covering_holds(conn: Connection, tenant: str, subject: str, kid: str) -> list[str]:
    """The ids of the holds in force that cover any of the subject's records (oldest placement first)."""
    holds = conn.execute(
        "SELECT hold_id, scope FROM proj_holds WHERE tenant = %s"
        " AND (released_at IS NULL OR released_at > now()) ORDER BY placed_at, hold_id",
        (tenant,),
    ).fetchall()
    params = _params(tenant, subject, kid)
    covering = []
    for hold_id, scope in holds:
        if _covers(conn, scope if isinstance(scope, dict) else {}, tenant, params):
            covering.append(str(hold_id))
    return covering


def _covers(conn: Connection, scope: dict[str, Any], tenant: str, params: dict[str, Any]) -> bool:
    dataset, items = scope.get("dataset"), scope.get("items") or []
    if scope.get("log") == log_for(tenant) or (dataset is None and not items):
        sql = f"SELECT EXISTS ({_MINE})"  # the whole log (a scope naming nothing else holds it all)
    elif items:
        sql = (
            f"SELECT EXISTS (SELECT 1 FROM ({_MINE}) m JOIN proj_item_events i"
            " ON i.tenant = %(tenant)s AND i.log = m.log AND i.position = m.position"
            " WHERE i.item = ANY(%(items)s) AND (%(dataset)s::text IS NULL OR i.dataset = %(dataset)s))"
        )
    else:
        sql = (
            f"SELECT EXISTS (SELECT 1 FROM ({_MINE}) m"
            " WHERE convert_from(m.canonical, 'UTF8')::jsonb #>> '{event,data,dataset}' = %(dataset)s)"
        )
    row = conn.execute(sql, {**params, "dataset": dataset, "items": [str(i) for i in items]}).fetchone()
    return bool(row and row[0])


def _earlier_erasures(conn: Connection, tenant: str, subject: str) -> list[str]:
    rows = conn.execute(
        "SELECT erasure_id FROM proj_erasures WHERE tenant = %s AND data_subject = %s"
        " AND executed_at IS NOT NULL ORDER BY executed_at, erasure_id",
        (tenant, subject),
    ).fetchall()
    return [str(r[0]) for r in rows]


def describe(erasure: Erasure) -> str:
    """The lines ``ledger erase`` prints: what was erased and the receipt."""
    r = erasure.receipt
    if r.duplicate:
        head = f"erasure {erasure.erasure_id!r} of subject {erasure.subject!r} was recorded before; nothing more was done"
    elif erasure.keys_erased:
        head = (
            f"erased subject {erasure.subject!r} of tenant {erasure.tenant!r}: key {', '.join(erasure.keys_erased)}"
            f" deleted; the sealed values of {erasure.sealed_events:,} event(s) now read [erased]"
        )
    else:
        head = (
            f"subject {erasure.subject!r} of tenant {erasure.tenant!r} had nothing sealed: no key to delete"
        )
    return (
        f"{head}\nrecorded {ERASURE_EXECUTED} {r.event_id} at {r.log}#{r.position},"
        f" {format_time(r.recorded_at)}, hash {r.hash.hex()}"
    )
