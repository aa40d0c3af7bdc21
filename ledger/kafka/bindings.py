"""The CloudEvents Kafka protocol binding: a record as the transport-neutral request ``ledger.ingest``
reads (structured mode: the event is the JSON value; binary mode: attributes in ``ce_*`` headers, ``data``
as the value), and encoded for producers.

Mode detection follows the binding (§3): a ``content-type`` header starting ``application/cloudevents``
means structured; otherwise a ``ce_specversion`` header means binary; otherwise the value is read as a
structured event, which is what most producers send without headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from ledger.domain.envelope import STRUCTURED
from ledger.ingest import KAFKA, Request
from ledger.kafka.transport import Headers, Message, header

_PREFIX = KAFKA.prefix

Mode = Literal["structured", "binary"]


def request_of(message: Message) -> Request:
    """The transport-neutral request a message is: its content type, its headers, its value."""
    content_type = header(message.headers, "content-type")
    try:
        media = content_type.decode("utf-8") if content_type is not None else ""
    except UnicodeDecodeError:
        media = ""
    return Request(media, message.headers, message.value)


def encode(event: Mapping[str, Any], mode: Mode = "structured") -> tuple[bytes, Headers]:
    """A record value and headers carrying ``event`` in ``mode`` (what ``ledger.ingest`` reads back)."""
    if mode == "structured":
        value = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        return value, (("content-type", f"{STRUCTURED}; charset=utf-8".encode()),)
    headers: list[tuple[str, bytes | None]] = [("content-type", b"application/json")]
    for name, attr in event.items():
        if name in ("data", "datacontenttype") or attr is None:
            continue
        headers.append((_PREFIX + name, str(attr).encode()))
    value = json.dumps(event.get("data"), ensure_ascii=False, separators=(",", ":")).encode()
    return value, tuple(headers)
