"""The OpenAPI document, exact enough for generic tools to test the API: request bodies of every content
mode, the bearer scheme, every status with its problem+json body, and the report's real media types.

Litestar generates the paths from the handlers; the handlers name their statuses with :func:`responses`
and their document parts with the ``Operation`` classes here. The CloudEvent schemas come from
``ledger.schema_export`` (the same as the committed ``schemas/``) and are added by :func:`complete`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, TypedDict, cast

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)

from ledger.api.problems import MAX_ERRORS, PROBLEM_JSON
from ledger.domain.envelope import BATCH, STRUCTURED
from ledger.domain.events import ErasureChanged
from ledger.domain.fields import MAX_FREE_TEXT_LENGTH
from ledger.domain.registry import EVENT_TYPES
from ledger.erasure import ERASURE_ID_PATTERN, MAX_ERASURE_ID_LENGTH
from ledger.schema_export import event_schema

SECURITY: list[SecurityRequirement] = [{"bearer": []}]
"""Every ``/v1`` operation needs a bearer token, but the webhooks'."""
LABEL_STUDIO_SECURITY: list[SecurityRequirement] = [{"labelStudioSecret": []}]
CVAT_SECURITY: list[SecurityRequirement] = [{"cvatSignature": []}]
"""The webhook routes are authenticated by their source's own secret (``ledger sources add``), not a JWT."""
COMPONENTS = Components(
    security_schemes={
        "bearer": SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="A JWT with iss, aud, exp, iat, sub, roles and tenant (in embedded mode: `ledger token`).",
        ),
        "labelStudioSecret": SecurityScheme(
            type="http",
            scheme="bearer",
            description=(
                "The Label Studio source's secret, as `ledger sources add label-studio` printed it, sent as "
                "`Authorization: Bearer <secret>` from the webhook's headers (not a JWT)."
            ),
        ),
        "cvatSignature": SecurityScheme(
            type="apiKey",
            name="X-Signature-256",
            security_scheme_in="header",
            description=(
                "`sha256=` and the hex HMAC-SHA256 of the raw body with the CVAT webhook's secret (as "
                "`ledger sources add cvat` printed it); CVAT sends it when the webhook has a secret."
            ),
        ),
    }
)


# Optional keys by ``total=False`` subclasses: NotRequired is not seen in postponed annotations (PEP 563).
class _FieldErrorRequired(TypedDict):
    field: str
    message: str


class ProblemFieldError(_FieldErrorRequired, total=False):
    """One field (or parameter) that is wrong, and how; ``index`` names the event of a batch."""

    index: int


class _ProblemRequired(TypedDict):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str


class Problem(_ProblemRequired, total=False):
    """An RFC 9457 problem: every error the ledger answers has this shape."""

    errors: list[ProblemFieldError]
    error_count: int


class Receipt(TypedDict):
    """Where an event was recorded; ``duplicate`` when the same id and content was recorded before."""

    id: str
    log: str
    position: int
    hash: str
    recorded_at: str
    duplicate: bool


class BatchReceipts(TypedDict):
    """The receipts of a batch, in the batch's order."""

    receipts: list[Receipt]


class _WebhookRecordedRequired(TypedDict):
    receipts: list[Receipt]
    summary: str


class WebhookRecorded(_WebhookRecordedRequired, total=False):
    """What a webhook delivery became: the receipts of its events (each ``duplicate`` on a repeat of a
    delivery recorded before), one line saying what it was, and, when it changed nothing the ledger
    holds (no receipts), why."""

    unchanged: str


class WebhookPong(TypedDict):
    """The answer to CVAT's ``ping`` (nothing is recorded)."""

    pong: bool


class WebhookRejection(TypedDict):
    """Why a delivery cannot become ledger events: the refusal's ``code`` (``webhook_unsupported``,
    ``webhook_unmappable``, ``malformed_request``, ``validation_failed``…), a sentence naming the field,
    and the id of the ``ledger.ingest_rejected`` event that keeps it on the record."""

    code: str
    reason: str
    event_id: str


class WebhookRejected(TypedDict):
    """A delivery kept on the record as ``ledger.ingest_rejected`` instead of events (202)."""

    rejected: WebhookRejection


class CheckpointBody(TypedDict):
    """A signed checkpoint on the record: ``note`` is the C2SP signed note (origin ``<deployment>/logs/<log>``,
    tree size, base64 root; the log's Ed25519 and ML-DSA-44 signatures, then witnesses' cosignatures)."""

    log: str
    tree_size: int
    root: str
    signed_at: str
    event_id: str
    position: int
    cosignatures: int
    note: str


