"""Query and path parameters: one rule for what the read path accepts, refused with the parameter named.

Every text parameter is declared with :func:`query` or :func:`path`, so Litestar refuses control
characters (NUL reaches PostgreSQL as an error, a newline forges log lines) and over-long values with a
400 before a handler runs, and the OpenAPI document states the same bounds (``maxLength``, ``pattern``).
Values that need more than that (times, dates, the event id of a ``path`` route) are checked here too,
raising ``ParameterInvalid``, which the API answers with the same 400 problem.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any, NoReturn

from litestar import Request
from litestar.handlers import BaseRouteHandler
from litestar.params import PathParameter, QueryParameter

from ledger.domain.errors import FieldError, ParameterInvalid
from ledger.domain.fields import (
    CONTROL_CHARACTER,
    EARLIEST_TIME,
    LATEST_TIME,
    PRINTABLE_PATTERN,
)
from ledger.domain.fields import parse_time as parse_time  # one rule for query parameters and CLI options

PRINTABLE = PRINTABLE_PATTERN  # the envelope's own rule: what was accepted can always be asked for

# The bounds follow the envelope's own (ledger.domain.envelope): a filter longer than any value the
# ledger accepts can match nothing, so it is refused rather than sent to the database.
ID_MAX = 200  # event id, actor, dataset, item
SUBJECT_MAX = 500  # CloudEvents subject
NAME_MAX = 100  # event type, flag kind, log
TIME_MAX = 64  # an RFC 3339 time or a date
CURSOR_MAX = 1024  # the cursors this server issues are far shorter
SCOPE_MAX = 2 * ID_MAX + 1  # DATASET/ITEM, DATASET@RELEASE
# A list of event ids in one query string: the whole request head must stay under the HTTP server's
# bound on it (uvicorn's h11 default is 16 KiB), token included; longer lists are a log range or a release.
EVENT_IDS_MAX = 8000


def query(
    description: str,
    *,
    max_length: int,
    name: str | None = None,
    enum: list[str] | None = None,
    format: str | None = None,
) -> Any:
    """A text query parameter with the read path's bounds. ``enum`` and ``format`` (``date-time``,
    ``date``) are for the document; the handler checks them, so the error can say what is accepted."""
    extra = {k: v for k, v in (("enum", enum), ("format", format)) if v}
    return QueryParameter(
        name=name,
        description=description,
        max_length=max_length,
        pattern=PRINTABLE,
        schema_extra=extra or None,
    )


def path(description: str, *, max_length: int) -> Any:
    """A text path parameter with the read path's bounds."""
    return PathParameter(description=description, min_length=1, max_length=max_length, pattern=PRINTABLE)


def path_remainder(description: str, *, max_length: int) -> Any:
    """A ``{name:path}`` parameter (it may hold '/'): documented with the same bounds, checked by
    :func:`check_path_remainder`, because Litestar hands it over with a leading '/' that is not the caller's."""
    return PathParameter(
        description=description,
        schema_extra={"minLength": 1, "maxLength": max_length, "pattern": PRINTABLE},
    )


def check_path_remainder(name: str, value: str, *, max_length: int) -> str:
    """The caller's value of a ``{name:path}`` parameter, or ``ParameterInvalid`` naming ``name``."""
    value = value.removeprefix("/")
    if not value:
        _refuse(name, "must not be empty")
    if len(value) > max_length:
        _refuse(name, f"must be at most {max_length} characters, got {len(value)}")
    _refuse_control_characters(name, value)
    return value


def _refuse_control_characters(name: str, value: str) -> None:
    # A search, not the pattern: Python's ``$`` matches before a final newline, so ``a%0A`` would pass it.
    if CONTROL_CHARACTER.search(value):
        _refuse(name, "must not contain control characters (U+0000-U+001F, U+007F-U+009F)")


def check_choice(name: str, value: str | None, allowed: Any) -> str | None:
    """``value`` if it is one of ``allowed`` (or absent), else ``ParameterInvalid`` listing them."""
    if value is not None and value not in allowed:
        _refuse(name, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


async def refuse_unusable_parameters(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: a parameter holding a control character, or a query parameter the
    operation does not declare, is refused, naming it.
    A misspelt filter (``?tyep=...``) must not silently widen an audit query to everything."""
    for name, value in [*request.query_params.multi_items(), *request.path_params.items()]:
        if isinstance(value, str):
            _refuse_control_characters(name, value)
    unknown = sorted(set(request.query_params) - _declared_query(request.route_handler))
    if unknown:
        names = ", ".join(repr(n) for n in unknown[:10])
        msg = f"unknown query parameter {names}; see the operation in /schema for the ones it takes"
        raise ParameterInvalid(
            msg, errors=[FieldError(n, "is not a parameter of this operation") for n in unknown]
        )


def public_name(handler: BaseRouteHandler, name: str) -> str:
    """The name a caller uses for the handler's parameter ``name`` (``type`` for ``type_``)."""
    parameter = handler.parsed_fn_signature.parameters.get(name)
    kwarg = parameter.kwarg_definition if parameter is not None else None
    return (kwarg.name if isinstance(kwarg, QueryParameter | PathParameter) else None) or name


@cache
def _declared_query(handler: BaseRouteHandler) -> frozenset[str]:
    # Every ledger query parameter is declared with QueryParameter (see query() above).
    names = set()
    for name, parameter in handler.parsed_fn_signature.parameters.items():
        kwarg = parameter.kwarg_definition
        if isinstance(kwarg, QueryParameter):
            names.add(kwarg.name or name)
    return frozenset(names)


def parse_date(name: str, value: str) -> date:
    """A calendar date, YYYY-MM-DD, within the ledger's time range; else ``ParameterInvalid``."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        _refuse(name, "must be a date, YYYY-MM-DD")
    if not EARLIEST_TIME.date() <= day < LATEST_TIME.date():
        _refuse(name, f"must lie in [{EARLIEST_TIME.date()}, {LATEST_TIME.date()})")
    return day


def _refuse(name: str, message: str) -> NoReturn:
    msg = f"{name} {message}"
    raise ParameterInvalid(msg, errors=[FieldError(name, message)])
