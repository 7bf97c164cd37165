"""Query objects: validated on construction, built from the plan."""

from __future__ import annotations

import datetime as dt

import pytest

from stumble.analytics.queries import (
    Arm,
    FlagFilter,
    FunnelQuery,
    QueryError,
    Scope,
    StepSpec,
    TimeRange,
    form_entries,
    form_specs,
)
from stumble.plan.load import default_plan_path, load_plan

PLAN = load_plan(default_plan_path())
WEEK = TimeRange.days(dt.date(2026, 3, 2), dt.date(2026, 3, 8))


def test_time_ranges_are_utc_and_must_not_be_empty() -> None:
    assert WEEK.start == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert WEEK.end == dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    # A naive datetime is taken as UTC (what the stored TIMESTAMP column holds).
    naive = TimeRange(dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 3))  # noqa: DTZ001
    assert naive.start.tzinfo is dt.UTC
    assert naive.bounds() == (
        dt.datetime(2026, 3, 2),  # noqa: DTZ001
        dt.datetime(2026, 3, 3),  # noqa: DTZ001
    )
    with pytest.raises(QueryError):
        TimeRange(WEEK.end, WEEK.start)


def test_flags_parse_on_and_off() -> None:
    assert FlagFilter.parse("new_form") == FlagFilter("new_form", enabled=True)
    assert FlagFilter.parse("!new_form") == FlagFilter("new_form", enabled=False)
    assert str(FlagFilter("x", enabled=False)) == "!x"


def test_unknown_breakdowns_and_columns_are_refused() -> None:
    with pytest.raises(QueryError, match="break down"):
        Scope(WEEK, by="session_id")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="unknown column"):
        StepSpec("s", "form_submit", (("value); DROP TABLE events; --", 1),))
    with pytest.raises(QueryError, match="no such scenario"):
        FunnelQuery.from_plan(PLAN, Scope(WEEK), "no_such_scenario")


def test_funnel_steps_come_from_the_plan() -> None:
    query = FunnelQuery.from_plan(PLAN, Scope(WEEK), "create_service_request")
    assert [s.label for s in query.scenario.steps] == [
        "form_opened",
        "step_1_done",
        "step_2_done",
        "submitted",
    ]
    assert query.scenario.steps[2].where == (
        ("form_id", "service_request"),
        ("status", "success"),
        ("step", 2),
    )
    assert query.scenario.window_ms == 60 * 60_000


def test_forms_are_entered_at_the_step_before_their_first_step_in_a_scenario() -> None:
    entries = form_entries(PLAN)
    assert entries["service_request"].label == "form_opened"
    assert entries["login"].label == "login_opened"
    assert entries["approval_decision"].label == "approval_opened"
    forms = {f.form_id: f for f in form_specs(PLAN)}
    assert forms["report_params"].entry is None  # no scenario leads through it
    assert set(forms) >= {"service_request", "login", "search_filters"}


def test_an_arm_narrows_the_base_scope_and_drops_the_breakdown() -> None:
    base = Scope(WEEK, by="role")
    arm = Arm("after", ui_version=("2.0.0",), feature_flag=FlagFilter("x"))
    scope = arm.scope(base)
    assert scope.by is None
    assert scope.filters.ui_version == ("2.0.0",)
    assert scope.filters.feature_flag == FlagFilter("x")
    assert scope.time == WEEK
