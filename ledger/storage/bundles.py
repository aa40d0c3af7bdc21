"""Which events an evidence bundle holds, and their stored bytes: the four scopes of ``ledger bundle``.

* item ``DATASET/ITEM``: every event the item index (``proj_item_events``) holds for it;
* release ``DATASET@RELEASE``: its ``dataset.release_created`` event(s) and every event about a released
  item up to the (last) release's position: the lineage of each final label as it was released, and the
  accesses to the items before it, but nothing else that happened to them after; with them what the
  lineage report (``ledger report lineage``) rests on besides: the credential events behind the standing
  of every actor of those events, the guideline events behind every guideline version's effective range,
  and every access to an item of the release's test split after the release (test-set isolation);
* events ``ID,…``: those events, every one of which must exist;
* log ``L`` from ``P`` to ``Q``: positions P..Q inclusive.

Selection reads positions only; ``read_canonical`` then streams the stored bytes a batch at a time. A
bundle holds at most ``MAX_BUNDLE_EVENTS`` events; a scope that selects more is refused naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, NoReturn

import psycopg

from ledger.domain.errors import FieldError, NotFound, ParameterInvalid
from ledger.domain.fields import CONTROL_CHARACTER, MAX_IDENTIFIER_LENGTH
from ledger.storage.database import Database

Connection = psycopg.Connection[Any]

MAX_BUNDLE_EVENTS = 100_000
"""The most events one bundle holds. The bundle is built in memory (its seal covers every member): about
2.5 kB of JSON per event, a few hundred MB at the limit. A release of 1,000 items is ~40,000 events."""
MAX_EVENT_IDS = 1_000
"""The most ids an events scope names (a longer list is a log range or a release)."""
READ_BATCH = 2_000
"""Events read per query when fetching stored bytes."""
RELEASE_TYPE = "dataset.release_created"
_POSITION_END = 2**63  # positions are bigint


def _refuse(name: str, message: str) -> NoReturn:
    raise ParameterInvalid(f"{name} {message}", errors=[FieldError(name, message)])


# ---- scopes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemScope:
    """``--item DATASET/ITEM``."""

    dataset: str
    item: str
    parameter: ClassVar[str] = "item"

    def document(self) -> dict[str, Any]:
        """The bundle's ``scope`` member."""
        return {"item": f"{self.dataset}/{self.item}"}


@dataclass(frozen=True)
class ReleaseScope:
    """``--release DATASET@RELEASE``."""

    dataset: str
    release: str
    parameter: ClassVar[str] = "release"

    def document(self) -> dict[str, Any]:
        """The bundle's ``scope`` member."""
        return {"release": f"{self.dataset}@{self.release}"}


@dataclass(frozen=True)
class EventsScope:
    """``--events ID,…``: each id once, in the order given."""

    ids: tuple[str, ...]
    parameter: ClassVar[str] = "events"

    def document(self) -> dict[str, Any]:
        """The bundle's ``scope`` member."""
        return {"events": list(self.ids)}


@dataclass(frozen=True)
class LogScope:
    """``--log L --from P --to Q``: positions P..Q of L, both included."""

    log: str
    first: int
    last: int
    parameter: ClassVar[str] = "log"

    def document(self) -> dict[str, Any]:
        """The bundle's ``scope`` member."""
        return {"log": self.log, "from": self.first, "to": self.last}


Scope = ItemScope | ReleaseScope | EventsScope | LogScope


def _name(parameter: str, value: str, what: str) -> str:
    if not value:
        _refuse(parameter, f"names no {what}")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        _refuse(parameter, f"names a {what} longer than {MAX_IDENTIFIER_LENGTH} characters")
    if CONTROL_CHARACTER.search(value) or any(c.isspace() for c in value):
        _refuse(parameter, f"names a {what} with a space or a control character")
    return value


def item_scope(text: str, parameter: str = "item") -> ItemScope:
    """``DATASET/ITEM``, split at the first ``/`` (as the verifier reads the scope)."""
    dataset, slash, item = text.partition("/")
    if not slash:
        _refuse(parameter, f"must be DATASET/ITEM, got {text[:100]!r}")
    return ItemScope(_name(parameter, dataset, "dataset"), _name(parameter, item, "item"))


def release_scope(text: str, parameter: str = "release") -> ReleaseScope:
    """``DATASET@RELEASE``, split at the first ``@`` (as the verifier reads the scope)."""
    dataset, at, release = text.partition("@")
    if not at:
        _refuse(parameter, f"must be DATASET@RELEASE, got {text[:100]!r}")
    return release_of(dataset, release, parameters=(parameter, parameter))


def release_of(
    dataset: str, release: str, parameters: tuple[str, str] = ("dataset", "release")
) -> ReleaseScope:
    """The release scope of two names given apart (a route's path parameters: a dataset may hold ``@``);
    each refusal names its own parameter, ``parameters`` (dataset's, release's)."""
    return ReleaseScope(_name(parameters[0], dataset, "dataset"), _name(parameters[1], release, "release"))


