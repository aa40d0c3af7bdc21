"""``/v1/logs/{log}/proofs``: RFC 9162 inclusion and consistency proofs from a log's Merkle tree.

Tenant-scoped like every read: a log of another tenant is not found (404). Proofs are relative to a tree
size, by default the log's current one; signed checkpoints (issue 8) will name the checkpoint as well.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, cast

from anyio import to_thread
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.openapi import READ_ERRORS, SECURITY, ConsistencyProofBody, InclusionProofBody, responses
from ledger.auth.tokens import READERS, Principal
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
            "The audit path from the leaf at `position` to the root of the tree of `tree_size` leaves "
            "(default: the log's current size), hashes in base64, leaf to root."
        ),
        responses=responses(*READ_ERRORS, 404),
    )
    async def inclusion(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        log: Log,
        position: Annotated[int, _size("the event's position in its log (its leaf index)")],
        tree_size: Annotated[int | None, _size("size of the tree to prove against; default current")] = None,
    ) -> InclusionProofBody:
        """The inclusion proof, with the root and leaf hash it leads between."""
        principal.require(READERS)
        query = partial(ledger.trees.inclusion, log, position, tree_size, tenant=principal.tenant)
        proof = await to_thread.run_sync(query)
        return cast(InclusionProofBody, proof.as_dict())

    @get(
        "/consistency",
        summary="Consistency proof between two tree sizes (RFC 9162 §2.1.4)",
        description=(
            "Proves that the tree of `to` leaves (default: the log's current size) extends the tree of "
            "`from` leaves; both roots and the proof's hashes in base64."
        ),
        responses=responses(*READ_ERRORS, 404),
    )
    async def consistency(
        self,
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        log: Log,
        from_: Annotated[int, _size("the older tree size", name="from")],
        to: Annotated[int | None, _size("the newer tree size; default current")] = None,
    ) -> ConsistencyProofBody:
        """The consistency proof, with the roots of both sizes."""
        principal.require(READERS)
        query = partial(ledger.trees.consistency, log, from_, to, tenant=principal.tenant)
        proof = await to_thread.run_sync(query)
        return cast(ConsistencyProofBody, proof.as_dict())
