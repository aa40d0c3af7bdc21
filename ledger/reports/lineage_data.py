"""What the lineage report reads from the database, in one snapshot: the release's evidence events, decoded,
and the projection rows they are judged by.

Set-based: a fixed number of queries whatever the release's size (no query per item). The events are those
of ``ledger.storage.bundles.release_evidence``, the selection ``ledger bundle --release`` makes, so the
bundle of a release holds every event its lineage report rests on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from ledger.domain.fields import parse_rfc3339
from ledger.domain.upcasting import upcast
from ledger.projections.admissible import holdable_time
from ledger.projections.tables import Connection, fetch_rows
from ledger.storage.bundles import ReleaseEvidence, ReleaseScope, find_tenant, release_evidence
from ledger.storage.database import Database

Row = dict[str, Any]
_decode = msgspec.json.Decoder().decode
"""Stored canonical bytes to Python objects, as ``json.loads`` would (several times faster; as rebuild reads)."""


@dataclass(frozen=True)
class Event:
    """One stored event as the report reads it: where it is in the log, and its upcast envelope."""

    log: str
    position: int
    recorded_at: datetime
    id: str
    type: str
    time: datetime
    actor: str
    actorrole: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Collected:
    """Everything the lineage report is computed from, read at one REPEATABLE READ snapshot."""

    tenant: str
    scope: ReleaseScope
    heads: list[Row]
    """Each of the tenant's logs: log, size, head hash (hex) at the snapshot."""
    evidence: ReleaseEvidence
    evidence_ids: list[str]
    """The ids of every event of ``evidence``, sorted."""
    releases: list[Event]
    lineage: list[Event]
    """Events about released items up to the last release's position, in log order."""
    test_accesses: list[Event]
    """Accesses to test-split items after the release, in log order."""
    periods: dict[str, list[Row]]
    """``proj_credentials`` rows by annotator, of every actor of ``lineage``."""
    guidelines: dict[tuple[str, str], Row]
    """``proj_guidelines`` rows by (guideline id, version)."""
    flags: list[Row]
    """``proj_flags`` rows about released items up to the release."""
    anomalies: list[Row]
    """``test_set_access`` anomalies about test-split items of the release."""
    later_events: dict[str, int]
    """Per item, how many events about it were recorded after the release."""


def collect(db: Database, scope: ReleaseScope, *, tenant: str | None) -> Collected:
    """Read the release's lineage in one snapshot (``NotFound`` when no event names the release)."""
    with db.connect() as conn, conn.transaction():
        # One snapshot: the heads cited are exactly the state every row and event below was read at.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        found = find_tenant(conn, scope) if tenant is None else tenant
        evidence = release_evidence(conn, scope, found)
        heads = [
            {"log": r["log"], "size": r["size"], "head_hash": bytes(r["head_hash"]).hex()}
            for r in fetch_rows(
                conn,
                "SELECT log, size, head_hash FROM ledger_log_heads WHERE tenant = %s ORDER BY log",
                (found,),
            )
        ]
        decoded = dict(_events(conn, [*evidence.releases, *evidence.lineage, *evidence.test_accesses]))
        ids = _ids(conn, evidence.positions)
        lineage = [decoded[p] for p in evidence.lineage]
        actors = sorted({e.actor for e in lineage})
        periods: dict[str, list[Row]] = {}
        for row in fetch_rows(
            conn,
            "SELECT * FROM proj_credentials WHERE tenant = %s AND annotator = ANY(%s)"
            " ORDER BY annotator, valid_from, credential_id, period",
            (found, actors),
        ):
            periods.setdefault(row["annotator"], []).append(row)
        guidelines = {
            (r["guideline_id"], r["version"]): r
            for r in fetch_rows(conn, "SELECT * FROM proj_guidelines WHERE tenant = %s", (found,))
        }
        release_log, last = evidence.releases[-1]
        items = list(evidence.items)
        tests = [i for i, split in evidence.items.items() if split == "test"]
        flags = fetch_rows(
            conn,
            "SELECT * FROM proj_flags WHERE tenant = %s AND dataset = %s AND item = ANY(%s)"
            " AND log = %s AND position <= %s ORDER BY log, position, flag_id",
            (found, scope.dataset, items, release_log, last),
        )
        anomalies = fetch_rows(
            conn,
            "SELECT * FROM proj_access_anomalies WHERE tenant = %s AND rule = 'test_set_access'"
            " AND dataset = %s AND item = ANY(%s) ORDER BY log, position, anomaly_id",
            (found, scope.dataset, tests),
        )
        later = {
            str(r["item"]): int(r["n"])
            for r in fetch_rows(
                conn,
                "SELECT item, count(*) AS n FROM proj_item_events WHERE tenant = %s AND dataset = %s"
                " AND item = ANY(%s) AND log = %s AND position > %s GROUP BY item",
                (found, scope.dataset, items, release_log, last),
            )
        }
    return Collected(
        tenant=found,
        scope=scope,
        heads=heads,
        evidence=evidence,
        evidence_ids=ids,
        releases=[decoded[p] for p in evidence.releases],
        lineage=lineage,
        test_accesses=[decoded[p] for p in evidence.test_accesses],
        periods=periods,
        guidelines=guidelines,
        flags=flags,
        anomalies=anomalies,
        later_events=later,
    )


