"""The one mapping from ledger errors to HTTP: RFC 9457 problem details."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from ledger.domain import errors as e

_log = logging.getLogger("ledger.api")

STATUS: dict[type[e.LedgerError], int] = {
    e.MalformedRequest: 400,
    e.AuthenticationFailed: 401,
    e.PermissionDenied: 403,
    e.NotFound: 404,
    e.IdempotencyConflict: 409,
    e.UnsupportedMediaType: 415,
    e.ValidationFailed: 422,
    e.StorageUnavailable: 503,
}
PROBLEM_JSON = "application/problem+json"


def status_of(exc: e.LedgerError) -> int:
    """The HTTP status of a ledger error (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(status: int, code: str, title: str, detail: str, instance: str, **extra: Any) -> Response[Any]:
    """An RFC 9457 problem+json response; ``code`` is repeated as a stable machine-readable member."""
    body = {
        "type": f"urn:ledger:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="ledger"'} if status == 401 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def ledger_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map a ``LedgerError`` to its problem response."""
    assert isinstance(exc, e.LedgerError)
    status = status_of(exc)
    if status >= 500:
        _log.error("%s on %s: %s", exc.code, request.url.path, exc.detail)
    extra: dict[str, Any] = {}
    if exc.errors:
        extra["errors"] = [fe.as_dict() for fe in exc.errors]
    return problem(status, exc.code, exc.title, exc.detail, request.url.path, **extra)


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (unknown route, bad query parameter) as problem details too."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(
        exc.status_code, "http_error"
    )
    extra: dict[str, Any] = {}
    if isinstance(exc.extra, list):
        extra["errors"] = [
            {"field": str(x.get("key", "")), "message": str(x.get("message", ""))}
            for x in exc.extra
            if isinstance(x, dict)
        ]
    return problem(exc.status_code, code, exc.detail or "HTTP error", exc.detail, request.url.path, **extra)


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything else: logged with its traceback, answered without internals."""
    _log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    return problem(
        500,
        "internal_error",
        "Internal error",
        "the ledger failed unexpectedly; see the server log",
        request.url.path,
    )
