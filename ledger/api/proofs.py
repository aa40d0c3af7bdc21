"""``/v1/logs/{log}/proofs``: RFC 9162 inclusion and consistency proofs from a log's Merkle tree.

Tenant-scoped like every read: a log of another tenant is not found (404). Proofs are relative to a tree
size: by default the latest signed checkpoint's (when it covers what is proved), otherwise the log's
current one. ``"checkpoint"`` carries the signed checkpoint of that size, or ``null`` when none was signed
at it (then the proof is relative to a tree head no one signed yet: ask again after the next checkpoint).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, cast

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, ConsistencyProofBody, InclusionProofBody, responses
from ledger.api.reads import Reader, one
from ledger.checkpoints import SignedCheckpoint
from ledger.runtime import Ledger

Log = Annotated[str, p.path("the log's name (today, its tenant's)", max_length=p.NAME_MAX)]
SIZE_MAX = 2**63 - 1  # positions and sizes are bigint


def _size(description: str, *, name: str | None = None) -> QueryParameter:
    return QueryParameter(name=name, description=description, ge=0, le=SIZE_MAX)


class ProofController(Controller):
    """Thin handlers over ``ledger.storage.tree.LogTrees``."""

    path = "/v1/logs/{log:str}/proofs"
    tags = ["proofs"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/inclusion",
        summary="Inclusion proof of the event at a position (RFC 9162 §2.1.3)",
        description=(
            "The audit path from the leaf at `position` to the root of the tree of `tree_size` leaves, "
            "hashes in base64, leaf to root. Without `tree_size`: the latest signed checkpoint's size when "
            "it covers `position`, else the log's current size. `checkpoint` is the signed checkpoint of "
            "that size (its note with any cosignatures), or null when none was signed at it."
        ),
        responses=responses(*READ_ERRORS, 404),
    )
    async def inclusion(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        log: Log,
        position: Annotated[int, _size("the event's position in its log (its leaf index)")],
        tree_size: Annotated[
            int | None, _size("size of the tree to prove against; default the latest checkpoint's")
        ] = None,
    ) -> InclusionProofBody:
        """The inclusion proof, with the root and leaf hash it leads between and the checkpoint."""
        query = partial(inclusion_body, ledger, log, position, tree_size, tenant=reader.tenant)
        return cast(InclusionProofBody, await reader.read(query, resource=f"log:{log}/inclusion", count=one))

    @get(
        "/consistency",
        summary="Consistency proof between two tree sizes (RFC 9162 §2.1.4)",
        description=(
            "Proves that the tree of `to` leaves extends the tree of `from` leaves; both roots and the "
            "proof's hashes in base64. Without `to`: the latest signed checkpoint's size when it is at "
            "least `from`, else the log's current size. `checkpoint` is the signed checkpoint of size `to`, "
            "or null when none was signed at it. A witness may ask too."
        ),
        responses=responses(*READ_ERRORS, 404),
    )
    async def consistency(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        log: Log,
        from_: Annotated[int, _size("the older tree size", name="from")],
        to: Annotated[int | None, _size("the newer tree size; default the latest checkpoint's")] = None,
    ) -> ConsistencyProofBody:
        """The consistency proof, with the roots of both sizes and the checkpoint of ``to``."""
        query = partial(consistency_body, ledger, log, from_, to, tenant=reader.tenant)
        body = await reader.read(query, resource=f"log:{log}/consistency", count=one)
        return cast(ConsistencyProofBody, body)


def inclusion_body(
    ledger: Ledger, log: str, position: int, tree_size: int | None, *, tenant: str
) -> dict[str, Any]:
    """The JSON of an inclusion proof and its checkpoint (also ``GET /v1/events/{id}?proof=true``)."""
    store = ledger.checkpoints.store
    checkpoint: SignedCheckpoint | None
    if tree_size is None:
        latest = store.latest(log, tenant=tenant)
        checkpoint = latest if latest is not None and position < latest.tree_size else None
        tree_size = checkpoint.tree_size if checkpoint else None
    else:
        checkpoint = store.at(log, tree_size, tenant=tenant)
    proof = ledger.trees.inclusion(log, position, tree_size, tenant=tenant)
    return {**proof.as_dict(), "checkpoint": checkpoint.as_dict() if checkpoint else None}


def consistency_body(ledger: Ledger, log: str, old: int, new: int | None, *, tenant: str) -> dict[str, Any]:
    """The JSON of a consistency proof and the checkpoint of its newer size."""
    store = ledger.checkpoints.store
    if new is None:
        latest = store.latest(log, tenant=tenant)
        new = latest.tree_size if latest is not None and latest.tree_size >= old else None
    proof = ledger.trees.consistency(log, old, new, tenant=tenant)
    checkpoint = store.at(log, proof.new_size, tenant=tenant)
    return {**proof.as_dict(), "checkpoint": checkpoint.as_dict() if checkpoint else None}
