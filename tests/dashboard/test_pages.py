"""The report pages built from a real store: every number is the catalog's, every chart has
its table, and the page parameters are checked."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tests.dashboard.conftest import END, START, context, filters_for

from stumble.analytics.compare import MetricComparison
from stumble.analytics.funnels import FunnelResult
from stumble.analytics.rendering import format_value
from stumble.analytics.results import Table
from stumble.dashboard import pages
from stumble.dashboard.context import PageParamError
from stumble.dashboard.model import Chart, Page, ProblemList, TileGrid
from stumble.plan.model import TrackingPlan
from stumble.reports.catalog import run_report
from stumble.storage import DuckDBStore

REPORT_PAGES = pages.REPORT_PAGES


def charts_of(page: Page) -> list[Chart]:
    found: list[Chart] = []
    for section in page.sections:
        for block in section.blocks:
            if isinstance(block, Chart):
                found.append(block)
            elif isinstance(block, TileGrid):
                found.extend(t.trend for t in block.tiles if t.trend is not None)
    return found


@pytest.mark.parametrize("name", sorted(REPORT_PAGES))
def test_every_page_builds_with_drawable_charts_and_exportable_tables(
    store: DuckDBStore, plan: TrackingPlan, name: str
) -> None:
    page = REPORT_PAGES[name](context(store, plan))
    assert page.slug == name and page.question.endswith("?") and page.owner
    charts = charts_of(page)
    assert charts, "every report page draws something"
    ids = [chart.id for chart in charts]
    assert len(ids) == len(set(ids)), "chart ids name exports: unique per page"
    tables = page.tables()
    for chart in charts:
        assert tables[chart.id] is chart.table
        json.dumps(chart.spec)  # what the page embeds
        assert chart.spec["data"]["values"] or not chart.table.rows or chart.small


def test_the_funnel_page_shows_the_reports_numbers(store: DuckDBStore, plan: TrackingPlan) -> None:
    ctx = context(store, plan, scenario="create_service_request", by="ui_version")
    page = pages.funnel(ctx)
    params = {**ctx.filters.report_params(), "scenario": "create_service_request"}
    params["by"] = "ui_version"
    report: FunnelResult = run_report(store, plan, "funnel", params, min_group_size=5).data
    steps = page.tables()["funnel"].rows
    assert [row[0] for row in steps] == report.steps
    total = report.total()
    assert [row[1] for row in steps] == [step.sessions for step in total.steps]
    assert [row[2] for row in steps] == [step.conversion.value for step in total.steps]
    by_group = page.tables()["by-group"].rows
    assert [row[0] for row in by_group] == ["1.4.2", "2.0.0"]
    assert page.extra_params == {"scenario": "create_service_request", "by": "ui_version"}


def test_the_overview_compares_each_scenario_with_the_period_before(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    filters = filters_for(START.replace(day=START.day + 7), END)  # the second week: UI 2.0.0
    page = pages.overview(context(store, plan, filters))
    problems = next(b for s in page.sections for b in s.blocks if isinstance(b, ProblemList))
    assert problems.table.rows, "the seed story has problems above the plan's thresholds"
    tiles = next(b for s in page.sections for b in s.blocks if isinstance(b, TileGrid)).tiles
    assert [t.title for t in tiles] == [name.replace("_", " ") for name in plan.scenarios]
    request = tiles[0]
    params = {**filters.with_environment("prod").report_params()}
    now = run_report(
        store, plan, "funnel", {**params, "scenario": "create_service_request"}, min_group_size=5
    ).data.total()
    assert request.metrics[0].value == format_value(now.conversion.value, "share")
    # 2.0.0 fixed the form: conversion rose significantly against the first week.
    assert request.metrics[0].tone == "good" and request.metrics[0].direction == "up"
    assert request.trend is not None
    assert [row[0] for row in request.trend.table.rows] == ["2026-03-02", "2026-03-09"]


def test_field_errors_are_ranked_by_time_lost(store: DuckDBStore, plan: TrackingPlan) -> None:
    rows = pages.forms(context(store, plan)).tables()["field-errors"].rows
    impacts = [row[-1] for row in rows]
    assert impacts == sorted(impacts, reverse=True)
    assert all(row[4] >= 5 for row in rows), "no row describes fewer than k sessions"


def test_compare_picks_the_two_newest_versions_by_default(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    page = pages.compare(context(store, plan))
    pickers = {p.name: p.selected for p in page.pickers}
    assert (pickers["mode"], pickers["a"], pickers["b"]) == ("versions", "1.4.2", "2.0.0")
    windows = pages.compare(context(store, plan, mode="windows"))
    assert "a" not in {p.name for p in windows.pickers}


def test_the_loops_chart_shows_every_signal_with_data_largest_first(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    chart = next(c for c in charts_of(pages.usage(context(store, plan))) if c.id == "loops")
    rows = chart.spec["data"]["values"]
    shares = [row["share"] for row in rows]
    assert shares and all(share > 0 for share in shares)
    assert shares == sorted(shares, reverse=True)
    signals = {str(row["row"]).rsplit(" · ", 1)[1] for row in rows}
    assert signals - {"reopened"}, "navigation (back, cancel, close, retry) is charted too"


@pytest.mark.parametrize("k", [5, 40])
def test_each_last_actions_bar_reaches_all_the_sessions_that_stopped(
    store: DuckDBStore, plan: TrackingPlan, k: int
) -> None:
    ctx = dataclasses.replace(context(store, plan), min_group_size=k)
    chart = next(c for c in charts_of(pages.funnel(ctx)) if c.id == "last-actions")
    shares: dict[str, float] = {}
    for row in chart.spec["data"]["values"]:
        shares[row["step"]] = shares.get(row["step"], 0.0) + row["share"]
    assert shares and all(total == pytest.approx(1.0) for total in shares.values())
    hidden = {row[0] for row in chart.table.rows if row[3] == "hidden"}
    rest = {r["step"] for r in chart.spec["data"]["values"] if r["action"] == pages.HIDDEN_ACTIONS}
    assert rest == hidden
    if k == 40:
        assert hidden, "a high threshold hides some actions"


def test_compare_labels_each_metric_apart_and_colours_it_by_verdict(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    page = pages.compare(context(store, plan))
    rates = next(c for c in charts_of(page) if c.id == "rates")
    rows = rates.spec["data"]["values"]
    labels = [row["metric"] for row in rows]
    assert len(set(labels)) == len(labels)
    # The form every field error of the scenario shares is left out; what differs stays.
    errors = [label for label in labels if label.startswith("errors: ")]
    assert errors and all(label.startswith("errors: step ") for label in errors)
    assert all(len(label) <= 40 for label in labels)
    assert {row["tone"] for row in rows} <= {"improved", "regressed", "no significant change"}
    assert rates.spec["layer"][-1]["encoding"]["color"]["field"] == "tone"


def test_a_label_shared_by_two_metrics_falls_back_to_their_full_names() -> None:
    same = [
        MetricComparison(
            metric="field_error_share",
            subject=f"{form} step 1 category required",
            higher_is_better=False,
            test="z",
            diff=0.1,
            ci_low=0.0,
            ci_high=0.2,
        )
        for form in ("service_request", "approval_decision")
    ]
    table = Table("rates", (), [])
    chart = pages._difference_chart(
        "rates", metrics=same, table=table, value_format=".1%", title="diff"
    )
    assert [row["metric"] for row in chart.spec["data"]["values"]] == [
        "field_error_share · service_request step 1 category required",
        "field_error_share · approval_decision step 1 category required",
    ]


@pytest.mark.parametrize(
    ("builder", "query", "named"),
    [
        (pages.funnel, {"scenario": "nope"}, "scenario"),
        (pages.funnel, {"by": "person"}, "by"),
        (pages.forms, {"form": "nope"}, "form"),
        (pages.compare, {"mode": "everything"}, "mode"),
        (pages.compare, {"mode": "flag"}, "flag"),
    ],
)
def test_a_page_parameter_must_be_one_of_its_choices(
    store: DuckDBStore,
    plan: TrackingPlan,
    builder: pages.PageBuilder,
    query: dict[str, str],
    named: str,
) -> None:
    with pytest.raises(PageParamError, match=named):
        builder(context(store, plan, **query))


def test_the_environment_with_data_is_chosen_and_others_offered(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    ctx = context(store, plan)
    assert ctx.filters.env == "prod"
    assert [e.name for e in ctx.inventory.environments] == ["prod", "staging"]
    assert ctx.inventory.ui_versions == ("2.0.0", "1.4.2")  # most recently seen first
    staging = context(store, plan, filters_for(env="staging"))
    assert staging.filters.env == "staging"


def test_reports_are_shared_between_pages_through_the_cache(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    ctx = context(store, plan)
    first = ctx.report("funnel", {"scenario": "login"})
    assert ctx.report("funnel", {"scenario": "login"}) is first


def test_the_usage_page_charts_the_moves_between_screens_most_first(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    ctx = context(store, plan)
    page = pages.usage(ctx)
    chart = next(c for c in charts_of(page) if c.id == "paths")
    report = run_report(store, plan, "paths", ctx.filters.report_params(), min_group_size=5)
    shown = [(" > ".join(p.screens), p.sessions) for p in report.data.paths if not p.hidden]
    bars = [(row["path"], row["sessions"]) for row in chart.spec["data"]["values"]]
    assert bars and bars == shown[: pages.MAX_BARS]
    assert all(len(path.split(" > ")) == 2 for path, _ in bars), "moves: one screen to the next"
    assert [p.name for p in page.pickers] == ["from", "to"]


def test_two_picked_screens_chart_the_paths_between_them(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    screens = [c.value for c in pages.usage(context(store, plan)).pickers[0].choices if c.value]
    moves = pages.usage(context(store, plan)).tables()["paths"].rows
    start, end = str(moves[0][0]).split(" > ")  # the most frequent move: a path exists
    assert start in screens and end in screens
    page = pages.usage(context(store, plan, **{"from": start, "to": end}))
    chart = next(c for c in charts_of(page) if c.id == "paths")
    paths = [str(row["path"]).split(" > ") for row in chart.spec["data"]["values"]]
    assert paths and all(p[0] == start and p[-1] == end for p in paths)
    assert page.sections[-1].heading == f"How people get from {start} to {end}"
    assert page.extra_params == {"from": start, "to": end}


def test_a_path_picker_refuses_a_screen_it_does_not_offer(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    with pytest.raises(PageParamError):
        pages.usage(context(store, plan, **{"from": "<script>", "to": "home"}))


def test_a_note_several_reports_give_is_written_once_naming_them_all(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    notes = pages.usage(context(store, plan)).notes
    texts = [note.split(": ", 1)[1] for note in notes if not note[0].isdigit()]
    assert len(texts) == len(set(texts)), notes
    shared = [note for note in notes if note.startswith("usage, loops, paths: ")]
    assert shared, "the source note all three reports give"