class CheckpointPageBody(TypedDict):
    """A page of a log's checkpoints by tree size; follow ``next_cursor`` (null at the end)."""

    checkpoints: list[CheckpointBody]
    next_cursor: str | None


class CosignedBody(TypedDict):
    """What a cosignature POST recorded: the witness keys whose lines were new, those already on the record,
    and the checkpoint with every cosignature now."""

    log: str
    tree_size: int
    recorded: list[str]
    repeated: list[str]
    checkpoint: CheckpointBody


class CheckpointKeyBody(TypedDict):
    """A checkpoint verifier key (signed-note vkey) and the window in which it signs."""

    vkey: str
    key_name: str
    key_id: str
    type: str
    created_at: str
    retired_at: str | None
    current: bool


class WitnessKeyBody(TypedDict):
    """A witness key whose cosignatures this ledger accepts."""

    vkey: str
    key_name: str
    key_id: str


class KeysBody(TypedDict):
    """The keys an auditor verifies checkpoints with, and the witnesses the ledger accepts."""

    key_name: str
    origin_prefix: str
    checkpoint_keys: list[CheckpointKeyBody]
    transitions: list[str]
    """Signed notes (``ledger-key-transition/v1``): each key generation vouched for by the one before, so a
    verifier that pinned old keys follows a rotation without trusting this list."""
    witness_keys: list[WitnessKeyBody]


class InclusionProofBody(TypedDict):
    """RFC 9162 inclusion proof: ``hashes`` (base64, leaf to root) lead from ``leaf_hash`` at
    ``leaf_index`` to ``root``, the root of the log's first ``tree_size`` leaves; ``checkpoint`` is the
    signed checkpoint of that size, or null when none was signed at it."""

    log: str
    tree_size: int
    root: str
    leaf_index: int
    leaf_hash: str
    hashes: list[str]
    checkpoint: CheckpointBody | None


# "from" is a Python keyword: the functional form of TypedDict takes it as a key.
ConsistencyProofBody = TypedDict(
    "ConsistencyProofBody",
    {
        "log": str,
        "from": int,
        "to": int,
        "from_root": str,
        "to_root": str,
        "hashes": list[str],
        "checkpoint": CheckpointBody | None,
    },
)
"""RFC 9162 consistency proof: the tree of ``to`` leaves (``to_root``) extends that of ``from`` (``from_root``)."""


class ErasureReceipt(TypedDict):
    """What an erasure did: the key ids deleted (none on a repeat), how many events' sealed values now read
    as erased, and the receipt of its ``erasure.executed`` (``duplicate`` on a repeat of the same erasure)."""

    erasure_id: str
    tenant: str
    subject: str
    keys_erased: list[str]
    sealed_events: int
    receipt: Receipt


