"""Quality read at query time: per-annotator accuracy, consistency and co-reader agreement, and the
items' agreement under the QC policy (``proj_item_quality``).

Per annotator, from the projections as they are: each of the annotator's first reads (contract of issue
10: the first annotation id per item and task, at its latest non-deleted version) against the item's
adjudicated final label (``proj_final_labels``, one per item) overall, per final class and per calendar
month (UTC, of the annotation's creation), and against the first reads of the item's other readers under the
same task. A final label is compared only with reads of its own task (that of the annotation it selects): an
item read under two tasks (a detection and a grading guideline) has one final label, not one per task.
A task is the QC-policy application an annotation belongs to, or its guideline id when none claims it.
``summarize_annotator`` is pure; ``annotator_quality`` and ``item_quality_page`` read the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from ledger.domain.errors import FieldError, NotFound, ParameterInvalid
from ledger.projections.tables import Connection, fetch_rows
from ledger.quality.items import Read, first_reads
from ledger.quality.policy import QcPolicy

Row = dict[str, Any]
_KEY_MAX = 200


def task_of(policy: QcPolicy, dataset: str, guideline_id: str) -> tuple[str, bool]:
    """The task an annotation belongs to, and whether it is an application of the policy."""
    found = policy.application_for(dataset, guideline_id)
    return (found[0], True) if found else (guideline_id, False)


def reads_by_task(
    policy: QcPolicy, annotations: Iterable[Mapping[str, Any]]
) -> dict[tuple[str, str, str], list[Read]]:
    """The first reads of every item and task among ``annotations`` (rows of ``proj_annotations``):
    (task, dataset, item) → one read per reader. Repeat reads are left out."""
    grouped: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in annotations:
        task, _ = task_of(policy, row["dataset"], row["guideline_id"])
        grouped[(task, row["dataset"], row["item"])].append(row)
    return {key: first_reads(rows) for key, rows in sorted(grouped.items())}


def _share(correct: int, compared: int) -> dict[str, Any]:
    return {"compared": compared, "correct": correct, "accuracy": correct / compared if compared else None}


def summarize_annotator(
    actor: str,
    annotations: Iterable[Mapping[str, Any]],
    finals: Mapping[tuple[str, str, str], str],
    policy: QcPolicy,
) -> Row:
    """``actor``'s quality per task from the human ``annotations`` of the items they read (theirs and their
    co-readers') and the items' final label classes ``finals`` ((task, dataset, item) → class, the task
    being that of the final's annotation: see ``final_labels_by_task``). Pure.

    Per task: ``items_labelled``; ``accuracy`` (first reads against final labels: compared, correct,
    accuracy), ``per_class`` (by the final class), ``by_month`` (YYYY-MM of the read's creation);
    ``co_reader_agreement`` (items with co-readers, and the mean share of co-readers giving the same
    class); for an application of the policy ``annotator_accuracy_min`` and ``below_min``.
    """
    rows = [a for a in annotations if a["origin"] == "human"]
    created = {r["annotation_id"]: r["created_at"] for r in rows}
    tasks: dict[str, Row] = {}
    for (task, dataset, item), reads in reads_by_task(policy, rows).items():
        mine = next((r for r in reads if r.reader == actor), None)
        if mine is None:
            continue
        t = tasks.setdefault(task, {"items": 0, "hits": [], "co": []})
        t["items"] += 1
        if (final := finals.get((task, dataset, item))) is not None:
            month = created[mine.annotation_id].astimezone(UTC).strftime("%Y-%m")
            t["hits"].append((final, month, mine.label_class == final))
        others = [r for r in reads if r.reader != actor]
        if others:
            t["co"].append(sum(r.label_class == mine.label_class for r in others) / len(others))
    return {
        "actor": actor,
        "policy_sha256": policy.sha256,
        "tasks": [_task_summary(name, t, policy) for name, t in sorted(tasks.items())],
    }


def _task_summary(name: str, t: Row, policy: QcPolicy) -> Row:
    hits: list[tuple[str, str, bool]] = t["hits"]
    per_class: dict[str, list[bool]] = defaultdict(list)
    per_month: dict[str, list[bool]] = defaultdict(list)
    for final, month, hit in hits:
        per_class[final].append(hit)
        per_month[month].append(hit)
    accuracy = _share(sum(h for _, _, h in hits), len(hits))
    app = policy.applications.get(name)
    threshold = app.annotator_accuracy_min if app else None
    co: list[float] = t["co"]
    return {
        "task": name,
        "in_policy": app is not None,
        "items_labelled": t["items"],
        "accuracy": accuracy,
        "per_class": [{"label_class": c, **_share(sum(v), len(v))} for c, v in sorted(per_class.items())],
        "by_month": [{"month": m, **_share(sum(v), len(v))} for m, v in sorted(per_month.items())],
        "co_reader_agreement": {"items": len(co), "mean": sum(co) / len(co) if co else None},
        "annotator_accuracy_min": threshold,
        "below_min": None
        if threshold is None or accuracy["accuracy"] is None
        else accuracy["accuracy"] < threshold,
    }


def annotator_quality(conn: Connection, tenant: str, actor: str, policy: QcPolicy) -> Row:
    """``summarize_annotator`` of ``actor`` in ``tenant``, read in the caller's transaction; ``NotFound``
    when the actor made no human annotation there."""
    items = "SELECT dataset, item FROM proj_annotations WHERE tenant = %s AND created_by = %s AND origin = 'human'"
    annotations = fetch_rows(
        conn,
        "SELECT annotation_id, dataset, item, version, label_class, geometry, origin, guideline_id, created_by,"
        " created_at, created_event_id FROM proj_annotations"
        f" WHERE tenant = %s AND origin = 'human' AND (dataset, item) IN ({items})",
        (tenant, tenant, actor),
    )
    if not any(a["created_by"] == actor for a in annotations):
        msg = f"no human annotations by {actor!r} in tenant {tenant!r}"
        raise NotFound(msg)
    finals = fetch_rows(
        conn,
        "SELECT f.dataset, f.item, f.label_class, a.dataset AS annotation_dataset, a.guideline_id"
        " FROM proj_final_labels f LEFT JOIN proj_annotations a"
        " ON a.tenant = f.tenant AND a.annotation_id = f.annotation_id"
        f" WHERE f.tenant = %s AND (f.dataset, f.item) IN ({items})",
        (tenant, tenant, actor),
    )
    summary = summarize_annotator(actor, annotations, final_labels_by_task(policy, finals), policy)
    return {"tenant": tenant, **summary}


def final_labels_by_task(
    policy: QcPolicy, finals: Iterable[Mapping[str, Any]]
) -> dict[tuple[str, str, str], str]:
    """(task, dataset, item) → final class, the task being that of the annotation the final selects
    (``annotation_dataset``, ``guideline_id``); a final whose annotation is not on record has no task and
    is compared with nothing."""
    return {
        (task_of(policy, f["annotation_dataset"], f["guideline_id"])[0], f["dataset"], f["item"]): f[
            "label_class"
        ]
        for f in finals
        if f["guideline_id"] is not None
    }


def item_quality_page(
    conn: Connection,
    tenant: str,
    *,
    below_policy: bool | None = None,
    application: str | None = None,
    dataset: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Row:
    """Rows of ``proj_item_quality`` in (dataset, item, application) order, filtered, ``limit`` at a time;
    ``next_cursor`` continues (null at the end). A cursor of another tenant continues nothing here."""
    clauses, params = ["tenant = %s"], [tenant]
    for column, value in (("application", application), ("dataset", dataset)):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if below_policy is not None:
        clauses.append("below_policy" if below_policy else "NOT below_policy")
    if cursor is not None:
        owner, *after = _decode(cursor)
        if owner != _owner(tenant):
            return {"items": [], "next_cursor": None}
        clauses.append("(dataset, item, application) > (%s, %s, %s)")
        params.extend(after)
    rows = fetch_rows(
        conn,
        f"SELECT * FROM proj_item_quality WHERE {' AND '.join(clauses)}"
        " ORDER BY dataset, item, application LIMIT %s",
        (*params, limit + 1),
    )
    page = rows[:limit]
    last = page[-1] if len(rows) > limit and page else None
    return {
        "items": [{k: v for k, v in r.items() if k != "tenant"} for r in page],
        "next_cursor": _encode([_owner(tenant), last["dataset"], last["item"], last["application"]])
        if last
        else None,
    }


def _owner(tenant: str) -> str:
    """The tenant as a cursor names it: short, so a cursor of 200-character keys stays within bounds."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:16]


def _encode(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[str]:
    """Reverse of ``_encode``; a damaged or forged cursor is ``ParameterInvalid`` naming ``cursor``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        key = None
    if not (
        isinstance(key, list)
        and len(key) == 4
        and all(isinstance(k, str) and len(k) <= _KEY_MAX and "\x00" not in k for k in key)
    ):
        msg = "cursor is not one this server issued; pass next_cursor of the previous page as it is"
        raise ParameterInvalid(msg, errors=[FieldError("cursor", msg)])
    return key
