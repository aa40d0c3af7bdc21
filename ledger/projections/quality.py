"""The item-quality projection (issue 10): per item and QC-policy application, the agreement among its
readers' first reads, and a ``needs_expert_review`` flag the first time an item falls below its thresholds.

Per batch with annotation events: load the annotations of the items they touch as they were before the
batch (this projector runs before the workflow projector, see the registry), apply the batch's annotation
events by the workflow's own rules in memory, in log order, and after each event that changed an item
recompute that item's quality (``ledger.quality.items``, pure). The flag is decided event by event, so
the inline path and ``ledger projections rebuild`` raise it at the same event whatever the batching; its
id is stable per item and application and it is saved with ``DO NOTHING``, so it is raised once.
Rebuilding this projection rebuilds the workflow projection with it (``registry.rebuilt_together``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ledger.domain.upcasting import upcast
from ledger.projections import workflow
from ledger.projections.bulk import Rows, save_rows
from ledger.projections.flags import FLAG_KINDS
from ledger.projections.state import Event, Row, State
from ledger.projections.tables import Connection, select_by_keys
from ledger.quality.items import Overlaps, first_reads, item_quality
from ledger.quality.policy import QcPolicy
from ledger.storage.append import Recorded

TABLES = ("proj_item_quality",)
TYPES = frozenset({"annotation.created", "annotation.updated", "annotation.deleted"})
KIND = "needs_expert_review"
KEYS = ("tenant", "dataset", "item", "application")

ItemKey = tuple[str, str, str]  # tenant, dataset, item


class QualityProjector:
    """Per-item reader agreement under the QC policy, and the flags of items below it."""

    name: str = "quality"
    tables: tuple[str, ...] = TABLES

    def __init__(self, policy: QcPolicy | None = None) -> None:
        self.policy = policy or QcPolicy.empty()

    def apply(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Project ``events`` (in log order within each log) in the caller's transaction."""
        if not self.policy.applications or not any(r.event["type"] in TYPES for r in events):
            return
        batch = [Event(r, upcast(r.event)) for r in events if r.event["type"] in TYPES]
        state = _load(conn, batch)
        ledger = Items(self.policy, state, version_events=_version_events(conn, state))
        apply_events(ledger, batch)
        save_rows(
            conn,
            Rows("proj_item_quality", KEYS, [ledger.rows[k] for k in sorted(ledger.rows)]),
            Rows("proj_flags", ("tenant", "flag_id"), ledger.flags, update=False),
        )


@dataclass
class Items:
    """The annotations of the items a batch touches, by item, and what the batch computed from them."""

    policy: QcPolicy
    state: State
    by_item: dict[ItemKey, set[tuple[str, str]]] = field(default_factory=dict)
    rows: dict[tuple[str, str, str, str], Row] = field(default_factory=dict)
    flags: list[Row] = field(default_factory=list)
    raised: set[str] = field(default_factory=set)
    version_events: dict[tuple[str, str], str] = field(default_factory=dict)
    """(tenant, annotation id) → the event of the annotation's version (its geometry and class): the
    evidence of a read, kept up to date as the batch's events apply."""
    overlaps: Overlaps = field(default_factory=dict)
    """Overlaps computed in this batch, by the two annotations' (id, version)."""

    def __post_init__(self) -> None:
        for key, row in self.state.annotations.items():
            self.by_item.setdefault((row["tenant"], row["dataset"], row["item"]), set()).add(key)


def apply_events(items: Items, batch: Iterable[Event]) -> None:
    """Apply each annotation event by the workflow's rules; recompute every (item, application) it changed."""
    st = items.state
    for ev in batch:
        key = (ev.tenant, str(ev.data["annotation_id"]))
        before = st.annotations.get(key)
        workflow.apply_events(st, [ev])
        st.flags.clear()  # the workflow projector raises its own flags; these are only a side effect here
        after = st.annotations.get(key)
        if after is before:
            continue  # not applied (out of sequence, unprojectable): nothing changed
        if after is None:
            continue
        if ev.type != "annotation.deleted":
            items.version_events[key] = ev.id
        if before is not None:
            items.by_item[(ev.tenant, before["dataset"], before["item"])].discard(key)
        items.by_item.setdefault((ev.tenant, after["dataset"], after["item"]), set()).add(key)
        touched = {
            ((ev.tenant, row["dataset"], row["item"]), found[0])
            for row in (before, after)
            if row is not None
            and (found := items.policy.application_for(row["dataset"], row["guideline_id"]))
        }
        for item, application in sorted(touched):
            _recompute(items, ev, item, application)


