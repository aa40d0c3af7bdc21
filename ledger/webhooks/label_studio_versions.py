"""Versioning a Label Studio object's regions against the ledger's state, for one delivery.

The ledger's versions come from its own state (``Lookup.annotations_on``), never from the tool: a region
not on record is created (v1), one whose class or geometry differs is updated (v+1), one gone from the
object is deleted (v+1), one equal to the state is left alone; an object older than the state is refused.
``Recorder`` holds what one delivery produced so far and turns it into the ``Mapped`` result.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.webhooks.label_studio_payload import Project, guideline_of
from ledger.webhooks.label_studio_results import Region
from ledger.webhooks.model import (
    TOOL_ROLE,
    AnnotationState,
    Delivery,
    Lookup,
    Mapped,
    Source,
    envelope,
    event_id,
    tool_stamp,
    unmappable,
)

_LEDGER_ID = re.compile(r"(?P<kind>[ap])(?P<tool_id>\d+)-(?P<key>.+)")


@dataclass(slots=True)
class Recorder:
    """One delivery being mapped: what it has produced so far."""

    delivery: Delivery
    lookup: Lookup
    action: str
    guidelines: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    places: list[tuple[str, str, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    """How many of each thing were recorded or skipped, by a phrase with ``{s}`` where a plural takes it."""
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> Source:
        """The source the delivery came from."""
        return self.delivery.source

    def result(self) -> Mapped:
        """The delivery's ``Mapped``: the guidelines its events cite first, then the events in order."""
        events = self.guidelines + self.events
        done = ", ".join(
            f"{n} " + what.format(s="" if n == 1 else "s") for what, n in self.counts.items() if n
        )
        done = done or "nothing to record"
        summary = f"Label Studio {self.action}: {done}" + "".join(f"; {note}" for note in self.notes)
        unchanged = None
        if not events:
            unchanged = "; ".join(self.notes) or "every region equals the version on record"
        ids = [e["id"] for e in events]
        candidates = list(dict.fromkeys([*ids, *self.candidates]))
        return Mapped(events, candidates, summary, list(dict.fromkeys(self.places)), unchanged)

    def emit(
        self, type_: str, ident: str, time: datetime, data: dict[str, Any], actor: str, actorrole: str
    ) -> None:
        """Record one event of the source's tenant."""
        self.events.append(envelope(self.source, type_, ident, time, data, actor=actor, actorrole=actorrole))

    def dataset(self, project_id: int | None, where: str) -> str:
        """The ledger dataset of a project's items: the configured one, else ``<source>-project-<id>``."""
        if self.source.config.dataset is not None:
            return self.source.config.dataset
        if project_id is None:
            raise unmappable(where, "names no project, so no dataset can be named; set dataset in the config")
        return f"{self.source.name}-project-{project_id}"

    def guideline(self, project: Project | None) -> tuple[str, str]:
        """The guideline the source's annotations cite, publishing the project's version when it is new."""
        config = self.source.config
        if config.guideline_id is not None and config.guideline_version is not None:
            return config.guideline_id, config.guideline_version
        if project is None or project.label_config is None:
            raise unmappable(
                "project.label_config",
                "is not in the payload, so the annotation cites no guideline; set [guideline] id and "
                "version in the source's config",
            )
        guideline_id, version, _ = guideline_of(self.source, project)
        self.publish(project)
        return guideline_id, version

    def publish(self, project: Project) -> None:
        """``guideline.published`` of the project's configuration, unless that version is on record."""
        guideline_id, version, digest = guideline_of(self.source, project)
        ident = event_id(self.source, f"project/{project.id}", "published", version)
        if self.lookup.guideline_published(guideline_id, version) or any(
            e["id"] == ident for e in self.guidelines
        ):
            return
        known = self.lookup.guideline_versions(guideline_id)
        first = not known
        effective = (project.created_at if first else project.updated_at) or project.updated_at
        if effective is None:
            raise unmappable("project.updated_at", "is not given, so the guideline has no effective date")
        data: dict[str, Any] = {
            "guideline_id": guideline_id,
            "version": version,
            "title": f"Label Studio project {project.id} labelling configuration",
            "document_sha256": digest,
            "effective_from": tool_stamp(effective),
        }
        live = [v for v in known if v.effective_until is None]
        if live:
            data["supersedes"] = live[-1].version
        self.guidelines.append(
            envelope(
                self.source,
                "guideline.published",
                ident,
                effective,
                data,
                actor=self.source.name,
                actorrole=TOOL_ROLE,
            )
        )
        self.counts["guideline{s} published"] += 1

    def own(self, dataset: str, item: str, prefix: str) -> list[AnnotationState]:
        """The ledger's annotations on the item whose ids start ``prefix`` (this source's, one tool object's)."""
        return [s for s in self.lookup.annotations_on(dataset, item) if s.annotation_id.startswith(prefix)]


@dataclass(frozen=True, slots=True)
class Producer:
    """Who wrote a tool object's regions, and the ledger fields that say so."""

    actor: str
    actorrole: str
    origin: str
    model: tuple[str, str] | None = None
    """(model_name, model_version) of a prediction."""


@dataclass(frozen=True, slots=True)
class ToolObject:
    """One Label Studio annotation or prediction: its ref, the prefix of its ledger ids, where it is."""

    ref: str
    """``annotation/42``, ``prediction/7``."""
    prefix: str
    """``ls-main-a42-``: every ledger annotation of its regions starts so."""
    place: tuple[str, str]
    earlier: tuple[str, str] | None = None
    """Where an earlier delivery placed the same tool id, when that was elsewhere: Label Studio on SQLite
    gives a deleted object's id to the next one, whose regions then continue the ledger's versions."""
    answers_repeats: bool = True
    """Whether an id of this version on record makes the delivery a repeat. Not for a prediction: every
    annotation made from it carries it again, and each such annotation is new work all the same."""


