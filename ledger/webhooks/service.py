"""Webhook deliveries into the ledger: authenticate the source, read the payload, record its events once.

``WebhookService.deliver`` is the one path of both tools' webhooks (``ledger.api.webhooks`` is its HTTP
side). A delivery is authenticated by its source's own secret (Label Studio: ``Authorization: Bearer``;
CVAT: ``X-Signature-256``, checked before the body is parsed), mapped by the tool's adapter against the
ledger's state, and its events appended through the one append service. What the ledger cannot record
(not JSON, an unsupported action, an unmapped user, an event that does not validate) is answered 202 and
kept as ``ledger.ingest_rejected`` with the body's SHA-256, so the tool stops retrying and nothing is lost.

Idempotence rests on the tool's own ids: a mapping names every event id an earlier delivery of the same
payload could have recorded (``Mapped.candidates``); one of them on record makes the delivery a repeat,
answered with the original receipts. The check and the append of a source run under that source's lock,
so two deliveries of one source never map against the same state and both append: a mapping reads the
versions on record, and two updates of one annotation must become v2 and v3, not two v2s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.envelope import parse_json, validate_event
from ledger.domain.errors import AuthenticationFailed, LedgerError, ValidationFailed
from ledger.ingest import refusal, rejection_event
from ledger.storage.append import AppendService, Connection
from ledger.storage.database import Database
from ledger.storage.queries import EventQueries, StoredEvent
from ledger.webhooks import cvat, label_studio
from ledger.webhooks.model import Delivery, Kind, Lookup, Mapped, Source, Unmappable, UnsupportedAction
from ledger.webhooks.signature import verify_signature
from ledger.webhooks.sources import SourceStore, StateLookup

Mapper = Callable[[Delivery, Lookup], Mapped]
MAPPERS: dict[Kind, Mapper] = {"label-studio": label_studio.map_delivery, "cvat": cvat.map_delivery}
SIGNATURE_HEADER = "x-signature-256"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a delivery is answered: its HTTP status and JSON body (``docs/integrations.md`` lists them)."""

    status: int
    body: dict[str, Any]


class WebhookService:
    """Authenticates, maps and records webhook deliveries; one per ``ledger serve`` process.

    The per-source lock is a ``threading.Lock`` per source name, so it serialises the deliveries of one
    source within one process only: run one ``ledger serve`` process per database for webhooks (several
    would each hold their own lock, and two deliveries of a source could map against the same state).
    """

    def __init__(
        self,
        db: Database,
        appender: AppendService,
        queries: EventQueries,
        *,
        mappers: Mapping[Kind, Mapper] = MAPPERS,
    ) -> None:
        self._db = db
        self._sources = SourceStore(db)
        self._appender = appender
        self._queries = queries
        self._mappers = mappers
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

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
            with self._lock(source.name):
                return self._reject(source, exc, body, received_at)
        if kind == "cvat" and isinstance(payload, dict) and payload.get("event") == "ping":
            return Outcome(200, {"pong": True})
        with self._lock(source.name):
            return self._record(Delivery(source, payload, received_at), body)

    def _authenticate(self, kind: Kind, name: str, headers: Mapping[str, str], body: bytes) -> Source:
        if kind == "cvat":
            # The signature is checked on the raw bytes, before anything of the body is parsed.
            source, secret = self._sources.cvat_secret(name)
            verify_signature(secret, body, headers.get(SIGNATURE_HEADER))
        else:
            source = self._sources.authenticate_bearer(name, _bearer(headers.get("authorization")))
        return source

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def _record(self, delivery: Delivery, body: bytes) -> Outcome:
        source = delivery.source
        try:
            # One connection for every question the mapping asks, handed back before the append.
            with self._db.connect() as conn:
                mapped = self._mappers[source.kind](delivery, StateLookup(conn, source))
        except (Unmappable, UnsupportedAction) as exc:
            return self._reject(source, exc, body, delivery.received_at)
        on_record = self._queries.many(source.tenant, mapped.candidates)
        if on_record:
            return Outcome(200, {"receipts": [_receipt(e) for e in on_record], "summary": mapped.summary})
        try:
            events = [validate_event(raw, received_at=delivery.received_at) for raw in mapped.events]
        except ValidationFailed as exc:
            return self._reject(source, exc, body, delivery.received_at)
        if not events:
            self._sources.remember(source, mapped.places)
            unchanged = mapped.unchanged or mapped.summary
            return Outcome(200, {"receipts": [], "summary": mapped.summary, "unchanged": unchanged})

        def remember(conn: Connection) -> None:  # the places commit with the events, or neither does
            self._sources.remember(source, mapped.places, conn=conn)

        try:
            receipts = self._appender.append(events, fence=remember)
        except ValidationFailed as exc:  # a value PostgreSQL cannot store: refused like any invalid event
            return self._reject(source, exc, body, delivery.received_at)
        status = 200 if all(r.duplicate for r in receipts) else 201
        return Outcome(status, {"receipts": [r.as_dict() for r in receipts], "summary": mapped.summary})

    def _reject(self, source: Source, exc: LedgerError, body: bytes, received_at: datetime) -> Outcome:
        """Keep the refusal on the record as ``ledger.ingest_rejected`` (once per body: the event's id is
        derived from the source and the body's SHA-256, so a retry finds it and records nothing new)."""
        rejection = refusal(exc, body, tenant=source.tenant)
        event = rejection_event(
            rejection,
            transport="webhook",
            origin=f"{source.kind}:{source.name}",
            time=received_at,
            default_tenant=source.tenant,
        )
        # A retry arrives later: its event would differ in time, so the first one on record is kept.
        if not self._queries.many(source.tenant, [event.id]):
            self._appender.append([event])
        rejected = {"code": rejection.code, "reason": rejection.reason, "event_id": event.id}
        return Outcome(202, {"rejected": rejected})


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