def events_scope(text: str, parameter: str = "events") -> EventsScope:
    """``ID,ID,…``: a comma-separated list of event ids, repeats dropped."""
    ids = [i.strip() for i in text.split(",")]
    if any(not i for i in ids):
        _refuse(parameter, "must be event ids separated by commas, none empty")
    unique = tuple(dict.fromkeys(_name(parameter, i, "event id") for i in ids))
    if len(unique) > MAX_EVENT_IDS:
        _refuse(parameter, f"names {len(unique):,} events; at most {MAX_EVENT_IDS:,} (MAX_EVENT_IDS)")
    return EventsScope(unique)


def log_scope(log: str, first: int | None, last: int | None, prefix: str = "") -> LogScope:
    """``L`` from ``P`` to ``Q``; both positions are required and ``P <= Q``. ``prefix`` spells the
    parameters' names as the caller knows them (``--`` on the command line)."""
    name_log, name_from, name_to = (prefix + n for n in ("log", "from", "to"))
    _name(name_log, log, "log")
    if first is None:
        _refuse(name_from, f"is required with {name_log}: the first position of the range")
    if last is None:
        _refuse(name_to, f"is required with {name_log}: the last position of the range (included)")
    for name, value in ((name_from, first), (name_to, last)):
        if not 0 <= value < _POSITION_END:
            _refuse(name, f"must be a position from 0 to {_POSITION_END - 1}")
    if first > last:
        _refuse(name_from, f"must not be after {name_to} ({first} > {last})")
    if last - first + 1 > MAX_BUNDLE_EVENTS:
        _refuse(name_to, f"asks for {last - first + 1:,} events; a bundle holds at most"
                f" {MAX_BUNDLE_EVENTS:,} (MAX_BUNDLE_EVENTS): split the range")  # fmt: skip
    return LogScope(log, first, last)


# ---- selection ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The events a scope selects in one tenant: positions by log, ascending."""

    tenant: str
    scope: Scope
    positions: dict[str, list[int]]

    @property
    def count(self) -> int:
        """How many events."""
        return sum(len(p) for p in self.positions.values())


