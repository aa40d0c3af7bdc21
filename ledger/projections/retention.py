"""The retention index: events per log, day and type, with legal holds and erasures (HIPAA 164.316(b)(2))."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from psycopg.types.json import Jsonb

from ledger.projections.tables import Connection, parse_time, upsert
from ledger.storage.append import Recorded

TABLES = ("proj_retention", "proj_holds", "proj_erasures")


class RetentionProjector:
    """Counts, oldest and newest record per (log, recorded day, type); holds; erasures."""

    name: str = "retention"
    tables: tuple[str, ...] = TABLES

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Add ``events`` to the counts and record holds and erasures."""
        buckets: dict[tuple[str, date, str], dict[str, Any]] = {}
        holds: dict[tuple[str, str], dict[str, Any]] = {}
        erasures: list[dict[str, Any]] = []
        for r in events:
            kind, tenant = str(r.event["type"]), str(r.event["tenant"])
            day = r.recorded_at.astimezone(UTC).date()
            b = buckets.setdefault((r.log, day, kind), {
                "log": r.log, "day": day, "type": kind, "tenant": tenant, "events": 0,
                "oldest": r.recorded_at, "newest": r.recorded_at, "position": r.position,
            })  # fmt: skip
            b["events"] += 1
            b["oldest"], b["newest"] = min(b["oldest"], r.recorded_at), max(b["newest"], r.recorded_at)
            b["position"] = max(b["position"], r.position)
            data = r.event["data"]
            if kind == "retention.hold_placed":
                holds[(tenant, data["hold_id"])] = {
                    "tenant": tenant, "hold_id": data["hold_id"], "scope": Jsonb(data["scope"]),
                    "reason": data["reason"], "approver": data["approver"], "placed_at": _time(r),
                    "released_at": None, "log": r.log, "position": r.position,
                }  # fmt: skip
            elif kind == "retention.hold_released":
                _release(conn, holds, tenant, data["hold_id"], _time(r), r)
            elif kind in ("erasure.requested", "erasure.executed"):
                erasures.append({"tenant": tenant, "erasure_id": data["erasure_id"], "data_subject": data["data_subject"],
                                 "requested_at": _time(r) if kind == "erasure.requested" else None,
                                 "executed_at": _time(r) if kind == "erasure.executed" else None,
                                 "log": r.log, "position": r.position})  # fmt: skip
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
        upsert(conn, "proj_holds", ("tenant", "hold_id"), holds.values())
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
    return parse_time(str(r.event["time"]))


def _release(
    conn: Connection,
    holds: dict[tuple[str, str], dict[str, Any]],
    tenant: str,
    hold_id: str,
    when: datetime,
    r: Recorded,
) -> None:
    if (tenant, hold_id) in holds:
        holds[(tenant, hold_id)].update(released_at=when, log=r.log, position=r.position)
        return
    conn.execute(
        "UPDATE proj_holds SET released_at = %s, log = %s, position = %s WHERE tenant = %s AND hold_id = %s",
        (when, r.log, r.position, tenant, hold_id),
    )
