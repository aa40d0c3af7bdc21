"""Reading CloudEvents out of an HTTP request: the HTTP binding of ``ledger.ingest``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ledger.domain.envelope import BATCH, STRUCTURED, ReceivedEvent
from ledger.ingest import HTTP, Request, parse

__all__ = ["BATCH", "STRUCTURED", "parse_request"]


def parse_request(
    content_type: str, headers: Mapping[str, str], body: bytes, *, received_at: datetime | None = None
) -> tuple[list[ReceivedEvent], bool]:
    """The validated events of a request, and whether it was a batch. A batch is all-or-nothing.

    ``received_at`` is the ledger's clock when the request arrived (now, by default): no event's time
    may lie more than ``MAX_FUTURE_SKEW`` after it.
    """
    parsed = parse(Request(content_type, tuple(headers.items()), body), HTTP, received_at=received_at)
    return parsed.events, parsed.batch
