"""The per-split summary of the lineage report: readers and their qualifications, guideline versions, the
review funnel, adjudication, independence, test-set isolation, compliance flags. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger.quality.items import item_quality
from ledger.quality.policy import QcPolicy
from ledger.reports.lineage_data import Event, Row
from ledger.reports.lineage_items import SHOWING_ACCESS, shown_by
from ledger.reports.lineage_reads import Reads

REVIEW_LEVELS = (1, 2, 3, 4)


def readers(reads: Reads, items: Sequence[Row]) -> list[Row]:
    """Per task: how many readers, and each reader's reads and standing at each (from the item events)."""
    standing_at = {e["event_id"]: e.get("standing") for item in items for e in item["events"]}
    out = []
    for task in sorted(reads.first):
        people: dict[str, Row] = {}
        for which, by_item in (
            ("first_reads", reads.first[task]),
            ("repeat_reads", reads.repeat.get(task, {})),
        ):
            for by_reader in by_item.values():
                for reader, read in by_reader.items():
                    person = people.setdefault(
                        reader,
                        {
                            "actor": reader,
                            "first_reads": 0,
                            "repeat_reads": 0,
                            "unqualified_reads": 0,
                            "credentials": {},
                        },
                    )
                    person[which] += 1
                    held = standing_at.get(read.first_event.id) or {}
                    if not held.get("qualified", False):
                        person["unqualified_reads"] += 1
                    for c in held.get("valid_credentials", []):
                        person["credentials"][c["credential_id"]] = c
        listed = [
            {
                **p,
                "qualified_at_every_read": p["unqualified_reads"] == 0,
                "credentials": list(p["credentials"].values()),
            }
            for _, p in sorted(people.items())
        ]
        out.append({"task": task, "readers": len(listed), "actors": listed})
    return out


def reviewers(items: Sequence[Row]) -> list[Row]:
    """Everyone who reviewed or adjudicated: per actor and level, how often, and whether qualified each time."""
    seen: dict[tuple[str, str, int], Row] = {}
    for item in items:
        for e in item["events"]:
            if e["type"] not in ("review.submitted", "adjudication.completed"):
                continue
            key = (
                e["actor"],
                "adjudication" if e["type"] == "adjudication.completed" else "review",
                e["level"],
            )
            row = seen.setdefault(
                key, {"actor": key[0], "work": key[1], "level": key[2], "count": 0, "unqualified": 0}
            )
            row["count"] += 1
            held = e.get("standing")
            if held is not None and not held["qualified"]:
                row["unqualified"] += 1
    return [seen[k] for k in sorted(seen)]


def guidelines(items: Sequence[Row], rows: Mapping[tuple[str, str], Row]) -> tuple[list[Row], list[Row]]:
    """The guideline versions the items' annotation events used, and every label made under one not in effect."""
    used: dict[tuple[str, str], Row] = {}
    outside = []
    for item in items:
        for e in item["events"]:
            if "guideline_in_effect" not in e:
                continue
            key = (e["guideline_id"], e["guideline_version"])
            row = rows.get(key)
            entry = used.setdefault(
                key,
                {
                    "guideline_id": key[0],
                    "version": key[1],
                    "published": row is not None,
                    "effective_from": row["effective_from"] if row else None,
                    "effective_until": row["effective_until"] if row else None,
                    "annotations": 0,
                    "not_in_effect": 0,
                },
            )
            entry["annotations"] += 1
            if not e["guideline_in_effect"]:
                entry["not_in_effect"] += 1
                outside.append(
                    {
                        "item": item["item"],
                        **{
                            k: e[k]
                            for k in (
                                "annotation_id",
                                "version",
                                "actor",
                                "event_id",
                                "log",
                                "position",
                                "guideline_id",
                                "guideline_version",
                                "guideline_note",
                            )
                        },
                    }
                )
    return [used[k] for k in sorted(used)], outside


