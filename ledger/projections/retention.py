"""The retention index: events per log, day and type, with legal holds and erasures (HIPAA 164.316(b)(2)).

Every event counts, by its recorded time (the server's clock). A legal hold holds only its own tenant's
logs: one whose scope names another log holds nothing (the workflow projection flags it). Where rules
must choose, they keep more rather than less: a hold placed again stays placed from its first placement,
and a producer time the index cannot hold is replaced by the recorded time, except on a release, which
is then not applied (the hold stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from ledger.domain.fields import parse_rfc3339
from ledger.projections.admissible import foreign_hold_log, unholdable
from ledger.projections.bulk import Rows, save_rows
from ledger.projections.tables import Connection, select_by_pairs
from ledger.storage.append import Recorded

TABLES = ("proj_retention", "proj_holds", "proj_erasures")
_HOLDS = ("retention.hold_placed", "retention.hold_released")
_ERASURES = ("erasure.requested", "erasure.executed")


class RetentionProjector:
    """Counts, oldest and newest record per (log, recorded day, type); holds; erasures."""

    name: str = "retention"
    tables: tuple[str, ...] = TABLES

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Add ``events`` to the counts and record holds and erasures."""
        buckets: dict[tuple[str, date, str], dict[str, Any]] = {}
        holds = _load_holds(conn, [r for r in events if r.event["type"] in _HOLDS])
        changed_holds: set[tuple[str, str]] = set()
        erasures: dict[tuple[str, str], dict[str, Any]] = {}
        for r in events:
            kind = str(r.event["type"])
            _count(buckets, r, kind)
            if kind in _HOLDS and (key := _hold(holds, r)) is not None:
                changed_holds.add(key)
            elif kind in _ERASURES:
                _erasure(erasures, r)
        save_rows(
            conn,
            Rows(
                "proj_retention",
                ("log", "day", "type"),
                [buckets[k] for k in sorted(buckets)],
                update=_ADD_COUNTS,
            ),
            Rows("proj_holds", ("tenant", "hold_id"), [holds[k] for k in sorted(changed_holds)]),
            Rows(
                "proj_erasures",
                ("tenant", "erasure_id"),
                [erasures[k] for k in sorted(erasures)],
                update=_KEEP_FIRST,
            ),
        )


# Counts add up across batches; a bucket's oldest and newest widen.
_ADD_COUNTS = {
    "events": "proj_retention.events + EXCLUDED.events",
    "oldest": "least(proj_retention.oldest, EXCLUDED.oldest)",
    "newest": "greatest(proj_retention.newest, EXCLUDED.newest)",
    "position": "greatest(proj_retention.position, EXCLUDED.position)",
}
# Requested and executed arrive separately: each keeps the first time it was set.
_KEEP_FIRST = {
    "requested_at": "coalesce(proj_erasures.requested_at, EXCLUDED.requested_at)",
    "executed_at": "coalesce(proj_erasures.executed_at, EXCLUDED.executed_at)",
    "log": "EXCLUDED.log",
    "position": "EXCLUDED.position",
}


def _count(buckets: dict[tuple[str, date, str], dict[str, Any]], r: Recorded, kind: str) -> None:
    day = r.recorded_at.astimezone(UTC).date()
    b = buckets.get((r.log, day, kind))
    if b is None:
        buckets[(r.log, day, kind)] = {
            "log": r.log,
            "day": day,
            "type": kind,
            "tenant": str(r.event["tenant"]),
            "events": 1,
            "oldest": r.recorded_at,
            "newest": r.recorded_at,
            "position": r.position,
        }
        return
    b["events"] += 1
    b["oldest"], b["newest"] = min(b["oldest"], r.recorded_at), max(b["newest"], r.recorded_at)
    b["position"] = max(b["position"], r.position)


def _erasure(erasures: dict[tuple[str, str], dict[str, Any]], r: Recorded) -> None:
    data, tenant = r.event["data"], str(r.event["tenant"])
    key = (tenant, str(data["erasure_id"]))
    field = "requested_at" if r.event["type"] == "erasure.requested" else "executed_at"
    row = erasures.setdefault(
        key,
        {
            "tenant": tenant,
            "erasure_id": key[1],
            "data_subject": data["data_subject"],
            "requested_at": None,
            "executed_at": None,
        },
    )
    if row[field] is None:
        row[field] = _time(r)
    row.update(log=r.log, position=r.position)


def _time(r: Recorded) -> datetime:
    """The producer's time, or the recorded time when the index cannot hold the producer's."""
    return r.recorded_at if unholdable(r.event) else parse_rfc3339(str(r.event["time"]))


def _load_holds(conn: Connection, events: list[Recorded]) -> dict[tuple[str, str], dict[str, Any]]:
    keys = {(str(r.event["tenant"]), str(r.event["data"]["hold_id"])) for r in events}
    rows = select_by_pairs(
        conn,
        "SELECT h.* FROM proj_holds h JOIN unnest(%s::text[], %s::text[]) AS u(a, b)"
        " ON h.tenant = u.a AND h.hold_id = u.b",
        keys,
    )
    return {(row["tenant"], row["hold_id"]): row for row in rows}


def _hold(holds: dict[tuple[str, str], dict[str, Any]], r: Recorded) -> tuple[str, str] | None:
    """Apply a hold event to ``holds``; return the key of the hold it changed, if any."""
    data, tenant = r.event["data"], str(r.event["tenant"])
    key = (tenant, str(data["hold_id"]))
    existing = holds.get(key)
    if r.event["type"] == "retention.hold_released":
        if existing is None or existing["released_at"] is not None or unholdable(r.event):
            return None  # nothing to release, or no time to release it at: the hold stays
        holds[key] = {**existing, "released_at": _time(r), "log": r.log, "position": r.position}
        return key
    if foreign_hold_log(r.event) is not None:
        return None
    placed = _time(r)
    if existing is not None:  # placed again: held from its first placement, and held now
        placed = min(placed, existing["placed_at"])
        holds[key] = {
            **existing,
            "placed_at": placed,
            "released_at": None,
            "log": r.log,
            "position": r.position,
        }
        return key
    holds[key] = {
        "tenant": tenant,
        "hold_id": key[1],
        "scope": data["scope"],
        "reason": data["reason"],
        "approver": data["approver"],
        "placed_at": placed,
        "released_at": None,
        "log": r.log,
        "position": r.position,
    }
    return key
