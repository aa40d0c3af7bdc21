"""Every projection by name, in the order they run inside the append transaction."""

from __future__ import annotations

from typing import Protocol

from ledger.projections.checkpoints import CheckpointProjector
from ledger.projections.provenance import ProvenanceProjector
from ledger.projections.retention import RetentionProjector
from ledger.projections.workflow import WorkflowProjector
from ledger.storage.append import Projector


class NamedProjector(Projector, Protocol):
    """A projector with a name (for ``ledger projections rebuild NAME``) and the tables it owns."""

    name: str
    tables: tuple[str, ...]


def all_projectors() -> list[NamedProjector]:
    """Fresh instances of every projection."""
    return [WorkflowProjector(), ProvenanceProjector(), RetentionProjector(), CheckpointProjector()]
