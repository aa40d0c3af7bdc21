"""``create_app``: the one place the HTTP application is assembled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from ledger import __version__
from ledger.api.anomalies import AnomalyController, access_review
from ledger.api.bodies import BodyGate, ReturnMemory
from ledger.api.bundles import bundle
from ledger.api.checkpoints import CheckpointController, keys
from ledger.api.erasures import erase
from ledger.api.events import EventController
from ledger.api.fhir import fhir_export
from ledger.api.openapi import COMPONENTS, SECURITY, complete, responses
from ledger.api.params import refuse_unusable_parameters
from ledger.api.problems import http_error_handler, ledger_error_handler, unexpected_error_handler
from ledger.api.projections import ComplianceController, ItemController, ReleaseController
from ledger.api.proofs import ProofController
from ledger.api.quality import QualityController
from ledger.api.reads import Gate, Reader, ReadService, counted, reader_of
from ledger.api.webhooks import WebhookController
from ledger.auth.tokens import Principal, TokenVerifier
from ledger.domain.errors import LedgerError
from ledger.domain.registry import EVENT_TYPES
from ledger.runtime import Ledger
from ledger.webhooks.service import WebhookService

STATIC = Path(__file__).parent / "static"
_UI = "/schema/static/swagger-ui"


# The health check blocks on the database briefly, so it runs in a worker thread.
@get(
    "/health",
    summary="Liveness and database reachability",
    tags=["operations"],
    sync_to_thread=True,
    responses=responses(503),
)
def health(ledger: NamedDependency[Ledger]) -> dict[str, Any]:
    """``{"status": "ok"}`` when the database answers, with each Kafka consumer group's committed
    position and lag (read from the offsets table); 503 (problem+json) when the database does not answer."""
    from ledger.kafka.status import consumer_status, total_lag

    with ledger.db.connect() as conn:
        conn.execute("SELECT 1").fetchone()
    partitions = consumer_status(ledger.db)
    return {
        "status": "ok",
        "database": "ok",
        "version": __version__,
        "embedded": ledger.settings.embedded,
        "kafka": {"lag": total_lag(partitions), "partitions": [p.as_dict() for p in partitions]},
    }


@get(
    "/v1/event-types",
    summary="Registered event types and the JSON Schema of their data",
    tags=["events"],
    security=SECURITY,
    responses=responses(401, 403),
)
async def event_types(reader: NamedDependency[Reader]) -> dict[str, Any]:
    """Every type the ledger accepts, with its schema version and sealed fields (any role may ask)."""
    return await reader.read(_event_types, resource="event-types", count=counted("event_types"))


def _event_types() -> dict[str, Any]:
    return {
        "event_types": [
            {
                "type": t.name,
                "schemaversion": t.schemaversion,
                "description": t.description,
                "written_by_ledger": t.internal,
                "sealed_fields": ["data." + ".".join(p) for p in t.sensitive_paths],
                "data_schema": t.data_schema,
            }
            for t in EVENT_TYPES.values()
        ]
    }


def _openapi_config() -> OpenAPIConfig:
    # Swagger UI's files ship in the package (ledger/api/static): /schema works offline and air-gapped.
    ui = SwaggerRenderPlugin(
        js_url=f"{_UI}/swagger-ui-bundle.js",
        css_url=f"{_UI}/swagger-ui.css",
        standalone_preset_js_url=f"{_UI}/swagger-ui-standalone-preset.js",
        path=["/", "/swagger"],
        favicon=f"<link rel='icon' type='image/png' href='{_UI}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="Annotation compliance ledger",
        version=__version__,
        description="Hash-chained, tamper-evident record of medical-imaging annotation, review and access events.",
        path="/schema",
        render_plugins=[ui],
        components=COMPONENTS,
    )


def create_app(ledger: Ledger, *, reads: ReadService | None = None) -> Litestar:
    """The ledger's HTTP application over an opened ``Ledger``; ``reads`` is for benchmarks that measure
    what recording costs (by default every read is recorded through the ledger's append service)."""
    reads = reads or ReadService(ledger.appender.append)
    guard = Gate(TokenVerifier(ledger.settings), reads, ledger.settings.purpose_of_use)
    gate = BodyGate(ledger.settings.limits)
    webhooks = WebhookService(ledger.db, ledger.appender, ledger.queries)

    async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return reader_of(request, reads).principal

    async def provide_reader(request: Request[Any, Any, Any]) -> Reader:
        return reader_of(request, reads)

    async def provide_ledger() -> Ledger:
        return ledger

    async def provide_gate() -> BodyGate:
        return gate

    async def provide_webhooks() -> WebhookService:
        return webhooks

    async def provide_reads() -> ReadService:
        return reads

    app = Litestar(
        route_handlers=[
            health,
            event_types,
            EventController,
            ItemController,
            ComplianceController,
            ReleaseController,
            ProofController,
            CheckpointController,
            keys,
            bundle,
            fhir_export,
            erase,
            AnomalyController,
            access_review,
            QualityController,
            WebhookController,
            create_static_files_router(_UI, directories=[STATIC / "swagger-ui"], include_in_schema=False),
        ],
        dependencies={
            "ledger": Provide(provide_ledger),
            "principal": Provide(provide_principal),
            "reader": Provide(provide_reader),
            "bodies": Provide(provide_gate),
            "webhooks": Provide(provide_webhooks),
            "reads": Provide(provide_reads),
        },
        exception_handlers={
            LedgerError: ledger_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        middleware=[DefineMiddleware(ReturnMemory, gate=gate)],
        # Every /v1 route: authenticated, authorized by ledger.auth.routes, refusals recorded.
        guards=[guard],
        before_request=refuse_unusable_parameters,
        openapi_config=_openapi_config(),
        # BodyGate refuses larger bodies with the ledger's own message; this is the backstop for any route.
        request_max_body_size=ledger.settings.limits.max_body_bytes,
        # The process's logging belongs to the entry point (ledger serve / uvicorn), not to the app.
        logging_config=None,
        debug=False,
    )
    complete(app.openapi_schema)
    return app
