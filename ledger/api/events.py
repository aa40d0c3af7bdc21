"""``/v1/events``: post events (every content mode), list them with filters, read one with its receipt."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from ledger.api.ingest import parse_request
from ledger.api.params import parse_time
from ledger.auth.tokens import READERS, WRITERS, Principal
from ledger.runtime import Ledger
from ledger.storage.append import Receipt
from ledger.storage.queries import EventFilter


class EventController(Controller):
    """Thin handlers: parse, check the caller, hand to the services."""

    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        "/",
        summary="Record events",
        description=(
            "Structured (application/cloudevents+json), batch (application/cloudevents-batch+json, all-or-nothing) "
            "or binary mode (ce-* headers). Re-posting an id with the same content returns the original receipt; "
            "with different content, 409. Requires role ingest."
        ),
        status_code=201,
    )
    async def post_events(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
    ) -> Response[Any]:
        """Validate, check tenant, append; 201 when anything new was recorded, 200 when all were repeats."""
        principal.require(WRITERS)
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        # Parsing and validating up to a batch of events is CPU work: keep it off the event loop too.
        receipts, batch = await to_thread.run_sync(
            partial(_ingest, ledger, principal, content_type, dict(request.headers), body)
        )
        status = 200 if all(r.duplicate for r in receipts) else 201
        content = {"receipts": [r.as_dict() for r in receipts]} if batch else receipts[0].as_dict()
        return Response(content, status_code=status)

    @get(
        "/",
        summary="List events",
        description="Filters combine with AND; `since`/`until` bound the event time.",
    )
    async def list_events(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        log: Annotated[str | None, QueryParameter(description="only this log")] = None,
        type_: Annotated[str | None, QueryParameter(name="type", description="only this event type")] = None,
        subject: Annotated[str | None, QueryParameter(description="only this CloudEvents subject")] = None,
        actor: Annotated[str | None, QueryParameter(description="only this actor")] = None,
        since: Annotated[
            str | None, QueryParameter(description="event time from (RFC 3339, inclusive)")
        ] = None,
        until: Annotated[
            str | None, QueryParameter(description="event time until (RFC 3339, exclusive)")
        ] = None,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> dict[str, Any]:
        """A page of events of the caller's tenant, oldest first within each log."""
        principal.require(READERS)
        flt = EventFilter(
            tenant=principal.tenant,
            log=log,
            type=type_,
            subject=subject,
            actor=actor,
            since=parse_time("since", since) if since else None,
            until=parse_time("until", until) if until else None,
        )
        page = await to_thread.run_sync(partial(ledger.queries.list, flt, cursor=cursor, limit=limit))
        return {"events": [e.as_dict() for e in page.events], "next_cursor": page.next_cursor}

    # A path parameter, because CloudEvents ids may contain '/' (percent-encode it or not).
    @get("/{event_id:path}", summary="One event with its receipt")
    async def get_event(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        event_id: Annotated[Path, PathParameter(description="the producer's event id")],
    ) -> dict[str, Any]:
        """The event as stored (sensitive values sealed) and where it sits in its log."""
        principal.require(READERS)
        ident = str(event_id).lstrip("/")
        stored = await to_thread.run_sync(partial(ledger.queries.get, principal.tenant, ident))
        return stored.as_dict()


def _ingest(
    ledger: Ledger, principal: Principal, content_type: str, headers: dict[str, str], body: bytes
) -> tuple[list[Receipt], bool]:
    events, batch = parse_request(content_type, headers, body)
    for i, event in enumerate(events):
        principal.require_tenant(event.tenant, index=i if batch else None)
    return ledger.appender.append(events), batch
