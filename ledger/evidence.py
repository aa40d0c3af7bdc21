"""Producing an evidence bundle (``ledger bundle``, ``GET /v1/bundles``) and putting it on the record.

``select_bundle`` finds the scope's events (``ledger.storage.bundles``); ``produce_bundle`` makes sure the
latest signed checkpoint of each log covers them (signing one when it does not), proves every event
against it with one batched tree read per log, and builds and seals the bundle (``ledger.bundles``);
``record_bundle`` appends its SHA-256 as a ``ledger.report_generated`` event (report ``evidence_bundle``)
in the tenant's log, so exporting evidence is itself on the record. Callers deliver the bytes only after
``record_bundle`` returned, as reports are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledger.bundles import CitedCheckpoint, EventRow, build_bundle, encode_bundle
from ledger.domain.errors import ConfigurationError, FieldError, ParameterInvalid
from ledger.domain.fields import MAX_SHORT_VALUE_LENGTH
from ledger.storage.bundles import BundleEvents, EventsScope, Scope, Selection
from ledger.verifier.bundle_format import canonical_json
from ledger.verifier.checkpoint import open_checkpoint
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import ED25519, VerifierKey

if TYPE_CHECKING:
    from ledger.checkpoints import SignedCheckpoint
    from ledger.crypto.checkpoint_keys import CheckpointSigner
    from ledger.reports.service import RenderedReport
    from ledger.runtime import Ledger
    from ledger.storage.append import Receipt

REPORT = "evidence_bundle"
MEDIA_TYPE = "application/json"
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ProducedBundle:
    """A bundle's bytes and what it holds, not yet recorded."""

    body: bytes
    sha256: str
    tenant: str
    scope: Scope
    events: int
    checkpoints: tuple[tuple[str, int], ...]
    """``(log, tree size)`` of each cited checkpoint."""
    signed: tuple[str, ...]
    """The logs whose checkpoint was signed for this bundle (the latest did not cover its events)."""


def select_bundle(ledger: Ledger, scope: Scope, *, tenant: str | None) -> Selection:
    """The events of ``scope`` in ``tenant`` (``None``: the one tenant holding what it names)."""
    return BundleEvents(ledger.db).select(scope, tenant=tenant)


def produce_bundle(
    ledger: Ledger, selection: Selection, *, progress: Progress | None = None
) -> ProducedBundle:
    """Cover, prove, read, build and seal the bundle of ``selection``; ``progress(n)`` counts events read."""
    service = ledger.checkpoints
    covering: dict[str, SignedCheckpoint] = {}
    signed: list[str] = []
    for log, positions in selection.positions.items():
        cp, fresh = _covering(ledger, log, positions[-1], selection)
        covering[log] = cp
        if fresh:
            signed.append(log)
    windows = service.verifier_keys()
    paths = {
        log: dict(
            zip(
                positions,
                ledger.trees.inclusions(log, positions, covering[log].tree_size, tenant=None),
                strict=True,
            )
        )
        for log, positions in selection.positions.items()
    }

    def inclusion(log: str, position: int, tree_size: int) -> tuple[bytes, ...]:
        if tree_size == covering[log].tree_size:
            return paths[log][position]
        return ledger.trees.inclusion(log, position, tree_size, tenant=None).hashes  # not cited today

    def consistency(log: str, old: int, new: int) -> tuple[bytes, ...]:
        return ledger.trees.consistency(log, old, new, tenant=None).hashes

    doc = build_bundle(
        scope=selection.scope.document(),
        events=_rows(BundleEvents(ledger.db), selection, progress),
        checkpoints=[_cite(cp, [w.key for w in windows]) for cp in covering.values()],
        keys=windows,
        witness_keys=service.witness_keys,
        inclusion=inclusion,
        consistency=consistency,
        sealer=_sealer(ledger),
        created_at=datetime.now(UTC),
    )
    body = encode_bundle(doc)
    del doc  # the bytes are what is kept; the document is as large again
    return ProducedBundle(
        body,
        hashlib.sha256(body).hexdigest(),
        selection.tenant,
        selection.scope,
        selection.count,
        tuple((log, cp.tree_size) for log, cp in covering.items()),
        tuple(signed),
    )