def record_regions(
    m: Recorder,
    obj: ToolObject,
    regions: Sequence[Region],
    time: datetime,
    guideline: tuple[str, str],
    producer: Producer,
    stamp_field: str,
) -> None:
    """Version one tool object's regions against the ledger's state: create, update, delete or leave."""
    dataset, item = obj.place
    places = [obj.place] if obj.earlier in (None, obj.place) else [obj.place, obj.earlier]
    state = {s.annotation_id: s for where in places for s in m.own(*where, obj.prefix)}
    # Only live versions are compared: their times are Label Studio's own, while a deletion it sent
    # without a time is timed by the ledger's clock, which may run ahead of Label Studio's.
    if any(s.updated_at > time for s in state.values() if s.status != "deleted"):
        raise unmappable(stamp_field, "a newer version is on record; an older one is never written over it")
    keys = [r.key for r in regions]
    if len(set(keys)) < len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise unmappable(stamp_field.rsplit(".", 1)[0] + ".result", f"region {twice} appears twice")
    version_stamp = tool_stamp(time)
    prefix, ref = obj.prefix, obj.ref
    for ledger_id in sorted({*state, *(prefix + r.key for r in regions)} if obj.answers_repeats else ()):
        key = ledger_id.removeprefix(prefix)
        m.candidates.extend(
            event_id(m.source, f"{ref}/{key}", c, version_stamp) for c in ("created", "updated", "deleted")
        )
    seen = {prefix + key for key in keys}
    for region in regions:
        ledger_id = prefix + region.key
        now = state.get(ledger_id)
        if now is not None and now.status != "deleted" and _equal(now, region):
            m.counts["region{s} unchanged"] += 1
            continue
        change = "created" if now is None or now.status == "deleted" else "updated"
        data: dict[str, Any] = {
            "dataset": dataset,
            "item": item,
            "annotation_id": ledger_id,
            "version": now.version + 1 if now else 1,
            "label_class": region.label_class,
            "geometry": region.geometry,
            "origin": producer.origin,
            "guideline_id": guideline[0],
            "guideline_version": guideline[1],
        }
        if now is not None:
            data["previous_version"] = now.version
        if producer.model is not None:
            data["model_name"], data["model_version"] = producer.model
        ident = event_id(m.source, f"{ref}/{region.key}", change, version_stamp)
        m.emit(f"annotation.{change}", ident, time, data, producer.actor, producer.actorrole)
        m.counts[f"region{{s}} {change}"] += 1
    for ledger_id, now in sorted(state.items()):
        if ledger_id not in seen and now.status != "deleted":
            key = ledger_id.removeprefix(prefix)
            ident = event_id(m.source, f"{ref}/{key}", "deleted", version_stamp)
            # A region left at the place an earlier object of the same id had is the tool's doing (it
            # reused the id), not the work of whoever wrote this object.
            here = (now.dataset, now.item) == obj.place
            actor, role = (producer.actor, producer.actorrole) if here else (m.source.name, TOOL_ROLE)
            m.emit("annotation.deleted", ident, time, _deletion(now), actor, role)
            m.counts["region{s} deleted"] += 1


def _equal(now: AnnotationState, region: Region) -> bool:
    return now.label_class == region.label_class and dict(now.geometry) == region.geometry


def _deletion(now: AnnotationState) -> dict[str, Any]:
    return {
        "dataset": now.dataset,
        "item": now.item,
        "annotation_id": now.annotation_id,
        "version": now.version + 1,
        "previous_version": now.version,
    }


def delete_all(m: Recorder, states: Sequence[AnnotationState], *, answers_repeats: bool = True) -> None:
    """``annotation.deleted`` of each live one of ``states`` (this source's), by the tool; the deletion ids
    of all of them are candidates when ``answers_repeats`` (one tool object's regions, not an item's).

    Label Studio sends a deletion without a time, so its id is stamped with the ledger version it
    deletes (``…:deleted@v2``): a retry finds that version deleted and asks for the same id, and a later
    object that reuses the tool's id (SQLite does) deletes another version, under another id."""
    for now in sorted(states, key=lambda s: s.annotation_id):
        ref = tool_ref(m.source, now.annotation_id)
        deleted = now.version - 1 if now.status == "deleted" else now.version
        ident = event_id(m.source, ref, "deleted", f"v{deleted}")
        if answers_repeats:
            m.candidates.append(ident)
        if now.status != "deleted":
            received = m.delivery.received_at
            m.emit("annotation.deleted", ident, received, _deletion(now), m.source.name, TOOL_ROLE)
            m.counts["region{s} deleted"] += 1


def tool_ref(source: Source, ledger_id: str) -> str:
    """``annotation/42/wqzLm1ArUX`` of ledger annotation ``ls-main-a42-wqzLm1ArUX`` (``prediction/…`` of
    ``…-p7-…``)."""
    match = _LEDGER_ID.fullmatch(ledger_id.removeprefix(f"{source.name}-"))
    if match is None:  # not one of this adapter's ids: the caller filtered by prefix, so never
        return f"annotation/{ledger_id}"
    kind = "annotation" if match["kind"] == "a" else "prediction"
    return f"{kind}/{match['tool_id']}/{match['key']}"


def note_skipped(m: Recorder, skipped: dict[str, int]) -> None:
    """Count the results skipped (relations, free text), so the summary names them."""
    for kind, n in sorted(skipped.items()):
        m.counts[f"{kind} result{{s}} skipped"] += n
