"""Signed checkpoints (issue 8, DESIGN §4): each log's tree head, signed, recorded, published.

The stable API (other packages build on it; keep it as it is):

* ``CheckpointService`` (``ledger.checkpoints`` of a wired ``Ledger``):
  ``sign(log) -> SignedCheckpoint | None`` signs now (``None``: nothing new since the latest checkpoint);
  ``due(log) -> bool``; ``sign_due() -> list[SignedCheckpoint]``; ``publish_pending()``;
  ``cosign(log, body, *, tenant) -> Cosigned``; ``rotate_keys(system_tenant) -> Rotation``;
  ``verifier_keys() -> tuple[KeyWindow, ...]``; ``witness_keys``; ``origin(log)``; ``store``; ``directory``.
* ``CheckpointStore`` (``service.store``): ``latest(log, *, tenant)``, ``at(log, size, *, tenant)``,
  ``page(log, *, tenant, cursor, limit) -> CheckpointPage``, ``every(log)`` (all, by size),
  ``states(log=None) -> list[LogState]``. ``tenant=None`` reads any tenant's logs (internal callers).
* ``SignedCheckpoint``: ``log, tree_size, tenant, root, note`` (the note as the log signed it),
  ``signed_at`` (recorded time of its event), ``event_id, position, cosignatures`` (witness lines),
  ``full_note`` (note + cosignature lines, what is served and published), ``as_dict()``.
* ``DirectoryPublisher(root).path(cp)`` is ``<LEDGER_CHECKPOINT_DIR>/<log>/<size>.checkpoint``;
  ``KafkaPublisher`` produces to ``TOPIC`` = ``ledger.checkpoints``, key the log, value ``full_note``.
* ``CheckpointRunner(service).start() / .poke() / .stop()``: the periodic signer of serve and consume.

Event ids are deterministic: ``ledger:checkpoint:<size>``, ``ledger:cosignature:<size>:<witness key id>:<timestamp>``
(the ``ledger:`` prefix is refused on producers' events, so none can take such an id first).
"""

from __future__ import annotations

from ledger.checkpoints.publication import TOPIC, DirectoryPublisher, KafkaPublisher, Publisher
from ledger.checkpoints.runner import CheckpointRunner
from ledger.checkpoints.service import COSIGNED, SIGNED, CheckpointService, Cosigned, Rotation
from ledger.checkpoints.store import BOOKKEEPING, CheckpointPage, CheckpointStore, LogState, SignedCheckpoint
from ledger.domain.internal import KEY_ROTATED

__all__ = [
    "BOOKKEEPING",
    "COSIGNED",
    "KEY_ROTATED",
    "SIGNED",
    "TOPIC",
    "CheckpointPage",
    "CheckpointRunner",
    "CheckpointService",
    "CheckpointStore",
    "Cosigned",
    "DirectoryPublisher",
    "KafkaPublisher",
    "LogState",
    "Publisher",
    "Rotation",
    "SignedCheckpoint",
]
