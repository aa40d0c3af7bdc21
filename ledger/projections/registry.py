"""Every projection by name, in the order they run inside the append transaction."""

from __future__ import annotations

from typing import Protocol

from ledger.projections.access import AccessProjector
from ledger.projections.checkpoints import CheckpointProjector
from ledger.projections.provenance import ProvenanceProjector
from ledger.projections.quality import QualityProjector
from ledger.projections.retention import RetentionProjector
from ledger.projections.workflow import WorkflowProjector
from ledger.quality.policy import QcPolicy
from ledger.settings import AnomalySettings
from ledger.storage.append import Projector


class NamedProjector(Projector, Protocol):
    """A projector with a name (for ``ledger projections rebuild NAME``) and the tables it owns."""

    name: str
    tables: tuple[str, ...]


REBUILT_TOGETHER: tuple[frozenset[str], ...] = (frozenset({"workflow", "quality"}),)
"""Projections that are only rebuilt together: quality reads the annotations the workflow tables held
before each batch and writes its flags into the workflow's ``proj_flags``."""


def all_projectors(
    anomalies: AnomalySettings | None = None, qc_policy: QcPolicy | None = None
) -> list[NamedProjector]:
    """Fresh instances of every projection; ``anomalies`` are the access rules' thresholds (default: the
    defaults of ``AnomalySettings``), ``qc_policy`` the QC policy items are held to (default: none).

    The access and quality projectors run before the workflow projector: they read what the workflow
    tables hold before each batch (assignments and credentials; annotations), and apply the batch's own
    in memory by the workflow's rules (``projections.access``, ``projections.quality``).
    """
    return [
        AccessProjector(anomalies),
        QualityProjector(qc_policy),
        WorkflowProjector(),
        ProvenanceProjector(),
        RetentionProjector(),
        CheckpointProjector(),
    ]


def rebuilt_together(name: str | None, projectors: list[NamedProjector]) -> list[NamedProjector]:
    """The projectors ``ledger projections rebuild NAME`` replays: NAME and those rebuilt with it
    (every projector when NAME is None), in registry order."""
    if name is None:
        return projectors
    names = {name}.union(*(group for group in REBUILT_TOGETHER if name in group))
    return [p for p in projectors if p.name in names]
