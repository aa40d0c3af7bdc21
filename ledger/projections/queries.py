"""Reading the projections: item provenance and labels, credentials as of a time, guidelines, flags."""

from __future__ import annotations

import json
from bisect import bisect_right
from datetime import datetime
from typing import Any

from ledger.domain.errors import FieldError, NotFound, ParameterInvalid
from ledger.domain.fields import parse_rfc3339
from ledger.domain.logs import owns_log
from ledger.domain.registry import EVENT_TYPES
from ledger.domain.upcasting import upcast
from ledger.projections.flags import FLAG_KINDS
from ledger.projections.qualification import ROLE_REQUIREMENTS, Period, qualifying
from ledger.projections.tables import fetch_rows
from ledger.storage.database import Database
from ledger.storage.queries import decode_cursor, encode_cursor

Row = dict[str, Any]


def _period_json(row: Row) -> Row:
    return {
        k: row[k]
        for k in (
            "credential_id",
            "period",
            "kind",
            "level",
            "specialty",
            "issuer",
            "valid_from",
            "valid_until",
            "ended_at",
            "ended_by",
            "event_id",
        )
    }


def standing(periods: list[Row], when: datetime) -> Row:
    """An actor's credential standing at ``when``: valid credentials and the roles they qualify for."""
    return _standing(periods, [Period.from_row(p) for p in periods], when)


def _standing(periods: list[Row], as_periods: list[Period], when: datetime) -> Row:
    valid = [p for p, v in zip(periods, as_periods, strict=True) if v.valid_at(when)]
    return {
        "valid_credentials": [
            {"credential_id": p["credential_id"], "kind": p["kind"], "level": p["level"]} for p in valid
        ],
        "qualified_for": [role for role in ROLE_REQUIREMENTS if qualifying(as_periods, role, when)],
    }


class Standings:
    """One actor's ``standing`` at many times (a report's every event): worked out once per stretch of time
    in which none of their periods starts or ends, since within one the answer cannot change."""

    def __init__(self, periods: list[Row]) -> None:
        self._rows = periods
        self._periods = [Period.from_row(p) for p in periods]
        # every time a period's validity can change; ``valid_at`` compares ``when`` with these alone
        self._bounds = sorted(
            {t for p in self._periods for t in (p.valid_from, p.valid_until, p.ended_at) if t is not None}
        )
        self._by_stretch: dict[int, Row] = {}

    def at(self, when: datetime) -> Row:
        """``standing(periods, when)``, as a fresh dict the caller may keep or change."""
        stretch = bisect_right(self._bounds, when)
        held = self._by_stretch.get(stretch)
        if held is None:
            held = self._by_stretch[stretch] = _standing(self._rows, self._periods, when)
        return {
            "valid_credentials": [dict(c) for c in held["valid_credentials"]],
            "qualified_for": list(held["qualified_for"]),
        }


def _shown(event: Row) -> Row:
    """The event's data with sealed values marked, never opened (provenance is not a way around sealing)."""
    data = event.get("data", {})
    return {k: "[sealed]" if isinstance(v, dict) and "sealed" in v else v for k, v in data.items()}


