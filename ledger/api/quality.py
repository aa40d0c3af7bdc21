"""``/v1/quality``: per-annotator quality and the items' agreement under the QC policy (issue 10).

Thin handlers: parse, call ``ledger.quality.queries`` through the ``Reader`` (every read is recorded as
``access.data_viewed`` before the data leaves), return. Roles: READERS (``ledger.auth.routes``).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, responses
from ledger.api.reads import Reader, counted
from ledger.quality.queries import annotator_quality, item_quality_page
from ledger.runtime import Ledger


class QualityController(Controller):
    """Quality control from the log: annotators against adjudicated labels, items against the QC policy."""

    path = "/v1/quality"
    tags = ["quality"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/annotators/{actor:str}",
        summary="An annotator's accuracy, consistency over time and agreement with co-readers, per task",
        description=(
            "Per task (the QC-policy application, or the guideline id when none claims it): the annotator's "
            "first reads against the adjudicated final labels, overall, per final class and per calendar month "
            "(UTC); the mean share of co-readers giving the same class; and, for an application, "
            "`annotator_accuracy_min` and whether the accuracy is below it. 404 when the annotator made no "
            "human annotation in the tenant."
        ),
        responses=responses(*READ_ERRORS, 404),
    )
    async def annotator(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        actor: Annotated[str, p.path("the annotator's pseudonymous id", max_length=p.ID_MAX)],
    ) -> dict[str, Any]:
        """The annotator's quality, computed from the projections at the time of the read."""

        def fetch() -> dict[str, Any]:
            with ledger.db.connect() as conn, conn.transaction():
                return annotator_quality(conn, reader.tenant, actor, ledger.settings.qc_policy)

        return await reader.read(fetch, resource=f"annotator-quality:{actor}", count=counted("tasks"))

    @get(
        "/items",
        summary="Items' reader agreement under the QC policy (below_policy=true: those routed to expert review)",
        description=(
            "Rows of the item-quality projection in (dataset, item, application) order: readers, reader pairs, "
            "smallest IoU and Dice between readers giving the same class, class agreement, whether the item is "
            "below its application's thresholds and why, the annotation events it rests on, and the SHA-256 of "
            "the policy. Follow `next_cursor` (null at the end)."
        ),
        responses=responses(*READ_ERRORS),
    )
    async def items(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        below_policy: Annotated[
            bool | None, QueryParameter(description="only items below (true) or within (false) policy")
        ] = None,
        application: Annotated[
            str | None, p.query("only this QC-policy application", max_length=p.ID_MAX)
        ] = None,
        dataset: Annotated[str | None, p.query("only this dataset", max_length=p.ID_MAX)] = None,
        cursor: Annotated[
            str | None, p.query("next_cursor of the previous page", max_length=p.CURSOR_MAX)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> dict[str, Any]:
        """A page of item-quality rows of the token's tenant."""
        page = partial(item_quality_page, tenant=reader.tenant, below_policy=below_policy,
                       application=application, dataset=dataset, cursor=cursor, limit=limit)  # fmt: skip

        def fetch() -> dict[str, Any]:
            with ledger.db.connect() as conn, conn.transaction():
                return page(conn)

        return await reader.read(fetch, resource="item-quality", count=counted("items"))