def evidence_digest(event_ids: Sequence[str]) -> str:
    """SHA-256 (hex) of the event ids sorted, each followed by a newline: what a bundle's events must match."""
    return hashlib.sha256("".join(f"{i}\n" for i in sorted(event_ids)).encode()).hexdigest()


def _unnest(positions: Sequence[tuple[str, int]]) -> tuple[list[str], list[int]]:
    return [log for log, _ in positions], [position for _, position in positions]


def _events(conn: Connection, positions: Sequence[tuple[str, int]]) -> list[tuple[tuple[str, int], Event]]:
    """The events at ``positions``, decoded from their stored bytes (sealed values stay sealed)."""
    if not positions:
        return []
    with conn.cursor() as cur:
        cur.execute(
            "SELECT e.log, e.position, e.recorded_at, e.canonical FROM ledger_events e"
            " JOIN unnest(%s::text[], %s::bigint[]) AS u(log, position)"
            " ON e.log = u.log AND e.position = u.position ORDER BY e.log, e.position",
            _unnest(positions),
        )
        out = []
        for log, position, recorded_at, canonical in cur:
            doc = upcast(_decode(canonical)["event"])
            event = Event(
                log=str(log),
                position=int(position),
                recorded_at=recorded_at,
                id=str(doc["id"]),
                type=str(doc["type"]),
                time=_time(doc.get("time"), recorded_at),
                actor=str(doc["actor"]),
                actorrole=str(doc.get("actorrole", "")),
                data=_data(doc),
            )
            out.append(((event.log, event.position), event))
    return out


def _data(doc: dict[str, Any]) -> dict[str, Any]:
    data = doc.get("data")
    return data if isinstance(data, dict) else {}


def _time(value: Any, recorded_at: datetime) -> datetime:
    """The producer's time, or the recorded time when the projections could not hold the producer's
    (``admissible.holdable_time``: older code accepted times that ``astimezone(UTC)`` overflows on)."""
    return parse_rfc3339(value) if holdable_time(value) else recorded_at


def _ids(conn: Connection, positions: Sequence[tuple[str, int]]) -> list[str]:
    if not positions:
        return []
    rows = conn.execute(
        "SELECT e.event_id FROM ledger_events e JOIN unnest(%s::text[], %s::bigint[]) AS u(log, position)"
        " ON e.log = u.log AND e.position = u.position",
        _unnest(positions),
    ).fetchall()
    return sorted(str(r[0]) for r in rows)
