"""``/v1/events``: post events (every content mode), list them with filters, read one with its receipt."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, TypeAlias, cast

from anyio import to_thread
from litestar import Controller, HttpMethod, Request, Response, get, post, route
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.bodies import BodyGate
from ledger.api.ingest import parse_request
from ledger.api.openapi import READ_ERRORS, SECURITY, BatchReceipts, PostEventsOperation, Receipt, responses
from ledger.api.proofs import inclusion_body
from ledger.api.reads import Reader, one
from ledger.auth.tokens import Principal
from ledger.domain.registry import EVENT_TYPES
from ledger.runtime import Ledger
from ledger.storage.append import Receipt as StoredReceipt
from ledger.storage.queries import EventFilter

Receipts: TypeAlias = Receipt | BatchReceipts


class EventController(Controller):
    """Thin handlers: parse, check the caller, hand to the services."""

    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    # Litestar 2's own OPTIONS handler names only the first method registered on a path
    # (litestar-org/litestar#4169, fixed in v3), so this path states its methods itself. A controller
    # registers its handlers in the order of their names: this one's sorts first, so Litestar adds no
    # OPTIONS handler of its own (tests/integration/test_http_hardening.py checks the Allow header).
    @route("/", http_method=[HttpMethod.OPTIONS], include_in_schema=False, status_code=204)
    async def allowed_methods(self) -> Response[None]:
        """The methods of ``/v1/events``."""
        return Response(None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})

    @post(
        "/",
        summary="Record events",
        description=(
            "Structured (application/cloudevents+json), batch (application/cloudevents-batch+json, all-or-nothing) "
            "or binary mode (ce-* headers). Re-posting an id with the same content returns the original receipt; "
            "with different content, 409. Requires role ingest."
        ),
        status_code=201,
        operation_class=PostEventsOperation,
        response_description="Recorded: one receipt (structured or binary mode) or the batch's receipts",
        responses={
            200: ResponseSpec(
                cast(Any, Receipts), description="Every event was recorded before: the original receipts"
            ),
            **responses(400, 401, 403, 409, 413, 415, 422, 503),
        },
    )
    async def post_events(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        bodies: NamedDependency[BodyGate],
    ) -> Response[Receipts]:
        """Validate, check tenant, append; 201 when anything new was recorded, 200 when all were repeats."""
        content_type = request.headers.get("content-type", "")
        async with bodies.body(request) as body:
            # Parsing and validating up to a batch of events is CPU work: keep it off the event loop too.
            receipts, batch = await to_thread.run_sync(
                partial(_ingest, ledger, principal, content_type, dict(request.headers), body)
            )
        status = 200 if all(r.duplicate for r in receipts) else 201
        content = {"receipts": [r.as_dict() for r in receipts]} if batch else receipts[0].as_dict()
        return Response(cast(Receipts, content), status_code=status)

    @get(
        "/",
        summary="List events",
        description=(
            "Filters combine with AND; `since`/`until` bound the event time. A page holds at most `limit` "
            "events and stops before its events pass the server's page size in bytes; follow `next_cursor`."
        ),
        responses=responses(*READ_ERRORS),
    )
    async def list_events(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        log: Annotated[str | None, p.query("only this log", max_length=p.NAME_MAX)] = None,
        type_: Annotated[
            str | None,
            p.query("only this event type", max_length=p.NAME_MAX, name="type", enum=sorted(EVENT_TYPES)),
        ] = None,
        subject: Annotated[
            str | None, p.query("only this CloudEvents subject", max_length=p.SUBJECT_MAX)
        ] = None,
        actor: Annotated[str | None, p.query("only this actor", max_length=p.ID_MAX)] = None,
        since: Annotated[
            str | None,
            p.query("event time from (RFC 3339, inclusive)", max_length=p.TIME_MAX, format="date-time"),
        ] = None,
        until: Annotated[
            str | None,
            p.query("event time until (RFC 3339, exclusive)", max_length=p.TIME_MAX, format="date-time"),
        ] = None,
        cursor: Annotated[
            str | None, p.query("next_cursor of the previous page", max_length=p.CURSOR_MAX)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> dict[str, Any]:
        """A page of events of the caller's tenant, oldest first within each log."""
        flt = EventFilter(
            tenant=reader.tenant,
            log=log,
            type=p.check_choice("type", type_, EVENT_TYPES),
            subject=subject,
            actor=actor,
            since=p.parse_time("since", since) if since else None,
            until=p.parse_time("until", until) if until else None,
        )
        query = partial(
            ledger.queries.list,
            flt,
            cursor=cursor,
            limit=limit,
            max_bytes=ledger.settings.limits.page_max_bytes,
        )
        page = await reader.read(query, resource="events", count=lambda page: len(page.events))
        return {"events": [e.as_dict() for e in page.events], "next_cursor": page.next_cursor}

    # A path parameter, because CloudEvents ids may contain '/' (percent-encode it or not).
    @get(
        "/{event_id:path}",
        summary="One event with its receipt",
        description=(
            "With `proof=true`, also the event's RFC 9162 inclusion proof against its log's latest signed "
            "checkpoint, with that checkpoint (as `GET /v1/logs/{log}/proofs/inclusion` answers it without "
            "`tree_size`: against the current tree, checkpoint null, while no checkpoint covers the event yet)."
        ),
        responses=responses(*READ_ERRORS, 404),
    )
    async def get_event(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        event_id: Annotated[str, p.path_remainder("the producer's event id", max_length=p.ID_MAX)],
        proof: Annotated[bool, QueryParameter(description="add the event's inclusion proof")] = False,
    ) -> dict[str, Any]:
        """The event as stored (sensitive values sealed) and where it sits in its log."""
        ident = p.check_path_remainder("event_id", event_id, max_length=p.ID_MAX)
        fetch = partial(_event_body, ledger, reader.tenant, ident, proof=proof)
        return await reader.read(fetch, resource=f"event:{ident}", count=one)


def _event_body(ledger: Ledger, tenant: str, ident: str, *, proof: bool) -> dict[str, Any]:
    stored = ledger.queries.get(tenant, ident)
    body = stored.as_dict()
    if proof:
        body["proof"] = inclusion_body(ledger, stored.log, stored.position, None, tenant=tenant)
    return body


def _ingest(
    ledger: Ledger, principal: Principal, content_type: str, headers: dict[str, str], body: bytes
) -> tuple[list[StoredReceipt], bool]:
    events, batch = parse_request(content_type, headers, body)
    for i, event in enumerate(events):
        principal.require_tenant(event.tenant, index=i if batch else None)
    return ledger.appender.append(events), batch
