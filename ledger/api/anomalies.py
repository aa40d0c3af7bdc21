"""``/v1/anomalies``: access anomalies, one with its evidence, reviews on the record; the access-review report.

Thin handlers: parse, check the caller, call ``ledger.anomaly_review`` or the report service, return.
Reads are for the security team and auditors (``security``, ``auditor``, ``admin`` with MFA); a review
needs the ``security`` role alone (HIPAA 164.308(a)(1)(ii)(D): the people charged with activity review).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any, Literal, TypedDict, cast

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from ledger.anomaly_review import Review, list_anomalies, review_anomaly, show_anomaly
from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, Receipt, ReportOperation, responses
from ledger.api.reads import Reader, counted, one, report_response
from ledger.auth.tokens import Principal
from ledger.domain.events import AnomalyDecision
from ledger.domain.fields import MAX_FREE_TEXT_LENGTH
from ledger.projections.anomaly_queries import ANOMALY_RULES, STATUSES, AnomalyFilter
from ledger.reports.report import FORMATS
from ledger.reports.service import render_access_review, report_event
from ledger.runtime import Ledger

Severity = Literal["low", "medium", "high"]
Status = Literal["open", "benign", "policy_violation", "incident"]
Decision = AnomalyDecision
AnomalyId = Annotated[str, p.path("the anomaly's id, <rule>:<24 hex>", max_length=p.ID_MAX)]


class AnomalyBody(TypedDict):
    """An access anomaly: the rule that raised it, the events that are its evidence, and its review status."""

    anomaly_id: str
    rule: str
    severity: Severity
    actor: str
    dataset: str | None
    item: str | None
    summary: str
    evidence: list[str]
    """Event ids, oldest first."""
    log: str
    position: int
    """Position of the event that raised it."""
    occurred_at: datetime
    raised_at: datetime
    status: Status
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_event_id: str | None
    reviews: int


class AnomalyPageBody(TypedDict):
    """A page of anomalies in log order; follow ``next_cursor`` (null at the end)."""

    anomalies: list[AnomalyBody]
    next_cursor: str | None


class StoredReceiptBody(TypedDict):
    """Where a stored event sits in its log."""

    id: str
    log: str
    position: int
    recorded_at: str
    prev_hash: str
    hash: str


class StoredEventBody(TypedDict):
    """An event as stored (sealed values as ``{"sealed": ...}``) and its receipt."""

    event: dict[str, Any]
    receipt: StoredReceiptBody


class AnomalyWithEvidenceBody(AnomalyBody):
    """An anomaly and its evidence events, in the order of ``evidence``."""

    evidence_events: list[StoredEventBody]


class ReviewedBody(TypedDict):
    """Where the review was recorded (``ledger.anomaly_reviewed``) and the anomaly after it."""

    receipt: Receipt
    anomaly: AnomalyBody


class ReviewRequest(BaseModel):
    """A review of an anomaly: the decision, and an optional comment (sealed before it is stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Decision
    comment: str | None = Field(default=None, max_length=MAX_FREE_TEXT_LENGTH)


class AnomalyController(Controller):
    """The security team's view of access anomalies, and its reviews."""

    path = "/v1/anomalies"
    tags = ["anomalies"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/",
        summary="Access anomalies, filtered, in log order",
        description=(
            "`since`/`until` bound `raised_at` (when the ledger recorded the event that raised the anomaly; "
            "`until` exclusive). Roles security, auditor (or admin with MFA)."
        ),
        responses=responses(*READ_ERRORS),
    )
    async def list_anomalies(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        rule: Annotated[
            str | None, p.query("only this rule", max_length=p.NAME_MAX, enum=list(ANOMALY_RULES))
        ] = None,
        actor: Annotated[str | None, p.query("only this actor", max_length=p.ID_MAX)] = None,
        status: Annotated[
            str | None, p.query("only this review status", max_length=p.NAME_MAX, enum=list(STATUSES))
        ] = None,
        since: Annotated[
            str | None, p.query("raised at or after (RFC 3339)", max_length=p.TIME_MAX, format="date-time")
        ] = None,
        until: Annotated[
            str | None, p.query("raised before (RFC 3339)", max_length=p.TIME_MAX, format="date-time")
        ] = None,
        cursor: Annotated[
            str | None, p.query("next_cursor of the previous page", max_length=p.CURSOR_MAX)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> AnomalyPageBody:
        """Anomalies of the token's tenant; each names its rule, severity, evidence and review status."""
        flt = AnomalyFilter(
            reader.tenant,
            rule=rule,
            actor=actor,
            status=status,
            since=p.parse_time("since", since) if since else None,
            until=p.parse_time("until", until) if until else None,
        )
        query = partial(list_anomalies, ledger, flt, cursor=cursor, limit=limit)
        page = await reader.read(query, resource="anomalies", count=counted("anomalies"))
        return cast(AnomalyPageBody, page)

    @get(
        "/{anomaly_id:str}",
        summary="One anomaly with its evidence events",
        description="The evidence events as stored, sealed values sealed. Roles security, auditor (or admin with MFA).",
        responses=responses(*READ_ERRORS, 404),
    )
    async def anomaly(
        self, ledger: NamedDependency[Ledger], reader: NamedDependency[Reader], anomaly_id: AnomalyId
    ) -> AnomalyWithEvidenceBody:
        """The anomaly and the stored events that are its evidence; 404 if the tenant has no such anomaly."""
        query = partial(show_anomaly, ledger, reader.tenant, anomaly_id)
        found = await reader.read(query, resource=f"anomaly:{anomaly_id}", count=one)
        return cast(AnomalyWithEvidenceBody, found)

    @post(
        "/{anomaly_id:str}/reviews",
        summary="Record a review of an anomaly",
        description=(
            "Appends `ledger.anomaly_reviewed` (anomaly, reviewer = the token's subject, decision, comment "
            "sealed) to the tenant's log; the anomaly's status becomes the decision. Role security only."
        ),
        status_code=201,
        response_description="Recorded: the review's receipt and the anomaly with its new status",
        responses=responses(400, 401, 403, 404, 413, 422, 503),
    )
    async def review(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        anomaly_id: AnomalyId,
        data: JSONBody[ReviewRequest],
    ) -> ReviewedBody:
        """Record the caller's decision on the anomaly; 404 if the tenant has no such anomaly."""
        review = Review(anomaly_id, principal.subject, data.decision, data.comment)
        reviewed = await to_thread.run_sync(partial(review_anomaly, ledger, principal.tenant, review))
        body = {"receipt": reviewed.receipt.as_dict(), "anomaly": reviewed.anomaly}
        return cast(ReviewedBody, body)


@get(
    "/v1/reports/access-review",
    summary="The access-review report (JSON, CSV or printable HTML)",
    description=(
        "Per ISO week of `from`..`to` (both included, UTC): anomalies raised (per rule, per severity), "
        "reviews recorded (reviewer, decision, time), and the anomalies still open at the end with their "
        "age. Roles security, auditor (or admin with MFA)."
    ),
    tags=["anomalies"],
    security=SECURITY,
    operation_class=ReportOperation,
    responses=responses(*READ_ERRORS, 404),
)
async def access_review(
    ledger: NamedDependency[Ledger],
    reader: NamedDependency[Reader],
    from_: Annotated[
        str, p.query("first day, YYYY-MM-DD", max_length=p.TIME_MAX, name="from", format="date")
    ],
    to: Annotated[str, p.query("last day (included), YYYY-MM-DD", max_length=p.TIME_MAX, format="date")],
    format_: Annotated[
        str, p.query("json, csv or html", max_length=p.NAME_MAX, name="format", enum=list(FORMATS))
    ] = "json",
) -> Response[bytes]:
    """Raised, reviewed and open anomalies of the token's tenant; the report's SHA-256 is recorded first."""
    first, last = p.parse_date("from", from_), p.parse_date("to", to)
    p.check_choice("format", format_, FORMATS)
    render = partial(
        render_access_review,
        ledger,
        first,
        last,
        format_,
        tenant=reader.tenant,
        requested_by=reader.principal.subject,
    )
    generated, receipts = await reader.export(
        render, resource="report:access-review", count=lambda r: r.records, also=lambda r: [report_event(r)]
    )
    return report_response(generated, receipts[0])
