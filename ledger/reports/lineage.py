"""The reference-standard lineage report of a dataset release (``DATASET@RELEASE``, every
``dataset.release_created`` event of it, one per split): per item the final label and how it was reached,
per split the readers and their qualifications, guideline versions, review levels, adjudication,
independence, test-set isolation, compliance flags and reader agreement; the log heads it was computed
from, and the evidence bundle that holds every event it rests on.

``lineage_data`` reads, ``lineage_items``/``lineage_reads``/``lineage_summary``/``lineage_agreement``
compute, ``lineage_rows`` flattens to CSV and draws the figures; this module puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ledger.quality.policy import QcPolicy
from ledger.reports import lineage_summary as summary
from ledger.reports.lineage_agreement import agreement_section
from ledger.reports.lineage_data import Collected, Event, Row, collect, evidence_digest, no_cyclic_gc
from ledger.reports.lineage_items import TaskOf, shown_event, standings_of, trace
from ledger.reports.lineage_reads import Reads, collect_reads
from ledger.reports.lineage_rows import CSV_COLUMNS, csv_rows, figures
from ledger.reports.report import Report
from ledger.storage.bundles import MAX_BUNDLE_EVENTS, ReleaseScope
from ledger.storage.database import Database

NAME = "lineage"
SPLITS = ("train", "tune", "test")
TEMPLATE = "lineage.html"


def build(
    db: Database,
    scope: ReleaseScope,
    *,
    tenant: str | None,
    policy: QcPolicy | None = None,
    test_set_roles: Sequence[str] = ("model_developer",),
    resamples: int = 1000,
) -> Report:
    """The lineage report of ``scope`` in ``tenant`` (found from the release when ``None``)."""
    collected = collect(db, scope, tenant=tenant)
    content = compose(collected, policy=policy, test_set_roles=test_set_roles, resamples=resamples)
    parameters = {"release": f"{scope.dataset}@{scope.release}", "scope": collected.tenant}
    return Report(
        name=NAME,
        parameters=parameters,
        generated_at=datetime.now(UTC),
        scope=collected.tenant,
        content=content,
        records=len(content["items"]),
        template=TEMPLATE,
        csv_columns=CSV_COLUMNS,
        csv_rows=csv_rows,
        figures=figures,
        json_indent=None,  # a release of 10,000 items lists about 170,000 events
    )


def task_namer(policy: QcPolicy | None) -> TaskOf:
    """The task of an annotation (contract "Tasks"): its QC policy application, else its guideline id."""

    named: dict[tuple[str, str], str] = {}  # a report asks for a few pairs, once per annotation event

    def task_of(dataset: str, guideline_id: str) -> str:
        task = named.get((dataset, guideline_id))
        if task is None:
            found = policy.application_for(dataset, guideline_id) if policy is not None else None
            task = named[(dataset, guideline_id)] = found[0] if found is not None else guideline_id
        return task

    return task_of


@no_cyclic_gc()
def compose(
    collected: Collected, *, policy: QcPolicy | None, test_set_roles: Sequence[str], resamples: int
) -> Row:
    """The report's content from what was collected (pure)."""
    scope = collected.scope
    task_of = task_namer(policy)
    by_item: dict[str, list[Event]] = {}
    named = [(ev, _named(ev)) for ev in collected.lineage]
    for ev, about in named:
        for name in about:
            by_item.setdefault(name, []).append(ev)
    finals: dict[str, tuple[str, Row, Event]] = {}
    held = collected.evidence.items  # the split each item is held in (bundles.held_split)
    for release in collected.releases:
        split = str(release.data["split"])
        for entry in release.data["items"]:
            name = str(entry["item"])
            if held.get(name, split) == split:  # the later entry of the held split wins
                finals[name] = (split, entry, release)
    # each split's events in log order, in one pass (an event about items of two splits is in both)
    split_of = {name: split for name, (split, _, _) in finals.items()}
    by_split: dict[str, list[Event]] = {}
    for ev, about in named:
        for split in {split_of[n] for n in about if n in split_of}:
            by_split.setdefault(split, []).append(ev)
    standings = standings_of(collected.periods)
    items = []
    for name, (split, entry, release) in finals.items():
        events = [e for e in by_item.get(name, []) if e.type != "dataset.release_created"]
        final = {
            "label_class": entry["label_class"],
            "annotation_id": entry.get("annotation_id"),
            "release_event_id": release.id,
        }
        items.append(
            {
                "item": name,
                "split": split,
                "final": final,
                "trace": trace(final, events),
                "adjudicated": any(e.type == "adjudication.completed" for e in events),
                "events_after_release": collected.later_events.get(name, 0),
                "events": [shown_event(e, standings, collected.guidelines, task_of) for e in events],
            }
        )
    splits = {}
    for split in SPLITS:
        chosen = [i for i in items if i["split"] == split]
        if not chosen:
            continue
        names = {str(i["item"]) for i in chosen}
        events = by_split.get(split, [])
        reads = collect_reads(events, task_of)
        splits[split] = {
            "items": len(chosen),
            "summary": _summary(collected, chosen, names, events, reads, policy, test_set_roles, split),
            "agreement": agreement_section(reads, policy, resamples=resamples),
        }
    ids = collected.evidence_ids
    return {
        "report": NAME,
        "dataset": scope.dataset,
        "release": scope.release,
        "tenant": collected.tenant,
        "computed_from": {
            "isolation": "one REPEATABLE READ READ ONLY snapshot",
            "logs": collected.heads,
            "release_events": [
                {
                    "event_id": r.id,
                    "split": r.data["split"],
                    "log": r.log,
                    "position": r.position,
                    "recorded_at": r.recorded_at,
                    "items": len(r.data["items"]),
                    "items_sha256": r.data["items_sha256"],
                }
                for r in collected.releases
            ],
            "qc_policy": _policy(policy),
        },
        "splits": splits,
        "split_conflicts": [
            {"item": item, "splits": listed, "held_in": held[item]}
            for item, listed in sorted(collected.evidence.split_conflicts.items())
        ],
        "items": items,
        "evidence": {
            "command": f"ledger bundle --release {scope.dataset}@{scope.release}",
            "events": len(ids),
            "event_ids_sha256": evidence_digest(ids),
            "digest_of": "SHA-256 of the bundle's event ids, sorted, each followed by a newline",
            "within_bundle_limit": len(ids) <= MAX_BUNDLE_EVENTS,
            **bundle_commands(scope, collected.evidence.positions),
            "parts": {
                "release_events": len(collected.evidence.releases),
                "item_events_up_to_release": len(collected.evidence.lineage),
                "credential_events": len(collected.evidence.credentials),
                "guideline_events": len(collected.evidence.guidelines),
                "test_split_accesses_after_release": len(collected.evidence.test_accesses),
            },
        },
    }


