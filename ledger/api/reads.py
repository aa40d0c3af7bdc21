"""The read service: every read on the record leaves an access event, committed before data leaves (DESIGN §6).

A read runs its query, then appends ``access.data_viewed`` (``access.data_exported`` for reports, exports
and bundles) naming the principal, the role it acted in, the route, the resource, the parameters, the
number of records returned, the purpose of use and the source address (sealed), through the one append
service. Only once that transaction committed does the caller get the data; if it fails, the read fails
with ``ReadNotRecorded`` (503) and returns nothing. A read that fails (404, 400) is recorded too, with
its status and outcome ``failure``; a refused request (401, 403) as ``access.denied``.

Concurrent reads share one append transaction (``GroupCommit``): while one batch commits, the reads that
arrive wait and then go together in the next. None is ever skipped, and each waits for its own commit.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from ledger.api.problems import status_of
from ledger.auth.routes import VIEWED, RouteAccess, route_access
from ledger.auth.tokens import Principal, TokenVerifier
from ledger.domain.envelope import ReceivedEvent
from ledger.domain.errors import (
    AuthenticationFailed,
    FieldError,
    LedgerError,
    ParameterInvalid,
    PermissionDenied,
    ReadNotRecorded,
    ValidationFailed,
)
from ledger.domain.events import (
    MAX_PARAMETER_NAME_LENGTH,
    MAX_QUERY_PARAMETERS,
    MAX_RESOURCE_LENGTH,
    PURPOSES_OF_USE,
)
from ledger.domain.fields import IDENTIFIER_PATTERN, MAX_IDENTIFIER_LENGTH, MAX_SHORT_VALUE_LENGTH
from ledger.domain.identifiers import find_direct_identifier
from ledger.domain.internal import READ, WITNESS_READ, ledger_event
from ledger.domain.logs import SYSTEM_TENANT, log_for
from ledger.reports.service import RenderedReport
from ledger.storage.append import Receipt

T = TypeVar("T")

DENIED = "access.denied"
UNAUTHENTICATED = "unauthenticated"
"""The actor of a refused request whose token did not verify (its claims cannot be believed)."""

Append = Callable[[Sequence[ReceivedEvent]], list[Receipt]]


@dataclass(frozen=True)
class Reading:
    """Who reads, through which route, why and from where: everything an access event says but the result."""

    principal: Principal
    role: str
    method: str
    route: str
    query: dict[str, str]
    purpose: str
    source_address: str | None = None
    user_agent: str | None = None
    records: str = VIEWED

    @property
    def tenant(self) -> str:
        """The tenant read, whose log records the read."""
        return self.principal.tenant


class GroupCommit:
    """Appends the access events of concurrent reads together, and hands each read its own receipts.

    The first read to arrive while no batch is committing leads: it takes every read waiting, appends them
    in one transaction, and wakes them. Reads arriving meanwhile wait for the next batch. An append that
    fails fails every read of its batch, never silently one of them.
    """

    def __init__(self, append: Append) -> None:
        self._append = append
        self._cond = threading.Condition()
        self._waiting: list[_Waiter] = []
        self._committing = False

    def record(self, events: list[ReceivedEvent]) -> list[Receipt]:
        """Append ``events`` (one read's) in a shared transaction; their receipts once it committed."""
        me = _Waiter(events)
        with self._cond:
            self._waiting.append(me)
            while self._committing and not me.done:
                self._cond.wait()
            if me.done:
                return me.outcome()
            # Nothing is committing and this read was not taken yet: it leads every read waiting.
            self._committing = True
            group, self._waiting = self._waiting, []
        try:
            events = [e for w in group for e in w.events]
            receipts = self._append(events)
            if len(receipts) != len(events):
                msg = f"{len(events)} access events were appended but {len(receipts)} receipts came back"
                raise RuntimeError(msg)
        except Exception as exc:  # every read of the batch fails, each with this cause
            for w in group:
                w.error = exc
        else:
            at = 0
            for w in group:
                w.receipts, at = receipts[at : at + len(w.events)], at + len(w.events)
                w.error = None
        finally:  # whatever left the try (even a BaseException), the reads of the batch stop waiting
            with self._cond:
                for w in group:
                    w.done = True
                self._committing = False
                self._cond.notify_all()
        return me.outcome()


@dataclass
class _Waiter:
    events: list[ReceivedEvent]
    receipts: list[Receipt] = field(default_factory=list)
    # Failed until the append is known to have committed: a batch that ended any other way returns nothing.
    error: BaseException | None = field(default_factory=lambda: RuntimeError("the append did not complete"))
    done: bool = False

    def outcome(self) -> list[Receipt]:
        if self.error is not None:
            msg = "the read could not be recorded, so nothing is returned; retry, and tell the operator if it persists"
            raise ReadNotRecorded(msg) from self.error
        return self.receipts


class ReadService:
    """Runs reads and records them; the only way the API hands out data from the record."""

    def __init__(self, append: Append) -> None:
        self._append = append
        self._groups: dict[str, GroupCommit] = {}
        self._groups_lock = threading.Lock()

    def _record(self, tenant: str, events: list[ReceivedEvent]) -> list[Receipt]:
        """Group-commit ``events`` with the other reads of ``tenant``'s log: one group per log, so a log
        whose head another writer holds delays (or fails) only its own tenant's reads."""
        log = log_for(tenant)
        with self._groups_lock:
            group = self._groups.get(log) or self._groups.setdefault(log, GroupCommit(self._append))
        return group.record(events)

    def read(
        self,
        reading: Reading,
        fetch: Callable[[], T],
        *,
        resource: str,
        count: Callable[[T], int],
        dataset: str | None = None,
        item: str | None = None,
        also: Callable[[T], list[ReceivedEvent]] | None = None,
    ) -> tuple[T, list[Receipt]]:
        """``fetch()``, recorded; the value with the receipts of ``also``'s events (recorded in the same
        transaction as the read, e.g. a report's ``ledger.report_generated``). Blocks: run it in a thread."""
        try:
            value = fetch()
        except LedgerError as exc:
            # The resource names what was asked for; dataset and item stay unset: nothing was read about
            # them (a probe for an item that does not exist, or is another tenant's).
            failed = access_event(
                reading, resource=resource, outcome="failure", count=0, status=status_of(exc)
            )
            self._record(reading.tenant, [failed])
            raise
        extra = also(value) if also is not None else []
        event = access_event(
            reading,
            resource=resource,
            dataset=dataset,
            item=item,
            outcome="success",
            count=count(value),
            status=200,
        )
        receipts = self._record(reading.tenant, [event, *extra])
        return value, receipts[1:]

    def denied(
        self, reading: Reading | None, error: LedgerError, *, method: str, route: str, source: str | None
    ) -> None:
        """Record a refused request as ``access.denied``: in the principal's tenant when its token
        verified, else in the ``ledger`` system log under the actor ``unauthenticated``."""
        if reading is None:
            anonymous = Principal(UNAUTHENTICATED, frozenset(), SYSTEM_TENANT)
            reading = Reading(anonymous, "none", method, route, {}, "security", source_address=source)
        event = access_event(
            replace(reading, records=DENIED),
            outcome="failure",
            count=0,
            status=status_of(error),
            resource=route,
            reason=error.detail,
        )
        self._record(reading.tenant, [event])


def access_event(
    reading: Reading,
    *,
    outcome: str,
    count: int,
    status: int,
    resource: str,
    dataset: str | None = None,
    item: str | None = None,
    reason: str | None = None,
) -> ReceivedEvent:
    """The access event of one read, ready to append (sensitive values are sealed by the append service).

    Total: what the caller sent (path and query values, a refusal's reason) is kept as far as an event may
    hold it (``recordable``); if anything still does not validate, the read is recorded by what the ledger
    itself knows (route, status, count, purpose), never not at all."""
    data: dict[str, Any] = {
        "resource": recordable(resource, MAX_RESOURCE_LENGTH),
        "purpose_of_use": reading.purpose,
        "outcome": outcome,
        "record_count": count,
        "route": f"{reading.method} {reading.route}",
        "query": recordable_query(reading.query),
        "status": status,
    }
    optional = {
        "dataset": dataset if dataset and _identifier(dataset) else None,
        "item": item if item and _identifier(item) else None,
        # Sealed values: kept whole (within their bound), the identifier screen does not read them.
        "source_address": reading.source_address,
        "user_agent": reading.user_agent,
        "reason": reason,
    }
    data.update({k: v[:MAX_SHORT_VALUE_LENGTH] for k, v in optional.items() if v})
    infix = WITNESS_READ if reading.role == "witness" else READ
    event_id = infix + uuid.uuid4().hex
    what = partial(
        ledger_event, reading.records, reading.tenant, event_id=event_id, actor=reading.principal.subject,
        actorrole=reading.role,
    )  # fmt: skip
    try:
        return what(data, subject=data["resource"])
    except ValidationFailed:
        bare = {k: data[k] for k in ("purpose_of_use", "outcome", "record_count", "route", "status")}
        return what({**bare, "resource": "unrecordable"})


def recordable(value: str, limit: int = MAX_SHORT_VALUE_LENGTH) -> str:
    """``value`` as an access event may hold it in plain text: as it is, or, when it is too long, holds
    control characters or a direct identifier (an e-mail in a filter), by its length and SHA-256."""
    if len(value) <= limit and value.isprintable() and find_direct_identifier(value) is None:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{len(value)} characters, sha256 {digest}"


def recordable_query(query: dict[str, str]) -> dict[str, str]:
    """A read's parameters as an access event holds them: at most ``MAX_QUERY_PARAMETERS`` names that are
    identifiers, each value ``recordable``."""
    out: dict[str, str] = {}
    for name in sorted(query):
        if len(out) == MAX_QUERY_PARAMETERS:
            break
        if _identifier(name, MAX_PARAMETER_NAME_LENGTH):
            out[name] = recordable(query[name])
    return out


def _identifier(value: str, limit: int = MAX_IDENTIFIER_LENGTH) -> bool:
    return (
        len(value) <= limit
        and bool(re.fullmatch(IDENTIFIER_PATTERN, value))
        and not find_direct_identifier(value)
    )


# ---- the HTTP side: who is reading, and the guard every route passes --------------------------------------

PURPOSE_HEADER = "x-purpose-of-use"


@dataclass(frozen=True)
class Reader:
    """One request's reads: the read service bound to the principal and route of the request."""

    service: ReadService
    reading: Reading

    @property
    def principal(self) -> Principal:
        """Who is reading."""
        return self.reading.principal

    @property
    def tenant(self) -> str:
        """The tenant every query of the request is scoped to."""
        return self.reading.tenant

    async def read(
        self,
        fetch: Callable[[], T],
        *,
        resource: str,
        count: Callable[[T], int],
        dataset: str | None = None,
        item: str | None = None,
    ) -> T:
        """``fetch()`` in a worker thread, recorded before it is returned."""
        work = partial(
            self.service.read, self.reading, fetch, resource=resource, count=count, dataset=dataset, item=item
        )
        value, _ = await to_thread.run_sync(work)
        return value

    async def export(
        self,
        fetch: Callable[[], T],
        *,
        resource: str,
        count: Callable[[T], int],
        also: Callable[[T], list[ReceivedEvent]],
    ) -> tuple[T, list[Receipt]]:
        """Like ``read``; ``also``'s events (a report's ``ledger.report_generated``) are recorded in the same
        transaction as the read, and their receipts returned with the value."""
        work = partial(self.service.read, self.reading, fetch, resource=resource, count=count, also=also)
        return await to_thread.run_sync(work)


def report_response(report: RenderedReport, receipt: Receipt) -> Response[bytes]:
    """An exported report: its bytes, their SHA-256 and the position of its ``ledger.report_generated``."""
    headers = {"X-Report-SHA256": report.sha256, "X-Ledger-Position": str(receipt.position)}
    # Litestar adds "; charset=utf-8" to text/* itself: hand it the bare media type.
    return Response(report.body, media_type=report.media_type.split(";", 1)[0].strip(), headers=headers)


def counted(key: str) -> Callable[[Any], int]:
    """The record count of a body that lists its records under ``key``."""
    return lambda body: len(body[key])


def one(_: object) -> int:
    """The record count of a read returning one record."""
    return 1


class Gate:
    """The guard of every route: authenticate, authorize by ``ledger.auth.routes``, and record refusals.

    A ``/v1`` route without a row in the table is refused (a route someone forgot to list is closed, not
    open). Routes outside ``/v1`` (health, the OpenAPI document) pass untouched, and so do the webhook
    routes (``by_source_secret``), whose handler authenticates the source's own secret instead of a JWT.
    """

    def __init__(self, verifier: TokenVerifier, service: ReadService, default_purpose: str) -> None:
        self._verifier = verifier
        self._service = service
        self._default_purpose = default_purpose

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        method = str(connection.scope.get("method", ""))
        route = connection.scope.get("path_template") or connection.scope["path"]
        if method == "OPTIONS" or not route.startswith("/v1/"):
            return
        source = connection.client.host if connection.client else None
        access = route_access(method, route)
        if access is not None and access.by_source_secret:
            return  # a webhook: its handler authenticates the source's secret and records a refusal
        principal: Principal | None = None
        try:
            principal = await to_thread.run_sync(
                self._verifier.verify, connection.headers.get("authorization")
            )
            if access is None:
                msg = f"{method} {route} is not in the ledger's route table, so no role may call it"
                raise PermissionDenied(msg)
            principal.require(access.roles, mfa=access.mfa)
        except (AuthenticationFailed, PermissionDenied) as exc:
            refused = (
                None
                if principal is None
                else self._reading(connection, principal, access, method, route, refusal=True)
            )
            record = partial(self._service.denied, refused, exc, method=method, route=route, source=source)
            await to_thread.run_sync(record)
            raise
        connection.state.reading = self._reading(connection, principal, access, method, route)

    def _reading(
        self,
        connection: ASGIConnection[Any, Any, Any, Any],
        principal: Principal,
        access: RouteAccess | None,
        method: str,
        route: str,
        *,
        refusal: bool = False,
    ) -> Reading:
        allowed = access.roles if access else frozenset()
        granted = sorted(principal.roles & allowed) or sorted(principal.roles) or ["none"]
        # Acting as admin is the exception: name the other role when the principal holds one.
        role = next((r for r in granted if r != "admin"), granted[0])
        query = {k: ",".join(connection.query_params.getall(k)) for k in connection.query_params}
        return Reading(
            principal=principal,
            role=role,
            method=method,
            route=route,
            query=query,
            purpose=self._purpose(connection, principal, strict=not refusal),
            source_address=connection.client.host if connection.client else None,
            user_agent=connection.headers.get("user-agent"),
            records=(access.records if access and access.records else VIEWED),
        )

    def _purpose(
        self, connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, *, strict: bool
    ) -> str:
        """The purpose the read names; a header naming none is a 400, or, on a refusal (which must be
        recorded whatever the request holds), the token's or the default purpose."""
        header = connection.headers.get(PURPOSE_HEADER)
        if header is not None and (strict or header in PURPOSES_OF_USE):
            if header not in PURPOSES_OF_USE:
                msg = f"X-Purpose-Of-Use must be one of {', '.join(PURPOSES_OF_USE)}, not {header[:100]!r}"
                raise ParameterInvalid(msg, errors=[FieldError("X-Purpose-Of-Use", msg)])
            return header
        return principal.purpose or self._default_purpose


def reader_of(request: Request[Any, Any, Any], reads: ReadService) -> Reader:
    """The ``Reader`` of a request the ``Gate`` let through."""
    return Reader(reads, request.state.reading)
