"""Webhook deliveries into the ledger: authenticate the source, read the payload, record its events once.

``WebhookService.deliver`` is the one path of both tools' webhooks (``ledger.api.webhooks`` is its HTTP
side). A delivery is authenticated by its source's own secret (Label Studio: ``Authorization: Bearer``;
CVAT: ``X-Signature-256``, checked before the body is parsed), mapped by the tool's adapter against the
ledger's state, and its events appended through the one append service. What the ledger cannot record
(not JSON, an unsupported action, an unmapped user, an event that does not validate) is answered 202 and
kept as ``ledger.ingest_rejected`` with the body's SHA-256, so the tool stops retrying and nothing is lost.

Idempotence rests on the tool's own ids. A delivery is mapped first; the events it maps to are validated
and appended through the append service, which answers each id already on record as a duplicate (so an
``ANNOTATIONS_CREATED`` of A, on record, and B, new, records B). A delivery with nothing new to record is a
repeat when one of the ids an earlier delivery of the same payload could have recorded
(``Mapped.candidates``) is on record, answered with those receipts. An id on record whose CloudEvents
``source`` is not this source's was recorded by another producer: the delivery is refused on the record,
so a producer of the tenant cannot capture a tool's ids by posting them first.

Mapping, the check and the append of one source run under that source's PostgreSQL advisory lock (a session
lock on one pooled connection, which the mapping's lookup also uses; the deliveries of one process queue
for it on a thread lock, holding no connection), so two deliveries of one source never
map against the same state and both append, even from two ``ledger serve`` processes on one database: a
mapping reads the versions on record, and two updates of one annotation must become v2 and v3, not two v2s.
A delivery that cannot have the lock within ``lock_wait`` seconds is answered 503 (``Overloaded``).

Whatever a mapping raises for a payload it cannot read (a ``LedgerError`` other than an operational one, a
``ValueError``, ``OverflowError``, ``TypeError`` or ``RecursionError``) is a rejection, never a 500: the
service is the adapters' safety net. Operational errors (the database away, the ledger overloaded) keep
their own status, so the tool retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ledger.domain import errors
from ledger.domain.envelope import parse_json, validate_event
from ledger.domain.errors import AuthenticationFailed, LedgerError
from ledger.ingest import refusal, rejection_event
from ledger.ingest.rejection import Rejection
from ledger.storage.append import AppendService, Connection
from ledger.storage.database import Database
from ledger.storage.queries import EventQueries, StoredEvent
from ledger.webhooks import cvat, label_studio
from ledger.webhooks.model import Delivery, Kind, Lookup, Mapped, Source, Unmappable
from ledger.webhooks.signature import verify_signature
from ledger.webhooks.sources import SourceStore, StateLookup

Mapper = Callable[[Delivery, Lookup], Mapped]
MAPPERS: dict[Kind, Mapper] = {"label-studio": label_studio.map_delivery, "cvat": cvat.map_delivery}
SIGNATURE_HEADER = "x-signature-256"
LOCK_KEY = "ledger.webhook:"
"""Prefix of a source's advisory lock key: ``pg_advisory_lock(hashtextextended('ledger.webhook:' || name, 0))``."""
LOCK_WAIT = 10.0
"""Seconds a delivery waits for its source's lock before it is answered 503."""
_LOCK_POLL = 0.02
OPERATIONAL: tuple[type[LedgerError], ...] = (
    errors.StorageUnavailable,
    errors.StorageRefused,
    errors.Overloaded,
    errors.ReadNotRecorded,
    errors.KeyUnavailable,
    errors.ConfigurationError,
    errors.BrokerUnavailable,
    errors.SealedValueTampered,
    errors.VerificationError,
)
"""Errors of the ledger itself, not of the payload: never a rejection, answered with their own status."""
UNREADABLE = (ValueError, OverflowError, TypeError, RecursionError)
"""What a mapping may raise on a payload its adapter did not foresee: a rejection, with a fixed reason."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery is answered: its HTTP status and JSON body (``docs/integrations.md`` lists them)."""

    status: int
    body: dict[str, Any]


