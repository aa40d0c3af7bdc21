"""Auditor reads over the projections: item provenance and labels, credentials, guidelines, flags, reports."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, ReportOperation, responses
from ledger.api.reads import Reader, counted, report_response
from ledger.reports.report import FORMATS
from ledger.reports.service import render_lineage, render_retention, report_event
from ledger.runtime import Ledger
from ledger.storage.bundles import ReleaseScope, release_of

Dataset = Annotated[str, p.path("dataset id", max_length=p.ID_MAX)]
Item = Annotated[str, p.path("pseudonymous item id, e.g. a DICOM SOP Instance UID", max_length=p.ID_MAX)]


class ItemController(Controller):
    """What happened to one item, and what its labels are now."""

    path = "/v1/items/{dataset:str}/{item:str}"
    tags = ["provenance"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/provenance",
        summary="Every event touching the item, in order, with each actor's standing then",
        responses=responses(*READ_ERRORS, 404),
    )
    async def provenance(self, ledger: NamedDependency[Ledger], reader: NamedDependency[Reader],
                         dataset: Dataset, item: Item) -> dict[str, Any]:  # fmt: skip
        """Annotations, reviews, adjudications and accesses, with credential status at each moment."""
        fetch = partial(ledger.projections.provenance, reader.tenant, dataset, item)
        return await reader.read(fetch, count=counted("events"), **_item(dataset, item))

    @get(
        "/labels",
        summary="Current annotations with their lineage, and the final label",
        responses=responses(*READ_ERRORS, 404),
    )
    async def labels(self, ledger: NamedDependency[Ledger], reader: NamedDependency[Reader],
                     dataset: Dataset, item: Item) -> dict[str, Any]:  # fmt: skip
        """Label state: status, review level, reviewers, guideline version, origin; final label after adjudication."""
        fetch = partial(ledger.projections.labels, reader.tenant, dataset, item)
        return await reader.read(fetch, count=counted("annotations"), **_item(dataset, item))


def _item(dataset: str, item: str) -> dict[str, str]:
    """The resource of a read about one item."""
    return {"resource": f"item:{dataset}/{item}", "dataset": dataset, "item": item}


class ComplianceController(Controller):
    """Credentials over time, guidelines, compliance flags and reports."""

    path = "/v1"
    tags = ["compliance"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/annotators/{actor:str}/credentials",
        summary="An annotator's credentials and standing as of a time",
        responses=responses(*READ_ERRORS, 404),
    )
    async def credentials(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        actor: Annotated[str, p.path("the annotator's pseudonymous id", max_length=p.ID_MAX)],
        as_of: Annotated[
            str | None, p.query("RFC 3339 time; default now", max_length=p.TIME_MAX, format="date-time")
        ] = None,
    ) -> dict[str, Any]:
        """Every credential period; which are valid at ``as_of`` and which roles they qualify for."""
        when = p.parse_time("as_of", as_of) if as_of else datetime.now(UTC)
        fetch = partial(ledger.projections.credentials, reader.tenant, actor, when)
        return await reader.read(fetch, resource=f"annotator:{actor}", count=counted("credentials"))

    @get(
        "/guidelines",
        summary="Guideline versions with effective ranges and supersession",
        responses=responses(401, 403, 503),
    )
    async def guidelines(
        self, ledger: NamedDependency[Ledger], reader: NamedDependency[Reader]
    ) -> dict[str, Any]:
        """Each version, when it was in effect, what superseded it, and how many annotations used it."""
        fetch = partial(ledger.projections.guidelines, reader.tenant)
        return {"guidelines": await reader.read(fetch, resource="guidelines", count=len)}

    @get(
        "/compliance/flags", summary="Compliance flags with their evidence", responses=responses(*READ_ERRORS)
    )
    async def flags(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        kind: Annotated[str | None, p.query("e.g. unqualified_annotator", max_length=p.NAME_MAX)] = None,
        actor: Annotated[str | None, p.query("only this actor", max_length=p.ID_MAX)] = None,
        dataset: Annotated[str | None, p.query("only this dataset", max_length=p.ID_MAX)] = None,
        cursor: Annotated[
            str | None, p.query("next_cursor of the previous page", max_length=p.CURSOR_MAX)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> dict[str, Any]:
        """Flags in log order; each names its rule and the event ids that are its evidence."""
        query = partial(ledger.projections.flags, reader.tenant, kind=kind, actor=actor, dataset=dataset,
                        cursor=cursor, limit=limit)  # fmt: skip
        return await reader.read(query, resource="compliance-flags", count=counted("flags"))

    @get(
        "/reports/retention",
        summary="The six-year retention report (JSON, CSV or printable HTML)",
        operation_class=ReportOperation,
        responses=responses(*READ_ERRORS, 404),  # a tenant that never recorded anything
    )
    async def retention(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        as_of: Annotated[
            str | None, p.query("YYYY-MM-DD; default today", max_length=p.TIME_MAX, format="date")
        ] = None,
        format_: Annotated[
            str, p.query("json, csv or html", max_length=p.NAME_MAX, name="format", enum=list(FORMATS))
        ] = "json",
    ) -> Response[bytes]:
        """Counts, oldest records, due dates, holds, erasures and integrity status; the report's SHA-256 is recorded."""
        day = p.parse_date("as_of", as_of) if as_of else datetime.now(UTC).date()
        p.check_choice("format", format_, FORMATS)
        render = partial(
            render_retention,
            ledger,
            day,
            format_,
            tenant=reader.tenant,
            requested_by=reader.principal.subject,
        )
        generated, receipts = await reader.export(
            render, resource="report:retention", count=lambda r: r.records, also=lambda r: [report_event(r)]
        )
        return report_response(generated, receipts[0])


class ReleaseController(Controller):
    """What a regulatory submission cites about a dataset release."""

    path = "/v1/releases/{dataset:str}/{release:str}"
    tags = ["compliance"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/lineage",
        summary="The reference-standard lineage report of a release (JSON, CSV or printable HTML)",
        operation_class=ReportOperation,
        responses=responses(*READ_ERRORS, 404),  # no dataset.release_created event names the release
    )
    async def lineage(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        dataset: Dataset,
        release: Annotated[
            str, p.path("the release's name, as in its dataset.release_created events", max_length=p.ID_MAX)
        ],
        format_: Annotated[
            str, p.query("json, csv or html", max_length=p.NAME_MAX, name="format", enum=list(FORMATS))
        ] = "json",
    ) -> Response[bytes]:
        """Per item the final label and every event that reached it; per split readers, review levels,
        adjudication, independence, test-set isolation, flags and agreement; the report's SHA-256 is recorded."""
        p.check_choice("format", format_, FORMATS)
        scope: ReleaseScope = release_of(dataset, release)
        render = partial(
            render_lineage,
            ledger,
            scope,
            format_,
            tenant=reader.tenant,
            requested_by=reader.principal.subject,
        )
        generated, receipts = await reader.export(
            render,
            resource=f"report:lineage:{dataset}@{release}",
            count=lambda r: r.records,
            also=lambda r: [report_event(r)],
        )
        return report_response(generated, receipts[0])
