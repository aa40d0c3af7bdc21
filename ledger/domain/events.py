"""The ``data`` models of every event type (DESIGN §3), and the registry that maps a type to its model."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ledger.domain.fields import (
    IDENTIFIER_PATTERN,
    MAX_ADJUDICATED_ANNOTATIONS,
    MAX_IDENTIFIER_LENGTH,
    MAX_ITEMS_PER_EVENT,
    MAX_POLYGON_POINTS,
    MAX_REPORT_PARAMETERS,
    MAX_SAFE_INTEGER,
    MAX_SHORT_VALUE_LENGTH,
    MAX_URI_LENGTH,
    PRINTABLE_PATTERN,
    SIGNED_ENCODING,
    TENANT_CONTEXT,
    Coordinate,
    Count,
    EventData,
    Extent,
    Fraction,
    FreeText,
    Identifier,
    Label,
    Position,
    SensitiveText,
    SensitiveValue,
    Sha256Hex,
    Timestamp,
    Version,
)
from ledger.domain.logs import log_for

# ---- annotation ---------------------------------------------------------------------------------------


class BoundingBox(EventData):
    """An axis-aligned box in image pixel coordinates."""

    kind: Literal["bbox"]
    x: Position
    y: Position
    width: Extent
    height: Extent
    frame: Count | None = Field(default=None, description="Slice or frame index in a series.")


class Polygon(EventData):
    """A closed polygon in image pixel coordinates."""

    kind: Literal["polygon"]
    points: list[tuple[Coordinate, Coordinate]] = Field(min_length=3, max_length=MAX_POLYGON_POINTS)
    frame: Count | None = None


class Mask(EventData):
    """A segmentation mask kept outside the ledger, pinned by its digest."""

    kind: Literal["mask"]
    digest: Sha256Hex
    encoding: Literal["rle", "png", "nifti", "dicom-seg"]
    uri: str | None = Field(default=None, max_length=MAX_URI_LENGTH)


class Classification(EventData):
    """A whole-image (or whole-study) classification; the label class carries the answer."""

    kind: Literal["classification"]
    confidence: Fraction | None = None


Geometry = Annotated[BoundingBox | Polygon | Mask | Classification, Field(discriminator="kind")]


class AnnotationWritten(EventData):
    """``annotation.created`` / ``annotation.updated``: one version of one annotation of one item."""

    dataset: Identifier
    item: Identifier = Field(
        description="Pseudonymous item id, e.g. a DICOM SOP Instance UID or a hashed id."
    )
    annotation_id: Identifier
    version: Version = Field(description="1 for a new annotation, +1 per update.")
    previous_version: Version | None = None
    label_class: Identifier
    geometry: Geometry
    origin: Literal["human", "model"]
    model_name: str | None = Field(default=None, max_length=MAX_IDENTIFIER_LENGTH)
    model_version: str | None = Field(default=None, max_length=100)
    guideline_id: Identifier
    guideline_version: Identifier
    comment: SensitiveText | None = None

    @model_validator(mode="after")
    def _model_origin_names_model(self) -> AnnotationWritten:
        if self.origin == "model" and not (self.model_name and self.model_version):
            msg = "an annotation with origin 'model' must name model_name and model_version"
            raise ValueError(msg)
        if self.previous_version is not None and self.previous_version >= self.version:
            msg = "previous_version must be lower than version"
            raise ValueError(msg)
        return self


class AnnotationDeleted(EventData):
    """``annotation.deleted``: the annotation is withdrawn; its history stays."""

    dataset: Identifier
    item: Identifier
    annotation_id: Identifier
    version: Version
    previous_version: Version
    reason: FreeText | None = None


# ---- review ---------------------------------------------------------------------------------------------

ReviewLevel = Annotated[
    int,
    Field(
        strict=True, ge=1, le=4, description="1 AI pre-annotation, 2 annotator review, 3 physician, 4 expert."
    ),
]
SignatureMeaning = Literal["review", "approval", "responsibility", "authorship"]  # 21 CFR 11.50(a)(3)


class ReviewSubmitted(EventData):
    """``review.submitted``: a reviewer's decision on one annotation version."""

    dataset: Identifier
    item: Identifier
    annotation_id: Identifier
    annotation_version: Version
    level: ReviewLevel
    decision: Literal["accept", "reject", "modify"]
    resulting_annotation_id: Identifier | None = None
    resulting_version: Version | None = None
    signature_meaning: SignatureMeaning
    comment: SensitiveText | None = None

    @model_validator(mode="after")
    def _modify_names_result(self) -> ReviewSubmitted:
        if self.decision == "modify" and self.resulting_annotation_id is None:
            msg = "a 'modify' decision must name resulting_annotation_id"
            raise ValueError(msg)
        return self