def funnel(items: Sequence[Row]) -> list[Row]:
    """Items released, annotated, reviewed at each level or above, adjudicated: the levels reached."""

    def reached(item: Row) -> int:
        levels = [
            e["level"] for e in item["events"] if e["type"] in ("review.submitted", "adjudication.completed")
        ]
        return max(levels, default=0)

    top = [reached(i) for i in items]
    stages = [
        ("released", len(items)),
        ("annotated", sum(1 for i in items if any(e["type"] == "annotation.created" for e in i["events"]))),
    ]
    stages += [(f"level {n} or above", sum(1 for t in top if t >= n)) for n in REVIEW_LEVELS]
    stages.append(("adjudicated", sum(1 for i in items if i["adjudicated"])))
    return [{"stage": s, "items": n} for s, n in stages]


def adjudication(items: Sequence[Row], reads: Reads) -> Row:
    """How many items were adjudicated (rate), by method and level, and how the outcome relates to the
    first reads of the adjudicated annotation's task."""
    adjudicated = [i for i in items if i["adjudicated"]]
    methods: Counter[str] = Counter()
    levels: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for item in adjudicated:
        last = [e for e in item["events"] if e["type"] == "adjudication.completed"][-1]
        methods[last["method"]] += 1
        levels[str(last["level"])] += 1
        task = _task_of_annotation(item["events"], last["final_annotation_id"])
        by_reader = reads.first.get(task, {}).get(item["item"], {}) if task is not None else {}
        labels = [r.label_class for r in by_reader.values()]
        outcomes[_outcome(last["final_label_class"], labels)] += 1
    return {
        "items": len(adjudicated),
        "rate": len(adjudicated) / len(items) if items else None,
        "by_method": dict(sorted(methods.items())),
        "by_level": dict(sorted(levels.items())),
        "outcomes": dict(sorted(outcomes.items())),
    }


def _task_of_annotation(events: Sequence[Row], annotation_id: str) -> str | None:
    """The task of an annotation among an item's shown events: the readers an adjudication is compared
    with are those of the adjudicated annotation's task, not of every task on the item."""
    tasks = [e["task"] for e in events if "task" in e and e.get("annotation_id") == annotation_id]
    return tasks[-1] if tasks else None


def _outcome(final: str, labels: list[str | None]) -> str:
    """How the adjudicated label relates to the readers' first reads of the item."""
    if not labels:
        return "no_reader"
    agreeing = sum(1 for label in labels if label == final)
    if agreeing == len(labels):
        return "readers_unanimous"
    if agreeing * 2 > len(labels):
        return "readers_majority"
    if agreeing == 0:
        return "no_reader_agreed"
    return "readers_minority"


def independence(events: Iterable[Event], dataset: str) -> list[Row]:
    """Readers who saw another reader's annotation of an item before creating their own first one of it
    (contract "Access events that show a label"); ``events`` in log order."""
    made: dict[str, dict[str, Event]] = {}  # item -> annotation id -> its creation by a human
    first_by: dict[tuple[str, str], Event] = {}  # (item, reader) -> their first annotation
    for ev in events:
        if ev.type == "annotation.created" and ev.data.get("origin") == "human":
            item = str(ev.data["item"])
            made.setdefault(item, {}).setdefault(str(ev.data["annotation_id"]), ev)
            first_by.setdefault((item, ev.actor), ev)
    breaches = []
    for ev in events:
        if ev.type not in SHOWING_ACCESS or ev.data.get("outcome") != "success":
            continue
        seen = ev.data.get("item")
        if not isinstance(seen, str) or (first := first_by.get((seen, ev.actor))) is None:
            continue
        shown = shown_by(str(ev.data.get("resource", "")), dataset, seen)
        if shown is None or ev.position > first.position:
            continue
        others = [
            a
            for a_id, a in made.get(seen, {}).items()
            if a.actor != ev.actor
            and a.position < ev.position
            and (shown.annotation_id is None or shown.annotation_id == a_id)
        ]
        if others:
            breaches.append(
                {
                    "item": seen,
                    "reader": ev.actor,
                    "access_event_id": ev.id,
                    "log": ev.log,
                    "position": ev.position,
                    "time": ev.time,
                    "resource": ev.data.get("resource"),
                    "seen_annotation_ids": [str(a.data["annotation_id"]) for a in others],
                    "seen_readers": sorted({a.actor for a in others}),
                    "own_first_annotation_event_id": first.id,
                }
            )
    return breaches