def record_bundle(ledger: Ledger, produced: ProducedBundle, *, requested_by: str) -> Receipt:
    """Append the bundle's ``ledger.report_generated`` event in its tenant's log; deliver it only after."""
    from ledger.reports.service import record

    return record(ledger, bundle_report(produced, requested_by=requested_by)).receipt


def bundle_report(produced: ProducedBundle, *, requested_by: str) -> RenderedReport:
    """The bundle as a report: what its ``ledger.report_generated`` event says."""
    from ledger.reports.service import RenderedReport

    parameters = {
        **_scope_parameters(produced.scope),
        "event_count": str(produced.events),
        "checkpoints": ",".join(f"{log}@{size}" for log, size in produced.checkpoints),
        "requested_by": requested_by,
    }
    data = {"report": REPORT, "sha256": produced.sha256, "parameters": parameters}
    return RenderedReport(produced.body, MEDIA_TYPE, produced.sha256, produced.tenant, data, produced.events)


def _scope_parameters(scope: Scope) -> dict[str, str]:
    """The scope as report parameters (text values of at most ``MAX_SHORT_VALUE_LENGTH``): a list of ids too
    long for one is recorded by its count and SHA-256; the bundle, whose digest is recorded, holds it whole."""
    if isinstance(scope, EventsScope):
        joined = ",".join(scope.ids)
        if len(joined) <= MAX_SHORT_VALUE_LENGTH:
            return {"events": joined}
        return {
            "events_count": str(len(scope.ids)),
            "events_sha256": hashlib.sha256(canonical_json(list(scope.ids))).hexdigest(),
        }
    return {k: str(v) for k, v in scope.document().items()}


def _covering(ledger: Ledger, log: str, last: int, selection: Selection) -> tuple[SignedCheckpoint, bool]:
    """The latest checkpoint of ``log`` if it holds position ``last``, else one signed now."""
    store = ledger.checkpoints.store
    latest = store.latest(log, tenant=None)
    fresh = False
    if latest is None or latest.tree_size <= last:
        fresh = ledger.checkpoints.sign(log) is not None
        latest = store.latest(log, tenant=None)
    if latest is None or latest.tree_size <= last:
        # Only the ledger's checkpoint bookkeeping lies beyond the latest checkpoint, and a checkpoint is
        # never signed for that alone (ledger.checkpoints.BOOKKEEPING): the next one will hold it.
        size = latest.tree_size if latest else 0
        name = selection.scope.parameter
        message = (
            f"selects position {last} of log {log!r}, a checkpoint record after its latest checkpoint"
            f" (tree size {size}); it is covered once the log grows and the next checkpoint is signed"
        )
        raise ParameterInvalid(f"{name} {message}", errors=[FieldError(name, message)])
    return latest, fresh


def _cite(cp: SignedCheckpoint, keys: Sequence[VerifierKey]) -> CitedCheckpoint:
    """The checkpoint as cited, with the signing time its ML-DSA-44 signature states (what the verifier
    compares ``signed_at`` with); the time of its record when no such signature verifies."""
    note = cp.full_note.encode()
    try:
        stated = open_checkpoint(note, keys).signed_at
    except VerifierError as exc:
        msg = (
            f"the latest checkpoint of log {cp.log!r} does not verify under the ledger's keys: {exc.message}"
        )
        raise ConfigurationError(msg) from None
    return CitedCheckpoint(cp.log, note, stated or cp.signed_at)


def _sealer(ledger: Ledger) -> CheckpointSigner:
    for signer in ledger.checkpoints.keys.signers():
        if signer.signature_type == ED25519:
            return signer
    msg = "the checkpoint key provider has no Ed25519 key to seal bundles with"
    raise ConfigurationError(msg)


def _rows(events: BundleEvents, selection: Selection, progress: Progress | None) -> Iterator[EventRow]:
    for log, positions in selection.positions.items():
        for position, canonical in events.read_canonical(log, positions):
            yield EventRow(log, position, canonical)
            if progress is not None:
                progress(1)
