"""Auditor reads over the projections: item provenance and labels, credentials, guidelines, flags, reports."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from ledger.api.params import parse_date, parse_time
from ledger.auth.tokens import READERS, Principal
from ledger.domain.errors import FieldError, ValidationFailed
from ledger.reports.render import FORMATS
from ledger.reports.service import retention_report
from ledger.runtime import Ledger

Dataset = Annotated[str, PathParameter(description="dataset id")]
Item = Annotated[str, PathParameter(description="pseudonymous item id, e.g. a DICOM SOP Instance UID")]


class ItemController(Controller):
    """What happened to one item, and what its labels are now."""

    path = "/v1/items/{dataset:str}/{item:str}"
    tags = ["provenance"]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/provenance", summary="Every event touching the item, in order, with each actor's standing then")
    async def provenance(self, ledger: NamedDependency[Ledger], principal: NamedDependency[Principal],
                         dataset: Dataset, item: Item) -> dict[str, Any]:  # fmt: skip
        """Annotations, reviews, adjudications and accesses, with credential status at each moment."""
        principal.require(READERS)
        return await to_thread.run_sync(
            partial(ledger.projections.provenance, principal.tenant, dataset, item)
        )

    @get("/labels", summary="Current annotations with their lineage, and the final label")
    async def labels(self, ledger: NamedDependency[Ledger], principal: NamedDependency[Principal],
                     dataset: Dataset, item: Item) -> dict[str, Any]:  # fmt: skip
        """Label state: status, review level, reviewers, guideline version, origin; final label after adjudication."""
        principal.require(READERS)
        return await to_thread.run_sync(partial(ledger.projections.labels, principal.tenant, dataset, item))


class ComplianceController(Controller):
    """Credentials over time, guidelines, compliance flags and reports."""

    path = "/v1"
    tags = ["compliance"]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/annotators/{actor:str}/credentials", summary="An annotator's credentials and standing as of a time"
    )
    async def credentials(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        actor: Annotated[str, PathParameter(description="the annotator's pseudonymous id")],
        as_of: Annotated[str | None, QueryParameter(description="RFC 3339 time; default now")] = None,
    ) -> dict[str, Any]:
        """Every credential period; which are valid at ``as_of`` and which roles they qualify for."""
        principal.require(READERS)
        when = parse_time("as_of", as_of) if as_of else datetime.now(UTC)
        return await to_thread.run_sync(
            partial(ledger.projections.credentials, principal.tenant, actor, when)
        )

    @get("/guidelines", summary="Guideline versions with effective ranges and supersession")
    async def guidelines(
        self, ledger: NamedDependency[Ledger], principal: NamedDependency[Principal]
    ) -> dict[str, Any]:
        """Each version, when it was in effect, what superseded it, and how many annotations used it."""
        principal.require(READERS)
        rows = await to_thread.run_sync(partial(ledger.projections.guidelines, principal.tenant))
        return {"guidelines": rows}

    @get("/compliance/flags", summary="Compliance flags with their evidence")
    async def flags(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        kind: Annotated[str | None, QueryParameter(description="e.g. unqualified_annotator")] = None,
        actor: Annotated[str | None, QueryParameter(description="only this actor")] = None,
        dataset: Annotated[str | None, QueryParameter(description="only this dataset")] = None,
        cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> dict[str, Any]:
        """Flags in log order; each names its rule and the event ids that are its evidence."""
        principal.require(READERS)
        query = partial(ledger.projections.flags, principal.tenant, kind=kind, actor=actor, dataset=dataset,
                        cursor=cursor, limit=limit)  # fmt: skip
        return await to_thread.run_sync(query)

    @get("/reports/retention", summary="The six-year retention report (JSON, CSV or printable HTML)")
    async def retention(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        as_of: Annotated[str | None, QueryParameter(description="YYYY-MM-DD; default today")] = None,
        format_: Annotated[str, QueryParameter(name="format", description="json, csv or html")] = "json",
    ) -> Response[bytes]:
        """Counts, oldest records, due dates, holds, erasures and integrity status; the report's SHA-256 is recorded."""
        principal.require(READERS)
        day = parse_date("as_of", as_of) if as_of else datetime.now(UTC).date()
        if format_ not in FORMATS:
            msg = f"format must be one of {', '.join(FORMATS)}"
            raise ValidationFailed(msg, errors=[FieldError("format", msg)])
        generated = await to_thread.run_sync(
            partial(
                retention_report,
                ledger,
                day,
                format_,
                tenant=principal.tenant,
                requested_by=principal.subject,
            )
        )
        headers = {"X-Report-SHA256": generated.sha256, "X-Ledger-Position": str(generated.receipt.position)}
        return Response(generated.body, media_type=generated.media_type, headers=headers)
