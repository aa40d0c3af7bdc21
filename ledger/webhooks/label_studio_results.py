"""Label Studio results → ledger regions: one label class and one geometry per labelled region.

A Label Studio annotation (or prediction) holds a ``result`` list; each entry is one region of one control
tag: ``{"id": "wqzLm1ArUX", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
"original_width": 1024, "original_height": 768, "value": {"x": 42, "y": 36.4, "width": 50.1, "height": 26,
"rotation": 0, "rectanglelabels": ["Airplane"]}}``. Coordinates are percentages of the image; the ledger
keeps pixels, so they are converted with the image size the result carries (``original_width`` /
``original_height``) or, when it carries none, the source's configured ``[image]`` size.

A region listing several labels becomes one ledger region per label (its key gets ``-<index>``); a
``relation`` (a link between two regions: no ledger model) and a ``textarea`` (free text, which may hold
identifiers) are skipped and counted; every other type is refused (``UnsupportedAction``), never dropped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from ledger.domain.canonical import canonicalize_json
from ledger.domain.errors import ValidationFailed
from ledger.domain.fields import MAX_IDENTIFIER_LENGTH
from ledger.webhooks.model import SourceConfig, UnsupportedAction, unmappable

SKIPPED_TYPES = frozenset({"relation", "textarea"})
"""Result types recorded as nothing: a relation has no ledger model, a textarea holds free text."""
LABEL_KEYS: Mapping[str, str] = {
    "rectanglelabels": "rectanglelabels",
    "polygonlabels": "polygonlabels",
    "brushlabels": "brushlabels",
    "choices": "choices",
    "labels": "labels",
}
"""Each mapped result type → the key of ``value`` that lists its labels. A bare ``rectangle``, ``polygon``
or ``brush`` (a shape tag beside a separate ``Labels`` tag, its class in another result of the same
region) is not mapped: the labelling configuration should use ``RectangleLabels`` and the like."""
_DIGITS = 6
"""Pixel coordinates are kept to a millionth of a pixel: the same percentages always give the same
numbers, so an unchanged region compares equal to the version on record."""


@dataclass(frozen=True, slots=True)
class Region:
    """One ledger annotation's content read from a result: its key within the tool object, class, shape."""

    key: str
    """The result's region id, plus ``-<index>`` when the result lists several labels."""
    label_class: str
    geometry: dict[str, Any]


@dataclass(slots=True)
class Regions:
    """What a ``result`` list becomes: the regions to record and the types skipped (with their counts)."""

    regions: list[Region] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def read_results(results: Any, where: str, config: SourceConfig) -> Regions:
    """The regions of a Label Studio ``result`` list found at ``where`` (``annotation.result``)."""
    if results is None:
        return Regions()
    if not isinstance(results, list):
        raise unmappable(where, "is not a list of results")
    read = Regions()
    for index, result in enumerate(results):
        at = f"{where}[{index}]"
        if not isinstance(result, dict):
            raise unmappable(at, "is not a result object")
        kind = result.get("type")
        if kind in SKIPPED_TYPES:
            read.skipped[kind] = read.skipped.get(kind, 0) + 1
            continue
        if not isinstance(kind, str) or kind not in LABEL_KEYS:
            raise UnsupportedAction(
                f"{at}.type: result type {_shown(kind)} (region {_region_id(result, at)}) is not mapped; "
                "the ledger maps rectanglelabels, polygonlabels, brushlabels, choices and labels"
            )
        read.regions.extend(_regions(result, kind, at, config))
    return read


def _regions(result: dict[str, Any], kind: str, at: str, config: SourceConfig) -> list[Region]:
    region_id = _region_id(result, at)
    value = result.get("value")
    if not isinstance(value, dict):
        raise unmappable(f"{at}.value", "is not an object")
    labels = value.get(LABEL_KEYS[kind])
    if not isinstance(labels, list) or not labels:
        raise unmappable(f"{at}.value.{LABEL_KEYS[kind]}", "names no label")
    geometry = _geometry(result, value, kind, at, config)
    several = len(labels) > 1
    return [
        Region(
            key=f"{region_id}-{n}" if several else region_id,
            label_class=_label_class(label, f"{at}.value.{LABEL_KEYS[kind]}[{n}]"),
            geometry=geometry,
        )
        for n, label in enumerate(labels)
    ]


def _geometry(
    result: dict[str, Any], value: dict[str, Any], kind: str, at: str, config: SourceConfig
) -> dict[str, Any]:
    label_key = LABEL_KEYS[kind]
    if label_key in ("choices", "labels"):
        if label_key == "labels" and ("x" in value or "points" in value):
            raise UnsupportedAction(
                f"{at}.type: a labels result holding an image shape (region {_region_id(result, at)}) is not "
                "mapped; label image regions with RectangleLabels, PolygonLabels or BrushLabels"
            )
        # A text span's offsets are not kept: the ledger has no span geometry, and the span's own text
        # (``value.text``) is free text that never enters it.
        return {"kind": "classification"}
    rotation = result.get("image_rotation") or 0
    if not _finite(rotation) or float(rotation) % 360 != 0:
        # Label Studio's rotated-image coordinates are not mapped: refused, never read as unrotated.
        raise unmappable(f"{at}.image_rotation", "is not 0: regions on a rotated image are not mapped")
    if label_key == "brushlabels":
        return _mask(value, at)
    width, height = _image_size(result, at, config)
    if label_key == "polygonlabels":
        return _polygon(value, at, width, height)
    return _rectangle(value, at, width, height)