class AdjudicationCompleted(EventData):
    """``adjudication.completed``: the final label of an item chosen among readers' annotations."""

    dataset: Identifier
    item: Identifier
    annotation_ids: list[Identifier] = Field(min_length=1, max_length=MAX_ADJUDICATED_ANNOTATIONS)
    final_annotation_id: Identifier
    final_label_class: Identifier
    level: ReviewLevel
    method: Literal["majority", "expert", "consensus"]
    signature_meaning: SignatureMeaning
    comment: SensitiveText | None = None


# ---- access ---------------------------------------------------------------------------------------------

PurposeOfUse = Literal[
    "annotation",
    "review",
    "model_development",
    "quality_assurance",
    "audit",
    "treatment",
    "research",
    "security",
    "regulatory",
    "operations",
]
PURPOSES_OF_USE: tuple[str, ...] = get_args(PurposeOfUse)
MAX_QUERY_PARAMETERS = 20
MAX_RESOURCE_LENGTH = 500
MAX_PARAMETER_NAME_LENGTH = 100


class DataAccessed(EventData):
    """``access.data_viewed`` / ``.data_exported`` / ``.denied`` / ``.break_glass``."""

    resource: str = Field(
        min_length=1, max_length=MAX_RESOURCE_LENGTH, description="What was accessed, e.g. dataset/item."
    )
    dataset: Identifier | None = None
    item: Identifier | None = None
    purpose_of_use: PurposeOfUse
    outcome: Literal["success", "failure"]
    record_count: Count | None = None
    source_address: SensitiveValue | None = None
    user_agent: SensitiveValue | None = None
    reason: SensitiveText | None = Field(default=None, description="Why (e.g. a break-glass justification).")
    # Set on the reads the ledger records itself (ledger.reads): the route, its parameters, its status.
    route: str | None = Field(
        default=None,
        max_length=MAX_SHORT_VALUE_LENGTH,
        pattern=PRINTABLE_PATTERN,
        description="The ledger route read, e.g. GET /v1/items/{dataset}/{item}/provenance.",
    )
    query: (
        dict[
            Annotated[
                str, Field(min_length=1, max_length=MAX_PARAMETER_NAME_LENGTH, pattern=IDENTIFIER_PATTERN)
            ],
            Annotated[str, Field(max_length=MAX_SHORT_VALUE_LENGTH, pattern=PRINTABLE_PATTERN)],
        ]
        | None
    ) = Field(default=None, max_length=MAX_QUERY_PARAMETERS, description="The read's filters and parameters.")
    status: int | None = Field(
        default=None, strict=True, ge=100, le=599, description="The HTTP status the read answered."
    )


class LoginAttempted(EventData):
    """``auth.login_succeeded`` / ``auth.login_failed``."""

    method: Literal["password", "sso", "mfa", "api_key", "certificate"]
    failure_reason: Literal["bad_credentials", "locked", "expired", "mfa_failed", "unknown_user"] | None = (
        None
    )
    source_address: SensitiveValue | None = None
    user_agent: SensitiveValue | None = None


# ---- assignment -----------------------------------------------------------------------------------------


class AssignmentChanged(EventData):
    """``assignment.created`` / ``assignment.revoked``: who may work on which items.

    Datasets, items and assignees are names inside the producer's tenant (every projection keys them by
    tenant), so an assignment cannot reach another tenant's work and needs no check against the tenant.
    """

    assignment_id: Identifier
    dataset: Identifier
    items: list[Identifier] = Field(min_length=1, max_length=MAX_ITEMS_PER_EVENT)
    assignee: Identifier
    role: Literal["annotator", "reviewer", "physician_reviewer", "expert_adjudicator"]


# ---- item ---------------------------------------------------------------------------------------------


