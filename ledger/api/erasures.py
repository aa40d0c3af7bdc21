"""``POST /v1/erasures``: erase a data subject of the token's tenant (admin, signed in with MFA).

Thin: read the JSON body, check the caller, hand the request to ``ledger.erasure``. The erasure records
``erasure.executed`` and deletes the subject's key in one transaction; 409 names the legal hold that
refuses it, or the earlier erasure that left nothing to erase.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from anyio import to_thread
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from ledger.api.bodies import BodyGate
from ledger.api.openapi import SECURITY, ErasureOperation, ErasureReceipt, Problem, responses
from ledger.api.problems import PROBLEM_JSON
from ledger.auth.tokens import Principal
from ledger.domain.envelope import parse_json
from ledger.domain.errors import (
    FieldError,
    MalformedRequest,
    UnsupportedMediaType,
    ValidationFailed,
)
from ledger.erasure import ErasureRequest, ErasureService
from ledger.runtime import Ledger

_REQUIRED = ("subject", "reason", "approver")
_OPTIONAL = ("erasure_id",)


@post(
    "/v1/erasures",
    summary="Erase a data subject (crypto-shredding)",
    description=(
        "Deletes the subject's sealing key and records `erasure.executed` in the same transaction: the "
        "subject's sealed values can no longer be opened by anyone, while every hash, Merkle root, "
        "checkpoint and evidence bundle still verifies. Refused with 409 `erasure_held`, naming the hold, "
        "while a legal hold covers any event holding a value sealed under the subject's key; 409 "
        "`already_erased` when an earlier erasure left no key to delete. Re-posting the same `erasure_id` "
        "with the same content returns the original receipt (200). Requires role admin, signed in with MFA."
    ),
    tags=["erasure"],
    security=SECURITY,
    status_code=201,
    operation_class=ErasureOperation,
    response_description="Erased: the key ids deleted and the receipt of erasure.executed",
    responses={
        200: ResponseSpec(
            ErasureReceipt, description="This erasure was recorded before: its receipt, nothing done again"
        ),
        **responses(400, 401, 403, 413, 415, 422, 503),
        409: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=(
                "A legal hold covers the subject's records (`erasure_held`, naming the hold), an earlier "
                "erasure left no key (`already_erased`), or the erasure_id was recorded with other content"
            ),
            generate_examples=False,
        ),
    },
)
async def erase(
    request: Request[Any, Any, Any],
    ledger: NamedDependency[Ledger],
    principal: NamedDependency[Principal],
    bodies: NamedDependency[BodyGate],
) -> Response[ErasureReceipt]:
    """Read the body, erase (the route table admits admins with MFA only); 201 when erased now, 200 when
    recorded before."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        msg = f"content type {media or '(none)'} is not accepted; send application/json"
        raise UnsupportedMediaType(msg)
    async with bodies.body(request) as body:
        asked = erasure_request(parse_json(body), principal)
    service = ErasureService(ledger.db, ledger.appender, ledger.sealer)
    done = await to_thread.run_sync(partial(service.erase, asked))
    content: Any = done.as_dict()
    return Response(content, status_code=200 if done.receipt.duplicate else 201)


def erasure_request(body: Any, principal: Principal) -> ErasureRequest:
    """The request a JSON body states, for the principal's tenant; a refusal names each field."""
    if not isinstance(body, dict):
        msg = "the body must be a JSON object with subject, reason and approver"
        raise MalformedRequest(msg, errors=[FieldError("$", "expected an object")])
    errors = [
        FieldError(name, "is not a member of an erasure request")
        for name in body
        if name not in (*_REQUIRED, *_OPTIONAL)
    ]
    for name in _REQUIRED:
        if name not in body:
            errors.append(FieldError(name, "is required"))
    for name in (*_REQUIRED, *_OPTIONAL):
        if name in body and not isinstance(body[name], str):
            errors.append(FieldError(name, "must be a string"))
    if errors:
        raise ValidationFailed(
            "the erasure request is not valid", errors=errors[:20], error_count=len(errors)
        )
    return ErasureRequest(
        tenant=principal.tenant,
        subject=body["subject"],
        reason=body["reason"],
        approver=body["approver"],
        requested_by=principal.subject,
        role="admin",
        erasure_id=body.get("erasure_id"),
    )