_WHY = {
    400: "A parameter or the body cannot be read",
    401: "No bearer token, or one that does not verify",
    403: "The token's roles or tenant do not allow this",
    404: "Not found in the token's tenant",
    409: "The event id was recorded before with different content",
    413: "The body is over the configured limit",
    415: "A content type this operation does not accept",
    422: f"An event is not valid; `errors` names each field (at most {MAX_ERRORS}, `error_count` says how many)",
    500: "The ledger failed or found its own record damaged; see the server log",
    503: "The database (or a key, or the broker) is unavailable, or too many large requests are in flight",
}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Problem responses for ``statuses`` (and 500, which any operation can answer)."""
    return {
        status: ResponseSpec(
            data_container=Problem, media_type=PROBLEM_JSON, description=_WHY[status], generate_examples=False
        )
        for status in sorted({*statuses, 500})
    }


READ_ERRORS = (400, 401, 403, 503)
"""What every read with parameters may answer besides 200."""


def _ref(name: str) -> Reference:
    return Reference(ref=f"#/components/schemas/{name}")


_CE_HEADERS = (
    ("specversion", True, "CloudEvents version, 1.0; its presence selects binary mode"),
    ("id", False, "the producer's idempotency key"),
    ("source", False, "URI-reference of the producing service"),
    ("type", False, "a registered event type"),
    ("time", False, "RFC 3339 time with an offset"),
    ("subject", False, "what the event is about"),
    ("dataschema", False, "URI of the data's schema"),
    ("schemaversion", False, "version of the type's data schema"),
    ("tenant", False, "the tenant (must be the token's)"),
    ("actor", False, "who acted (pseudonymous id)"),
    ("actorrole", False, "in which role"),
    ("correlationid", False, "tracing id"),
    ("causationid", False, "id of the event that caused this one"),
)


@dataclass
class PostEventsOperation(Operation):
    """``POST /v1/events``: the three CloudEvents content modes, and the ``ce-*`` headers of binary mode."""

    def __post_init__(self) -> None:
        """Add the request body and the binary-mode headers to what Litestar generated."""
        self.request_body = RequestBody(
            required=True,
            description=(
                f"Structured mode ({STRUCTURED}, one event), batch mode ({BATCH}, all or nothing), or binary "
                "mode (application/json holding only the event's data, attributes in percent-encoded ce-* "
                "headers). application/json without ce-specversion is read as one structured event."
            ),
            content={
                STRUCTURED: OpenAPIMediaType(schema=_ref("CloudEvent")),
                BATCH: OpenAPIMediaType(schema=_ref("CloudEventBatch")),
                "application/json": OpenAPIMediaType(
                    schema=Schema(any_of=[_ref("CloudEvent"), _ref("EventData")])
                ),
            },
        )
        headers = [
            Parameter(
                name=f"ce-{attr}",
                param_in="header",
                required=False,
                description=f"Binary mode: {why}" + (" (required in binary mode)" if needed else ""),
                # No bound here: outside binary mode the headers are ignored, and in binary mode the
                # attribute they become is checked like any event's (422 naming it).
                schema=Schema(type=cast(Any, "string")),
            )
            for attr, needed, why in _CE_HEADERS
        ]
        self.parameters = [*(self.parameters or []), *headers]


@dataclass
class WebhookOperation(Operation):
    """A webhook route: the tool's own JSON payload as the request body (the handler reads the raw bytes)."""

    def __post_init__(self) -> None:
        """Add the request body Litestar cannot see."""
        self.request_body = RequestBody(
            required=True,
            description=(
                "The tool's webhook payload as the tool sends it (docs/integrations.md maps each action). "
                "A body that is not JSON is answered 202 and recorded as ledger.ingest_rejected."
            ),
            content={"application/json": OpenAPIMediaType(schema=Schema(type=cast(Any, "object")))},
        )


@dataclass
class CosignatureOperation(Operation):
    """``POST /v1/logs/{log}/cosignatures``: a text/plain signed note as the request body."""

    def __post_init__(self) -> None:
        """Add the text/plain request body Litestar cannot see (the handler reads the raw body)."""
        self.request_body = RequestBody(
            required=True,
            description=(
                "The checkpoint note as GET /v1/logs/{log}/checkpoint serves it, with the witness's C2SP "
                "cosignature/v1 line(s) added after the signatures (lines of other keys are ignored)."
            ),
            content={"text/plain": OpenAPIMediaType(schema=Schema(type=cast(Any, "string")))},
        )


@dataclass
class ReportOperation(Operation):
    """A report route (``GET /v1/reports/…``): the report in the media type ``format`` asks for."""

    def __post_init__(self) -> None:
        """Replace the generated ``string`` body with the three real media types."""
        text = Schema(type=cast(Any, "string"))
        ok = OpenAPIResponse(
            description="The report; its SHA-256 is recorded in the ledger as ledger.report_generated",
            content={
                "application/json": OpenAPIMediaType(schema=Schema(type=cast(Any, "object"))),
                "text/csv": OpenAPIMediaType(schema=text),
                "text/html": OpenAPIMediaType(schema=text),
            },
            headers={
                "X-Report-SHA256": OpenAPIHeader(schema=text, description="SHA-256 of the body, hex"),
                "X-Ledger-Position": OpenAPIHeader(
                    schema=Schema(type=cast(Any, "string")),
                    description="position of the ledger.report_generated event in the tenant's log",
                ),
            },
        )
        self.responses = {**(self.responses or {}), "200": ok}


@dataclass
class BundleOperation(Operation):
    """``GET /v1/bundles``: an evidence bundle file (``ledger-evidence-bundle/v1``) as an attachment."""

    def __post_init__(self) -> None:
        """Replace the generated ``string`` body with the bundle's JSON and its headers."""
        text = Schema(type=cast(Any, "string"))
        ok = OpenAPIResponse(
            description=(
                "The bundle (RFC 8785 JSON; its JSON Schema is ledger/verifier/bundle.schema.json); its "
                "SHA-256 is recorded in the ledger as ledger.report_generated (report evidence_bundle)"
            ),
            content={"application/json": OpenAPIMediaType(schema=Schema(type=cast(Any, "object")))},
            headers={
                "Content-Disposition": OpenAPIHeader(
                    schema=text, description="attachment; filename=<scope>.bundle.json"
                ),
                "X-Bundle-SHA256": OpenAPIHeader(schema=text, description="SHA-256 of the body, hex"),
                "X-Ledger-Position": OpenAPIHeader(
                    schema=text,
                    description="position of the ledger.report_generated event in the tenant's log",
                ),
            },
        )
        self.responses = {**(self.responses or {}), "200": ok}