def test_set(
    items: Sequence[Row], later: Iterable[Event], anomalies: Iterable[Row], roles: Sequence[str]
) -> Row:
    """Accesses to the test split's items by actors in a test-set role (before or after the release), the
    ``test_set_access`` anomalies raised for them, and how many other accesses followed the release, by role."""
    names = {i["item"] for i in items}
    accesses = []
    for item in items:
        for e in item["events"]:
            if e["type"].startswith("access.") and e["actorrole"] in roles:
                accesses.append({**_access(e), "item": item["item"], "when": "before_release"})
    others: Counter[str] = Counter()
    for ev in later:
        accessed = ev.data.get("item")
        if accessed not in names:
            continue
        if ev.actorrole in roles:
            shown = {
                **ev.data,  # first: the envelope's fields are the event's own
                "event_id": ev.id,
                "type": ev.type,
                "log": ev.log,
                "position": ev.position,
                "time": ev.time,
                "actor": ev.actor,
                "actorrole": ev.actorrole,
            }
            accesses.append({**_access(shown), "item": accessed, "when": "after_release"})
        else:
            others[ev.actorrole] += 1
    return {
        "roles": list(roles),
        "accesses": accesses,
        "anomalies": [
            {
                k: a[k]
                for k in (
                    "anomaly_id",
                    "actor",
                    "item",
                    "severity",
                    "status",
                    "summary",
                    "evidence",
                    "log",
                    "position",
                    "raised_at",
                )
            }
            for a in anomalies
            if a["item"] in names
        ],
        "other_accesses_after_release": dict(sorted(others.items())),
    }


ACCESS_FIELDS = (
    "event_id",
    "type",
    "log",
    "position",
    "time",
    "actor",
    "actorrole",
    "resource",
    "purpose_of_use",
    "outcome",
)
"""What the isolation section shows of an access, before or after the release (sealed values never)."""


def _access(e: Row) -> Row:
    return {k: e.get(k) for k in ACCESS_FIELDS}


def flags(rows: Iterable[Row], names: set[str]) -> Row:
    """Every compliance flag about the split's items up to the release, and their count per kind."""
    listed = [
        {
            k: r[k]
            for k in (
                "flag_id",
                "kind",
                "rule",
                "actor",
                "item",
                "detail",
                "evidence",
                "occurred_at",
                "log",
                "position",
            )
        }
        for r in rows
        if r["item"] in names
    ]
    return {"by_kind": dict(sorted(Counter(f["kind"] for f in listed).items())), "flags": listed}


def below_policy(reads: Reads, policy: QcPolicy | None) -> list[Row]:
    """Items of the split below their QC policy at the release: ``ledger.quality.items.item_quality`` of
    the first reads collected up to it, so the figure rests only on the release's evidence."""
    if policy is None:
        return []
    out = []
    for task in sorted(reads.quality):
        app = policy.applications.get(task)
        if app is None:  # a task named by its guideline id: no application holds it to thresholds
            continue
        for item, first in sorted(reads.quality[task].items()):
            quality = item_quality(first, app)
            if quality.below_policy:
                out.append(
                    {
                        "item": item,
                        "application": task,
                        "readers": quality.readers,
                        "pairs": quality.pairs,
                        "min_iou": quality.min_iou,
                        "min_dice": quality.min_dice,
                        "class_agreement": quality.class_agreement,
                        "reasons": list(quality.reasons),
                        "evidence": list(quality.evidence),
                        "policy_sha256": policy.sha256,
                    }
                )
    return sorted(out, key=lambda r: (r["item"], r["application"]))


def count_types(items: Sequence[Row]) -> dict[str, Any]:
    """How many item events of each type the split's lineage holds."""
    return dict(sorted(Counter(e["type"] for i in items for e in i["events"]).items()))
