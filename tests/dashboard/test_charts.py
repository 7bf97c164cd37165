"""Vega-Lite specs: complete, inline, and in the order the report ranked."""

from __future__ import annotations

import json

from stumble.dashboard import charts
from stumble.dashboard.inventory import EnvironmentCount, Inventory


def test_a_spec_is_complete_and_carries_its_own_data() -> None:
    values = [{"step": "b", "n": 3, "label": "3"}, {"step": "a", "n": 10, "label": "10"}]
    spec = charts.horizontal_bars(
        values, category="step", value="n", value_title="sessions", label="label"
    )
    assert spec["$schema"].endswith("/v6.json")
    assert spec["data"] == {"values": values}
    assert spec["width"] == "container"
    bars, labels = spec["layer"]
    assert bars["encoding"]["y"]["sort"] == ["b", "a"], "the report's order, not the alphabet"
    assert bars["encoding"]["x"]["scale"]["domainMax"] == 13.0, "room for the labels"
    assert labels["mark"]["type"] == "text"
    assert "url" not in json.dumps(spec), "no data is ever fetched"


def test_a_sparkline_has_no_axes_and_uses_utc_days() -> None:
    spec = charts.sparkline([{"week": "2026-03-02", "c": 0.5}], x="week", y="c")
    assert spec["encoding"]["x"]["axis"] is None and spec["encoding"]["y"]["axis"] is None
    assert spec["encoding"]["x"]["timeUnit"] == "utcyearmonthdate"


def test_stacked_and_grouped_bars_keep_the_series_order() -> None:
    values = [{"op": "x", "part": "input", "s": 1.0, "order": 1}]
    stacked = charts.stacked_bars(
        values, category="op", series="part", value="s", value_title="s",
        series_order=("waiting", "input"),
    )  # fmt: skip
    assert stacked["encoding"]["color"]["scale"]["domain"] == ["waiting", "input"]
    grouped = charts.grouped_bars(
        values, category="op", series="part", value="s", value_title="s",
        series_order=("p50", "p95"),
    )  # fmt: skip
    assert grouped["encoding"]["yOffset"]["sort"] == ["p50", "p95"]


def test_an_interval_chart_can_mark_zero() -> None:
    values = [{"m": "x", "d": 0.1, "lo": -0.1, "hi": 0.3}]
    spec = charts.intervals(
        values, category="m", value="d", low="lo", high="hi", value_title="diff", zero_rule=True
    )
    assert spec["layer"][0]["data"] == {"values": [{"zero": 0}]}


def test_the_default_environment_is_prod_when_it_has_data_else_the_fullest() -> None:
    def inventory(*envs: tuple[str, int]) -> Inventory:
        return Inventory(tuple(EnvironmentCount(n, c) for n, c in envs), (), ())

    assert inventory(("dev", 900), ("prod", 10)).default_environment() == "prod"
    assert inventory(("dev", 900), ("staging", 10)).default_environment() == "dev"
    assert inventory().default_environment() == "prod"