def _named(ev: Event) -> list[str]:
    """The items an event is about: its ``item``, and each of its ``items`` (assignments name several)."""
    item = ev.data.get("item")
    names: dict[str, None] = {item: None} if isinstance(item, str) else {}
    for entry in ev.data.get("items") or ():
        name = entry.get("item") if isinstance(entry, dict) else entry
        if isinstance(name, str):
            names[name] = None
    return list(names)


def bundle_commands(
    scope: ReleaseScope, positions: Sequence[tuple[str, int]], limit: int = MAX_BUNDLE_EVENTS
) -> Row:
    """The commands that produce the evidence: the release's bundle, or, when it holds more events than
    ``ledger bundle --release`` accepts, log ranges of at most ``MAX_BUNDLE_EVENTS`` positions covering it."""
    if len(positions) <= limit:
        return {"bundle_commands": [f"ledger bundle --release {scope.dataset}@{scope.release}"], "note": None}
    return {
        "bundle_commands": [
            f"ledger bundle --log {log} --from {first} --to {last}"
            for log, first, last in covering_ranges(positions, limit)
        ],
        "note": f"the evidence holds {len(positions):,} events, more than ledger bundle --release accepts"
        f" ({limit:,}, MAX_BUNDLE_EVENTS); these log ranges hold every one of them (and the"
        " log's other events between them)",
    }


def covering_ranges(positions: Sequence[tuple[str, int]], limit: int) -> list[tuple[str, int, int]]:
    """Consecutive ``(log, first, last)`` ranges, each of at most ``limit`` positions, starting and ending
    at a position of ``positions``, that together hold every one of them (fewest ranges: greedy)."""
    out: list[tuple[str, int, int]] = []
    for log, position in sorted(positions):
        if out and out[-1][0] == log and position - out[-1][1] < limit:
            out[-1] = (log, out[-1][1], position)
        else:
            out.append((log, position, position))
    return out


def _summary(
    collected: Collected,
    chosen: list[Row],
    names: set[str],
    events: list[Event],
    reads: Reads,
    policy: QcPolicy | None,
    roles: Sequence[str],
    split: str,
) -> Row:
    used, outside = summary.guidelines(chosen, collected.guidelines)
    return {
        "event_types": summary.count_types(chosen),
        "readers": summary.readers(reads, chosen),
        "reviewers": summary.reviewers(chosen),
        "guideline_versions": used,
        "labels_not_in_effect": outside,
        "review_funnel": summary.funnel(chosen),
        "adjudication": summary.adjudication(chosen, reads),
        "independence_breaches": summary.independence(events, collected.scope.dataset),
        "test_set_isolation": (
            summary.test_set(chosen, collected.test_accesses, collected.anomalies, roles)
            if split == "test"
            else None
        ),
        "flags": summary.flags(collected.flags, names),
        "below_policy": summary.below_policy(reads, policy),
        "traced": sum(1 for i in chosen if i["trace"]["status"] == "traced"),
        "not_traced": [{"item": i["item"], **i["trace"]} for i in chosen if i["trace"]["status"] != "traced"],
    }


def _policy(policy: QcPolicy | None) -> Row | None:
    if policy is None or policy.source is None:
        return None
    return {"source": str(policy.source), "sha256": policy.sha256}
