"""Rollups against raw rows: the failures, usage and health reports from both sources.

The ``rolled`` dataset has every day rolled up. Counts must be equal; quantiles agree within
the sketch's relative error (``sketch.ALPHA``; CLS, kept in thousandths, within 0.001).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from tests.analytics.conftest import BEFORE, DAYS, START, Dataset

from stumble.analytics import sketch
from stumble.analytics.clicks import ClickQuery, run_clicks
from stumble.analytics.failures import FailureResult, run_failures
from stumble.analytics.frustration import FrustrationQuery, FrustrationThresholds, run_frustration
from stumble.analytics.health import HealthResult, run_health
from stumble.analytics.loops import run_loops
from stumble.analytics.paths import PathQuery, run_paths
from stumble.analytics.queries import (
    Dimension,
    FailureQuery,
    Filters,
    HealthQuery,
    LoopQuery,
    Scope,
    TimeRange,
    UsageQuery,
)
from stumble.analytics.results import Durations, Report
from stumble.analytics.usage import UsageResult, run_usage

LAST = START + dt.timedelta(days=DAYS - 1)
WHOLE_DAYS = TimeRange.days(START, LAST)
BREAKDOWNS: tuple[Dimension | None, ...] = (None, "role", "ui_version", "day", "week")


def _close(rolled: float | None, raw: float | None, floor: float = 1.0) -> bool:
    """Within ALPHA of the raw value, or ``floor`` below the sketch's first bucket."""
    if rolled is None or raw is None:
        return rolled is raw
    return abs(rolled - raw) <= sketch.ALPHA * abs(raw) + 1e-9 or abs(rolled - raw) <= floor


def _durations_close(a: Durations, b: Durations) -> bool:
    return a.n == b.n and all(
        _close(x, y) for x, y in ((a.p50, b.p50), (a.p95, b.p95), (a.p99, b.p99))
    )


def _sources(report: Report[Any], raw: Report[Any]) -> None:
    assert report.meta.source == "rollups", report.meta.notes
    assert raw.meta.source == "raw"
    assert report.meta.hidden == raw.meta.hidden


# --- failures -----------------------------------------------------------------------------


def _failures(data: Dataset, scope: Scope) -> tuple[FailureResult, FailureResult]:
    query = FailureQuery.from_plan(data.plan, scope)
    rolled, raw = run_failures(data.store, query), run_failures(data.store, query, source="raw")
    _sources(rolled, raw)
    return rolled.data, raw.data


def _assert_failures_equal(a: FailureResult, b: FailureResult) -> None:
    assert a.sessions == b.sessions
    for table in ("by_kind", "by_type", "by_fingerprint", "by_route", "by_status_class"):
        assert getattr(a, table) == getattr(b, table), table
    assert a.by_status == b.by_status
    assert a.by_scenario == b.by_scenario
    assert [(r.route, r.group, r.hidden) for r in a.api] == [
        (r.route, r.group, r.hidden) for r in b.api
    ]
    for x, y in zip(a.api, b.api, strict=True):
        assert _durations_close(x.duration, y.duration), (x, y)
    assert [(t.screen_id, t.group, t.hidden, t.tasks, t.sessions) for t in a.long_tasks] == [
        (t.screen_id, t.group, t.hidden, t.tasks, t.sessions) for t in b.long_tasks
    ]
    for x, y in zip(a.long_tasks, b.long_tasks, strict=True):
        assert _durations_close(x.duration, y.duration), (x, y)
    assert [(v.screen_id, v.metric, v.group, v.hidden, v.n, v.ratings) for v in a.vitals] == [
        (v.screen_id, v.metric, v.group, v.hidden, v.n, v.ratings) for v in b.vitals
    ]
    for x, y in zip(a.vitals, b.vitals, strict=True):
        floor = 0.001 if x.metric == "CLS" else 1.0  # CLS is kept in thousandths
        assert _close(x.p75, y.p75, floor), (x, y)


@pytest.mark.parametrize("by", BREAKDOWNS)
def test_failures_from_rollups_equal_raw_rows(rolled: Dataset, by: Dimension | None) -> None:
    a, b = _failures(rolled, Scope(WHOLE_DAYS, Filters(), by))
    assert b.by_kind and b.api and b.vitals and b.by_scenario  # the simulation has them all
    _assert_failures_equal(a, b)


def test_failures_filtered_on_one_dimension_read_rollups(rolled: Dataset) -> None:
    a, b = _failures(rolled, Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,)), "ui_version"))
    _assert_failures_equal(a, b)