def _mask(value: dict[str, Any], at: str) -> dict[str, Any]:
    """A brush mask pinned by the SHA-256 of its RLE's canonical JSON (RFC 8785) bytes: the RLE itself
    (thousands of numbers) stays in Label Studio."""
    if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
        raise unmappable(f"{at}.value.rle", "holds no run-length encoded mask (format rle)")
    try:
        digest = hashlib.sha256(canonicalize_json(value["rle"])).hexdigest()
    except ValidationFailed:  # a number RFC 8785 cannot write exactly (10**30), or not JSON data
        raise unmappable(f"{at}.value.rle", "holds a value canonical JSON cannot carry") from None
    return {"kind": "mask", "digest": digest, "encoding": "rle"}


def _image_size(result: dict[str, Any], at: str, config: SourceConfig) -> tuple[float, float]:
    width, height = result.get("original_width"), result.get("original_height")
    if _positive(width) and _positive(height):
        return float(width), float(height)
    if config.image_width is not None and config.image_height is not None:
        return float(config.image_width), float(config.image_height)
    missing = "original_width" if not _positive(width) else "original_height"
    raise unmappable(
        f"{at}.{missing}",
        "is not given, so the region's percent coordinates cannot become pixels; set [image] width and "
        "height in the source's config",
    )


def _rectangle(value: dict[str, Any], at: str, width: float, height: float) -> dict[str, Any]:
    """An axis-aligned box, or a 4-point polygon when the rectangle is rotated.

    Label Studio rotates a rectangle by ``rotation`` degrees clockwise (on screen, y pointing down) about
    its top-left corner ``(x, y)``, after its percentages are taken of the image's width and height."""
    x, y = _number(value, "x", at) * width / 100, _number(value, "y", at) * height / 100
    w, h = _number(value, "width", at) * width / 100, _number(value, "height", at) * height / 100
    rotation = value.get("rotation") or 0
    if not _finite(rotation):
        raise unmappable(f"{at}.value.rotation", "is not a number")
    if float(rotation) % 360 == 0:
        return {"kind": "bbox", "x": _px(x), "y": _px(y), "width": _px(w), "height": _px(h)}
    theta = math.radians(float(rotation))
    cos, sin = math.cos(theta), math.sin(theta)
    corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    points = [[_px(x + dx * cos - dy * sin), _px(y + dx * sin + dy * cos)] for dx, dy in corners]
    return {"kind": "polygon", "points": points}


def _polygon(value: dict[str, Any], at: str, width: float, height: float) -> dict[str, Any]:
    points = value.get("points")
    if not isinstance(points, list):
        raise unmappable(f"{at}.value.points", "is not a list of points")
    pixels = []
    for n, point in enumerate(points):
        if not (isinstance(point, list) and len(point) == 2 and all(_finite(c) for c in point)):
            raise unmappable(f"{at}.value.points[{n}]", "is not an [x, y] pair of numbers")
        pixels.append([_px(point[0] * width / 100), _px(point[1] * height / 100)])
    return {"kind": "polygon", "points": pixels}


def _label_class(label: Any, at: str) -> str:
    """A label as the ledger's ``label_class``: an identifier (one token, no spaces), never rewritten."""
    if (
        not isinstance(label, str)
        or not 0 < len(label) <= MAX_IDENTIFIER_LENGTH
        or any(c.isspace() or not c.isprintable() for c in label)
    ):
        raise unmappable(
            at,
            "is not usable as a label class (1-200 characters, no spaces or control characters); "
            "rename the label in the project's labelling configuration",
        )
    return label


def _region_id(result: dict[str, Any], at: str) -> str:
    region_id = result.get("id")
    if (
        not isinstance(region_id, str)
        or not 0 < len(region_id) <= 64
        or not all(c.isalnum() or c in "-_" for c in region_id)
    ):
        raise unmappable(f"{at}.id", "is not a region id (letters, digits, - and _)")
    return region_id


def _number(value: dict[str, Any], key: str, at: str) -> float:
    number = value.get(key)
    if not _finite(number):
        raise unmappable(f"{at}.value.{key}", "is not a number")
    return float(number)


def _finite(number: object) -> TypeGuard[float]:
    return isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number)


def _positive(number: object) -> TypeGuard[float]:
    return _finite(number) and number > 0


def _px(number: float) -> float:
    # ``+ 0.0`` turns a rounded -0.0 into 0.0: the two compare equal but would print differently.
    return round(number, _DIGITS) + 0.0


def _shown(kind: Any) -> str:
    """A result type as a refusal may show it: a short token, or ``(not a type name)``."""
    if isinstance(kind, str) and 0 < len(kind) <= 40 and kind.isascii() and kind.isidentifier():
        return kind
    return "(not a type name)"
