"""Vega-Lite specs for the dashboard and the digest: one definition, two renderers.

A browser draws a spec with vega-embed (``web/static/charts.js``); the weekly digest will render
the same spec to static SVG on the server. Every chart is built from a report ``Table`` (or
rows made the same way), so its table view and its CSV export hold exactly what it draws.

Conventions: durations are drawn in seconds, shares as percentages; no title inside the chart
(the page's caption is the title); colours from a colour-blind-safe palette whose marks keep
WCAG AA contrast against white; system fonts only (no web font is ever fetched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

SCHEMA: Final = "https://vega.github.io/schema/vega-lite/v6.json"
"""An identifier only: no renderer fetches it."""
FONT: Final = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
TEXT: Final = "#1f2933"
MUTED: Final = "#52606d"
GRID: Final = "#e4e7eb"
# Okabe & Ito's palette, darkened where a colour lacks 3:1 contrast against white.
PALETTE: Final = ("#0b5fa5", "#c2410c", "#047857", "#a21caf", "#b45309", "#0e7490", "#be123c")
PRIMARY: Final = PALETTE[0]
BAD: Final = "#b91c1c"
GOOD: Final = "#047857"
REST: Final = "#cbd2d9"
"""What a chart does not show part by part (small groups), as a quiet grey."""
ROW_HEIGHT: Final = 26
LABEL_ROOM: Final = 1.3
SHARE_FORMAT: Final = ".1~%"
"""Percentages with one decimal where it matters (0.5%, 1%, 1.5%): never two ticks alike."""

Values = Sequence[Mapping[str, object]]

CONFIG: Final[dict[str, Any]] = {
    "font": FONT,
    "background": "#ffffff",
    "view": {"stroke": None},
    "axis": {
        "labelColor": MUTED,
        "titleColor": TEXT,
        "labelFontSize": 12,
        "titleFontSize": 12,
        "titleFontWeight": 600,
        "gridColor": GRID,
        "domainColor": "#9aa5b1",
        "tickColor": "#9aa5b1",
        "labelLimit": 220,
    },
    "legend": {
        "labelColor": TEXT,
        "titleColor": TEXT,
        "labelFontSize": 12,
        "titleFontSize": 12,
        "orient": "bottom",
    },
    "range": {"category": list(PALETTE)},
    "bar": {"color": PRIMARY},
    "line": {"color": PRIMARY, "strokeWidth": 2},
    "point": {"color": PRIMARY, "filled": True},
    "text": {"color": TEXT, "fontSize": 12},
}


def _spec(values: Values, body: Mapping[str, Any], *, height: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "data": {"values": [dict(v) for v in values]},
        "width": "container",
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": CONFIG,
        **body,
    }
    if height is not None:
        spec["height"] = height
    return spec


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _height(rows: int, minimum: int = 60) -> int:
    return max(minimum, rows * ROW_HEIGHT)


def horizontal_bars(
    values: Values,
    *,
    category: str,
    value: str,
    value_title: str,
    value_format: str = ",.0f",
    color: str | None = None,
    label: str | None = None,
    label_limit: int | None = None,
) -> dict[str, Any]:
    """One bar per category, longest first unless ``values`` are already ordered: categories
    keep the order given (the report's ranking). ``label_limit``: room (px) for long category
    names, such as paths of several screens."""
    order = [str(v[category]) for v in values]
    x: dict[str, Any] = {"field": value, "type": "quantitative", "title": value_title}
    x["axis"] = {"format": value_format}
    if label is not None:
        # Room on the right for the labels after the longest bar.
        longest = max((_number(v[value]) for v in values), default=0.0)
        x["scale"] = {"domainMax": longest * LABEL_ROOM or 1}
    tooltip = [{"field": category, "type": "nominal"}, {**x}]
    bar: dict[str, Any] = {
        "mark": {"type": "bar", "cornerRadiusEnd": 2, **({"color": color} if color else {})},
        "encoding": {
            "y": {"field": category, "type": "nominal", "sort": order, "title": None},
            "x": x,
            "tooltip": tooltip,
        },
    }
    if label_limit is not None:
        bar["encoding"]["y"]["axis"] = {"labelLimit": label_limit}
    layers: list[dict[str, Any]] = [bar]
    if label is not None:
        layers.append(
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "color": TEXT},
                "encoding": {
                    "y": {"field": category, "type": "nominal", "sort": order},
                    "x": {"field": value, "type": "quantitative"},
                    "text": {"field": label},
                },
            }
        )
    return _spec(values, {"layer": layers}, height=_height(len(values)))


def stacked_bars(
    values: Values,
    *,
    category: str,
    series: str,
    value: str,
    value_title: str,
    series_order: Sequence[str],
    value_format: str = ",.1f",
    rest: str | None = None,
) -> dict[str, Any]:
    """Parts of a whole per category (where the time of an operation goes); each value row
    carries ``order``, its part's place in the stack. ``rest``: the series that stands for
    what is not shown on its own (small groups), drawn last and in grey."""
    encoding = _series_encoding(
        values,
        category=category,
        series=series,
        value=value,
        value_title=value_title,
        series_order=series_order,
        value_format=value_format,
    )
    if rest is not None:
        named = [name for name in series_order if name != rest]
        encoding["color"]["scale"] = {
            "domain": [*named, rest],
            "range": [*(PALETTE[i % len(PALETTE)] for i in range(len(named))), REST],
        }
        encoding["color"]["sort"] = [*named, rest]
    encoding["x"]["stack"] = "zero"
    encoding["order"] = {"field": "order", "type": "quantitative"}
    rows = len(encoding["y"]["sort"])
    return _spec(values, {"mark": {"type": "bar"}, "encoding": encoding}, height=_height(rows))


def grouped_bars(
    values: Values,
    *,
    category: str,
    series: str,
    value: str,
    value_title: str,
    series_order: Sequence[str],
    value_format: str = ",.1f",
) -> dict[str, Any]:
    """Several measures side by side per category (p50, p95, p99)."""
    encoding = _series_encoding(
        values,
        category=category,
        series=series,
        value=value,
        value_title=value_title,
        series_order=series_order,
        value_format=value_format,
    )
    encoding["yOffset"] = {"field": series, "type": "nominal", "sort": list(series_order)}
    rows = len(encoding["y"]["sort"]) * max(1, len(series_order))
    return _spec(values, {"mark": {"type": "bar"}, "encoding": encoding}, height=_height(rows, 80))


def _series_encoding(
    values: Values,
    *,
    category: str,
    series: str,
    value: str,
    value_title: str,
    series_order: Sequence[str],
    value_format: str,
) -> dict[str, Any]:
    """Bars of a value per category, coloured by series in ``series_order`` (the categories
    keep the order of the values, which is the report's)."""
    order = list(dict.fromkeys(str(v[category]) for v in values))
    return {
        "y": {"field": category, "type": "nominal", "sort": order, "title": None},
        "x": {
            "field": value,
            "type": "quantitative",
            "title": value_title,
            "axis": {"format": value_format},
        },
        "color": {
            "field": series,
            "type": "nominal",
            "sort": list(series_order),
            "scale": {"domain": list(series_order)},
            "title": None,
        },
        "tooltip": [
            {"field": category, "type": "nominal"},
            {"field": series, "type": "nominal"},
            {"field": value, "type": "quantitative", "format": value_format},
        ],
    }


def intervals(
    values: Values,
    *,
    category: str,
    value: str,
    low: str,
    high: str,
    value_title: str,
    value_format: str = SHARE_FORMAT,
    zero_rule: bool = False,
    tones: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A point with its 95% interval per category (conversion by group, a difference).
    ``tones``: colours per value of each row's ``tone`` field (a verdict), with a legend;
    rows of another value stay grey."""
    order = [str(v[category]) for v in values]
    # Labels here name a metric and its subject: wider than the default before they are cut.
    y: dict[str, Any] = {"field": category, "type": "nominal", "sort": order, "title": None}
    y["axis"] = {"labelLimit": 280}
    x = {
        "field": low,
        "type": "quantitative",
        "title": value_title,
        "axis": {"format": value_format},
    }
    tooltip = [
        {"field": category, "type": "nominal"},
        {"field": value, "type": "quantitative", "format": value_format},
        {"field": low, "type": "quantitative", "format": value_format},
        {"field": high, "type": "quantitative", "format": value_format},
    ]
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "rule", "strokeWidth": 2, "color": MUTED},
            "encoding": {"y": y, "x": x, "x2": {"field": high}, "tooltip": tooltip},
        },
        {
            "mark": {"type": "point", "size": 70, "filled": True},
            "encoding": {
                "y": y,
                "x": {"field": value, "type": "quantitative"},
                "tooltip": tooltip,
            },
        },
    ]
    if tones:
        color = {
            "field": "tone",
            "type": "nominal",
            "title": None,
            "scale": {"domain": list(tones), "range": list(tones.values())},
        }
        for layer in layers:
            layer["encoding"]["color"] = color
        tooltip.append({"field": "tone", "type": "nominal", "title": "verdict"})
    if zero_rule:
        layers.insert(
            0,
            {
                "data": {"values": [{"zero": 0}]},
                "mark": {"type": "rule", "color": "#9aa5b1", "strokeDash": [4, 3]},
                "encoding": {"x": {"field": "zero", "type": "quantitative"}},
            },
        )
    return _spec(values, {"layer": layers}, height=_height(len(values)))


def trend(
    values: Values,
    *,
    x: str,
    y: str,
    y_title: str,
    y_format: str = SHARE_FORMAT,
    series: str | None = None,
    series_order: Sequence[str] = (),
    height: int = 160,
    time_unit: str = "utcyearmonthdate",
) -> dict[str, Any]:
    """A line over dates (weeks or days), one line per series when given."""
    encoding: dict[str, Any] = {
        "x": {
            "field": x,
            "type": "temporal",
            "timeUnit": time_unit,
            "title": None,
            "axis": {"format": "%d %b", "labelOverlap": True},
        },
        "y": {
            "field": y,
            "type": "quantitative",
            "title": y_title,
            "axis": {"format": y_format},
        },
        "tooltip": [
            {"field": x, "type": "temporal", "timeUnit": time_unit, "title": "from"},
            {"field": y, "type": "quantitative", "format": y_format, "title": y_title},
        ],
    }
    if series is not None:
        encoding["color"] = {
            "field": series,
            "type": "nominal",
            "title": None,
            **({"sort": list(series_order)} if series_order else {}),
        }
        encoding["tooltip"].insert(0, {"field": series, "type": "nominal"})
    body = {"mark": {"type": "line", "point": True}, "encoding": encoding}
    return _spec(values, body, height=height)


def sparkline(values: Values, *, x: str, y: str, y_format: str = SHARE_FORMAT) -> dict[str, Any]:
    """A small trend for a tile: no axes, a tooltip per point."""
    spec = trend(values, x=x, y=y, y_title=y, y_format=y_format, height=44)
    enc = spec["encoding"]
    enc["x"]["axis"] = None
    enc["y"]["axis"] = None
    enc["y"]["scale"] = {"zero": False}
    spec["mark"] = {"type": "line", "point": {"size": 18}, "strokeWidth": 1.5}
    return spec
