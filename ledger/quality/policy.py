"""The quality-control policy (``LEDGER_QC_POLICY``): per application, the thresholds an item and an
annotator are held to, read from a TOML or YAML file once at the entry point.

Thresholds are a policy, not constants: a submission cites the file by its SHA-256, which every row and
flag computed from it carries. An unknown key, a value of the wrong type or outside its range is refused
with ``PolicyInvalid`` naming the file and the field (``applications.<name>.<field>``).
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

from ledger.domain.errors import ConfigurationError, FieldError

Scale = Literal["nominal", "ordinal", "interval"]
Share = Field(default=None, ge=0.0, le=1.0, strict=True)  # a number, never a string that looks like one
Name = Field(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f-\x9f]+$")


class PolicyInvalid(ConfigurationError):
    """The QC policy file cannot be used: unreadable, not TOML/YAML, or a field is wrong (``errors``)."""

    code = "qc_policy_invalid"
    title = "The quality-control policy is not valid"


class Application(BaseModel):
    """One application (task) of the policy: which annotations belong to it and what they are held to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    guideline: StrictStr = Name
    """Annotations under this guideline id belong to the application."""
    datasets: tuple[StrictStr, ...] = ()
    """Only these datasets (empty: every dataset)."""
    scale: Scale = "nominal"
    classes: tuple[StrictStr, ...] = ()
    """The order of the label classes; required for ordinal and interval scales."""
    item_iou_min: float | None = Share
    """An item whose readers' boxes or polygons of one class overlap less (IoU) is below policy."""
    item_dice_min: float | None = Share
    """The same with the Dice coefficient."""
    item_agreement_min: float | None = Share
    """An item on which a smaller share of reader pairs gives the same class is below policy."""
    kappa_excellent: float = Field(default=0.8, ge=-1.0, le=1.0, strict=True)
    kappa_acceptable: float = Field(default=0.6, ge=-1.0, le=1.0, strict=True)
    annotator_accuracy_min: float | None = Share
    """An annotator whose accuracy against adjudicated final labels is lower is reported."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.scale != "nominal" and not self.classes:
            msg = f"a {self.scale} scale needs the order of its classes"
            raise ValueError(msg)
        if len(set(self.classes)) != len(self.classes):
            msg = "classes must not repeat"
            raise ValueError(msg)
        if self.kappa_acceptable > self.kappa_excellent:
            msg = f"kappa_acceptable ({self.kappa_acceptable}) must not exceed kappa_excellent ({self.kappa_excellent})"
            raise ValueError(msg)
        return self

    def covers(self, dataset: str, guideline_id: str) -> bool:
        """Whether an annotation of ``dataset`` under ``guideline_id`` belongs to this application."""
        return guideline_id == self.guideline and (not self.datasets or dataset in self.datasets)


class _PolicyFile(BaseModel):
    """What the file holds: applications by name, nothing else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    applications: dict[StrictStr, Application] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unambiguous(self) -> Self:
        claimed: dict[tuple[str, str], str] = {}
        for name in sorted(self.applications):
            app = self.applications[name]
            for dataset in app.datasets or ("*",):
                other = claimed.setdefault((app.guideline, dataset), name)
                if other != name:
                    scope = "every dataset" if dataset == "*" else f"dataset {dataset}"
                    msg = f"applications {other} and {name} both claim guideline {app.guideline} for {scope}"
                    raise ValueError(msg)
        return self


class QcPolicy(BaseModel):
    """The policy in force: its applications, the SHA-256 of the file's bytes and where it was read."""

    model_config = ConfigDict(frozen=True)

    applications: dict[str, Application] = Field(default_factory=dict)
    sha256: str | None = None
    source: str | None = None

    @classmethod
    def empty(cls) -> QcPolicy:
        """No applications: nothing is held to a threshold (``LEDGER_QC_POLICY`` unset)."""
        return cls()

    def application_for(self, dataset: str, guideline_id: str) -> tuple[str, Application] | None:
        """The application an annotation of ``dataset`` under ``guideline_id`` belongs to: one listing the
        dataset before one for every dataset (the file cannot make two equally specific ones match)."""
        matches = [(n, a) for n, a in self.applications.items() if a.covers(dataset, guideline_id)]
        matches.sort(key=lambda m: (not m[1].datasets, m[0]))
        return matches[0] if matches else None


def load_policy(path: Path | str) -> QcPolicy:
    """Read the policy at ``path`` (``.toml``, ``.yaml`` or ``.yml``); ``PolicyInvalid`` names the file
    and each wrong field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"LEDGER_QC_POLICY: cannot read {path}: {exc.strerror or exc}"
        raise PolicyInvalid(msg) from None
    document = _parse(path, raw)
    try:
        parsed = _PolicyFile.model_validate(document)
    except ValidationError as exc:
        errors = [FieldError(_field(err["loc"]), err["msg"]) for err in exc.errors()]
        listed = "; ".join(f"{e.field}: {e.message}" for e in errors)
        msg = f"QC policy {path}: {listed}"
        raise PolicyInvalid(msg, errors=errors) from None
    return QcPolicy(
        applications=dict(parsed.applications), sha256=hashlib.sha256(raw).hexdigest(), source=str(path)
    )


def _parse(path: Path, raw: bytes) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(raw.decode("utf-8"))
        if suffix in (".yaml", ".yml"):
            document = yaml.safe_load(raw.decode("utf-8"))
            return {} if document is None else document
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        msg = f"QC policy {path} is not valid {suffix.lstrip('.').upper()}: {exc}"
        raise PolicyInvalid(msg) from None
    msg = f"QC policy {path}: the file must end in .toml, .yaml or .yml, not {suffix or 'nothing'!r}"
    raise PolicyInvalid(msg)


def _field(loc: tuple[int | str, ...]) -> str:
    """``("applications", "x", "item_iou_min")`` as ``applications.x.item_iou_min``; a model-level check
    names the application itself."""
    return ".".join(str(part) for part in loc) or "(file)"
