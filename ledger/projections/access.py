"""The access-anomaly projection (issue 9; DESIGN §5): the anomalies the access rules raise, and their reviews.

Per batch: load the rows its access, login, release and review events need (a few queries; none for a
batch without such events), apply the batch in log order in memory (``apply_events``, pure; the rules are
in ``ledger.projections.anomalies``) and save what changed with ``bulk.save_rows``, so the inline path and
``ledger projections rebuild`` write the same rows.

The rules read assignments and credential periods from the workflow projection's tables. This projector runs
before the workflow projector (see the registry), so those tables hold what the log held before the batch,
and the batch's own assignment and credential events are applied by the workflow's rules in memory as the
batch goes: an access meets exactly the assignments and credentials recorded before it, on the inline path
and in a rebuild of every projection alike. (Rebuilding ``access`` alone reads the workflow tables as they
are at the end of the log, which differs only for an assignment or credential recorded after an access yet
dated before it.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from ledger.domain.internal import ANOMALY_REVIEWED
from ledger.domain.upcasting import upcast
from ledger.projections import workflow
from ledger.projections.admissible import unholdable
from ledger.projections.anomalies import RULES
from ledger.projections.anomalies.facts import ACCESSES, Facts, local, review, role, text
from ledger.projections.bulk import Rows, save_rows
from ledger.projections.state import Event
from ledger.projections.tables import Connection, Row, fetch_rows, select_by_keys, select_by_pairs
from ledger.settings import AnomalySettings
from ledger.storage.append import Recorded

TABLES = (
    "proj_access_anomalies",
    "proj_access_daily",
    "proj_login_failures",
    "proj_test_split_items",
    "proj_assignment_items",
)
REVIEWED = ANOMALY_REVIEWED
FACTS = frozenset(
    {
        "assignment.created",
        "assignment.revoked",
        "credential.granted",
        "credential.renewed",
        "credential.revoked",
        "credential.expired",
    }
)
TYPES = frozenset().union(*(rule.types for rule in RULES), {REVIEWED})
"""Event types this projection's rules act on."""
TRIGGERS = TYPES | {"assignment.created"}
"""A batch with none of these costs no query (an assignment is indexed by item even in a batch of its own)."""
_ENDINGS = ("credential.revoked", "credential.expired")


class AccessProjector:
    """Access anomalies and the state their rules keep."""

    name: str = "access"
    tables: tuple[str, ...] = TABLES

    def __init__(self, settings: AnomalySettings | None = None) -> None:
        self.settings = settings or AnomalySettings()

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Project ``events`` (in log order within each log) in the caller's transaction."""
        if not any(r.event["type"] in TRIGGERS for r in events):
            return
        batch = [Event(r, upcast(r.event)) for r in events if r.event["type"] in TYPES | FACTS]
        facts = _load(conn, batch, self.settings)
        known = set(facts.anomalies)
        apply_events(facts, batch)
        _forget_raised_before(conn, facts, known)
        _save(conn, facts)


def apply_events(facts: Facts, batch: Iterable[Event]) -> None:
    """Apply ``batch`` in order: assignments and credentials by the workflow's rules, reviews to their
    anomalies, every other event to each rule that reads its type."""
    for ev in batch:
        if ev.type in FACTS:
            workflow.apply_events(facts.workflow, [ev])
            if ev.type == "assignment.created" and not unholdable(ev.body):
                facts.assigned.append(ev)
            if ev.type in _ENDINGS:
                facts.endings[(ev.rec.log, ev.rec.position)] = ev.id
        elif ev.type == REVIEWED:
            review(facts, ev)
        else:
            for rule in RULES:
                if ev.type in rule.types:
                    rule.check(facts, ev)


# ---- loading and saving ----------------------------------------------------------------------------------


