"""The committed ``schemas/`` folder: JSON Schemas that match the models, and one valid example per type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.fields import FREE_TEXT, SENSITIVE
from ledger.domain.registry import EVENT_TYPES
from ledger.schema_export import REGENERATE_COMMAND, SCHEMA_SUFFIX, render_schemas

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES = SCHEMAS / "examples"
TYPES = sorted(EVENT_TYPES)
RENDERED = render_schemas()
REGENERATE = f"run `{REGENERATE_COMMAND}` and commit schemas/"


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _example(type_name: str) -> dict[str, Any]:
    return _load(EXAMPLES / f"{type_name}.json")


def _schema(type_name: str) -> dict[str, Any]:
    return _load(SCHEMAS / f"{type_name}{SCHEMA_SUFFIX}")


def _example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def _marked_fields(schema: dict[str, Any], marker: str) -> set[str]:
    """Dotted paths of every node carrying ``marker``, found by walking the whole schema.

    Deliberately independent of the registry's own walk, and stricter: it also follows arrays (``[]``), maps
    (``*``) and ``oneOf``, so a marker the registry would overlook shows up here as a difference.
    """
    defs: dict[str, Any] = schema.get("$defs", {})
    found: set[str] = set()

    def visit(node: Any, path: tuple[str, ...], refs: frozenset[str]) -> None:
        if not isinstance(node, dict):
            return
        if node.get(marker) is True:
            found.add(".".join(path))
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix("#/$defs/")
            if name not in refs:  # a recursive model must not recurse forever
                visit(defs[name], path, refs | {name})
        for name, sub in node.get("properties", {}).items():
            visit(sub, (*path, name), refs)
        for keyword in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(keyword, []):
                visit(sub, path, refs)
        for sub in [node.get("items"), *node.get("prefixItems", [])]:
            visit(sub, (*path, "[]"), refs)
        visit(node.get("additionalProperties"), (*path, "*"), refs)

    visit(schema, (), frozenset())
    return found


# ---- the committed schemas are generated, never hand-edited ----------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_committed_schema_file_is_what_the_models_render(name: str) -> None:
    path = SCHEMAS / name
    assert path.is_file(), f"schemas/{name} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == RENDERED[name], f"schemas/{name} is out of date; {REGENERATE}"


def test_schemas_folder_holds_no_stale_files() -> None:
    stale = sorted({p.name for p in SCHEMAS.glob("*.json")} - set(RENDERED))
    assert not stale, f"stale files in schemas/: {stale}; {REGENERATE}"


# ---- one example per type -------------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_every_registered_type_has_an_example(type_name: str) -> None:
    assert (EXAMPLES / f"{type_name}.json").is_file(), f"add schemas/examples/{type_name}.json"


@pytest.mark.parametrize("path", _example_files(), ids=lambda p: p.stem)
def test_every_example_is_named_after_the_registered_type_it_holds(path: Path) -> None:
    assert path.stem in EVENT_TYPES, f"{path.name} names no registered event type"
    assert _load(path)["type"] == path.stem


def test_example_ids_are_unique_across_examples() -> None:
    ids = [_load(p)["id"] for p in _example_files()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates


@pytest.mark.parametrize("type_name", TYPES)
def test_example_is_accepted_by_the_ledger(type_name: str) -> None:
    received = validate_event(_example(type_name), allow_internal=True)

    assert received.event_type.name == type_name


@pytest.mark.parametrize("type_name", TYPES)
def test_example_carries_every_sealed_field_of_its_type(type_name: str) -> None:
    data = _example(type_name)["data"]
    missing = [".".join(p) for p in EVENT_TYPES[type_name].sensitive_paths if p[0] not in data]
    assert not missing, "examples show sealing at work: fill in " + ", ".join(missing)


@pytest.mark.parametrize("type_name", [t for t in TYPES if EVENT_TYPES[t].internal])
def test_example_of_an_internal_type_is_written_by_the_ledger(type_name: str) -> None:
    example = _example(type_name)

    assert example["source"] == "urn:ledger"
    # The actor is the ledger itself, or the principal it acted for (an erasure's requester, as admin).
    assert example["actor"] == "ledger" or (type_name, example["actorrole"]) == ("erasure.executed", "admin")


# ---- the examples against the published JSON Schemas ----------------------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_example_conforms_to_its_committed_json_schema(type_name: str) -> None:
    # Optional: the schemas are for producers in other languages; the ledger itself validates with pydantic.
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema(type_name)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)

    errors = [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(_example(type_name))
    ]

    assert not errors, "\n".join(errors)


# ---- sealed and free-text markers survive into the published schemas ------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_sealed_markers_in_the_schema_are_exactly_the_sealed_fields(type_name: str) -> None:
    expected = {".".join(("data", *p)) for p in EVENT_TYPES[type_name].sensitive_paths}

    assert _marked_fields(_schema(type_name), SENSITIVE) == expected


@pytest.mark.parametrize("type_name", TYPES)
def test_free_text_markers_in_the_schema_are_exactly_the_scanned_fields(type_name: str) -> None:
    expected = {".".join(("data", *p)) for p in EVENT_TYPES[type_name].free_text_paths}

    assert _marked_fields(_schema(type_name), FREE_TEXT) == expected