class BundleEvents:
    """Selecting a scope's events and reading their stored bytes. ``tenant`` scopes a request to its own
    records (another tenant's are not found); ``None`` (the CLI without ``--tenant``) finds the one tenant
    that holds what the scope names, and refuses when several do."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def select(self, scope: Scope, *, tenant: str | None) -> Selection:
        """The events of ``scope``; ``NotFound`` naming what is missing, ``ParameterInvalid`` past the limit."""
        with self._db.connect() as conn, conn.transaction():
            found = self._tenant(conn, scope) if tenant is None else tenant
            rows = _select(conn, scope, found)
        positions: dict[str, list[int]] = {}
        for log, position in sorted(set(rows)):
            positions.setdefault(log, []).append(position)
        selection = Selection(found, scope, positions)
        if selection.count > MAX_BUNDLE_EVENTS:
            _refuse(scope.parameter, f"selects {selection.count:,} events; a bundle holds at most"
                    f" {MAX_BUNDLE_EVENTS:,} (MAX_BUNDLE_EVENTS)")  # fmt: skip
        return selection

    def read_canonical(self, log: str, positions: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """``(position, stored canonical bytes)`` of ``positions`` (ascending) of ``log``, a batch at a time."""
        for start in range(0, len(positions), READ_BATCH):
            chunk = list(positions[start : start + READ_BATCH])
            with self._db.connect() as conn:
                rows = conn.execute(
                    "SELECT position, canonical FROM ledger_events WHERE log = %s AND position = ANY(%s)"
                    " ORDER BY position",
                    (log, chunk),
                ).fetchall()
            if len(rows) != len(chunk):  # selected a moment ago, and events are never deleted
                missing = sorted(set(chunk) - {int(r[0]) for r in rows})
                msg = f"events at positions {missing[:10]} of log {log!r} are gone; run `ledger verify`"
                raise NotFound(msg)
            for r in rows:
                yield int(r[0]), bytes(r[1])

    def _tenant(self, conn: Connection, scope: Scope) -> str:
        return find_tenant(conn, scope)


def find_tenant(conn: Connection, scope: Scope) -> str:
    """The one tenant holding what ``scope`` names; ``NotFound`` for none, ``ParameterInvalid`` for several."""
    if isinstance(scope, LogScope):
        sql, params = "SELECT tenant FROM ledger_log_heads WHERE log = %s", [scope.log]
    else:
        # Through each tenant's own index: every lookup below leads with the tenant.
        match = {
            ItemScope: "SELECT 1 FROM proj_item_events i WHERE i.tenant = h.tenant AND i.dataset = %s"
            " AND i.item = %s",
            ReleaseScope: _RELEASES_SQL.replace("%(tenant)s", "h.tenant"),
            EventsScope: "SELECT 1 FROM ledger_events e WHERE e.tenant = h.tenant AND e.event_id = ANY(%s)",
        }[type(scope)]
        sql = f"SELECT DISTINCT h.tenant FROM ledger_log_heads h WHERE EXISTS ({match})"
        params = _scope_params(scope)
    tenants = sorted(str(r[0]) for r in conn.execute(sql, params).fetchall())
    if not tenants:
        _not_found(scope, None)
    if len(tenants) > 1:
        shown = ", ".join(tenants[:10])
        _refuse(scope.parameter, f"is found in {len(tenants)} tenants ({shown}): name one with --tenant")
    return tenants[0]


_RELEASES_SQL = (
    "SELECT e.log, e.position, e.canonical FROM ledger_events e"
    " WHERE e.tenant = %(tenant)s AND e.type = 'dataset.release_created'"
    " AND convert_from(e.canonical, 'UTF8')::jsonb #>> '{event,data,dataset}' = %s"
    " AND convert_from(e.canonical, 'UTF8')::jsonb #>> '{event,data,release}' = %s"
)


def _scope_params(scope: Scope) -> list[Any]:
    if isinstance(scope, ItemScope):
        return [scope.dataset, scope.item]
    if isinstance(scope, ReleaseScope):
        return [scope.dataset, scope.release]
    if isinstance(scope, EventsScope):
        return [list(scope.ids)]
    return [scope.log]


def _select(conn: Connection, scope: Scope, tenant: str) -> list[tuple[str, int]]:
    if isinstance(scope, ItemScope):
        rows = conn.execute(
            "SELECT log, position FROM proj_item_events WHERE tenant = %s AND dataset = %s AND item = %s",
            (tenant, scope.dataset, scope.item),
        ).fetchall()
    elif isinstance(scope, ReleaseScope):
        rows = _release(conn, scope, tenant)
    elif isinstance(scope, EventsScope):
        rows = conn.execute(
            "SELECT log, position, event_id FROM ledger_events WHERE tenant = %s AND event_id = ANY(%s)",
            (tenant, list(scope.ids)),
        ).fetchall()
        missing = [i for i in scope.ids if i not in {str(r[2]) for r in rows}]
        if missing:
            shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
            msg = f"no event with id {shown} in tenant {tenant!r}"
            raise NotFound(msg, errors=[FieldError("events", f"no event with id {i}") for i in missing[:20]])
    else:
        rows = conn.execute(
            "SELECT log, position FROM ledger_events WHERE log = %s AND tenant = %s"
            " AND position BETWEEN %s AND %s",
            (scope.log, tenant, scope.first, scope.last),
        ).fetchall()
        if len(rows) != scope.last - scope.first + 1:
            size = conn.execute(
                "SELECT size FROM ledger_log_heads WHERE log = %s AND tenant = %s", (scope.log, tenant)
            ).fetchone()
            if size is None:
                _not_found(scope, tenant)
            _refuse(
                "to", f"must be a position of log {scope.log!r}, which holds positions 0 to {size[0] - 1}"
            )
    found = [(str(r[0]), int(r[1])) for r in rows]
    if not found:
        _not_found(scope, tenant)
    return found


@dataclass(frozen=True)
class ReleaseEvidence:
    """The events of a release scope, by what they are evidence of: ``(log, position)`` pairs, ascending.

    The lineage report reads exactly these (``ledger.reports.lineage_data``), so the bundle of the release
    holds every event the report rests on."""

    releases: list[tuple[str, int]]
    """The ``dataset.release_created`` event(s), in log order."""
    items: dict[str, str]
    """Every released item and the split it is held in (``held_split``)."""
    lineage: list[tuple[str, int]]
    """Every event about a released item up to the last release's position."""
    credentials: list[tuple[str, int]]
    """The credential events behind the credential periods of every actor of ``lineage``."""
    guidelines: list[tuple[str, int]]
    """The guideline events behind every guideline version's effective range in the tenant."""
    test_accesses: list[tuple[str, int]]
    """Every access event about an item of the test split after the release."""
    split_conflicts: dict[str, list[str]] = field(default_factory=dict)
    """Items released in more than one split: item -> those splits, sorted."""

    @cached_property  # a release of 10,000 items has some 170,000, asked for several times
    def positions(self) -> list[tuple[str, int]]:
        """All of them, each once, ascending."""
        every = (self.releases, self.lineage, self.credentials, self.guidelines, self.test_accesses)
        return sorted({p for part in every for p in part})