def _load(conn: Connection, batch: list[Event], settings: AnomalySettings) -> Facts:
    """The rows ``batch`` may read: a query per kind of row it names, none for a kind it does not."""
    facts = Facts(settings=settings)
    accesses = [ev for ev in batch if ev.type in ACCESSES]
    people = {(ev.tenant, ev.actor) for ev in accesses}
    people |= {(ev.tenant, str(ev.data["annotator"])) for ev in batch if ev.type.startswith("credential.")}
    credentials = {
        (ev.tenant, str(ev.data["credential_id"])) for ev in batch if ev.type.startswith("credential.")
    }
    for row in _periods(conn, people, credentials):
        if (ending := row.pop("ending_event")) is not None:
            facts.endings[(row["log"], int(row["position"]))] = ending
        facts.workflow.periods.setdefault((row["tenant"], row["annotator"]), []).append(row)
        facts.workflow.holders[(row["tenant"], row["credential_id"])] = row["annotator"]
    for row in _assignments(conn, batch, settings):
        facts.workflow.assignments[(row["tenant"], row["assignment_id"])] = row
    for row in _daily(conn, accesses, settings, facts):
        facts.daily[(row["tenant"], row["actor"], row["day"])] = row
    for row in select_by_pairs(
        conn,
        "SELECT b.tenant, b.actor, b.times, b.event_ids, b.raised FROM proj_login_failures b"
        " JOIN unnest(%s::text[], %s::text[]) AS u(a, b) ON b.tenant = u.a AND b.actor = u.b",
        ((ev.tenant, ev.actor) for ev in batch if ev.type == "auth.login_failed"),
    ):
        facts.bursts[(row["tenant"], row["actor"])] = row
    tested = [ev for ev in accesses if role(ev) in settings.test_set_roles]
    for row in select_by_keys(
        conn,
        "SELECT s.* FROM proj_test_split_items s JOIN unnest(%s::text[], %s::text[], %s::text[]) AS u(t, d, i)"
        " ON s.tenant = u.t AND s.dataset = u.d AND s.item = u.i",
        [
            (ev.tenant, d, i)
            for ev in tested
            if (d := text(ev.data.get("dataset"))) and (i := text(ev.data.get("item")))
        ],
    ):
        facts.test_items[(row["tenant"], row["dataset"], row["item"])] = row
    for row in select_by_pairs(
        conn,
        "SELECT a.* FROM proj_access_anomalies a JOIN unnest(%s::text[], %s::text[]) AS u(a, b)"
        " ON a.tenant = u.a AND a.anomaly_id = u.b",
        ((ev.tenant, str(ev.data["anomaly_id"])) for ev in batch if ev.type == REVIEWED),
    ):
        facts.anomalies[(row["tenant"], row["anomaly_id"])] = row
    return facts


