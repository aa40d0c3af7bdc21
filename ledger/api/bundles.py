"""``GET /v1/bundles``: an evidence bundle of one scope, as ``ledger bundle`` writes it.

Tenant-scoped like every read: the token's tenant is the bundle's, and another tenant's item, release,
events or log are not found (404). The bundle's SHA-256 is recorded (``ledger.report_generated``, report
``evidence_bundle``) before the body is sent. Bundles are built in memory (their seal covers every
member), so at most ``CONCURRENT_BUNDLES`` are built at once; another request waits up to
``BUNDLE_WAIT_SECONDS`` and is then refused with 503 and Retry-After.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, BundleOperation, responses
from ledger.api.reads import Reader
from ledger.domain.errors import FieldError, Overloaded, ParameterInvalid
from ledger.evidence import MEDIA_TYPE, ProducedBundle, bundle_report, produce_bundle, select_bundle
from ledger.reports.service import report_event
from ledger.runtime import Ledger
from ledger.storage import bundles
from ledger.storage.bundles import MAX_BUNDLE_EVENTS, MAX_EVENT_IDS, Scope

CONCURRENT_BUNDLES = 2
BUNDLE_WAIT_SECONDS = 30.0
_building = threading.BoundedSemaphore(CONCURRENT_BUNDLES)
_POSITION_MAX = 2**63 - 1


def _position(description: str, name: str) -> QueryParameter:
    return QueryParameter(name=name, description=description, ge=0, le=_POSITION_MAX)


@get(
    "/v1/bundles",
    summary="An evidence bundle an auditor verifies offline (ledger-evidence-bundle/v1)",
    description=(
        "Exactly one scope: `item=DATASET/ITEM` (every event about the item), `release=DATASET@RELEASE` (its "
        "dataset.release_created event and every event about its items up to the release), "
        f"`events=ID,ID,…` (those events, at most {MAX_EVENT_IDS:,}; every one must exist, else 404 naming "
        "the missing ids) or `log=L&from=P&to=Q` (positions P..Q, both included). The events' stored bytes "
        "(sealed values stay sealed), their inclusion proofs, the signed checkpoint(s) with cosignatures, "
        "the verifier keys, sealed by the Ed25519 checkpoint key; a checkpoint is signed first when the "
        f"latest does not cover the events. At most {MAX_BUNDLE_EVENTS:,} events (MAX_BUNDLE_EVENTS). "
        "Verify it with `python -m ledger.verifier FILE --key VKEY` (keys from GET /v1/keys). "
        "Roles auditor, regulatory, security (or admin with MFA)."
    ),
    tags=["proofs"],
    security=SECURITY,
    operation_class=BundleOperation,
    responses=responses(*READ_ERRORS, 404),
)
async def bundle(
    ledger: NamedDependency[Ledger],
    reader: NamedDependency[Reader],
    item: Annotated[str | None, p.query("DATASET/ITEM", max_length=p.SCOPE_MAX)] = None,
    release: Annotated[str | None, p.query("DATASET@RELEASE", max_length=p.SCOPE_MAX)] = None,
    events: Annotated[
        str | None, p.query("event ids separated by commas", max_length=p.EVENT_IDS_MAX)
    ] = None,
    log: Annotated[str | None, p.query("a log (with from and to)", max_length=p.NAME_MAX)] = None,
    from_: Annotated[int | None, _position("with log: the first position", "from")] = None,
    to: Annotated[int | None, _position("with log: the last position (included)", "to")] = None,
) -> Response[bytes]:
    """The bundle file, recorded before it is sent."""
    scope = bundle_scope(item=item, release=release, events=events, log=log, first=from_, last=to)
    requested_by = reader.principal.subject
    produced, receipts = await reader.export(
        partial(_produce, ledger, scope, reader.tenant),
        resource=f"bundle:{scope.parameter}",
        count=lambda b: b.events,
        also=lambda b: [report_event(bundle_report(b, requested_by=requested_by))],
    )
    name = f"{scope.parameter}-{produced.sha256[:16]}.bundle.json"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Bundle-SHA256": produced.sha256,
        "X-Ledger-Position": str(receipts[0].position),
    }
    return Response(produced.body, media_type=MEDIA_TYPE, headers=headers)


def bundle_scope(
    *,
    item: str | None,
    release: str | None,
    events: str | None,
    log: str | None,
    first: int | None,
    last: int | None,
) -> Scope:
    """The one scope the query names; ``ParameterInvalid`` naming the parameters when not exactly one."""
    given = [
        n
        for n, v in (("item", item), ("release", release), ("events", events), ("log", log))
        if v is not None
    ]
    if len(given) != 1:
        message = (
            f"name exactly one scope, not {' and '.join(given)}"
            if given
            else "name one scope: item, release, events, or log with from and to"
        )
        names = given or ["item", "release", "events", "log"]
        raise ParameterInvalid(message, errors=[FieldError(n, message) for n in names])
    if log is None:
        stray = [n for n, v in (("from", first), ("to", last)) if v is not None]
        if stray:
            message = "goes with log only"
            raise ParameterInvalid(f"{stray[0]} {message}", errors=[FieldError(n, message) for n in stray])
    if item is not None:
        return bundles.item_scope(item)
    if release is not None:
        return bundles.release_scope(release)
    if events is not None:
        return bundles.events_scope(events)
    return bundles.log_scope(str(log), first, last)


def _produce(ledger: Ledger, scope: Scope, tenant: str) -> ProducedBundle:
    selection = select_bundle(ledger, scope, tenant=tenant)
    if not _building.acquire(timeout=BUNDLE_WAIT_SECONDS):
        retry = int(BUNDLE_WAIT_SECONDS)
        msg = f"{CONCURRENT_BUNDLES} evidence bundles are being built; retry in {retry} s"
        raise Overloaded(msg, retry_after=retry)
    try:
        return produce_bundle(ledger, selection)
    finally:
        _building.release()
