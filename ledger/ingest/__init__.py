"""Transport-neutral ingest: what HTTP, Kafka and the webhook adapters share.

A transport builds a ``Request`` (media type, attribute headers, body bytes) and reads it through its
CloudEvents ``Binding`` (``HTTP``, ``KAFKA``): ``parse`` returns the validated events or raises the
``LedgerError`` that names the refusal; ``receive`` returns that refusal as a ``Rejection`` (its ``code``,
reason and the body's SHA-256) instead, and ``rejection_event`` turns it into the ``ledger.ingest_rejected``
event that keeps it on the record, for any transport. An adapter that maps another format (a webhook)
raises the same errors from its own mapping and records its refusals with ``refusal`` and
``rejection_event``.
"""

from ledger.ingest.modes import Parsed, parse, receive
from ledger.ingest.rejection import (
    REJECTED_TYPE,
    Rejection,
    raw_sha256,
    refusal,
    rejection_event,
    rejection_id,
)
from ledger.ingest.request import HTTP, KAFKA, Binding, Request, Transport

__all__ = [
    "HTTP",
    "KAFKA",
    "REJECTED_TYPE",
    "Binding",
    "Parsed",
    "Rejection",
    "Request",
    "Transport",
    "parse",
    "raw_sha256",
    "receive",
    "refusal",
    "rejection_event",
    "rejection_id",
]
