"""Hypothesis strategies for events, generated from the committed JSON Schemas in ``schemas/``.

hypothesis-jsonschema (0.23) no longer runs on the Hypothesis that schemathesis 4 requires, and the
schemas here use a small part of JSON Schema, so this module reads that part itself: objects, strings
(pattern, length, ``date-time``), integers and numbers with bounds, enums, consts, ``anyOf``/``oneOf``,
arrays and ``prefixItems``, and ``$ref`` into ``$defs``. Each value is drawn mostly inside the schema and
sometimes just outside it (one past a bound, a time outside the accepted range, a control character), so
a test sees both what the ledger must accept and what it must refuse with a 4xx naming the field.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from ledger.domain.fields import IDENTIFIER_PATTERN, PRINTABLE_PATTERN

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
Schema = dict[str, Any]

EDGE_TIMES = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "1900-01-01T00:00:00+01:00",
    "2199-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "2099-06-01T00:00:00Z",
    "2026-02-29T10:00:00Z",
    "2024-02-29T23:59:60Z",
    "2026-03-02t08:00:00z",
    "2026-03-02T08:00:00",
)
EDGE_INTEGERS = (-1, 0, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63, -(2**63) - 1)
EDGE_NUMBERS = (0.0, -0.0, 1e-7, 1e300, -1e300, 5e-324, 2.0**53)
EDGE_STRINGS = ("", " ", "a\x00b", "line\nbreak", "\u2028", "\ud7ff", "ssn 123456789", "x" * 5000)


@cache
def event_schemas() -> dict[str, Schema]:
    """Every committed event schema by type (latest versions only, as ``index.json`` lists them)."""
    index = json.loads((SCHEMAS / "index.json").read_text())
    return {t["type"]: json.loads((SCHEMAS / t["schema"]).read_text()) for t in index["types"]}


def recent_times() -> st.SearchStrategy[str]:
    """RFC 3339 times in 2025-2026, in UTC or with an offset, as producers send them."""
    return st.builds(
        "2026-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
        st.integers(1, 11), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59),
        st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", ".123Z"]),
    )  # fmt: skip


def from_schema(schema: Schema, root: Schema) -> st.SearchStrategy[Any]:
    """Values inside ``schema`` (a part of ``root``); bounds are kept small so examples stay cheap."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return st.deferred(lambda: from_schema(root["$defs"][name], root))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, root) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, root) for k in kind])
    if kind == "object":
        properties: dict[str, Schema] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {n: from_schema(s, root) for n, s in properties.items() if n in required},
            optional={n: from_schema(s, root) for n, s in properties.items() if n not in required},
        )
    if kind == "array":
        if "prefixItems" in schema:
            return st.tuples(*(from_schema(s, root) for s in schema["prefixItems"])).map(list)
        low = schema.get("minItems", 0)
        high = max(low, min(schema.get("maxItems", low + 4), low + 4))
        return st.lists(
            from_schema(schema.get("items", {"type": "string"}), root), min_size=low, max_size=high
        )
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        high = schema.get("maximum")
        return st.integers(min_value=schema.get("minimum"), max_value=high if high is not None else 10_000)
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        return st.floats(min_value=low, max_value=high if high is not None else 1e5, allow_nan=False,
                         allow_infinity=False, exclude_min="exclusiveMinimum" in schema,
                         exclude_max="exclusiveMaximum" in schema)  # fmt: skip
    if kind == "boolean":
        return st.booleans()
    return st.none()


# The two character-class patterns of the schemas, drawn directly: Hypothesis would filter regex draws.
_CHARACTER_CLASSES = {
    PRINTABLE_PATTERN: ("Cc", "Cs"),
    IDENTIFIER_PATTERN: ("Cc", "Cs", "Zs", "Zl", "Zp"),
}


def _string(schema: Schema) -> st.SearchStrategy[str]:
    if schema.get("format") == "date-time":
        return recent_times()
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", 40), 40)
    if schema.get("pattern") in _CHARACTER_CLASSES:
        alphabet = st.characters(exclude_categories=_CHARACTER_CLASSES[schema["pattern"]])
        return st.text(
            alphabet, min_size=max(low, 1 if schema["pattern"].endswith("+$") else 0), max_size=max(high, low)
        )
    if "pattern" in schema:
        # Cut to the bound, then keep what still matches, rather than filtering long draws away.
        pattern = re.compile(schema["pattern"])
        return (
            st.from_regex(pattern, fullmatch=True)
            .map(lambda s: s[: max(high, low)])
            .filter(lambda s: len(s) >= low and pattern.fullmatch(s) is not None)
        )
    return st.text(min_size=low, max_size=max(high, low))


def events(tenant: str, *, types: list[str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Whole CloudEvents of the registered types, addressed to ``tenant`` with fresh ids: half drawn
    inside their schema, half with one value (anywhere in the event) replaced by an edge value."""
    schemas = event_schemas()
    names = sorted(types or schemas)
    counter = iter(range(10**9))

    def readdress(event: dict[str, Any]) -> dict[str, Any]:
        # A counter keeps ids apart across examples; the generated id after it keeps its odd characters.
        return {**event, "tenant": tenant, "id": f"{next(counter)}:{event['id']}"[:200]}

    clean = st.one_of([from_schema(schemas[n], schemas[n]) for n in names]).map(readdress)
    return st.one_of(clean, clean.flatmap(with_edge_value))


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))] or [(path, value)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))] or [(path, value)]
    return [(path, value)]


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    out = list(value)
    out[head] = _replaced(out[head], rest, new)
    return out


def _edges_for(old: Any) -> st.SearchStrategy[Any]:
    if isinstance(old, bool):
        return st.sampled_from([None, 1, "true"])
    if isinstance(old, int):
        return st.sampled_from(EDGE_INTEGERS)
    if isinstance(old, float):
        return st.sampled_from(EDGE_NUMBERS)
    if isinstance(old, str):
        return st.sampled_from([*EDGE_TIMES, *EDGE_STRINGS])
    if isinstance(old, list):
        # A geometry's worth of points, or a list far past any sensible bound.
        return st.sampled_from([[], [[1.0, 2.0]] * 20_001, ["i"] * 100_001])
    return st.sampled_from([None, {}, [], "x"])


def with_edge_value(event: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``event`` with one leaf (never ``tenant``) replaced by an edge value of its kind, or an
    extension attribute added at an edge."""
    leaves = [(p, v) for p, v in _leaves(event) if p[:1] != ("tenant",)]
    replace = st.sampled_from(leaves).flatmap(
        lambda leaf: _edges_for(leaf[1]).map(lambda new: _replaced(event, leaf[0], new))
    )
    extension = st.tuples(
        st.sampled_from(["traceparent", "x", "a" * 21, "Bad", "partitionkey"]),
        st.sampled_from(["v", "y" * 100_000, 2**31, -(2**31) - 1, True, 1.5, None, "a\x00"]),
    ).map(lambda kv: {**event, kv[0]: kv[1]})
    return st.one_of(replace, replace, extension)
