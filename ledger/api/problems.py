"""The one mapping from ledger errors to HTTP: RFC 9457 problem details."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from ledger.api.params import PRINTABLE, public_name
from ledger.domain import errors as e
from ledger.domain.fields import MAX_REPORTED_ERRORS
from ledger.webhooks.model import Unmappable, UnsupportedAction

_log = logging.getLogger("ledger.api")

# Every LedgerError subclass maps to a status here, directly or through a parent
# (tests/unit/test_error_tree.py walks the tree). The 5xx are the ledger's own trouble:
# 503 when something it depends on is away and may come back (retrying later can help),
# 500 when its own state or setup is wrong (an operator must look; retrying will not help).
STATUS: dict[type[e.LedgerError], int] = {
    e.MalformedRequest: 400,
    e.ParameterInvalid: 400,
    e.AuthenticationFailed: 401,
    e.PermissionDenied: 403,
    e.NotFound: 404,
    e.IdempotencyConflict: 409,
    e.OffsetConflict: 409,
    e.ErasureRefused: 409,  # a legal hold, or nothing left to erase: the state of the record, not the request
    e.BodyTooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.ValidationFailed: 422,
    # A webhook delivery is answered 202 and recorded for these (ledger.webhooks.service); any other caller
    # of a mapping gets what they are: a payload that cannot become events.
    Unmappable: 422,
    UnsupportedAction: 422,
    e.ConfigurationError: 500,
    # A sealed value that does not open, or a log that does not verify, is an integrity failure of the
    # stored record: nothing the caller sent or can change, and never to be retried into silence.
    e.SealedValueTampered: 500,
    e.VerificationError: 500,
    e.StorageRefused: 500,  # the database refused for a reason retrying cannot change (a bug, a grant)
    e.StorageUnavailable: 503,
    e.ReadNotRecorded: 503,  # every read is recorded before data leaves; no record, no data
    e.KeyUnavailable: 503,  # the master key (or a KMS) cannot unwrap a subject key right now
    e.BrokerUnavailable: 503,
    e.Overloaded: 503,
}
PROBLEM_JSON = "application/problem+json"
MAX_ERRORS = MAX_REPORTED_ERRORS
"""A problem body lists at most this many field errors (validation's own cap); ``error_count`` says how many there were."""
# Litestar states a missing parameter in its detail only (no ``extra``), followed by the whole URL.
_MISSING = re.compile(r"Missing required (\w+) parameter '([^']+)'")
MAX_TEXT = 500
"""Field names and messages are cut to this many characters: they can quote what the caller sent."""


def mapped_status(cls: type[e.LedgerError]) -> int | None:
    """The status ``STATUS`` gives ``cls`` (most specific class wins), or ``None`` if it has none."""
    for klass in cls.__mro__:
        if klass in STATUS:
            return STATUS[klass]
    return None


def status_of(exc: e.LedgerError) -> int:
    """The HTTP status of a ledger error."""
    return mapped_status(type(exc)) or 500


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response[Any]:
    """An RFC 9457 problem+json response; ``code`` is repeated as a stable machine-readable member."""
    body = {
        "type": f"urn:ledger:problem:{code}",
        "title": title,
        "status": status,
        "detail": _cut(detail),
        "instance": _cut(instance),
        "code": code,
        **extra,
    }
    merged = dict(headers or {})
    if status == 401:
        merged["WWW-Authenticate"] = 'Bearer realm="ledger"'
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=merged or None)


def ledger_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Map a ``LedgerError`` to its problem response."""
    assert isinstance(exc, e.LedgerError)
    status = status_of(exc)
    if status >= 500:
        _log.error("%s on %s: %s", exc.code, request.url.path, exc.detail)
    extra: dict[str, Any] = {}
    if exc.errors:
        extra.update(field_errors((fe.as_dict() for fe in exc.errors), exc.error_count))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, e.Overloaded) else None
    return problem(status, exc.code, exc.title, exc.detail, request.url.path, headers=headers, **extra)


def field_errors(errors: Iterable[dict[str, Any]], count: int) -> dict[str, Any]:
    """The ``errors`` and ``error_count`` members: the first ``MAX_ERRORS``, each cut to a readable size."""
    shown: list[dict[str, Any]] = []
    for fe in errors:
        if len(shown) == MAX_ERRORS:
            break
        shown.append({k: _cut(v) if isinstance(v, str) else v for k, v in fe.items()})
    return {"errors": shown, "error_count": max(count, len(shown))}


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (unknown route, wrong method, bad query parameter) as problem details too."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})  # e.g. Allow on a 405
    if isinstance(exc, ValidationException):
        return _parameter_problem(request, exc, headers)
    code = {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: e.BodyTooLarge.code,
    }.get(exc.status_code, "http_error")
    return problem(
        exc.status_code, code, exc.detail or "HTTP error", exc.detail, request.url.path, headers=headers
    )


def _parameter_problem(
    request: Request[Any, Any, Any], exc: ValidationException, headers: dict[str, str]
) -> Response[Any]:
    # Litestar checked the parameter's declared type and constraints (ledger.api.params): the same
    # problem as ParameterInvalid raised by the ledger's own checks, so clients see one shape.
    raw = [x for x in exc.extra if isinstance(x, dict)] if isinstance(exc.extra, list) else []
    errors = [
        {
            "field": public_name(request.route_handler, str(x.get("key", ""))),
            "message": _parameter_message(str(x.get("message", ""))),
        }
        for x in raw
    ]
    missing = _MISSING.match(exc.detail or "")
    if not errors and missing:
        errors = [{"field": missing.group(2), "message": f"is a required {missing.group(1)} parameter"}]
    detail = "; ".join(f"{fe['field']}: {fe['message']}" for fe in errors) or "a parameter is not valid"
    return problem(
        400,
        e.ParameterInvalid.code,
        e.ParameterInvalid.title,
        detail,
        request.url.path,
        headers=headers,
        **field_errors(errors, len(errors)),
    )


def _parameter_message(message: str) -> str:
    # msgspec states a failed pattern as the regex itself; say what it means instead.
    if "matching regex" in message and repr(PRINTABLE) in message:
        return "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"
    return message


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


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
