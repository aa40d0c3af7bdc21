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

from psycopg.types.json import Jsonb

from ledger.domain.fields import parse_rfc3339
from ledger.projections.admissible import foreign_hold_log, unholdable
from ledger.projections.tables import Connection, select_by_pairs, upsert
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
        hold_events = [r for r in events if r.event["type"] in _HOLDS]
        holds = _load_holds(conn, hold_events)
        changed_holds: set[tuple[str, str]] = set()
        erasures: list[dict[str, Any]] = []
        for r in events:
            kind, tenant = str(r.event["type"]), str(r.event["tenant"])
            day = r.recorded_at.astimezone(UTC).date()
            b = buckets.setdefault(
                (r.log, day, kind),
                {
                    "log": r.log,
                    "day": day,
                    "type": kind,
                    "tenant": tenant,
                    "events": 0,
                    "oldest": r.recorded_at,
                    "newest": r.recorded_at,
                    "position": r.position,
                },
            )
            b["events"] += 1
            b["oldest"], b["newest"] = min(b["oldest"], r.recorded_at), max(b["newest"], r.recorded_at)
            b["position"] = max(b["position"], r.position)
            data = r.event["data"]
            if kind in _HOLDS and (key := _hold(holds, r)) is not None:
                changed_holds.add(key)
            elif kind in _ERASURES:
                when = _time(r)
                erasures.append(
                    {
                        "tenant": tenant,
                        "erasure_id": data["erasure_id"],
                        "data_subject": data["data_subject"],
                        "requested_at": when if kind == "erasure.requested" else None,
                        "executed_at": when if kind == "erasure.executed" else None,
                        "log": r.log,
                        "position": r.position,
                    }
                )
        if buckets:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO proj_retention (log, day, type, tenant, events, oldest, newest, position)"
                    " VALUES (%(log)s, %(day)s, %(type)s, %(tenant)s, %(events)s, %(oldest)s, %(newest)s, %(position)s)"
                    " ON CONFLICT (log, day, type) DO UPDATE SET events = proj_retention.events + EXCLUDED.events,"
                    " oldest = least(proj_retention.oldest, EXCLUDED.oldest),"
                    " newest = greatest(proj_retention.newest, EXCLUDED.newest),"
                    " position = greatest(proj_retention.position, EXCLUDED.position)",
                    [buckets[k] for k in sorted(buckets)],
                )
        upsert(
            conn,
            "proj_holds",
            ("tenant", "hold_id"),
            [dict(holds[k], scope=Jsonb(holds[k]["scope"])) for k in sorted(changed_holds)],
        )
        for e in erasures:  # requested and executed arrive separately: keep what each one sets
            conn.execute(
                "INSERT INTO proj_erasures (tenant, erasure_id, data_subject, requested_at, executed_at, log, position)"
                " VALUES (%(tenant)s, %(erasure_id)s, %(data_subject)s, %(requested_at)s, %(executed_at)s, %(log)s, %(position)s)"
                " ON CONFLICT (tenant, erasure_id) DO UPDATE SET"
                " requested_at = coalesce(proj_erasures.requested_at, EXCLUDED.requested_at),"
                " executed_at = coalesce(proj_erasures.executed_at, EXCLUDED.executed_at),"
                " log = EXCLUDED.log, position = EXCLUDED.position",
                e,
            )


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