class ProjectionQueries:
    """Read side of the projections, always scoped to one tenant."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def provenance(self, tenant: str, dataset: str, item: str) -> Row:
        """Every event touching the item in log order, with each actor's credential standing at that moment."""
        with self._db.connect() as conn, conn.transaction():
            events = fetch_rows(
                conn,
                "SELECT e.log, e.position, e.hash, e.recorded_at, e.canonical FROM proj_item_events i"
                " JOIN ledger_events e ON e.log = i.log AND e.position = i.position"
                " WHERE i.tenant = %s AND i.dataset = %s AND i.item = %s ORDER BY e.log, e.position",
                (tenant, dataset, item),
            )
            if not events:
                msg = f"no events about item {item!r} of dataset {dataset!r} in tenant {tenant!r}"
                raise NotFound(msg)
            docs = [upcast(json.loads(bytes(e["canonical"]))["event"]) for e in events]
            actors = sorted({str(d["actor"]) for d in docs})
            periods = fetch_rows(
                conn,
                "SELECT * FROM proj_credentials WHERE tenant = %s AND annotator = ANY(%s)",
                (tenant, actors),
            )
        by_actor: dict[str, list[Row]] = {}
        for p in periods:
            by_actor.setdefault(p["annotator"], []).append(p)
        timeline = []
        for e, doc in zip(events, docs, strict=True):
            data = doc["data"]
            when = parse_rfc3339(doc["time"])
            timeline.append(
                {
                    "log": e["log"],
                    "position": e["position"],
                    "hash": bytes(e["hash"]).hex(),
                    "recorded_at": e["recorded_at"],
                    "id": doc["id"],
                    "type": doc["type"],
                    "time": doc["time"],
                    "actor": doc["actor"],
                    "actorrole": doc["actorrole"],
                    "family": EVENT_TYPES[doc["type"]].description if doc["type"] in EVENT_TYPES else None,
                    "guideline_version": data.get("guideline_version"),
                    "review_level": data.get("level"),
                    "actor_standing": standing(by_actor.get(doc["actor"], []), when),
                    "data": _shown(doc),
                }
            )
        return {"tenant": tenant, "dataset": dataset, "item": item, "events": timeline}

    def labels(self, tenant: str, dataset: str, item: str) -> Row:
        """Current annotations of the item with their lineage, and its final label after adjudication."""
        with self._db.connect() as conn, conn.transaction():
            annotations = fetch_rows(
                conn,
                "SELECT * FROM proj_annotations WHERE tenant = %s AND dataset = %s AND item = %s"
                " ORDER BY annotation_id",
                (tenant, dataset, item),
            )
            ids = [a["annotation_id"] for a in annotations]
            revisions = fetch_rows(
                conn,
                "SELECT * FROM proj_annotation_revisions WHERE tenant = %s AND annotation_id = ANY(%s)"
                " ORDER BY log, position",
                (tenant, ids),
            )
            final = fetch_rows(
                conn,
                "SELECT * FROM proj_final_labels WHERE tenant = %s AND dataset = %s AND item = %s",
                (tenant, dataset, item),
            )
        if not annotations and not final:
            msg = f"no labels for item {item!r} of dataset {dataset!r} in tenant {tenant!r}"
            raise NotFound(msg)
        lineage: dict[str, list[Row]] = {}
        for r in revisions:
            lineage.setdefault(r["annotation_id"], []).append(
                {
                    k: r[k]
                    for k in (
                        "change",
                        "version",
                        "actor",
                        "label_class",
                        "guideline_version",
                        "review_level",
                        "decision",
                        "occurred_at",
                        "event_id",
                        "log",
                        "position",
                    )
                }
            )
        return {
            "tenant": tenant,
            "dataset": dataset,
            "item": item,
            "annotations": [
                {
                    **{k: v for k, v in a.items() if k != "tenant"},
                    "lineage": lineage.get(a["annotation_id"], []),
                }
                for a in annotations
            ],
            "final_label": {k: v for k, v in final[0].items() if k != "tenant"} if final else None,
        }

    def credentials(self, tenant: str, actor: str, as_of: datetime) -> Row:
        """Every credential period of ``actor`` and their standing at ``as_of``."""
        with self._db.connect() as conn, conn.transaction():
            periods = fetch_rows(
                conn,
                "SELECT * FROM proj_credentials WHERE tenant = %s AND annotator = %s"
                " ORDER BY valid_from, credential_id, period",
                (tenant, actor),
            )
            trainings = fetch_rows(
                conn,
                "SELECT course, completed_at, valid_until, guideline_id, guideline_version, event_id"
                " FROM proj_trainings WHERE tenant = %s AND annotator = %s ORDER BY completed_at",
                (tenant, actor),
            )
        if not periods and not trainings:
            msg = f"no credentials or trainings on record for {actor!r} in tenant {tenant!r}"
            raise NotFound(msg)
        return {
            "tenant": tenant,
            "actor": actor,
            "as_of": as_of,
            **standing(periods, as_of),
            "credentials": [_period_json(p) for p in periods],
            "trainings": trainings,
        }

    def guidelines(self, tenant: str) -> list[Row]:
        """Every guideline version with its effective range and supersession."""
        with self._db.connect() as conn, conn.transaction():
            rows = fetch_rows(
                conn,
                "SELECT * FROM proj_guidelines WHERE tenant = %s ORDER BY guideline_id, effective_from",
                (tenant,),
            )
            usage = fetch_rows(
                conn,
                "SELECT guideline_id, guideline_version, count(*) AS annotations FROM proj_annotations"
                " WHERE tenant = %s GROUP BY 1, 2",
                (tenant,),
            )
        used = {(u["guideline_id"], u["guideline_version"]): u["annotations"] for u in usage}
        return [
            {
                **{k: v for k, v in r.items() if k != "tenant"},
                "annotations": used.get((r["guideline_id"], r["version"]), 0),
            }
            for r in rows
        ]

    def flags(
        self,
        tenant: str,
        *,
        kind: str | None = None,
        actor: str | None = None,
        dataset: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Row:
        """Compliance flags in log order, filtered, ``limit`` at a time; ``kind`` must be one of ``FLAG_KINDS``."""
        if kind is not None and kind not in FLAG_KINDS:
            msg = f"kind must be one of {', '.join(sorted(FLAG_KINDS))}"
            raise ParameterInvalid(msg, errors=[FieldError("kind", msg)])
        clauses, params = ["tenant = %s"], [tenant]
        for column, value in (("kind", kind), ("actor", actor), ("dataset", dataset)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        params_any: list[Any] = list(params)
        if cursor is not None:
            log, position, flag_id = _decode_flag_cursor(cursor)
            if not owns_log(tenant, log):  # another tenant's cursor continues nothing here
                return {"flags": [], "next_cursor": None}
            clauses.append("(log, position, flag_id) > (%s, %s, %s)")
            params_any.extend([log, position, flag_id])
        sql = (
            f"SELECT * FROM proj_flags WHERE {' AND '.join(clauses)} ORDER BY log, position, flag_id LIMIT %s"
        )
        with self._db.connect() as conn, conn.transaction():
            rows = fetch_rows(conn, sql, (*params_any, limit + 1))
        page = rows[:limit]
        nxt = _encode_flag_cursor(page[-1]) if len(rows) > limit and page else None
        return {"flags": [{k: v for k, v in r.items() if k != "tenant"} for r in page], "next_cursor": nxt}


def _encode_flag_cursor(row: Row) -> str:
    # A position can carry several flags, so the cursor names the flag too.
    return encode_cursor(f"{row['log']}\n{row['flag_id']}", row["position"])


def _decode_flag_cursor(cursor: str) -> tuple[str, int, str]:
    combined, position = decode_cursor(cursor)
    log, _, flag_id = combined.partition("\n")
    return log, position, flag_id