class ItemChanged(EventData):
    """``item.imported`` / ``item.removed``: an item entered or left an annotation tool's project.

    Written by the webhook adapters (a Label Studio task created or deleted, a CVAT task) and by any
    producer that tracks which images a project holds. ``source_ref`` names the tool's own object
    (``label-studio:ls-main/task/12``); ``data_sha256`` is the SHA-256 of what the tool was given for the
    item (its data URL), so the record pins the image without holding a URL that might name a patient.
    """

    dataset: Identifier
    item: Identifier
    source_ref: Identifier = Field(description="The tool's own object: tool, source and object id.")
    data_sha256: Sha256Hex | None = Field(
        default=None, description="SHA-256 of the tool's reference to the item's data (its URL)."
    )
    frames: Count | None = Field(default=None, description="Frames or images the item holds, when known.")


# ---- guideline ------------------------------------------------------------------------------------------


class GuidelinePublished(EventData):
    """``guideline.published``: a guideline version takes effect."""

    guideline_id: Identifier
    version: Identifier
    title: Label
    document_sha256: Sha256Hex
    effective_from: Timestamp
    supersedes: Identifier | None = None


class GuidelineRetired(EventData):
    """``guideline.retired``: a guideline version stops being in effect."""

    guideline_id: Identifier
    version: Identifier
    effective_until: Timestamp
    reason: FreeText | None = None


class GuidelineAcknowledged(EventData):
    """``guideline.acknowledged``: an annotator read and accepted a guideline version."""

    guideline_id: Identifier
    version: Identifier
    annotator: Identifier


# ---- credential -----------------------------------------------------------------------------------------

CredentialKind = Literal["degree", "license", "board_certification", "internal_level"]


class CredentialIssued(EventData):
    """``credential.granted`` / ``credential.renewed``: a qualification with its valid-time range."""

    subject_field: ClassVar[str] = "annotator"

    credential_id: Identifier
    annotator: Identifier
    kind: CredentialKind
    level: Literal["junior", "intermediate", "senior"] | None = None
    specialty: str | None = Field(default=None, max_length=MAX_IDENTIFIER_LENGTH)
    issuer: Label
    valid_from: Timestamp
    valid_until: Timestamp | None = None
    license_number: SensitiveValue | None = None

    @model_validator(mode="after")
    def _range_is_ordered(self) -> CredentialIssued:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            msg = "valid_until must be after valid_from"
            raise ValueError(msg)
        if self.kind == "internal_level" and self.level is None:
            msg = "an internal_level credential must name its level (junior, intermediate or senior)"
            raise ValueError(msg)
        return self


class CredentialEnded(EventData):
    """``credential.revoked`` / ``credential.expired``."""

    subject_field: ClassVar[str] = "annotator"

    credential_id: Identifier
    annotator: Identifier
    effective_at: Timestamp
    reason: SensitiveText | None = None  # about the annotator (e.g. failed audits): erased with them


class TrainingCompletedV1(EventData):
    """``training.completed`` schema version 1 (superseded): the course named only by its title."""

    subject_field: ClassVar[str] = "annotator"

    annotator: Identifier
    course: Label
    completed_at: Timestamp
    valid_until: Timestamp | None = None
    guideline_id: Identifier | None = None
    guideline_version: Identifier | None = None


class TrainingCompleted(EventData):
    """``training.completed`` (schema version 2): a course passed, optionally tied to a guideline version."""

    subject_field: ClassVar[str] = "annotator"

    annotator: Identifier
    course_id: Identifier = Field(description="Stable id of the course in the learning system.")
    course_title: Label
    completed_at: Timestamp
    valid_until: Timestamp | None = None
    guideline_id: Identifier | None = None
    guideline_version: Identifier | None = None


# ---- dataset --------------------------------------------------------------------------------------------


class ReleasedItem(EventData):
    """One item of a dataset release with its final label."""

    item: Identifier
    label_class: Identifier
    annotation_id: Identifier | None = None


class DatasetReleaseCreated(EventData):
    """``dataset.release_created``: a frozen list of items and final labels, pinned by a digest."""

    dataset: Identifier
    release: Identifier
    split: Literal["train", "tune", "test"]
    items: list[ReleasedItem] = Field(min_length=1, max_length=MAX_ITEMS_PER_EVENT)
    items_sha256: Sha256Hex


# ---- retention ------------------------------------------------------------------------------------------