def held_split(splits: Sequence[str]) -> str:
    """The split an item released in ``splits`` (log order) is held in: the test split when it is among
    them (an item also trained or tuned on must be isolated as a test item), else the last."""
    return "test" if "test" in splits else splits[-1]


def _release(conn: Connection, scope: ReleaseScope, tenant: str) -> list[tuple[str, int]]:
    return release_evidence(conn, scope, tenant).positions


def release_evidence(conn: Connection, scope: ReleaseScope, tenant: str) -> ReleaseEvidence:
    """The release event(s), the events about their items up to the last release's position, and what the
    lineage report computes from besides (credential and guideline events, later accesses to the test split).

    A name posted twice (two events naming the same DATASET@RELEASE) is held whole: both events, the items
    of either, so a bundle never hides that the name was reused."""
    releases = conn.execute(
        _RELEASES_SQL.replace("%(tenant)s", "%s") + " ORDER BY e.log, e.position",
        (tenant, scope.dataset, scope.release),
    ).fetchall()
    if not releases:
        _not_found(scope, tenant)
    seen: dict[str, list[str]] = {}
    for r in releases:
        data = json.loads(bytes(r[2]))["event"]["data"]
        for entry in data["items"]:
            seen.setdefault(str(entry["item"]), []).append(str(data["split"]))
    items = {item: held_split(splits) for item, splits in seen.items()}
    conflicts = {item: sorted(set(splits)) for item, splits in seen.items() if len(set(splits)) > 1}
    # Every tenant's events are in its one log (ledger.domain.logs.log_for), so "up to the release" is
    # a position in that log: the last release event's (they are ordered by log and position).
    log, last = str(releases[-1][0]), int(releases[-1][1])
    names = list(items)
    tests = [i for i, split in items.items() if split == "test"]
    lineage = _pairs(conn.execute(
        "SELECT DISTINCT log, position FROM proj_item_events WHERE tenant = %s AND dataset = %s"
        " AND item = ANY(%s) AND log = %s AND position <= %s",
        (tenant, scope.dataset, names, log, last),
    ).fetchall())  # fmt: skip
    # A credential period row carries the event that granted it and, once closed, the position of the
    # event that ended it: the events its valid range is computed from.
    credentials = _pairs(conn.execute(
        "WITH actors AS (SELECT DISTINCT e.actor FROM proj_item_events i"
        "  JOIN ledger_events e ON e.log = i.log AND e.position = i.position"
        "  WHERE i.tenant = %s AND i.dataset = %s AND i.item = ANY(%s) AND i.log = %s AND i.position <= %s),"
        " periods AS (SELECT c.* FROM proj_credentials c JOIN actors a ON c.annotator = a.actor"
        "  WHERE c.tenant = %s)"
        " SELECT log, position FROM periods"
        " UNION SELECT e.log, e.position FROM ledger_events e JOIN periods p"
        "  ON e.tenant = %s AND e.event_id = p.event_id",
        (tenant, scope.dataset, names, log, last, tenant, tenant),
    ).fetchall())  # fmt: skip
    guidelines = _pairs(conn.execute(
        "SELECT log, position FROM proj_guidelines WHERE tenant = %s"
        " UNION SELECT e.log, e.position FROM ledger_events e JOIN proj_guidelines g"
        "  ON e.tenant = g.tenant AND e.event_id = g.event_id WHERE g.tenant = %s",
        (tenant, tenant),
    ).fetchall())  # fmt: skip
    test_accesses = _pairs(conn.execute(
        "SELECT DISTINCT e.log, e.position FROM proj_item_events i"
        " JOIN ledger_events e ON e.log = i.log AND e.position = i.position"
        " WHERE i.tenant = %s AND i.dataset = %s AND i.item = ANY(%s) AND i.log = %s AND i.position > %s"
        " AND e.type LIKE 'access.%%'",
        (tenant, scope.dataset, tests, log, last),
    ).fetchall()) if tests else []  # fmt: skip
    return ReleaseEvidence(
        _pairs(releases), items, lineage, credentials, guidelines, test_accesses, conflicts
    )


def _pairs(rows: Sequence[Sequence[Any]]) -> list[tuple[str, int]]:
    return sorted({(str(r[0]), int(r[1])) for r in rows})


def _not_found(scope: Scope, tenant: str | None) -> NoReturn:
    where = f" in tenant {tenant!r}" if tenant is not None else " in any tenant"
    what = {
        ItemScope: lambda s: f"no events about item {s.item!r} of dataset {s.dataset!r}",
        ReleaseScope: lambda s: f"no {RELEASE_TYPE} event of release {s.release!r} of dataset {s.dataset!r}",
        EventsScope: lambda s: f"none of the events {', '.join(s.ids[:20])}",
        LogScope: lambda s: f"no log {s.log!r}",
    }[type(scope)](scope)
    msg = what + where
    raise NotFound(msg, errors=[FieldError(scope.parameter, msg)])
