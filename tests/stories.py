"""Scripted annotation histories for projection tests: a small builder of valid events at given times."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.domain.envelope import ReceivedEvent, validate_event

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DATASET = "chest-ct-2026"


def at(hours: float) -> datetime:
    """T0 plus ``hours``."""
    return T0 + timedelta(hours=hours)


def ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Story:
    """Builds the events of one tenant's history; ``events`` are validated, in the order written."""

    _ids = itertools.count()

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.events: list[ReceivedEvent] = []

    def add(self, type_: str, when: datetime, actor: str, data: dict[str, Any], *, role: str = "annotator",
            schemaversion: int | None = None) -> str:  # fmt: skip
        event_id = f"{self.tenant}-{next(self._ids):06d}"
        raw: dict[str, Any] = {"specversion": "1.0", "id": event_id, "source": "urn:test", "type": type_,
                               "time": ts(when), "tenant": self.tenant, "actor": actor, "actorrole": role, "data": data}  # fmt: skip
        if schemaversion is not None:
            raw["schemaversion"] = schemaversion
        self.events.append(validate_event(raw))
        return event_id

    def credential(self, who: str, kind: str, start: datetime, until: datetime | None = None, *,
                   level: str | None = None, renew: bool = False, cred: str | None = None) -> str:  # fmt: skip
        data: dict[str, Any] = {"credential_id": cred or f"cred-{who}-{kind}", "annotator": who, "kind": kind,
                                "issuer": "Board", "valid_from": ts(start)}  # fmt: skip
        if until is not None:
            data["valid_until"] = ts(until)
        if kind == "internal_level":
            data["level"] = level or "junior"
        return self.add(
            "credential.renewed" if renew else "credential.granted", start, "office", data, role="admin"
        )

    def end_credential(
        self, who: str, kind: str, when: datetime, how: str = "revoked", cred: str | None = None
    ) -> str:
        return self.add(f"credential.{how}", when, "office",
                        {"credential_id": cred or f"cred-{who}-{kind}", "annotator": who, "effective_at": ts(when)},
                        role="admin")  # fmt: skip

    def guideline(self, version: str, when: datetime, supersedes: str | None = None) -> str:
        data: dict[str, Any] = {"guideline_id": "chest-ct", "version": version, "title": f"Chest CT {version}",
                                "document_sha256": hashlib.sha256(version.encode()).hexdigest(),
                                "effective_from": ts(when)}  # fmt: skip
        if supersedes:
            data["supersedes"] = supersedes
        return self.add("guideline.published", when, "qa-lead", data, role="admin")

    def retire(self, version: str, when: datetime) -> str:
        return self.add("guideline.retired", when, "qa-lead",
                        {"guideline_id": "chest-ct", "version": version, "effective_until": ts(when)}, role="admin")  # fmt: skip

    def annotate(self, who: str, item: str, ann: str, when: datetime, *, version: int = 1, label: str = "nodule",
                 guideline: str = "1.0", update: bool = False, origin: str = "human") -> str:  # fmt: skip
        data: dict[str, Any] = {"dataset": DATASET, "item": item, "annotation_id": ann, "version": version,
                                "label_class": label, "geometry": {"kind": "bbox", "x": 1, "y": 2, "width": 3, "height": 4},
                                "origin": origin, "guideline_id": "chest-ct", "guideline_version": guideline}  # fmt: skip
        if version > 1:
            data["previous_version"] = version - 1
        if origin == "model":
            data.update(model_name="detector", model_version="3.2.0")
        kind = "annotation.updated" if update else "annotation.created"
        return self.add(kind, when, who, data, role="model" if origin == "model" else "annotator")

    def delete(self, who: str, item: str, ann: str, when: datetime, *, version: int) -> str:
        return self.add("annotation.deleted", when, who, {"dataset": DATASET, "item": item, "annotation_id": ann,
                                                          "version": version, "previous_version": version - 1})  # fmt: skip

    def review(self, who: str, item: str, ann: str, when: datetime, *, level: int, decision: str = "accept",
               version: int = 1) -> str:  # fmt: skip
        data: dict[str, Any] = {"dataset": DATASET, "item": item, "annotation_id": ann, "annotation_version": version,
                                "level": level, "decision": decision,
                                "signature_meaning": "approval" if level >= 3 else "review"}  # fmt: skip
        if decision == "modify":
            data["resulting_annotation_id"] = ann
        return self.add("review.submitted", when, who, data, role="physician" if level >= 3 else "annotator")

    def adjudicate(self, who: str, item: str, anns: list[str], final: str, when: datetime, *, level: int = 4,
                   label: str = "nodule") -> str:  # fmt: skip
        return self.add("adjudication.completed", when, who,
                        {"dataset": DATASET, "item": item, "annotation_ids": anns, "final_annotation_id": final,
                         "final_label_class": label, "level": level, "method": "expert",
                         "signature_meaning": "approval"}, role="expert")  # fmt: skip

    def view(self, who: str, item: str, when: datetime) -> str:
        return self.add("access.data_viewed", when, who, {"resource": f"{DATASET}/{item}", "dataset": DATASET,
                                                          "item": item, "purpose_of_use": "annotation",
                                                          "outcome": "success", "source_address": "10.0.0.7"})  # fmt: skip
