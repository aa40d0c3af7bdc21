"""``create_app``: the one place the HTTP application is assembled."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

from ledger import __version__
from ledger.api.events import EventController
from ledger.api.problems import http_error_handler, ledger_error_handler, unexpected_error_handler
from ledger.api.projections import ComplianceController, ItemController
from ledger.auth.tokens import Principal, TokenVerifier
from ledger.domain.errors import LedgerError
from ledger.domain.registry import EVENT_TYPES
from ledger.runtime import Ledger


# The health check blocks on the database briefly, so it runs in a worker thread.
@get("/health", summary="Liveness and database reachability", tags=["operations"], sync_to_thread=True)
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
    sync_to_thread=False,
)
def event_types() -> dict[str, Any]:
    """Every type the ledger accepts, with its schema version and sealed fields."""
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


def create_app(ledger: Ledger) -> Litestar:
    """The ledger's HTTP application over an opened ``Ledger``."""
    verifier = TokenVerifier(ledger.settings)

    async def authenticate(request: Request[Any, Any, Any]) -> Principal:
        return verifier.verify(request.headers.get("authorization"))

    async def provide_ledger() -> Ledger:
        return ledger

    return Litestar(
        route_handlers=[health, event_types, EventController, ItemController, ComplianceController],
        dependencies={"ledger": Provide(provide_ledger), "principal": Provide(authenticate)},
        exception_handlers={
            LedgerError: ledger_error_handler,
            HTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        openapi_config=OpenAPIConfig(
            title="Annotation compliance ledger",
            version=__version__,
            description="Hash-chained, tamper-evident record of medical-imaging annotation, review and access events.",
            path="/schema",
        ),
        request_max_body_size=64 * 1024 * 1024,
        # The process's logging belongs to the entry point (ledger serve / uvicorn), not to the app.
        logging_config=None,
        debug=False,
    )