@dataclass
class ErasureOperation(Operation):
    """``POST /v1/erasures``: the JSON request body the handler reads itself (``ERASURE_REQUEST``)."""

    def __post_init__(self) -> None:
        """Add the request body Litestar cannot see."""
        self.request_body = RequestBody(
            required=True,
            description="Whom to erase, why, and who approved it; `erasure_id` makes a retry a repeat.",
            content={"application/json": OpenAPIMediaType(schema=_ref("ErasureRequest"))},
        )


def erasure_request_schema() -> dict[str, Any]:
    """The body of ``POST /v1/erasures``; its bounds are those of ``erasure.executed``'s data."""
    data = ErasureChanged.model_json_schema()["properties"]

    def identifier(name: str, description: str) -> dict[str, Any]:
        bounds = {k: data[name][k] for k in ("type", "minLength", "maxLength", "pattern")}
        return {**bounds, "description": description}

    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["subject", "reason", "approver"],
        "properties": {
            "subject": identifier(
                "data_subject",
                "The data subject (pseudonymous id) whose key is deleted, in the token's tenant",
            ),
            "reason": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_FREE_TEXT_LENGTH,
                "description": "Why (free text, refused with 422 if it holds a direct identifier or only spaces)",
            },
            "approver": identifier("approver", "Who approved the erasure: someone other than the caller"),
            "erasure_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_ERASURE_ID_LENGTH,
                "pattern": ERASURE_ID_PATTERN,
                "description": "The erasure's id (default: a new random one); the event is ledger:erasure:<id>",
            },
        },
    }


def complete(document: OpenAPI) -> None:
    """Add the CloudEvent schemas to the generated document's components (Litestar regenerates
    ``components.schemas`` from the handlers' types, so they cannot be passed in the config)."""
    schemas = cast(dict[str, Any], document.components.schemas)
    # Plain JSON Schema dicts: OpenAPI.to_schema passes them through (dropping only null values).
    schemas.update(event_components())
    schemas["ErasureRequest"] = erasure_request_schema()


def event_components() -> dict[str, Any]:
    """``CloudEvent`` (one of every type a producer may send), ``CloudEventBatch``, ``EventData``, and each
    type's envelope and data schema, with the models' ``$defs`` moved into the components."""
    components: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    origins: dict[str, str] = {}
    for event_type in EVENT_TYPES.values():
        if event_type.internal:
            continue  # written only by the ledger; refused from producers with 422
        schema = event_schema(event_type)
        renames = _move_defs(schema.pop("$defs", {}), components, origins)
        for key in ("$schema", "$id", "$comment"):
            schema.pop(key, None)
        schema = _rewrite_refs(schema, renames)
        data_name = f"data.{event_type.name}"
        components[data_name] = schema["properties"]["data"]
        schema["properties"]["data"] = {"$ref": f"#/components/schemas/{data_name}"}
        components[f"event.{event_type.name}"] = schema
        mapping[event_type.name] = f"#/components/schemas/event.{event_type.name}"
    components["CloudEvent"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
        "description": "A CloudEvents 1.0 structured-mode event of a registered type.",
    }
    components["CloudEventBatch"] = {
        "type": "array",
        "minItems": 1,
        "items": {"$ref": "#/components/schemas/CloudEvent"},
    }
    components["EventData"] = {
        "anyOf": [{"$ref": f"#/components/schemas/data.{name}"} for name in mapping],
        "description": "Binary mode: the data of the event the ce-* headers describe.",
    }
    return components


def _move_defs(defs: dict[str, Any], components: dict[str, Any], origins: dict[str, str]) -> dict[str, str]:
    """Put each definition into ``components`` under its name, or a numbered one when a different
    definition already has that name (``origins`` holds each placed one as first seen); return the new
    reference of each old ``#/$defs/...`` one."""
    renames: dict[str, str] = {}
    new: list[tuple[str, str]] = []
    for name, definition in defs.items():
        text = json.dumps(definition, sort_keys=True)
        target, n = name, 1
        while target in origins and origins[target] != text:
            n += 1
            target = f"{name}.{n}"
        if target not in origins:
            origins[target] = text
            new.append((name, target))
        renames[f"#/$defs/{name}"] = f"#/components/schemas/{target}"
    for name, target in new:
        components[target] = _rewrite_refs(copy.deepcopy(defs[name]), renames)
    return renames


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: renames.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, renames)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node
