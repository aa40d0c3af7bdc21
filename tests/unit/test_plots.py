"""The reports' figures: inline SVG that is valid XML, has no script or external resource, escapes what it
shows, and is the same bytes for the same input (a report's SHA-256 is reproducible)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from ledger.reports import plots

SVG = "{http://www.w3.org/2000/svg}"
FIGURES: dict[str, Callable[[], str]] = {
    "bars": lambda: plots.bars("Raised per rule", {"break_glass": 3, "off_hours": 1}, unit="events"),
    "histogram": lambda: plots.histogram("IoU", [[0.0, 0.5, 2], [0.5, 0.9, 7], [0.9, 1.0, 11]]),
    "funnel": lambda: plots.funnel("Review levels", [("annotated", 10), ("level 2", 6), ("level 4", 1)]),
}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - the ledger's own output, the very thing under test


@pytest.fixture(params=sorted(FIGURES))
def drawn(request: pytest.FixtureRequest) -> tuple[str, str]:
    name: str = request.param
    return name, FIGURES[name]()


def test_a_figure_is_one_svg_element_of_valid_xml(drawn: tuple[str, str]) -> None:
    _, svg = drawn
    assert svg.startswith("<svg ")
    assert parse(svg).tag == f"{SVG}svg"


def test_a_figure_has_no_xml_declaration_script_or_external_resource(drawn: tuple[str, str]) -> None:
    _, svg = drawn
    root = parse(svg)
    assert "<?xml" not in svg
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert "<!--" not in svg  # pygal's comment carries the day it drew the chart
    assert not re.search(r"href=|@import|url\(", svg)  # nothing fetched: no link, stylesheet or web font


def test_the_same_input_draws_the_same_bytes(drawn: tuple[str, str]) -> None:
    name, svg = drawn
    assert FIGURES[name]() == svg


def test_figures_of_different_data_have_different_ids() -> None:
    # Each figure's CSS is scoped by its id: two figures on one page must not restyle each other.
    a, b = plots.bars("n", {"x": 1}), plots.bars("n", {"x": 2})
    assert parse(a).get("id") != parse(b).get("id")


def test_labels_and_titles_are_escaped() -> None:
    svg = plots.bars("<b>title</b>", {"<script>alert(1)</script>": 2})
    assert "<script>" not in svg
    assert "<b>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    texts = [e.text for e in parse(svg).iter() if e.text]
    assert "<b>title</b>" in texts


def test_values_are_printed_on_the_figure_with_their_unit() -> None:
    svg = plots.bars("Events per year", {"2025": 1200, "2026": 7}, unit="events")
    values = {e.text for e in parse(svg).iter(f"{SVG}text") if "value" in (e.get("class") or "")}
    assert values == {"1,200 events", "7 events"}


def test_bars_read_from_the_top_in_the_given_order() -> None:
    svg = plots.bars("Order", {"first": 1, "second": 2, "third": 3})
    labels = [e.text for e in parse(svg).iter(f"{SVG}desc") if e.get("class") == "x_label"]
    assert labels == ["third", "second", "first"]  # pygal draws bottom-up


def test_a_funnel_gives_each_stage_its_share_of_the_first() -> None:
    svg = plots.funnel("Review levels", [("annotated", 8), ("level 2", 4), ("level 4", 0)])
    for label in ("annotated (100%)", "level 2 (50%)", "level 4 (0%)"):
        assert label in svg


def test_a_histogram_draws_one_bar_per_non_empty_bin() -> None:
    svg = plots.histogram("Dice", [[0.0, 0.5, 0], [0.5, 0.9, 3], [0.9, 1.0, 4]])
    rects = [e for e in parse(svg).iter(f"{SVG}rect") if "reactive" in (e.get("class") or "")]
    assert len(rects) == 3
    assert sorted(float(r.get("height") or 0) > 0 for r in rects) == [False, True, True]


def test_empty_data_draws_a_figure_that_says_so() -> None:
    for svg in (plots.bars("None", {}), plots.histogram("None", []), plots.funnel("None", [])):
        assert "No data" in svg
        parse(svg)


def test_a_fixed_scale_spans_the_axis_whatever_the_values() -> None:
    svg = plots.bars("Kappa per class", {"nodule": 0.5}, scale=(0, 1))
    ticks = {e.text for e in parse(svg).iter(f"{SVG}text") if "major" in (e.get("class") or "")}
    assert {"0", "1"} <= ticks
