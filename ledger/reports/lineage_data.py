"""What the lineage report reads from the database, in one snapshot: the release's evidence events, decoded,
and the projection rows they are judged by.

Set-based: a fixed number of queries whatever the release's size (no query per item). The events are those
of ``ledger.storage.bundles.release_evidence``, the selection ``ledger bundle --release`` makes, so the
bundle of a release holds every event its lineage report rests on.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    with no_cyclic_gc(), db.connect() as conn, conn.transaction():
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


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Run without the cyclic garbage collector (reference counting still frees everything here): reading
    a release of 10,000 items allocates some 170,000 event dicts, and the collector's passes over them
    took about a third of the report's time. Process-wide, so it is restored as it was found."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _by_log(positions: Sequence[tuple[str, int]]) -> list[tuple[str, str]]:
    """``positions`` as one comma-separated text per log: one parameter for 100,000 positions costs
    microseconds to send, where a Python list adapted element by element cost a second."""
    logs: dict[str, list[str]] = {}
    for log, position in positions:
        logs.setdefault(log, []).append(str(position))
    return [(log, ",".join(numbers)) for log, numbers in sorted(logs.items())]


_AT_POSITIONS = (
    " FROM ledger_events e JOIN unnest(string_to_array(%s, ',')::bigint[]) AS u(position)"
    " ON e.log = %s AND e.position = u.position"
)


def _events(conn: Connection, positions: Sequence[tuple[str, int]]) -> list[tuple[tuple[str, int], Event]]:
    """The events at ``positions``, decoded from their stored bytes (sealed values stay sealed)."""
    out = []
    for log_name, numbers in _by_log(positions):
        rows = conn.execute(
            f"SELECT e.log, e.position, e.recorded_at, e.canonical{_AT_POSITIONS} ORDER BY e.position",
            (numbers, log_name),
        ).fetchall()
        for log, position, recorded_at, canonical in rows:
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
    ids = []
    for log_name, numbers in _by_log(positions):
        ids += [str(r[0]) for r in conn.execute(f"SELECT e.event_id{_AT_POSITIONS}", (numbers, log_name))]
    return sorted(ids)