def _recompute(items: Items, ev: Event, item: ItemKey, application: str) -> None:
    tenant, dataset, name = item
    app = items.policy.applications[application]
    rows = [
        {**items.state.annotations[k], "version_event_id": items.version_events.get(k)}
        for k in sorted(items.by_item.get(item, ()))
        if (found := items.policy.application_for(dataset, items.state.annotations[k]["guideline_id"]))
        and found[0] == application
    ]
    quality = item_quality(first_reads(rows), app, items.overlaps)
    items.rows[(tenant, dataset, name, application)] = {
        "tenant": tenant,
        "dataset": dataset,
        "item": name,
        "application": application,
        "readers": quality.readers,
        "pairs": quality.pairs,
        "min_iou": quality.min_iou,
        "min_dice": quality.min_dice,
        "class_agreement": quality.class_agreement,
        "below_policy": quality.below_policy,
        "reasons": list(quality.reasons),
        "evidence": list(quality.evidence),
        "policy_sha256": items.policy.sha256,
        **ev.stamp(),
    }
    flag_id = flag_id_of(tenant, dataset, name, application)
    if not quality.below_policy or flag_id in items.raised:
        return
    items.raised.add(flag_id)
    items.flags.append(
        {
            "tenant": tenant,
            "flag_id": flag_id,
            "kind": KIND,
            "rule": FLAG_KINDS[KIND].rule,
            "actor": ev.actor,
            "dataset": dataset,
            "item": name,
            "detail": f"item {name} of dataset {dataset} is below QC-policy application {application}"
            f" ({quality.readers} readers): {'; '.join(quality.reasons)}; policy sha256"
            f" {items.policy.sha256}; routed to level-4 review",
            "evidence": list(dict.fromkeys([ev.id, *quality.evidence])),
            "occurred_at": ev.occurred_at,
            **ev.stamp(),
        }
    )


def flag_id_of(tenant: str, dataset: str, item: str, application: str) -> str:
    """The one ``needs_expert_review`` flag id of an item under an application: ``<kind>:<24 hex>``."""
    digest = hashlib.sha256(json.dumps([tenant, dataset, item, application]).encode()).hexdigest()
    return f"{KIND}:{digest[:24]}"


def _load(conn: Connection, batch: list[Event]) -> State:
    """The annotations of every item the batch's events name or whose annotations they name, as recorded
    before the batch: two queries (the second finds the items of annotations moved off them)."""
    st = State()
    items = {(ev.tenant, str(ev.data["dataset"]), str(ev.data["item"])) for ev in batch}
    ids = {(ev.tenant, str(ev.data["annotation_id"])) for ev in batch}
    by_id = select_by_keys(
        conn,
        "SELECT p.tenant, p.dataset, p.item FROM proj_annotations p"
        " JOIN unnest(%s::text[], %s::text[]) AS u(t, a) ON p.tenant = u.t AND p.annotation_id = u.a",
        ids,
    )
    items |= {(r["tenant"], r["dataset"], r["item"]) for r in by_id}
    for row in select_by_keys(
        conn,
        "SELECT p.* FROM proj_annotations p JOIN unnest(%s::text[], %s::text[], %s::text[]) AS u(t, d, i)"
        " ON p.tenant = u.t AND p.dataset = u.d AND p.item = u.i",
        items,
    ):
        st.annotations[(row["tenant"], row["annotation_id"])] = row
    return st


def _version_events(conn: Connection, st: State) -> dict[tuple[str, str], str]:
    """The event of each loaded annotation's latest applied version (``proj_annotation_revisions``)."""
    rows = select_by_keys(
        conn,
        "SELECT DISTINCT ON (r.tenant, r.annotation_id) r.tenant, r.annotation_id, r.event_id"
        " FROM proj_annotation_revisions r JOIN unnest(%s::text[], %s::text[]) AS u(t, a)"
        " ON r.tenant = u.t AND r.annotation_id = u.a WHERE r.change IN ('created', 'updated')"
        " ORDER BY r.tenant, r.annotation_id, r.version DESC, r.position DESC",
        set(st.annotations),
    )
    return {(r["tenant"], r["annotation_id"]): r["event_id"] for r in rows}
