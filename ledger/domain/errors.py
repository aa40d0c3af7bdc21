"""One error tree. Every error carries a stable machine-readable ``code``; the API maps codes to HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one submitted event."""

    field: str
    message: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used in problem details."""
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            out["index"] = self.index
        return out


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    code: ClassVar[str] = "ledger_error"
    title: ClassVar[str] = "Ledger error"

    def __init__(
        self, detail: str, *, errors: list[FieldError] | None = None, error_count: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[FieldError] = errors or []
        # How many problems there were in all: a producer may keep only the first few in ``errors``
        # (an error list must never outgrow the request), and the count still says how many were found.
        self.error_count: int = len(self.errors) if error_count is None else error_count


class ValidationFailed(LedgerError):
    """An event (or a batch) is malformed; ``errors`` names each field."""

    code = "validation_failed"
    title = "The event is not valid"


class ForbiddenIdentifier(ValidationFailed):
    """A direct identifier (SSN, phone, e-mail, MRN) appeared in free text."""

    code = "forbidden_identifier"
    title = "A direct identifier must never enter the ledger"


class NotCloudEvent(ValidationFailed):
    """What arrived is no CloudEvent at all: JSON that is not an object, an object without ``specversion``,
    a message without a value (a Kafka tombstone)."""

    code = "not_cloudevent"
    title = "The message is not a CloudEvent"


class UnknownEventType(ValidationFailed):
    """The event's ``type`` is not registered (``GET /v1/event-types``)."""

    code = "unknown_type"
    title = "The event type is not registered"


class ReservedEventType(ValidationFailed):
    """The event's ``type`` is one only the ledger itself writes (``ledger.*``)."""

    code = "reserved_type"
    title = "The event type is written only by the ledger"


class IdempotencyConflict(LedgerError):
    """An event id was posted before with different content."""

    code = "idempotency_conflict"
    title = "This event id was already recorded with different content"


class ErasureRefused(LedgerError):
    """An erasure that must not happen now; nothing was erased and nothing recorded."""

    code = "erasure_refused"
    title = "The erasure was refused"


class ErasureHeld(ErasureRefused):
    """A legal hold in force covers records whose sealed values the erasure would make unreadable."""

    code = "erasure_held"
    title = "A legal hold covers the subject's records"

    def __init__(self, detail: str, *, holds: list[str]) -> None:
        super().__init__(
            detail, errors=[FieldError("subject", f"covered by legal hold {h!r}") for h in holds]
        )
        self.holds = holds


class AlreadyErased(ErasureRefused):
    """The subject has no key left to erase: an earlier erasure deleted it and nothing was sealed since."""

    code = "already_erased"
    title = "The subject was already erased"


class NotFound(LedgerError):
    """The thing asked for does not exist (or is outside the caller's tenant)."""

    code = "not_found"
    title = "Not found"


class AuthenticationFailed(LedgerError):
    """No token, or a token that does not verify."""

    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(LedgerError):
    """A valid token whose roles or tenant do not allow the action."""

    code = "forbidden"
    title = "Not allowed"


class ConfigurationError(LedgerError):
    """Settings are missing or contradict each other."""

    code = "configuration_error"
    title = "The ledger is not configured correctly"


class StorageUnavailable(LedgerError):
    """The database cannot be reached or refused the operation."""

    code = "storage_unavailable"
    title = "The database is unavailable"


class ReadNotRecorded(LedgerError):
    """A read could not be put on the record, so it returns nothing (DESIGN §6: reads fail closed)."""

    code = "read_not_recorded"
    title = "The read could not be recorded"


class KeyUnavailable(LedgerError):
    """A sealing key is missing or was erased."""

    code = "key_unavailable"
    title = "The key needed is not available"


class TokenKeysUnavailable(KeyUnavailable):
    """The identity provider's signing keys (a JWKS) cannot be fetched: no token can be checked (503)."""

    code = "token_keys_unavailable"
    title = "The keys that tokens are checked with are not available"


class SealedValueTampered(LedgerError):
    """A sealed value does not open with its key: it was moved to another event or field, or altered."""

    code = "sealed_value_tampered"
    title = "A sealed value was moved or altered"


@dataclass
class VerificationBreak:
    """The first place a log stops verifying, and why."""

    log: str
    position: int
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class VerificationError(LedgerError):
    """A log does not verify; ``breaks`` names the log and position of the first break."""

    code = "verification_failed"
    title = "The ledger does not verify"

    def __init__(self, detail: str, *, breaks: list[VerificationBreak]) -> None:
        super().__init__(detail)
        self.breaks = breaks


class MalformedRequest(ValidationFailed):
    """The request body is not JSON, or not the shape the content type promises."""

    code = "malformed_request"
    title = "The request body cannot be read"


class ParameterInvalid(LedgerError):
    """A query or path parameter the ledger cannot use; ``errors`` names the parameter."""

    code = "parameter_invalid"
    title = "A request parameter is not valid"


class BodyTooLarge(LedgerError):
    """The request body is over the configured limit."""

    code = "body_too_large"
    title = "The request body is too large"


class Overloaded(LedgerError):
    """Too many large requests are being handled at once; try again after ``retry_after`` seconds."""

    code = "overloaded"
    title = "The ledger is busy with other large requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UnsupportedMediaType(LedgerError):
    """A content type the endpoint does not accept."""

    code = "unsupported_media_type"
    title = "Unsupported content type"


class OffsetConflict(LedgerError):
    """The offsets stored for a partition are not where this consumer expected: another consumer moved them.

    Raised by the Kafka offsets fence inside the append transaction, which is then rolled back; the consumer
    re-reads the stored offsets and seeks there, so nothing is appended twice.
    """

    code = "offset_conflict"
    title = "Another consumer moved this partition's offsets"


class BrokerUnavailable(LedgerError):
    """The Kafka broker cannot be reached, or refused a message (for example the dead-letter topic)."""

    code = "broker_unavailable"
    title = "The Kafka broker is unavailable"


class StorageRefused(LedgerError):
    """The database refused a statement for a reason retrying cannot change: a constraint, a privilege,
    a value it cannot hold. A bug or a misconfiguration of the ledger, never the caller's fault."""

    code = "storage_refused"
    title = "The database refused the operation"
