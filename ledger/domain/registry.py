"""Which event types exist, the model of each, and which of their fields are sealed or free text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ledger.domain import events as ev
from ledger.domain.fields import FREE_TEXT, SENSITIVE, SIGNED_ENCODING, EventData


@dataclass(frozen=True)
class EventType:
    """A registered event type: its ``data`` model and how it is handled at ingest."""

    name: str
    model: type[EventData]
    schemaversion: int = 1
    internal: bool = False  # written only by the ledger itself, refused from producers
    description: str = ""

    @cached_property
    def data_schema(self) -> dict[str, Any]:
        """The JSON Schema of ``data``."""
        return self.model.model_json_schema()

    @cached_property
    def sensitive_paths(self) -> tuple[tuple[str, ...], ...]:
        """Paths inside ``data`` of values sealed before hashing."""
        return tuple(_marked_paths(self.data_schema, SENSITIVE))

    @cached_property
    def free_text_paths(self) -> tuple[tuple[str, ...], ...]:
        """Paths inside ``data`` of human-written text scanned for direct identifiers."""
        return tuple(_marked_paths(self.data_schema, FREE_TEXT))

    @cached_property
    def signed_encoding_paths(self) -> tuple[tuple[str, ...], ...]:
        """Paths inside ``data`` of signed-format text the ledger writes, not scanned for identifiers."""
        return tuple(_marked_paths(self.data_schema, SIGNED_ENCODING))

    @property
    def subject_field(self) -> str | None:
        """The ``data`` field naming the data subject, when it is not the actor."""
        value = getattr(self.model, "subject_field", None)
        return value if isinstance(value, str) else None


def _marked_paths(schema: dict[str, Any], marker: str) -> list[tuple[str, ...]]:
    defs = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return dict(defs[ref.removeprefix("#/$defs/")])
        return node

    def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        for name, prop in resolve(node).get("properties", {}).items():
            arms = [resolve(a) for a in prop.get("anyOf", [prop])]
            path = (*prefix, name)
            if any(a.get(marker) for a in arms):
                found.append(path)
            for arm in arms:
                if arm.get("type") == "object" and "properties" in arm:
                    found.extend(walk(arm, path))
        return found

    return walk(schema, ())


def _types(model: type[EventData], description: str, *names: str, internal: bool = False) -> list[EventType]:
    return [EventType(name=n, model=model, internal=internal, description=description) for n in names]


_ALL: list[EventType] = [
    *_types(ev.AnnotationWritten, "A version of an annotation", "annotation.created", "annotation.updated"),
    *_types(ev.AnnotationDeleted, "An annotation withdrawn", "annotation.deleted"),
    *_types(ev.ReviewSubmitted, "A review decision at a level", "review.submitted"),
    *_types(ev.AdjudicationCompleted, "An item's final label chosen", "adjudication.completed"),
    *_types(
        ev.DataAccessed,
        "Access to imaging data",
        "access.data_viewed",
        "access.data_exported",
        "access.denied",
        "access.break_glass",
    ),
    *_types(ev.LoginAttempted, "A sign-in attempt", "auth.login_succeeded", "auth.login_failed"),
    *_types(ev.AssignmentChanged, "Work assigned or withdrawn", "assignment.created", "assignment.revoked"),
    *_types(ev.ItemChanged, "An item entered or left a tool's project", "item.imported", "item.removed"),
    *_types(ev.GuidelinePublished, "A guideline version takes effect", "guideline.published"),
    *_types(ev.GuidelineRetired, "A guideline version leaves effect", "guideline.retired"),
    *_types(ev.GuidelineAcknowledged, "A guideline version read and accepted", "guideline.acknowledged"),
    *_types(
        ev.CredentialIssued, "A qualification granted or renewed", "credential.granted", "credential.renewed"
    ),
    *_types(ev.CredentialEnded, "A qualification ended", "credential.revoked", "credential.expired"),
    EventType("training.completed", ev.TrainingCompleted, schemaversion=2, description="A training passed"),
    *_types(ev.DatasetReleaseCreated, "A dataset release frozen", "dataset.release_created"),
    *_types(
        ev.LegalHoldChanged,
        "A legal hold placed or released",
        "retention.hold_placed",
        "retention.hold_released",
    ),
    *_types(ev.ErasureChanged, "Crypto-shredding asked for", "erasure.requested"),
    # Written only by the ledger, in the transaction that deletes the subject's key (ledger.erasure): a
    # producer's "executed" would claim a deletion nothing performed. Stored ones still read and verify.
    *_types(ev.ErasureChanged, "Crypto-shredding done", "erasure.executed", internal=True),
    *_types(ev.CheckpointSigned, "A signed tree head", "ledger.checkpoint_signed", internal=True),
    *_types(ev.CheckpointCosigned, "A witness's cosignature", "ledger.checkpoint_cosigned", internal=True),
    *_types(ev.KeyRotated, "A key rotated", "ledger.key_rotated", internal=True),
    *_types(ev.IngestRejected, "A message refused at ingest", "ledger.ingest_rejected", internal=True),
    *_types(ev.ReportGenerated, "A report produced", "ledger.report_generated", internal=True),
    *_types(ev.AnomalyReviewed, "An access anomaly reviewed", "ledger.anomaly_reviewed", internal=True),
]

EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _ALL}
"""Every registered event type by name, at its current schema version. Unknown types are refused at ingest."""

OLDER_VERSIONS: dict[tuple[str, int], EventType] = {
    ("training.completed", 1): EventType(
        "training.completed", ev.TrainingCompletedV1, schemaversion=1, description="A training passed (v1)"
    ),
}
"""Superseded schema versions still accepted at ingest; stored as received and upcast on read."""


def event_type_at(name: str, schemaversion: int) -> EventType | None:
    """The registered type ``name`` at ``schemaversion`` (current or still accepted), if any."""
    current = EVENT_TYPES.get(name)
    if current is not None and current.schemaversion == schemaversion:
        return current
    return OLDER_VERSIONS.get((name, schemaversion))