class HoldScope(EventData):
    """What a legal hold covers: a whole log, a dataset, or named items."""

    log: Identifier | None = None
    dataset: Identifier | None = None
    items: list[Identifier] | None = Field(default=None, max_length=MAX_ITEMS_PER_EVENT)

    @field_validator("log")
    @classmethod
    def _log_is_the_producers_own(cls, log: str | None, info: ValidationInfo) -> str | None:
        tenant = (info.context or {}).get(TENANT_CONTEXT)
        if log is not None and tenant is not None and log != log_for(tenant):
            msg = f"a hold may cover only the producer's own log {log_for(tenant)!r}, not {log!r}"
            raise ValueError(msg)
        return log

    @model_validator(mode="after")
    def _not_empty(self) -> HoldScope:
        if self.log is None and self.dataset is None and not self.items:
            msg = "a hold scope must name a log, a dataset or items"
            raise ValueError(msg)
        return self


class LegalHoldChanged(EventData):
    """``retention.hold_placed`` / ``retention.hold_released``."""

    hold_id: Identifier
    scope: HoldScope
    reason: FreeText
    approver: Identifier


class ErasureChanged(EventData):
    """``erasure.requested`` / ``erasure.executed``: crypto-shredding of one data subject's sealed values.

    Sealing keys are held per (tenant, data subject), so an erasure only ever reaches its own tenant's keys.
    """

    erasure_id: Identifier
    data_subject: Identifier
    reason: FreeText
    approver: Identifier


# ---- written by the ledger itself ----------------------------------------------------------------------


class CheckpointSigned(EventData):
    """``ledger.checkpoint_signed``: a signed tree head of one log."""

    log: Identifier
    tree_size: int = Field(strict=True, ge=0, le=MAX_SAFE_INTEGER)
    root_hash: Sha256Hex
    note: str = Field(
        min_length=1,
        max_length=10000,
        description="The C2SP signed note.",
        json_schema_extra={SIGNED_ENCODING: True},
    )


class CheckpointCosigned(EventData):
    """``ledger.checkpoint_cosigned``: a witness's C2SP ``cosignature/v1`` on a checkpoint of this log."""

    log: Identifier
    tree_size: int = Field(strict=True, ge=0, le=MAX_SAFE_INTEGER)
    root_hash: Sha256Hex
    witness_key: str = Field(
        min_length=1,
        max_length=300,
        pattern=IDENTIFIER_PATTERN,
        description="The witness's verifier key (vkey).",
        json_schema_extra={SIGNED_ENCODING: True},
    )
    cosignature: str = Field(
        min_length=1,
        max_length=1000,
        pattern=PRINTABLE_PATTERN,
        description="The signed-note signature line, without its newline.",
        json_schema_extra={SIGNED_ENCODING: True},
    )


class KeyRotated(EventData):
    """``ledger.key_rotated``."""

    key_id: Identifier
    purpose: Literal["checkpoint_signing", "token_signing", "master_key"]
    previous_key_id: Identifier | None = None


class IngestRejected(EventData):
    """``ledger.ingest_rejected``: a message that could not be accepted, kept on the record by its digest."""

    raw_sha256: Sha256Hex
    reason: str = Field(min_length=1, max_length=2000)
    transport: Literal["http", "kafka", "webhook"]
    origin: str | None = Field(
        default=None, max_length=500, description="topic/partition/offset, or a route."
    )


class ReportGenerated(EventData):
    """``ledger.report_generated``: a report was produced; its digest pins the exact file."""

    report: Identifier
    sha256: Sha256Hex
    parameters: dict[
        Annotated[str, Field(min_length=1, max_length=100)],
        Annotated[str, Field(max_length=MAX_SHORT_VALUE_LENGTH)],
    ] = Field(default_factory=dict, max_length=MAX_REPORT_PARAMETERS)


AnomalyDecision = Literal["benign", "policy_violation", "incident"]
ANOMALY_DECISIONS: tuple[str, ...] = get_args(AnomalyDecision)
"""What a security review decides; the anomaly's status becomes it."""


class AnomalyReviewed(EventData):
    """``ledger.anomaly_reviewed``: a security reviewer's decision on an access anomaly."""

    subject_field: ClassVar[str] = "reviewer"

    anomaly_id: Identifier
    reviewer: Identifier
    decision: AnomalyDecision
    comment: SensitiveText | None = None