class WebhookService:
    """Authenticates, maps and records webhook deliveries; any number per database (the per-source lock
    is PostgreSQL's)."""

    def __init__(
        self,
        db: Database,
        appender: AppendService,
        queries: EventQueries,
        *,
        mappers: Mapping[Kind, Mapper] = MAPPERS,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self._db = db
        self._sources = SourceStore(db)
        self._appender = appender
        self._queries = queries
        self._mappers = mappers
        self._lock_wait = lock_wait
        self._local: dict[str, threading.Lock] = {}
        self._local_guard = threading.Lock()

    def deliver(
        self, kind: Kind, source_name: str, headers: Mapping[str, str], body: bytes, received_at: datetime
    ) -> Outcome:
        """Record one delivery of ``kind`` from source ``source_name``; ``AuthenticationFailed`` when its
        credentials (``headers``, lower-case names) do not prove it came from that source. Blocks: run it
        in a worker thread."""
        source = self._authenticate(kind, source_name, headers, body)
        try:
            payload = parse_json(body)
        except LedgerError as exc:
            with self._lock(source):
                return self._reject(source, exc, body, received_at)
        if kind == "cvat" and isinstance(payload, dict) and payload.get("event") == "ping":
            return Outcome(200, {"pong": True})
        with self._lock(source) as conn:
            return self._record(conn, Delivery(source, payload, received_at), body)

    def _authenticate(self, kind: Kind, name: str, headers: Mapping[str, str], body: bytes) -> Source:
        if kind == "cvat":
            # The signature is checked on the raw bytes, before anything of the body is parsed.
            source, secret = self._sources.cvat_secret(name)
            verify_signature(secret, body, headers.get(SIGNATURE_HEADER))
        else:
            source = self._sources.authenticate_bearer(name, _bearer(headers.get("authorization")))
        return source

    @contextmanager
    def _lock(self, source: Source) -> Iterator[Connection]:
        """Hold ``source``'s advisory lock on one pooled connection (yielded: the mapping's lookups use it).

        Within this process the deliveries of one source queue on a ``threading.Lock`` first, so they wait
        holding no connection and the next one starts the moment the last one ends; only then is the
        advisory lock tried, which serialises the source across processes: ``pg_try_advisory_lock`` in a
        loop, the connection handed back between tries, so the holder always finds one for its append.
        ``Overloaded`` when the two are not had within ``lock_wait`` seconds. Released in ``finally``; a
        connection that cannot release the advisory lock is closed, which releases it too."""
        deadline = time.monotonic() + self._lock_wait
        local = self._process_lock(source.name)
        if not local.acquire(timeout=self._lock_wait):
            raise _busy(source)
        try:
            key = LOCK_KEY + source.name
            while True:
                with self._db.connect() as conn:
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
                    ).fetchone()
                    conn.commit()
                    if row is not None and row[0]:
                        try:
                            yield conn
                        finally:
                            _unlock(conn, key)
                        return
                if time.monotonic() >= deadline:
                    raise _busy(source)
                time.sleep(_LOCK_POLL)
        finally:
            local.release()

    def _process_lock(self, name: str) -> threading.Lock:
        with self._local_guard:
            return self._local.setdefault(name, threading.Lock())

    def _record(self, conn: Connection, delivery: Delivery, body: bytes) -> Outcome:
        source = delivery.source
        try:
            try:
                mapped = self._mappers[source.kind](delivery, StateLookup(conn, source))
            finally:
                conn.rollback()  # reads only: no transaction stays open across the append
            ids = list(dict.fromkeys([*mapped.candidates, *(str(e.get("id")) for e in mapped.events)]))
            on_record = self._queries.many(source.tenant, ids)
            _refuse_foreign(source, on_record)
            events = [validate_event(raw, received_at=delivery.received_at) for raw in mapped.events]
        except OPERATIONAL:
            raise
        except (LedgerError, *UNREADABLE) as exc:
            return self._reject(source, _rejectable(exc), body, delivery.received_at)
        if not events:
            if on_record:
                repeated = [_receipt(e) for e in on_record if e.event_id in set(mapped.candidates)]
                if repeated:
                    return Outcome(200, {"receipts": repeated, "summary": mapped.summary})
            self._sources.remember(source, mapped.places)
            unchanged = mapped.unchanged or mapped.summary
            return Outcome(200, {"receipts": [], "summary": mapped.summary, "unchanged": unchanged})

        def remember(fence_conn: Connection) -> None:  # the places commit with the events, or neither does
            self._sources.remember(source, mapped.places, conn=fence_conn)

        try:
            receipts = self._appender.append(events, fence=remember)
        except OPERATIONAL:
            raise
        except LedgerError as exc:  # a value PostgreSQL cannot store, an id on record with other content
            return self._reject(source, exc, body, delivery.received_at)
        status = 200 if all(r.duplicate for r in receipts) else 201
        return Outcome(status, {"receipts": [r.as_dict() for r in receipts], "summary": mapped.summary})

    def _reject(self, source: Source, exc: LedgerError, body: bytes, received_at: datetime) -> Outcome:
        """Keep the refusal on the record as ``ledger.ingest_rejected`` (once per body: the event's id is
        derived from the source and the body's SHA-256, so a retry finds it and records nothing new).

        Never fails for the reason's sake: a reason the rejection event cannot hold (one quoting a direct
        identifier of the payload) is replaced by a fixed one naming only the code."""
        rejection = refusal(exc, body, tenant=source.tenant)
        origin = f"{source.kind}:{source.name}"
        try:
            event = rejection_event(
                rejection, transport="webhook", origin=origin, time=received_at, default_tenant=source.tenant
            )
        except LedgerError:
            reason = "the reason cannot be recorded (it quotes the payload); the code says what was refused"
            rejection = Rejection(rejection.code, reason, rejection.raw_sha256, rejection.tenant)
            event = rejection_event(
                rejection, transport="webhook", origin=origin, time=received_at, default_tenant=source.tenant
            )
        # A retry arrives later: its event would differ in time, so the first one on record is kept.
        if not self._queries.many(source.tenant, [event.id]):
            self._appender.append([event])
        rejected = {"code": rejection.code, "reason": rejection.reason, "event_id": event.id}
        return Outcome(202, {"rejected": rejected})