def test_failures_with_other_scenarios_read_raw_rows(rolled: Dataset) -> None:
    query = FailureQuery.from_plan(rolled.plan, Scope(WHOLE_DAYS))
    changed = replace(query, scenarios=tuple(replace(s, window_ms=60_000) for s in query.scenarios))
    report = run_failures(rolled.store, changed)
    assert report.meta.source == "raw"
    assert any("not yet rolled up" in note for note in report.meta.notes)


# --- usage --------------------------------------------------------------------------------


def _usage(data: Dataset, scope: Scope) -> tuple[UsageResult, UsageResult]:
    query = UsageQuery.from_plan(data.plan, scope)
    rolled, raw = run_usage(data.store, query), run_usage(data.store, query, source="raw")
    _sources(rolled, raw)
    return rolled.data, raw.data


@pytest.mark.parametrize("by", BREAKDOWNS)
def test_usage_from_rollups_equals_raw_rows(rolled: Dataset, by: Dimension | None) -> None:
    a, b = _usage(rolled, Scope(WHOLE_DAYS, Filters(), by))
    assert b.features
    assert a == b


def test_usage_filtered_on_one_dimension_reads_rollups(rolled: Dataset) -> None:
    a, b = _usage(rolled, Scope(WHOLE_DAYS, Filters(role=("operator",))))
    assert a == b


# --- health -------------------------------------------------------------------------------


def _health(data: Dataset, time: TimeRange) -> tuple[HealthResult, HealthResult]:
    query = HealthQuery.from_plan(data.plan, time)
    rolled, raw = run_health(data.store, query), run_health(data.store, query, source="raw")
    _sources(rolled, raw)
    assert any("last 1 day" in note for note in rolled.meta.notes)
    return rolled.data, raw.data


@pytest.mark.parametrize(
    "time", [WHOLE_DAYS, TimeRange.days(START + dt.timedelta(days=7), LAST)], ids=["all", "week"]
)
def test_health_volume_names_and_versions_from_rollups_equal_raw_rows(
    rolled: Dataset, time: TimeRange
) -> None:
    a, b = _health(rolled, time)
    assert a.per_day == b.per_day
    assert a.volume_alerts == b.volume_alerts
    assert a.schema_versions == b.schema_versions
    assert a.duplicates == b.duplicates
    assert a.rejected == b.rejected


def test_values_a_changed_plan_no_longer_allows_from_rollups_equal_raw_rows(
    rolled: Dataset,
) -> None:
    query = HealthQuery.from_plan(rolled.plan, WHOLE_DAYS)
    # The same closed fields, each allowing one value fewer: rows with it are now "not allowed".
    narrowed = tuple(
        (name, column, values[1:]) for name, column, values in query.plan.allowed_values
    )
    changed = replace(query, plan=replace(query.plan, allowed_values=narrowed))
    rolled_up, raw = (
        run_health(rolled.store, changed),
        run_health(rolled.store, changed, source="raw"),
    )
    _sources(rolled_up, raw)
    found = [m for m in raw.data.not_in_plan if m.problem == "value_not_allowed"]
    assert found
    assert rolled_up.data.not_in_plan == raw.data.not_in_plan


def test_health_checks_of_single_events_read_the_last_day(rolled: Dataset) -> None:
    a, _ = _health(rolled, WHOLE_DAYS)
    last_day = HealthQuery.from_plan(rolled.plan, TimeRange.days(LAST, LAST))
    raw = run_health(rolled.store, last_day, source="raw").data
    assert a.clock_skew == raw.clock_skew
    assert a.timers == raw.timers
    assert a.test_data == raw.test_data


# --- fallbacks ----------------------------------------------------------------------------

PART_OF_A_DAY = TimeRange(
    dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC), dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
)


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (Scope(PART_OF_A_DAY), "whole"),
        (Scope(WHOLE_DAYS, Filters(role=("operator",), device_type=("desktop",))), "more than one"),
        (Scope(WHOLE_DAYS, Filters(role=("operator",)), "device_type"), "another dimension"),
    ],
)
def test_questions_rollups_cannot_answer_read_raw_rows(
    rolled: Dataset, scope: Scope, reason: str
) -> None:
    reports = [
        run_failures(rolled.store, FailureQuery.from_plan(rolled.plan, scope)),
        run_usage(rolled.store, UsageQuery.from_plan(rolled.plan, scope)),
    ]
    for report in reports:
        assert report.meta.source == "raw"
        assert any(reason in note for note in report.meta.notes)