def _periods(conn: Connection, people: set[tuple[str, str]], credentials: set[tuple[str, str]]) -> list[Row]:
    """Every credential period of ``people`` and of whoever holds a credential id named, with the id of
    the event that ended it (the event at the period's position, when it has ended)."""
    if not people and not credentials:
        return []
    person, credential = sorted(people), sorted(credentials)
    return fetch_rows(
        conn,
        "SELECT p.*, e.event_id AS ending_event FROM proj_credentials p"
        " LEFT JOIN ledger_events e ON p.ended_at IS NOT NULL AND e.log = p.log AND e.position = p.position"
        " WHERE (p.tenant, p.annotator) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " OR (p.tenant, p.credential_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " ORDER BY p.credential_id, p.period",
        (
            [t for t, _ in person],
            [a for _, a in person],
            [t for t, _ in credential],
            [c for _, c in credential],
        ),
    )


def _assignments(conn: Connection, batch: list[Event], settings: AnomalySettings) -> list[Row]:
    """The assignments that may cover an assignment-bound access of ``batch``, and those its assignment
    events name."""
    wanted = sorted(
        {
            (ev.tenant, ev.actor, d, i)
            for ev in batch
            if ev.type in ACCESSES
            and role(ev) in settings.assignment_roles
            and (d := text(ev.data.get("dataset")))
            and (i := text(ev.data.get("item")))
        }
    )
    named = sorted(
        {(ev.tenant, str(ev.data["assignment_id"])) for ev in batch if ev.type.startswith("assignment.")}
    )
    if not wanted and not named:
        return []
    return fetch_rows(
        conn,
        "SELECT p.* FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS u(t, a, d, i)"
        " JOIN proj_assignment_items x ON x.tenant = u.t AND x.dataset = u.d AND x.item = u.i AND x.assignee = u.a"
        " JOIN proj_assignments p ON p.tenant = x.tenant AND p.assignment_id = x.assignment_id"
        " UNION SELECT p.* FROM proj_assignments p JOIN unnest(%s::text[], %s::text[]) AS v(t, n)"
        " ON p.tenant = v.t AND p.assignment_id = v.n",
        (*([w[k] for w in wanted] for k in range(4)), [t for t, _ in named], [n for _, n in named]),
    )


def _daily(conn: Connection, accesses: list[Event], settings: AnomalySettings, facts: Facts) -> list[Row]:
    """Each accessing actor's daily counts from the window before their earliest day in the batch on."""
    since: dict[tuple[str, str], date] = {}
    for ev in accesses:
        day = local(facts, ev).date() - timedelta(days=settings.volume_window_days)
        key = (ev.tenant, ev.actor)
        since[key] = min(since.get(key, day), day)
    return select_by_keys(
        conn,
        "SELECT d.* FROM proj_access_daily d JOIN unnest(%s::text[], %s::text[], %s::date[]) AS u(t, a, s)"
        " ON d.tenant = u.t AND d.actor = u.a AND d.day >= u.s",
        [(t, a, s) for (t, a), s in since.items()],
    )


def _forget_raised_before(conn: Connection, facts: Facts, known: set[tuple[str, str]]) -> None:
    """Drop the batch's anomalies that were raised by an earlier batch: the recorded row (and its reviews)
    stays. One query, only when the batch raised any."""
    new = [k for k in facts.dirty.get("proj_access_anomalies", ()) if k not in known]
    for row in select_by_pairs(
        conn,
        "SELECT a.tenant, a.anomaly_id FROM proj_access_anomalies a JOIN unnest(%s::text[], %s::text[])"
        " AS u(a, b) ON a.tenant = u.a AND a.anomaly_id = u.b",
        new,
    ):
        facts.dirty["proj_access_anomalies"].discard((row["tenant"], row["anomaly_id"]))


def _save(conn: Connection, facts: Facts) -> None:
    def changed(table: str, rows: dict[Any, Row]) -> list[Row]:
        return [rows[k] for k in sorted(facts.dirty.get(table, ()))]

    save_rows(
        conn,
        Rows("proj_access_anomalies", ("tenant", "anomaly_id"), facts.raised()),
        Rows("proj_access_daily", ("tenant", "actor", "day"), changed("proj_access_daily", facts.daily)),
        Rows("proj_login_failures", ("tenant", "actor"), changed("proj_login_failures", facts.bursts)),
        Rows(
            "proj_test_split_items",
            ("tenant", "dataset", "item"),
            changed("proj_test_split_items", facts.test_items),
            update=False,
        ),
        Rows(
            "proj_assignment_items",
            ("tenant", "dataset", "item", "assignee", "assignment_id"),
            assignment_items(facts.assigned),
            update=False,
        ),
    )


def assignment_items(created: list[Event]) -> list[Row]:
    """The (item, assignee) rows of the ``assignment.created`` events ``created``."""
    keys = ("tenant", "dataset", "item", "assignee", "assignment_id")
    rows = {
        (
            ev.tenant,
            str(ev.data["dataset"]),
            str(item),
            str(ev.data["assignee"]),
            str(ev.data["assignment_id"]),
        )
        for ev in created
        for item in ev.data.get("items") or ()
    }
    return [dict(zip(keys, row, strict=True)) for row in sorted(rows)]