def _busy(source: Source) -> errors.Overloaded:
    msg = f"another delivery of source {source.name} holds its lock; try again"
    return errors.Overloaded(msg, retry_after=1)


def _unlock(conn: Connection, key: str) -> None:
    try:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        conn.commit()
    except psycopg.Error:
        conn.close()  # the server releases a closed session's locks; the pool replaces a closed connection


def _refuse_foreign(source: Source, on_record: list[StoredEvent]) -> None:
    """``Unmappable`` when an id this delivery maps to is on record from another producer."""
    for stored in on_record:
        if stored.document["event"].get("source") != source.cloudevents_source:
            msg = f"event {stored.event_id} is on record, recorded by another producer"
            raise Unmappable(msg)


def _rejectable(exc: LedgerError | ValueError | OverflowError | TypeError | RecursionError) -> LedgerError:
    """The ``LedgerError`` a rejection records for what a mapping raised; an unforeseen Python error becomes
    an ``Unmappable`` naming only its type (its message may quote the payload)."""
    if isinstance(exc, LedgerError):
        return exc
    return Unmappable(f"the payload cannot be read ({type(exc).__name__}); no field of it is quoted")


def _bearer(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        msg = "Authorization: Bearer <the source's secret> is required (see `ledger sources add`)"
        raise AuthenticationFailed(msg)
    return token.strip()


def _receipt(event: StoredEvent) -> dict[str, Any]:
    """The receipt of an event on record, as a repeat is answered (``duplicate``)."""
    return {
        "id": event.event_id,
        "log": event.log,
        "position": event.position,
        "hash": event.hash.hex(),
        "recorded_at": event.document["recorded_at"],
        "duplicate": True,
    }
