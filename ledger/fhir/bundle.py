"""The two shapes of an export: one FHIR ``Bundle`` of type ``collection``, or FHIR Bulk Data NDJSON
(one resource per line, ``application/fhir+ndjson``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

BUNDLE_MEDIA_TYPE = "application/fhir+json"
NDJSON_MEDIA_TYPE = "application/fhir+ndjson"


def _dumps(resource: dict[str, Any]) -> str:
    # Compact and key-sorted: the same record always exports to the same bytes (its digest is recorded).
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def bundle(resources: Iterable[dict[str, Any]], *, bundle_id: str, timestamp: str) -> dict[str, Any]:
    """A ``collection`` Bundle of ``resources``; each entry's ``fullUrl`` is ``urn:uuid:<id>`` (the ids
    are UUIDs) so entries can be told apart and cited without a server base URL."""
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "timestamp": timestamp,
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


def bundle_bytes(resources: Iterable[dict[str, Any]], *, bundle_id: str, timestamp: str) -> bytes:
    """The Bundle as UTF-8 JSON."""
    return _dumps(bundle(resources, bundle_id=bundle_id, timestamp=timestamp)).encode()


def ndjson_bytes(resources: Iterable[dict[str, Any]]) -> bytes:
    """The resources as Bulk Data NDJSON: one JSON object per line, each line ending in a newline."""
    return "".join(_dumps(r) + "\n" for r in resources).encode()
