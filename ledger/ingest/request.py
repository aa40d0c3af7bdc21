"""What every transport hands to ingest: a transport-neutral request, and the binding it arrived by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from ledger.domain.errors import FieldError, MalformedRequest

Transport = Literal["http", "kafka", "webhook"]
"""How a message reached the ledger, as a ``ledger.ingest_rejected`` event names it."""

Attribute = tuple[str, str | bytes | None]


@dataclass(frozen=True, slots=True)
class Request:
    """One received message, whatever carried it.

    ``media_type`` is the content type as sent (``""`` when none); ``attributes`` the headers (HTTP
    headers, Kafka record headers), names in any case; ``body`` the bytes exactly as received, ``None``
    when there is no body at all (a Kafka tombstone).
    """

    media_type: str
    attributes: Sequence[Attribute]
    body: bytes | None

    def has_attribute(self, name: str) -> bool:
        """Whether a header of this name (any case) was sent."""
        return any(key.lower() == name for key, _ in self.attributes)


@dataclass(frozen=True, slots=True)
class Binding:
    """A CloudEvents protocol binding: how one transport spells content modes and binary-mode attributes."""

    transport: Transport
    prefix: str
    """Binary-mode attribute headers: ``ce-`` (HTTP binding §3.1.3), ``ce_`` (Kafka binding §3.2.3)."""
    batch: bool
    """Whether ``application/cloudevents-batch+json`` is a content mode here (HTTP only)."""
    headerless_structured: bool
    """Whether a body without a CloudEvents content type or attribute headers is read as a structured event
    (Kafka: what most producers send; HTTP names its content type, and anything else is refused 415)."""
    percent_encoded: bool
    """Whether attribute header values are percent-encoded UTF-8 (HTTP) rather than plain UTF-8 (Kafka)."""
    body_name: str
    """What a reason calls the body: ``body`` (HTTP), ``value`` (a Kafka record's)."""

    def attribute_text(self, name: str, raw: str | bytes | None) -> str:
        """The text of binary-mode attribute header ``name``; ``MalformedRequest`` naming it otherwise."""
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            if text is not None:
                return unquote(text, errors="strict") if self.percent_encoded else text
        except UnicodeDecodeError:
            pass
        kind = "percent-encoded UTF-8" if self.percent_encoded else "UTF-8 text"
        msg = f"header {name} is not {kind}"
        raise MalformedRequest(msg, errors=[FieldError(name.lower()[len(self.prefix) :], msg)])


HTTP = Binding("http", "ce-", batch=True, headerless_structured=False, percent_encoded=True, body_name="body")
KAFKA = Binding(
    "kafka", "ce_", batch=False, headerless_structured=True, percent_encoded=False, body_name="value"
)
