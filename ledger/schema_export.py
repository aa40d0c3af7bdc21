"""JSON Schemas (draft 2020-12) of the whole CloudEvent of each registered type, committed in ``schemas/``.

The pydantic models stay the single source of truth; these files exist for producers who do not run Python.
``tests/unit/test_schemas.py`` keeps the committed files identical to what :func:`render_schemas` returns,
so after changing a model or the envelope run ``python -m ledger.schema_export`` and commit the result.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

# The extension-name rule is private to the envelope, but a copy of the pattern here could drift from it.
from ledger.domain.envelope import EXTENSION_NAME, Envelope
from ledger.domain.fields import MAX_EVENT_BYTES, MAX_EXTENSIONS, MAX_JSON_DEPTH
from ledger.domain.registry import EVENT_TYPES, OLDER_VERSIONS, EventType

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_SUFFIX = ".schema.json"
INDEX_FILE = "index.json"
REGENERATE_COMMAND = "python -m ledger.schema_export"
LIMITS = "x-ledger-limits"
"""Limits JSON Schema cannot state: the event's compact JSON size in bytes and its nesting depth."""
_GENERATED_NOTE = f"Generated from the pydantic models by `{REGENERATE_COMMAND}`; do not edit by hand."


def schema_id(event_type: EventType) -> str:
    """The ``$id`` of a type's schema; it names the schema version so that an upcast type gets a new id."""
    return f"urn:ledger:schema:{event_type.name}:v{event_type.schemaversion}"


def schema_filename(event_type: EventType) -> str:
    """The file name of a type's schema inside ``schemas/``; superseded versions carry ``.vN``."""
    if EVENT_TYPES[event_type.name] is event_type:
        return f"{event_type.name}{SCHEMA_SUFFIX}"
    return f"{event_type.name}.v{event_type.schemaversion}{SCHEMA_SUFFIX}"


def _all_versions() -> list[EventType]:
    return [*EVENT_TYPES.values(), *OLDER_VERSIONS.values()]


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of a whole CloudEvent of ``event_type``: the envelope, ``data`` being its model."""
    # Deep copies: the envelope schema and the cached ``data_schema`` are shared dicts we must not mutate.
    schema = copy.deepcopy(Envelope.model_json_schema())
    data = copy.deepcopy(event_type.data_schema)
    properties: dict[str, Any] = schema["properties"]

    properties["type"] = {"const": event_type.name, "title": "Type", "type": "string"}
    # validate_event refuses any other version, so the schema must as well.
    properties["schemaversion"] = {**properties["schemaversion"], "const": event_type.schemaversion}
    if event_type.schemaversion != 1:
        # An omitted schemaversion means 1 to the envelope model, which a later version would then refuse.
        schema["required"] = [*schema["required"], "schemaversion"]

    # The data model's "#/$defs/..." references resolve against the document root once ``data`` is nested.
    defs = data.pop("$defs", None)
    properties["data"] = data
    if defs:
        schema["$defs"] = defs

    # Envelope allows extension attributes (their values are in "additionalProperties" already); state the
    # rules its validator enforces on their names and number, and the limits on the whole event.
    schema["propertyNames"] = {"pattern": EXTENSION_NAME.pattern}
    schema["maxProperties"] = len(Envelope.model_fields) + MAX_EXTENSIONS
    schema[LIMITS] = {"max_event_bytes": MAX_EVENT_BYTES, "max_json_depth": MAX_JSON_DEPTH}

    written_by = " Written only by the ledger itself; refused from producers." if event_type.internal else ""
    schema.update(
        {
            "$schema": DIALECT,
            "$id": schema_id(event_type),
            "$comment": _GENERATED_NOTE,
            "title": event_type.name,
            "description": (
                f"{event_type.description}: a CloudEvents 1.0 structured-mode event of type "
                f"'{event_type.name}', schema version {event_type.schemaversion}.{written_by}"
            ),
        }
    )
    return schema


def schema_index() -> dict[str, Any]:
    """A summary of every registered type: its schema file, version, description and marked fields."""
    return {
        "$comment": _GENERATED_NOTE,
        "types": [
            {
                "type": t.name,
                "schema": schema_filename(t),
                "$id": schema_id(t),
                "schemaversion": t.schemaversion,
                "description": t.description,
                "written_by_ledger": t.internal,
                # Same spelling as GET /v1/event-types and the field names in validation errors.
                "sealed_fields": ["data." + ".".join(p) for p in t.sensitive_paths],
                "free_text_fields": ["data." + ".".join(p) for p in t.free_text_paths],
            }
            for t in EVENT_TYPES.values()
        ],
        "older_versions": [
            {
                "type": t.name,
                "schema": schema_filename(t),
                "$id": schema_id(t),
                "schemaversion": t.schemaversion,
            }
            for t in OLDER_VERSIONS.values()
        ],
    }


def _dump(document: dict[str, Any]) -> str:
    # Sorted keys and a trailing newline keep the output byte-for-byte stable: a diff shows only real changes.
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def render_schemas() -> dict[str, str]:
    """Every file of ``schemas/`` (not ``examples/``) by name, with its exact JSON text."""
    files = {schema_filename(t): _dump(event_schema(t)) for t in _all_versions()}
    files[INDEX_FILE] = _dump(schema_index())
    return files


def write_schemas(directory: Path) -> list[Path]:
    """Write :func:`render_schemas` into ``directory``, remove schemas of types no longer registered, and
    return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    # Only our own generated files are removed; examples/ and anything else a person put there is left alone.
    for stale in directory.glob(f"*{SCHEMA_SUFFIX}"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        path = directory / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")
    paths = write_schemas(target)
    sys.stdout.write(f"wrote {len(paths)} files to {target}/\n")