def test_health_of_part_of_a_day_reads_raw_rows(rolled: Dataset) -> None:
    report = run_health(rolled.store, HealthQuery.from_plan(rolled.plan, PART_OF_A_DAY))
    assert report.meta.source == "raw"
    assert any("whole days" in note for note in report.meta.notes)


# --- loops --------------------------------------------------------------------------------


@pytest.mark.parametrize("by", BREAKDOWNS)
def test_loops_from_rollups_equal_raw_rows(rolled: Dataset, by: Dimension | None) -> None:
    query = LoopQuery(Scope(WHOLE_DAYS, Filters(), by))
    report = run_loops(rolled.store, query)
    raw = run_loops(rolled.store, query, source="raw")
    _sources(report, raw)
    assert report.data == raw.data
    assert any(s.navigation["back"].events for s in report.data.screens if not s.hidden)


def test_loops_with_one_dimension_filtered_read_rollups(rolled: Dataset) -> None:
    query = LoopQuery(Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,)), "ui_version"))
    report = run_loops(rolled.store, query)
    raw = run_loops(rolled.store, query, source="raw")
    _sources(report, raw)
    assert report.data == raw.data


# --- clicks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "screens"),
    [
        (Scope(WHOLE_DAYS), ()),
        (Scope(WHOLE_DAYS, Filters(), "role"), ()),
        (Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,))), ()),
        (Scope(WHOLE_DAYS), ("request_create", "home")),
    ],
)
def test_clicks_from_rollups_equal_raw_rows(
    rolled: Dataset, scope: Scope, screens: tuple[str, ...]
) -> None:
    query = ClickQuery.from_plan(rolled.plan, scope, screens)
    report = run_clicks(rolled.store, query)
    raw = run_clicks(rolled.store, query, source="raw")
    _sources(report, raw)
    assert report.data == raw.data
    assert any(t.sessions for t in report.data.targets)


def test_clicks_under_other_aliases_read_raw_rows(rolled: Dataset) -> None:
    query = ClickQuery.from_plan(rolled.plan, Scope(WHOLE_DAYS))
    renamed = replace(query, aliases=(*query.aliases, ("btn_never_seen", "btn_other")))
    assert run_clicks(rolled.store, renamed).meta.source == "raw"


# --- frustration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        Scope(WHOLE_DAYS),
        Scope(WHOLE_DAYS, Filters(), "role"),
        Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,))),
    ],
)
def test_frustration_from_rollups_equals_raw_rows(rolled: Dataset, scope: Scope) -> None:
    query = FrustrationQuery(scope)
    report = run_frustration(rolled.store, query)
    raw = run_frustration(rolled.store, query, source="raw")
    _sources(report, raw)
    assert report.data == raw.data
    assert report.data.repeats or report.data.quick_backs or report.data.dead_actions


def test_frustration_with_other_thresholds_reads_raw_rows(rolled: Dataset) -> None:
    query = FrustrationQuery(Scope(WHOLE_DAYS), FrustrationThresholds(repeat_ms=2_500))
    assert run_frustration(rolled.store, query).meta.source == "raw"


# --- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        PathQuery(Scope(WHOLE_DAYS), "request_create"),
        PathQuery(Scope(WHOLE_DAYS), "home", limit=50),
        PathQuery(Scope(WHOLE_DAYS, Filters(role=("operator",))), "request_list"),
        PathQuery(Scope(WHOLE_DAYS), limit=100),
        PathQuery(Scope(WHOLE_DAYS), start="home", end="request_view", limit=50),
        PathQuery(Scope(WHOLE_DAYS), start="login", end="request_view", limit=50),
        PathQuery(Scope(WHOLE_DAYS), "request_list", start="home", end="request_create"),
    ],
)
def test_paths_from_rollups_equal_raw_rows(rolled: Dataset, query: PathQuery) -> None:
    """Neighbours, moves, and paths between two screens (none of them cut: the simulation
    walks far fewer than ``PATHS_KEPT_PER_PAIR`` paths between any two screens a day)."""
    report = run_paths(rolled.store, query)
    raw = run_paths(rolled.store, query, source="raw")
    _sources(report, raw)
    assert report.data == raw.data
    assert report.data.paths if query.start else report.data.next or report.data.paths


def test_paths_between_two_screens_for_a_role_read_raw_rows(rolled: Dataset) -> None:
    query = PathQuery(Scope(WHOLE_DAYS, Filters(role=("operator",))), start="home", end="search")
    report = run_paths(rolled.store, query)
    assert report.meta.source == "raw"
    assert any("for everyone only" in note for note in report.meta.notes)
    assert report.data.paths
