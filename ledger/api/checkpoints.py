"""``/v1/logs/{log}/checkpoint(s)``, ``/v1/logs/{log}/cosignatures`` and ``/v1/keys``: signed tree heads.

Tenant-scoped like every read: a log of another tenant is not found (404). Readers (auditor, security,
regulatory, admin) and witnesses may read checkpoints and keys; only a ``witness`` token posts
cosignatures, and only on its own tenant's logs.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, cast

from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from ledger.api import params as p
from ledger.api.bodies import BodyGate
from ledger.api.openapi import (
    READ_ERRORS,
    SECURITY,
    CheckpointPageBody,
    CosignatureOperation,
    CosignedBody,
    KeysBody,
    responses,
)
from ledger.api.reads import Reader, one
from ledger.auth.tokens import Principal
from ledger.checkpoints import SignedCheckpoint
from ledger.domain.errors import NotFound, UnsupportedMediaType
from ledger.domain.stored import format_time
from ledger.runtime import Ledger
from ledger.verifier.checkpoint import checkpoint_key_name
from ledger.verifier.keys import TYPE_NAMES

Log = Annotated[str, p.path("the log's name (today, its tenant's)", max_length=p.NAME_MAX)]
# Litestar adds "; charset=utf-8" to text/* itself: it is served as text/plain; charset=utf-8.
NOTE_MEDIA_TYPE = "text/plain"


class CheckpointController(Controller):
    """Thin handlers over ``ledger.checkpoints``."""

    path = "/v1/logs/{log:str}"
    tags = ["checkpoints"]  # noqa: RUF012 - Litestar reads this class attribute
    security = SECURITY

    @get(
        "/checkpoint",
        summary="The log's latest signed checkpoint (C2SP signed note)",
        description=(
            "The C2SP tlog-checkpoint signed note: origin `<deployment>/logs/<log>`, tree size, base64 root; "
            "the log's Ed25519 (type 0x01) and ML-DSA-44 (type 0x06) signatures, then any witness "
            "cosignature/v1 lines. Verify it with the keys of GET /v1/keys. 404 while the log has none."
        ),
        media_type=NOTE_MEDIA_TYPE,
        responses=responses(*READ_ERRORS, 404),
    )
    async def latest(
        self, ledger: NamedDependency[Ledger], reader: NamedDependency[Reader], log: Log
    ) -> Response[str]:
        """The signed note of the checkpoint with the largest tree size."""
        query = partial(_latest, ledger, log, reader.tenant)
        checkpoint = await reader.read(query, resource=f"log:{log}/checkpoint", count=one)
        return Response(checkpoint.full_note, media_type=NOTE_MEDIA_TYPE)

    @get(
        "/checkpoints",
        summary="The log's signed checkpoints, by tree size",
        description="Oldest first; a page holds at most `limit`; follow `next_cursor`. Empty for an unknown log.",
        responses=responses(*READ_ERRORS),
    )
    async def list_checkpoints(
        self,
        ledger: NamedDependency[Ledger],
        reader: NamedDependency[Reader],
        log: Log,
        cursor: Annotated[
            str | None, p.query("next_cursor of the previous page", max_length=p.CURSOR_MAX)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000, description="page size")] = 100,
    ) -> CheckpointPageBody:
        """A page of checkpoints, each with its signed note and cosignatures."""
        query = partial(ledger.checkpoints.store.page, log, tenant=reader.tenant, cursor=cursor, limit=limit)
        page = await reader.read(query, resource=f"log:{log}/checkpoints", count=lambda p: len(p.checkpoints))
        return {
            "checkpoints": [cast(Any, c.as_dict()) for c in page.checkpoints],
            "next_cursor": page.next_cursor,
        }

    @post(
        "/cosignatures",
        summary="Record a witness's cosignature on a checkpoint (C2SP tlog-cosignature)",
        description=(
            "Body (text/plain): the checkpoint note as GET /v1/logs/{log}/checkpoint serves it, with the "
            "witness's cosignature/v1 (Ed25519, type 0x04) line(s) added. At least one line must verify "
            "under a key of LEDGER_WITNESS_KEYS; a configured key's line that does not verify refuses the "
            "body (422), as does a note whose checkpoint differs from the one the log signed; an unknown "
            "tree size is 404. Each new line is recorded as a ledger.checkpoint_cosigned event. "
            "201 when something new was recorded, 200 when every line was on the record already. Role witness."
        ),
        status_code=201,
        operation_class=CosignatureOperation,
        responses={
            200: ResponseSpec(cast(Any, CosignedBody), description="Every cosignature was recorded before"),
            **responses(400, 401, 403, 404, 413, 415, 422, 503),
        },
    )
    async def cosign(
        self,
        request: Request[Any, Any, Any],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        bodies: NamedDependency[BodyGate],
        log: Log,
    ) -> Response[CosignedBody]:
        """Verify the cosignatures against the configured witness keys and record the new ones."""
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "text/plain":
            msg = f"send the cosigned checkpoint note as text/plain, not {media_type or 'no content type'}"
            raise UnsupportedMediaType(msg)
        async with bodies.body(request) as body:
            query = partial(ledger.checkpoints.cosign, log, body, tenant=principal.tenant)
            done = await to_thread.run_sync(query)
        content: CosignedBody = {
            "log": done.checkpoint.log,
            "tree_size": done.checkpoint.tree_size,
            "recorded": list(done.recorded),
            "repeated": list(done.repeated),
            "checkpoint": cast(Any, done.checkpoint.as_dict()),
        }
        return Response(content, status_code=201 if done.recorded else 200)


@get(
    "/v1/keys",
    summary="Checkpoint verifier keys (current and retired) and accepted witness keys",
    description=(
        "Every checkpoint key as a signed-note verifier key (vkey) with the window in which it signs "
        "[created_at, retired_at): one Ed25519 and one ML-DSA-44 key per generation, under the key name "
        "`<deployment>/checkpoints`. A checkpoint signed by a retired key after its retirement must be "
        "refused. Also the witness keys (LEDGER_WITNESS_KEYS) whose cosignatures are recorded."
    ),
    tags=["checkpoints"],
    security=SECURITY,
    responses=responses(401, 403, 503),
)
async def keys(ledger: NamedDependency[Ledger], reader: NamedDependency[Reader]) -> KeysBody:
    """The keys an auditor needs to verify this deployment's checkpoints."""
    body = await reader.read(
        partial(_keys, ledger), resource="keys", count=lambda b: len(b["checkpoint_keys"])
    )
    return cast(KeysBody, body)


