"""Rollups against raw rows: the same field-error and timing numbers from both sources.

The shared ``rolled`` store (rollups built). Every form and operation: counts and shares
equal, durations and attempt medians within the sketch's relative error (``sketch.ALPHA``, or
1 ms below 1 ms), attempt means equal up to float rounding. Questions rollups cannot answer
read raw rows and say why.
"""

from __future__ import annotations

import datetime as dt

import pytest
from tests.analytics.conftest import BEFORE, DAYS, START, Dataset

from stumble.analytics import sketch
from stumble.analytics.field_errors import FieldErrorResult, run_field_errors
from stumble.analytics.queries import (
    Dimension,
    FieldErrorQuery,
    Filters,
    FlagFilter,
    FormSpec,
    Scope,
    StepSpec,
    TimeRange,
    TimingQuery,
)
from stumble.analytics.results import Durations
from stumble.analytics.rollup_build import entry_shared
from stumble.analytics.timings import TimingResult, run_timings

WHOLE_DAYS = TimeRange.days(START, START + dt.timedelta(days=DAYS - 1))
BREAKDOWNS: list[Dimension | None] = [None, "role", "ui_version", "day", "week"]
PARTIAL = TimeRange(
    dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC), dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
)


def _close(rolled: float | None, raw: float | None) -> bool:
    if rolled is None or raw is None:
        return rolled is raw
    # Within ALPHA of the value, or 1 ms below 1 ms (bucket 0 stands for the same instant).
    return abs(rolled - raw) <= sketch.ALPHA * abs(raw) + 1e-6 or abs(rolled - raw) <= 1.0


def _same_durations(a: Durations, b: Durations) -> None:
    assert a.n == b.n, (a, b)
    for x, y in ((a.p50, b.p50), (a.p95, b.p95), (a.p99, b.p99)):
        assert _close(x, y), (a, b)


# --- field errors -------------------------------------------------------------------------


def _field_errors(
    data: Dataset, scope: Scope, form_ids: tuple[str, ...] = ()
) -> tuple[FieldErrorResult, FieldErrorResult]:
    query = FieldErrorQuery.from_plan(data.plan, scope, form_ids)
    rolled = run_field_errors(data.store, query)
    raw = run_field_errors(data.store, query, source="raw")
    assert rolled.meta.source == "rollups", rolled.meta.notes
    assert raw.meta.source == "raw"
    assert rolled.meta.hidden == raw.meta.hidden
    assert rolled.meta.sample_rates == raw.meta.sample_rates
    return rolled.data, raw.data


def _same_field_errors(a: FieldErrorResult, b: FieldErrorResult) -> None:
    assert len(a.errors) == len(b.errors)
    for x, y in zip(a.errors, b.errors, strict=True):
        key = ("form_id", "step", "field_id", "error_type", "group", "hidden")
        assert [getattr(x, k) for k in key] == [getattr(y, k) for k in key]
        assert (x.events, x.sessions, x.entered, x.share) == (
            y.events,
            y.sessions,
            y.entered,
            y.share,
        ), (x, y)
        assert _close(x.attempts_median, y.attempts_median), (x, y)
        assert _close(x.attempts_mean, y.attempts_mean), (x, y)
        _same_durations(x.time_with_error, y.time_with_error)
        _same_durations(x.time_without_error, y.time_without_error)
    assert len(a.steps) == len(b.steps)
    for s, t in zip(a.steps, b.steps, strict=True):
        assert (s.form_id, s.step, s.group, s.hidden) == (t.form_id, t.step, t.group, t.hidden)
        assert (s.entered, s.completed, s.completion, s.with_any_error) == (
            t.entered,
            t.completed,
            t.completion,
            t.with_any_error,
        ), (s, t)
        _same_durations(s.time_on_step, t.time_on_step)
        _same_durations(s.input_time, t.input_time)
        _same_durations(s.error_fixing_time, t.error_fixing_time)


@pytest.mark.parametrize("by", BREAKDOWNS)
def test_field_errors_from_rollups_equal_raw_rows(rolled: Dataset, by: Dimension | None) -> None:
    from_rollups, from_raw = _field_errors(rolled, Scope(WHOLE_DAYS, Filters(), by))
    assert from_raw.errors and from_raw.steps
    _same_field_errors(from_rollups, from_raw)


@pytest.mark.parametrize("by", [None, "role"])
def test_field_errors_of_each_form_from_rollups(rolled: Dataset, by: Dimension | None) -> None:
    forms = {
        spec.form_id for spec in FieldErrorQuery.from_plan(rolled.plan, Scope(WHOLE_DAYS)).forms
    }
    for form_id in sorted(forms):
        from_rollups, from_raw = _field_errors(rolled, Scope(WHOLE_DAYS, by=by), (form_id,))
        assert {row.form_id for row in from_raw.steps} <= {form_id}
        _same_field_errors(from_rollups, from_raw)


