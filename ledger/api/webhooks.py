"""``/v1/webhooks/label-studio`` and ``/v1/webhooks/cvat``: annotation tools posting their own payloads.

Thin handlers over ``ledger.webhooks.service``. These routes take no JWT (the ``Gate`` lets them through,
``ledger.auth.routes`` marks them): the source's own secret authenticates each delivery, here, and a
refusal is recorded as every refused call is (``access.denied``) and answered 401 problem+json.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, cast

from anyio import to_thread
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from ledger.api import params as p
from ledger.api.bodies import BodyGate
from ledger.api.openapi import (
    CVAT_SECURITY,
    LABEL_STUDIO_SECURITY,
    Problem,
    WebhookOperation,
    WebhookPong,
    WebhookRecorded,
    WebhookRejected,
    responses,
)
from ledger.api.problems import PROBLEM_JSON
from ledger.api.reads import ReadService
from ledger.domain.errors import AuthenticationFailed
from ledger.webhooks.model import Kind
from ledger.webhooks.service import WebhookService

_SOURCE = "the source's name, as `ledger sources add` printed it in the webhook URL"
_ANSWERS = (
    "201: events recorded, with their receipts (an event already on record comes back `duplicate` true). "
    "200: a repeat of a delivery recorded before (nothing new to record; the original receipts, `duplicate` "
    "true), or one that changes nothing the ledger holds (`unchanged` says why). 202: the delivery cannot "
    "become ledger events (not JSON, an unsupported action, an unmapped user or a user field that is not a "
    "tool user id, a value the adapter cannot read, an event that does not validate, an id already on record "
    "from another producer): it is recorded as `ledger.ingest_rejected` with the body's SHA-256, and "
    "`rejected` says why, so the tool does not retry it. 401: the source is unknown or its secret is wrong. "
    "503: the database is away, or another delivery of the source held its lock too long (Retry-After)."
)


def _answers(ok: Any, ok_description: str, refused: str) -> dict[int, ResponseSpec]:
    """The statuses of a webhook route: ``ok`` for 200, a rejection for 202, problems for the rest."""
    problems = responses(400, 401, 409, 413, 503)
    problems[401] = ResponseSpec(
        data_container=Problem, media_type=PROBLEM_JSON, description=refused, generate_examples=False
    )
    return {
        200: ResponseSpec(ok, description=ok_description, generate_examples=False),
        202: ResponseSpec(
            WebhookRejected,
            description="Not recordable: kept on the record as ledger.ingest_rejected, with the body's SHA-256",
            generate_examples=False,
        ),
        **problems,
    }


class WebhookController(Controller):
    """The two tools' webhook endpoints."""

    path = "/v1/webhooks"
    tags = ["webhooks"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        "/label-studio",
        summary="Record a Label Studio webhook delivery",
        description=(
            "A Label Studio webhook payload (ANNOTATION_CREATED, ANNOTATIONS_CREATED, ANNOTATION_UPDATED, "
            "ANNOTATIONS_DELETED, TASKS_CREATED, TASKS_DELETED, PROJECT_*), authenticated by the source's "
            "secret in `Authorization: Bearer <secret>` (set in the webhook's headers; not a JWT). "
            + _ANSWERS
        ),
        status_code=201,
        security=LABEL_STUDIO_SECURITY,
        operation_class=WebhookOperation,
        response_description="Recorded: the receipts of the events the delivery became",
        responses=_answers(
            WebhookRecorded,
            "A repeat (the original receipts, duplicate true) or nothing to record (unchanged)",
            "No `Authorization: Bearer` header, or not the secret of a Label Studio source of that name",
        ),
    )
    async def label_studio(
        self,
        request: Request[Any, Any, Any],
        webhooks: NamedDependency[WebhookService],
        reads: NamedDependency[ReadService],
        bodies: NamedDependency[BodyGate],
        source: Annotated[str, p.query(_SOURCE, max_length=p.ID_MAX)],
    ) -> Response[WebhookRecorded]:
        """Authenticate by the bearer secret, map and record."""
        return await _deliver("label-studio", request, webhooks, reads, bodies, source)

    @post(
        "/cvat",
        summary="Record a CVAT webhook delivery",
        description=(
            "A CVAT webhook payload (create:task, update:task, update:job, delete:*, ping), authenticated by "
            "`X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the webhook's secret>`, checked "
            'before the body is parsed. `ping` is answered 200 `{"pong": true}` and records nothing. '
            + _ANSWERS
        ),
        status_code=201,
        security=CVAT_SECURITY,
        operation_class=WebhookOperation,
        response_description="Recorded: the receipts of the events the delivery became",
        responses=_answers(
            cast(Any, WebhookRecorded | WebhookPong),
            "A repeat (the original receipts, duplicate true), nothing to record (unchanged), or a ping's answer",
            "No X-Signature-256 header, or not the body's signature with the secret of a CVAT source of that name",
        ),
    )
    async def cvat(
        self,
        request: Request[Any, Any, Any],
        webhooks: NamedDependency[WebhookService],
        reads: NamedDependency[ReadService],
        bodies: NamedDependency[BodyGate],
        source: Annotated[str, p.query(_SOURCE, max_length=p.ID_MAX)],
    ) -> Response[WebhookRecorded]:
        """Verify the signature on the raw body, then map and record."""
        return await _deliver("cvat", request, webhooks, reads, bodies, source)


async def _deliver(
    kind: Kind,
    request: Request[Any, Any, Any],
    webhooks: WebhookService,
    reads: ReadService,
    bodies: BodyGate,
    source: str,
) -> Response[WebhookRecorded]:
    received_at = datetime.now(UTC)
    headers = {k.lower(): v for k, v in request.headers.items()}
    async with bodies.body(request) as body:
        # Authentication reads the database, and mapping and appending are blocking work: a worker thread.
        work = partial(webhooks.deliver, kind, source, headers, body, received_at)
        try:
            outcome = await to_thread.run_sync(work)
        except AuthenticationFailed as exc:
            route = f"/v1/webhooks/{kind}"
            client = request.client.host if request.client else None
            record = partial(reads.denied, None, exc, method="POST", route=route, source=client)
            await to_thread.run_sync(record)
            raise
    return Response(cast(WebhookRecorded, outcome.body), status_code=outcome.status)