def _latest(ledger: Ledger, log: str, tenant: str) -> SignedCheckpoint:
    checkpoint = ledger.checkpoints.store.latest(log, tenant=tenant)
    if checkpoint is None:
        msg = f"log {log!r} has no signed checkpoint (or there is no such log in tenant {tenant!r})"
        raise NotFound(msg)
    return checkpoint


def _keys(ledger: Ledger) -> dict[str, Any]:
    service = ledger.checkpoints
    windows = service.verifier_keys()
    transitions = service.key_transitions()
    return {
        "key_name": checkpoint_key_name(service.deployment),
        "origin_prefix": f"{service.deployment}/logs/",
        "checkpoint_keys": [
            {
                "vkey": w.key.vkey,
                "key_name": w.key.name,
                "key_id": f"{w.key.key_id:08x}",
                "type": TYPE_NAMES[w.key.signature_type],
                "created_at": format_time(w.created_at),
                "retired_at": format_time(w.retired_at) if w.retired_at else None,
                "current": w.retired_at is None,
            }
            for w in windows
        ],
        "transitions": [note.decode() for note in transitions],
        "witness_keys": [
            {"vkey": k.vkey, "key_name": k.name, "key_id": f"{k.key_id:08x}"} for k in service.witness_keys
        ],
    }