@pytest.mark.parametrize(
    "scope",
    [
        Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,)), "ui_version"),
        Scope(WHOLE_DAYS, Filters(device_type=("desktop",))),
        Scope(WHOLE_DAYS, Filters(role=("operator", "admin")), "day"),
        Scope(WHOLE_DAYS, Filters(environment="staging"), "role"),
    ],
)
def test_field_errors_with_one_dimension_filtered(rolled: Dataset, scope: Scope) -> None:
    from_rollups, from_raw = _field_errors(rolled, scope)
    assert from_raw.steps
    _same_field_errors(from_rollups, from_raw)


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (Scope(PARTIAL), "whole"),
        (Scope(WHOLE_DAYS, Filters(feature_flag=FlagFilter("aa_split"))), "feature flag"),
        (Scope(WHOLE_DAYS, Filters(role=("operator",), device_type=("desktop",))), "more than one"),
    ],
)
def test_field_errors_rollups_cannot_answer_read_raw_rows(
    rolled: Dataset, scope: Scope, reason: str
) -> None:
    report = run_field_errors(rolled.store, FieldErrorQuery.from_plan(rolled.plan, scope))
    assert report.meta.source == "raw"
    assert any(reason in note for note in report.meta.notes)


def test_field_errors_of_forms_not_in_the_plan_read_raw_rows(rolled: Dataset) -> None:
    query = FieldErrorQuery.from_plan(rolled.plan, Scope(WHOLE_DAYS))
    other = FieldErrorQuery(query.scope, query.forms[:-1], restricted=False)
    report = run_field_errors(rolled.store, other)
    assert report.meta.source == "raw"
    assert any("not yet rolled up" in note for note in report.meta.notes)


def test_a_form_whose_entry_another_form_shares_has_no_cells_of_its_own() -> None:
    def form(form_id: str, *where: tuple[str, str]) -> FormSpec:
        return FormSpec(form_id, StepSpec("opened", "screen_view", where))

    a, c = form("a", ("screen_id", "x")), form("c", ("screen_id", "y"))
    every_screen = form("b")
    assert not entry_shared(a, (a, c))
    assert entry_shared(a, (a, every_screen, c))
    assert entry_shared(c, (a, every_screen, c))
    assert not entry_shared(FormSpec("d"), (a, every_screen))


# --- operation timings --------------------------------------------------------------------


def _timings(
    data: Dataset, scope: Scope, operations: tuple[str, ...] = ()
) -> tuple[TimingResult, TimingResult]:
    query = TimingQuery(scope, operations)
    rolled = run_timings(data.store, query)
    raw = run_timings(data.store, query, source="raw")
    assert rolled.meta.source == "rollups", rolled.meta.notes
    assert raw.meta.source == "raw"
    assert rolled.meta.hidden == raw.meta.hidden
    assert rolled.meta.sample_rates == raw.meta.sample_rates
    return rolled.data, raw.data


def _same_timings(a: TimingResult, b: TimingResult) -> None:
    assert len(a.operations) == len(b.operations)
    for x, y in zip(a.operations, b.operations, strict=True):
        counted = ("operation", "group", "hidden", "ended", "sessions", "rates", "started")
        assert [getattr(x, k) for k in counted] == [getattr(y, k) for k in counted], (x, y)
        assert (x.retries, x.retry_rate) == (y.retries, y.retry_rate)
        _same_durations(x.duration_success, y.duration_success)
        _same_durations(x.duration_all, y.duration_all)
    assert len(a.phases) == len(b.phases)
    for p, q in zip(a.phases, b.phases, strict=True):
        named = ("operation", "phase", "checkpoint", "group", "hidden")
        assert [getattr(p, k) for k in named] == [getattr(q, k) for k in named]
        _same_durations(p.duration, q.duration)
        # Sums of the same gaps, added in another order.
        if q.share_of_time is None:
            assert p.share_of_time is None
        else:
            assert p.share_of_time == pytest.approx(q.share_of_time, rel=1e-9)


@pytest.mark.parametrize("by", BREAKDOWNS)
def test_timings_from_rollups_equal_raw_rows(rolled: Dataset, by: Dimension | None) -> None:
    from_rollups, from_raw = _timings(rolled, Scope(WHOLE_DAYS, Filters(), by))
    assert from_raw.operations and from_raw.phases
    _same_timings(from_rollups, from_raw)


@pytest.mark.parametrize("by", [None, "ui_version"])
def test_timings_of_each_operation_from_rollups(rolled: Dataset, by: Dimension | None) -> None:
    _, every = _timings(rolled, Scope(WHOLE_DAYS))
    for operation in sorted({o.operation for o in every.operations}):
        from_rollups, from_raw = _timings(rolled, Scope(WHOLE_DAYS, by=by), (operation,))
        assert {o.operation for o in from_raw.operations} == {operation}
        _same_timings(from_rollups, from_raw)


@pytest.mark.parametrize(
    "scope",
    [
        Scope(WHOLE_DAYS, Filters(ui_version=(BEFORE,)), "ui_version"),
        Scope(WHOLE_DAYS, Filters(device_type=("desktop",))),
        Scope(WHOLE_DAYS, Filters(role=("operator", "admin")), "week"),
        Scope(WHOLE_DAYS, Filters(environment="staging"), "role"),
    ],
)
def test_timings_with_one_dimension_filtered(rolled: Dataset, scope: Scope) -> None:
    from_rollups, from_raw = _timings(rolled, scope)
    assert from_raw.operations
    _same_timings(from_rollups, from_raw)


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        (Scope(PARTIAL), "whole"),
        (Scope(WHOLE_DAYS, Filters(feature_flag=FlagFilter("aa_split"))), "feature flag"),
        (Scope(WHOLE_DAYS, Filters(region=("almaty",)), "role"), "another dimension"),
    ],
)
def test_timings_rollups_cannot_answer_read_raw_rows(
    rolled: Dataset, scope: Scope, reason: str
) -> None:
    report = run_timings(rolled.store, TimingQuery(scope))
    assert report.meta.source == "raw"
    assert any(reason in note for note in report.meta.notes)
