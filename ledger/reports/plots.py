"""Figures for a report's printed page: pygal charts as inline SVG text.

A figure is part of the report whose SHA-256 is recorded, so the same content must draw the same bytes:
pygal's random chart id is replaced by one derived from the figure, and what it adds for a browser
(scripts, the comment carrying today's date) is taken out. What remains is plain SVG with no script and no
external resource, its labels escaped by the XML serializer, and its values printed on the bars (paper has
no tooltips).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pygal
from pygal.style import Style

# The page's typeface and plain colours: readable in black-and-white print; no web font is fetched.
_STYLE = Style(
    font_family="Georgia, 'DejaVu Serif', serif",
    background="white",
    plot_background="white",
    foreground="#111",
    foreground_strong="#111",
    foreground_subtle="#777",
    colors=("#3b6ea5", "#a5533b", "#5a8f3b", "#7a5aa5", "#a58f3b"),
    title_font_size=16,
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    value_label_font_size=11,
)
_CONFIG: dict[str, Any] = {
    "style": _STYLE,
    "width": 800,
    "disable_xml_declaration": True,
    "js": [],  # no script links; the inline config script is removed by _printable
    "show_legend": False,
    "print_values": True,
    "explicit_size": False,  # the viewBox only: the page sizes the figure
}
_DROPPED = ("script",)


def bars(title: str, values: Mapping[str, float], *, unit: str = "") -> str:
    """A horizontal bar per label, its value printed on it (``unit`` after the number), in the given order."""
    labels = list(values)
    chart = pygal.HorizontalBar(height=_height(len(labels)), **_CONFIG)
    chart.title = title
    # pygal draws the first label at the bottom; a reader reads from the top.
    chart.x_labels = list(reversed(labels))
    chart.add(title, [values[label] for label in reversed(labels)], formatter=_formatter(unit))
    return _svg(chart, "bars", title, list(values.items()), unit)


def histogram(title: str, bins: Sequence[Sequence[float]]) -> str:
    """A histogram of ``[[low, high, count], ...]`` bins (e.g. IoU or Dice in tenths)."""
    chart = pygal.Histogram(height=360, **_CONFIG)
    chart.title = title
    chart.add(title, [(count, low, high) for low, high, count in bins], formatter=_formatter(""))
    return _svg(chart, "histogram", title, [list(b) for b in bins], "")


def funnel(title: str, stages: Sequence[tuple[str, int]]) -> str:
    """Stages in order (e.g. review levels reached), each with its count and its share of the first."""
    first = stages[0][1] if stages else 0
    labelled = {f"{stage} ({count / first:.0%})" if first else stage: float(count) for stage, count in stages}
    return bars(title, labelled)


def _height(rows: int) -> int:
    return 120 + 34 * max(rows, 1)


def _formatter(unit: str) -> Any:
    suffix = f" {unit}" if unit else ""
    return lambda value: f"{value:,g}{suffix}" if isinstance(value, int | float) else ""


def _svg(chart: Any, kind: str, title: str, data: Any, unit: str) -> str:
    # The id scopes the figure's CSS (several figures share a page); derived from what is drawn, it is
    # the same on every run.
    drawn = json.dumps([kind, title, data, unit], default=str).encode()
    chart.uuid = hashlib.sha256(drawn).hexdigest()[:16]
    chart.add_xml_filter(_printable)
    return str(chart.render(is_unicode=True))


def _printable(root: Any) -> Any:
    """The chart's SVG tree without scripts and comments (one of them carries the date it was drawn)."""
    for parent in list(root.iter()):
        for child in list(parent):
            if callable(child.tag) or str(child.tag).rsplit("}", 1)[-1] in _DROPPED:
                parent.remove(child)
    return root
