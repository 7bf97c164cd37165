"""Rollups against raw rows: the same funnel numbers from both sources.

The ``rolled`` store (conftest: a simulation of its own, since rollups built into another
store would change which source the other analytics tests read). Counts must be equal; step times agree within the sketch's relative
error (``sketch.ALPHA``) of the raw sample values around the same rank.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

import msgspec
import pytest
from tests.analytics.conftest import AFTER, BEFORE, DAYS, START, Dataset

from stumble.analytics import sketch
from stumble.analytics.compare import _raw_audience_mix, _rolled_audience_mix, run_compare
from stumble.analytics.funnels import FunnelResult, run_funnel
from stumble.analytics.queries import (
    Arm,
    CompareQuery,
    Dimension,
    Filters,
    FunnelQuery,
    Scope,
    TimeRange,
    all_scenarios,
)
from stumble.rollups import RollupMaintainer

WHOLE_DAYS = TimeRange.days(START, START + dt.timedelta(days=DAYS - 1))


def _both(data: Dataset, scope: Scope, scenario: str) -> tuple[FunnelResult, FunnelResult]:
    query = FunnelQuery.from_plan(data.plan, scope, scenario)
    rolled = run_funnel(data.store, query)
    raw = run_funnel(data.store, query, source="raw")
    assert rolled.meta.source == "rollups", rolled.meta.notes
    assert raw.meta.source == "raw"
    return rolled.data, raw.data


def _close(rolled: float | None, raw: float | None) -> bool:
    if rolled is None or raw is None:
        return rolled is raw
    # Within ALPHA of the value, or 1 ms below 1 ms (bucket 0 stands for the same instant).
    return abs(rolled - raw) <= sketch.ALPHA * abs(raw) + 1e-6 or abs(rolled - raw) <= 1.0


@pytest.mark.parametrize("by", [None, "role", "ui_version", "device_type", "day", "week"])
def test_funnel_from_rollups_equals_raw_rows(rolled: Dataset, by: Dimension | None) -> None:
    for scenario in rolled.plan.scenarios:
        from_rollups, from_raw = _both(rolled, Scope(WHOLE_DAYS, Filters(), by), scenario)
        assert len(from_rollups.groups) == len(from_raw.groups)
        for a, b in zip(from_rollups.groups, from_raw.groups, strict=True):
            assert a.group == b.group
            assert [s.sessions for s in a.steps] == [s.sessions for s in b.steps]
            assert [s.hidden for s in a.steps] == [s.hidden for s in b.steps]
            assert a.conversion == b.conversion
            for x, y in zip(a.steps, b.steps, strict=True):
                assert _close(x.time_from_previous.p50, y.time_from_previous.p50), (x, y)
                assert _close(x.time_from_previous.p95, y.time_from_previous.p95), (x, y)


def test_a_filter_on_one_dimension_reads_rollups(rolled: Dataset) -> None:
    scope = Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,)), "ui_version")
    from_rollups, from_raw = _both(rolled, scope, "create_service_request")
    assert [g.group for g in from_rollups.groups] == [None, BEFORE]
    assert [s.sessions for s in from_rollups.total().steps] == [
        s.sessions for s in from_raw.total().steps
    ]


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (
            Scope(
                TimeRange(
                    dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC),
                    dt.datetime(2026, 3, 5, tzinfo=dt.UTC),
                ),
                Filters(),
            ),
            "whole",
        ),
        (Scope(WHOLE_DAYS, Filters(role=("operator",), device_type=("desktop",))), "more than one"),
        (Scope(WHOLE_DAYS, Filters(role=("operator",)), "device_type"), "another dimension"),
    ],
)
def test_questions_rollups_cannot_answer_read_raw_rows(
    rolled: Dataset, scope: Scope, reason: str
) -> None:
    report = run_funnel(
        rolled.store, FunnelQuery.from_plan(rolled.plan, scope, "create_service_request")
    )
    assert report.meta.source == "raw"
    assert any(reason in note for note in report.meta.notes)


@pytest.mark.parametrize(
    "scope",
    [
        Scope(WHOLE_DAYS),
        Scope(WHOLE_DAYS, Filters(), "role"),
        Scope(WHOLE_DAYS, Filters(ui_version=(AFTER,))),
    ],
)
def test_last_actions_from_rollups_equal_raw_rows(rolled: Dataset, scope: Scope) -> None:
    for scenario in rolled.plan.scenarios:
        query = FunnelQuery.from_plan(rolled.plan, scope, scenario, last_actions=True)
        report = run_funnel(rolled.store, query)
        raw = run_funnel(rolled.store, query, source="raw")
        assert report.meta.source == "rollups", report.meta.notes
        assert raw.meta.source == "raw"
        assert report.data.last_actions == raw.data.last_actions
    assert report.data.last_actions


def test_a_changed_scenario_definition_is_not_answered_by_old_cells(rolled: Dataset) -> None:
    query = FunnelQuery.from_plan(rolled.plan, Scope(WHOLE_DAYS), "create_service_request")
    changed = replace(query, scenario=replace(query.scenario, window_ms=60_000))
    report = run_funnel(rolled.store, changed)
    assert report.meta.source == "raw"
    assert any("not yet rolled up" in note for note in report.meta.notes)


def test_rollup_cells_hold_no_session_id(rolled: Dataset) -> None:
    sessions = {e.session_id for e in rolled.events()[:2000]}
    columns = ("dim_value", "k1", "k2", "k3", "k4")
    for column in columns:
        values = {v for (v,) in rolled.store.query(f"SELECT DISTINCT {column} FROM rollups").rows}
        assert not values & sessions


def test_a_load_makes_its_day_dirty_and_refresh_rebuilds_only_that_day(rolled: Dataset) -> None:
    maintainer = RollupMaintainer(rolled.store, rolled.plan)
    assert maintainer.refresh().days_built == 0  # nothing dirty, same definitions
    (event, *_) = rolled.events()
    day = dt.datetime.fromtimestamp(event.ts / 1000, dt.UTC).date()
    rolled.store.write_rows([msgspec.structs.replace(event, event_id=str(uuid.uuid4()))])
    report = maintainer.refresh()
    assert report.built == [("prod", day)]


@pytest.mark.parametrize("by_versions", [True, False])
def test_compare_from_rollups_reaches_the_raw_verdicts(rolled: Dataset, by_versions: bool) -> None:
    middle = START + dt.timedelta(days=DAYS // 2)
    if by_versions:
        a, b = Arm("before", ui_version=(BEFORE,)), Arm("after", ui_version=(AFTER,))
    else:
        a = Arm("first half", time=TimeRange.days(START, middle - dt.timedelta(days=1)))
        b = Arm("second half", time=TimeRange.days(middle, START + dt.timedelta(days=DAYS - 1)))
    query = CompareQuery.from_plan(rolled.plan, Scope(WHOLE_DAYS), "create_service_request", a, b)
    rolled_report = run_compare(rolled.store, query)
    raw_report = run_compare(rolled.store, query, source="raw")
    assert (rolled_report.meta.source, raw_report.meta.source) == ("rollups", "raw")
    from_rollups, from_raw = rolled_report.data, raw_report.data
    # (Field-error rows come in the engine's order: compare the metrics by name.)
    raw_metrics = {(m.metric, m.subject): m for m in from_raw.metrics}
    assert {(m.metric, m.subject) for m in from_rollups.metrics} == set(raw_metrics)
    for x in from_rollups.metrics:
        y = raw_metrics[x.metric, x.subject]
        assert (x.n_a, x.n_b, x.hidden) == (y.n_a, y.n_b, y.hidden), x.subject
        if x.metric.startswith("step_p"):
            assert _close(x.a, y.a) and _close(x.b, y.b), (x, y)
        else:
            assert (x.a, x.b, x.p_value) == (y.a, y.b, y.p_value), (x, y)
        assert x.verdict == y.verdict, (x, y)
    assert from_rollups.overall == from_raw.overall


@pytest.mark.parametrize("versions", [(BEFORE,), (AFTER,), (BEFORE, AFTER), None])
def test_the_audience_of_a_release_from_rollups_equals_raw_rows(
    rolled: Dataset, versions: tuple[str, ...] | None
) -> None:
    scope = Scope(WHOLE_DAYS, Filters(ui_version=versions))
    for scenario in all_scenarios(rolled.plan):
        rolled_mix = _rolled_audience_mix(rolled.store, scope, scenario)
        assert rolled_mix is not None
        assert rolled_mix == _raw_audience_mix(rolled.store, scope, scenario)
        assert rolled_mix["role"]


def test_the_audience_of_other_arms_reads_raw_rows(rolled: Dataset) -> None:
    (scenario, *_) = all_scenarios(rolled.plan)
    by_role = Scope(WHOLE_DAYS, Filters(role=("operator",)))
    assert _rolled_audience_mix(rolled.store, by_role, scenario) is None
