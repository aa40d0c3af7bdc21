"""Every projection by name, in the order they run inside the append transaction."""

from __future__ import annotations

from typing import Protocol

from ledger.projections.access import AccessProjector
from ledger.projections.checkpoints import CheckpointProjector
from ledger.projections.provenance import ProvenanceProjector
from ledger.projections.retention import RetentionProjector
from ledger.projections.workflow import WorkflowProjector
from ledger.settings import AnomalySettings
from ledger.storage.append import Projector


class NamedProjector(Projector, Protocol):
    """A projector with a name (for ``ledger projections rebuild NAME``) and the tables it owns."""

    name: str
    tables: tuple[str, ...]


def all_projectors(anomalies: AnomalySettings | None = None) -> list[NamedProjector]:
    """Fresh instances of every projection; ``anomalies`` are the access rules' thresholds (default: the
    defaults of ``AnomalySettings``).

    The access projector runs before the workflow projector: it reads the assignments and credentials the
    workflow tables hold before each batch, and applies the batch's own in memory (``projections.access``).
    """
    return [
        AccessProjector(anomalies),
        WorkflowProjector(),
        ProvenanceProjector(),
        RetentionProjector(),
        CheckpointProjector(),
    ]
