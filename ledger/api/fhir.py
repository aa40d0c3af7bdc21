"""``GET /v1/export/fhir``: the tenant's access events and annotation lineage of a time range as FHIR R4
(a ``collection`` Bundle or Bulk Data NDJSON), recorded as ``access.data_exported`` with the export's
SHA-256 (``ledger.report_generated``, report ``fhir_export``) before the body is sent."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, cast

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.spec import OpenAPIHeader, OpenAPIMediaType, OpenAPIResponse, Operation, Schema

from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, responses
from ledger.api.reads import Reader
from ledger.fhir.bundle import BUNDLE_MEDIA_TYPE, NDJSON_MEDIA_TYPE
from ledger.fhir.export import FORMATS, MAX_EXPORT_EVENTS, FhirExport, Window, export, report_generated
from ledger.runtime import Ledger


@dataclass
class FhirExportOperation(Operation):
    """The export's two media types and its headers, in place of the generated ``string`` body."""

    def __post_init__(self) -> None:
        """Name the media types and the headers the export answers with."""
        text = Schema(type=cast(Any, "string"))
        ok = OpenAPIResponse(
            description="The export; its SHA-256 is recorded in the ledger as ledger.report_generated",
            content={
                BUNDLE_MEDIA_TYPE: OpenAPIMediaType(schema=Schema(type=cast(Any, "object"))),
                NDJSON_MEDIA_TYPE: OpenAPIMediaType(schema=text),
            },
            headers={
                "Content-Disposition": OpenAPIHeader(schema=text, description="attachment; filename=…"),
                "X-Report-SHA256": OpenAPIHeader(schema=text, description="SHA-256 of the body, hex"),
                "X-Ledger-Position": OpenAPIHeader(
                    schema=text,
                    description="position of the ledger.report_generated event in the tenant's log",
                ),
            },
        )
        self.responses = {**(self.responses or {}), "200": ok}


@get(
    "/v1/export/fhir",
    summary="Access events and annotation lineage as FHIR R4 (Bundle or Bulk Data NDJSON)",
    description=(
        "The tenant's events with `since` <= event time < `until`: access and sign-in events as AuditEvent "
        "(IHE BALP Read / Query, DICOM Export), annotations, reviews and adjudications as Provenance "
        "(docs/fhir.md). `format=bundle` (default, application/fhir+json, a Bundle of type collection) or "
        f"`ndjson` (application/fhir+ndjson). At most {MAX_EXPORT_EVENTS:,} events: a wider range is a 400 "
        "asking for a narrower one. Sealed values are not exported. Roles auditor, regulatory, security "
        "(or admin), with MFA."
    ),
    tags=["exports"],
    security=SECURITY,
    operation_class=FhirExportOperation,
    responses=responses(*READ_ERRORS),
)
async def fhir_export(
    ledger: NamedDependency[Ledger],
    reader: NamedDependency[Reader],
    since: Annotated[
        str, p.query("event time from (RFC 3339, inclusive)", max_length=p.TIME_MAX, format="date-time")
    ],
    until: Annotated[
        str, p.query("event time until (RFC 3339, exclusive)", max_length=p.TIME_MAX, format="date-time")
    ],
    format_: Annotated[
        str, p.query("bundle or ndjson", max_length=p.NAME_MAX, name="format", enum=list(FORMATS))
    ] = "bundle",
) -> Response[bytes]:
    """The export file, recorded before it is sent."""
    fmt = str(p.check_choice("format", format_, FORMATS))
    window = Window(reader.tenant, p.parse_time("since", since), p.parse_time("until", until)).check()
    requested_by = reader.principal.subject
    produced, receipts = await reader.export(
        partial(export, ledger.db, window, fmt),
        resource=f"fhir:{window.since.isoformat()}/{window.until.isoformat()}",
        count=lambda e: e.resources,
        also=lambda e: [report_generated(e, requested_by=requested_by)],
    )
    return _response(produced, receipts[0].position)


def _response(produced: FhirExport, position: int) -> Response[bytes]:
    suffix = "ndjson" if produced.format == "ndjson" else "json"
    headers = {
        "Content-Disposition": f'attachment; filename="fhir-{produced.sha256[:16]}.{suffix}"',
        "X-Report-SHA256": produced.sha256,
        "X-Ledger-Position": str(position),
    }
    return Response(produced.body, media_type=produced.media_type, headers=headers)
