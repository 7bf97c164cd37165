"""The catalog: every report runs by name from string parameters; bad parameters are refused."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
from tests.analytics.conftest import Dataset

from stumble.analytics.results import Report
from stumble.reports.catalog import (
    REPORTS,
    ReportParamError,
    parse_arm,
    parse_moment,
    parse_scope,
    run_report,
)

NOW = dt.datetime(2026, 3, 20, 15, 30, tzinfo=dt.UTC)
RANGE = {"from": "2026-03-01", "to": "2026-03-16"}
EXTRA: dict[str, dict[str, str]] = {
    "funnel": {"scenario": "create_service_request", "by": "role", "last_actions": "1"},
    "compare": {"scenario": "create_service_request", "a.from": "2026-03-02", "a.to": "2026-03-08",
                "b.from": "2026-03-09", "b.to": "2026-03-15"},
    "health": {"env": "*"},
    "top-problems": {"limit": "3"},
    "field-errors": {"form": "service_request", "by": "device_type"},
    "timings": {"operation": "search,request_submit"},
    "clicks": {"screen": "request_create,search"},
    "paths": {"screen": "request_create", "start": "home", "end": "request_create"},
    "frustration": {"repeat_ms": "800"},
}  # fmt: skip


def test_dates_are_whole_utc_days_and_the_default_is_the_last_four_weeks() -> None:
    assert parse_moment("2026-03-01", end_of_day=False) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert parse_moment("2026-03-01", end_of_day=True) == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert parse_moment("2026-03-01T10:00:00+05:00", end_of_day=True).hour == 10
    scope = parse_scope({}, NOW)
    assert scope.time.end == dt.datetime(2026, 3, 21, tzinfo=dt.UTC)
    assert scope.time.start == dt.datetime(2026, 2, 21, tzinfo=dt.UTC)
    assert scope.filters.environment == "prod"


def test_filters_and_arms_parse_from_strings() -> None:
    scope = parse_scope(
        {"role": "operator,manager", "flag": "!new_form", "ui_version": "2.0.0", "by": "region"},
        NOW,
    )
    assert scope.filters.role == ("operator", "manager")
    assert scope.filters.feature_flag is not None and not scope.filters.feature_flag.enabled
    assert scope.by == "region"
    arm = parse_arm({"a.ui_version": "1.4.2", "a.label": "before"}, "a.", NOW)
    assert (arm.label, arm.ui_version, arm.time) == ("before", ("1.4.2",), None)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"from": "2026-03-10", "to": "2026-03-01"},
        {"by": "session_id"},
        {"scenario": "create_service_request", "session_id": "h_abc"},
    ],
)
def test_bad_parameters_are_refused_with_a_reason(
    slow_release: Dataset, params: dict[str, str]
) -> None:
    with pytest.raises(ReportParamError):
        run_report(slow_release.store, slow_release.plan, "funnel", params, now=NOW)


def test_required_parameters_and_arms_are_checked(slow_release: Dataset) -> None:
    with pytest.raises(ReportParamError, match="scenario is required"):
        run_report(slow_release.store, slow_release.plan, "funnel", {}, now=NOW)
    with pytest.raises(ReportParamError, match="no such scenario"):
        run_report(slow_release.store, slow_release.plan, "funnel", {"scenario": "x"}, now=NOW)
    params = {"scenario": "search", "b.ui_version": "2.0.0"}
    with pytest.raises(ReportParamError, match="arm a needs"):
        run_report(slow_release.store, slow_release.plan, "compare", params, now=NOW)


@pytest.mark.parametrize(
    ("name", "params", "choices"),
    [
        ("timings", {"operation": "search,serach"}, "login, report_export, request_submit"),
        ("field-errors", {"form": "servise_request"}, "login, report_params, search_filters"),
        ("usage", {"env": "prdo"}, "choose from prod"),
        ("health", {"env": "prdo"}, "choose from prod"),
        ("clicks", {"screen": "serach"}, "approval_queue, approval_view, home, login"),
        ("paths", {"screen": "serach"}, "approval_queue, approval_view, home, login"),
    ],
)
def test_unknown_choices_are_refused_with_the_valid_ones(
    slow_release: Dataset, name: str, params: dict[str, str], choices: str
) -> None:
    with pytest.raises(ReportParamError) as refused:
        run_report(
            slow_release.store,
            slow_release.plan,
            name,
            {**RANGE, **params},
            now=NOW,
            check_environment=True,
        )
    message = str(refused.value)
    assert message.startswith(next(iter(params))), message  # names the parameter
    assert choices in message
    assert not {"serach", "servise_request", "prdo"} & set(message.replace(",", " ").split())


def test_paths_needs_both_ends_or_neither(slow_release: Dataset) -> None:
    with pytest.raises(ReportParamError, match="paths needs start and end together"):
        run_report(slow_release.store, slow_release.plan, "paths", {"start": "home"}, now=NOW)


def test_known_choices_and_the_default_environment_are_accepted(slow_release: Dataset) -> None:
    store, plan = slow_release.store, slow_release.plan
    for params in ({"env": "prod"}, {"env": "*"}):
        run_report(store, plan, "health", {**RANGE, **params}, now=NOW, check_environment=True)
    with pytest.raises(ReportParamError, match="choose from"):
        run_report(store, plan, "usage", {"env": "*"}, now=NOW, check_environment=True)
    # The digest and the dashboard may name an environment before its first event.
    empty = run_report(store, plan, "usage", {**RANGE, "env": "dev"}, now=NOW)
    assert empty.meta.environment == "dev"


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_runs_by_name_and_round_trips_through_json(
    slow_release: Dataset, name: str
) -> None:
    params = {**RANGE, **EXTRA.get(name, {})}
    report = run_report(slow_release.store, slow_release.plan, name, params, now=NOW)
    assert report.meta.report == name
    assert report.data.tables()
    decoded = msgspec.json.decode(
        msgspec.json.encode(report), type=Report[REPORTS[name].result_type]
    )  # type: ignore[name-defined]
    assert decoded == report


EXTREME_MOMENTS = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00+05:00",
    "1969-12-30",
    "9000-01-02",
]
ARM_EXTRA: dict[str, str] = {"scenario": "create_service_request", "b.ui_version": "2.0.0"}


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
@pytest.mark.parametrize(
    ("name", "param", "extra"),
    [
        ("usage", "to", {}),
        ("usage", "from", {}),
        ("health", "to", {}),
        ("compare", "a.to", ARM_EXTRA),
        ("compare", "a.from", ARM_EXTRA),
    ],
)
def test_dates_off_the_calendar_are_refused_by_name_never_overflow(
    slow_release: Dataset, name: str, param: str, extra: dict[str, str], moment: str
) -> None:
    params = {**extra, param: moment}
    with pytest.raises(ReportParamError) as refused:
        run_report(slow_release.store, slow_release.plan, name, params, now=NOW)
    message = str(refused.value)
    assert message.startswith(f"{param} must be")
    assert moment not in message


def test_the_calendar_range_allows_every_realistic_window(slow_release: Dataset) -> None:
    params = {"from": "1970-01-01", "to": "8999-12-30"}
    assert run_report(slow_release.store, slow_release.plan, "usage", params, now=NOW)
    params = {"to": "1970-01-05"}  # the default four weeks reach before 1970: still a window
    assert run_report(slow_release.store, slow_release.plan, "loops", params, now=NOW)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("top-problems", {"limit": "²"}),  # str.isdigit() says yes, int() says no
        ("top-problems", {"limit": "0"}),
        ("usage", {"barely": "1e400"}),
        ("usage", {"barely": "nan"}),
    ],
)
def test_numbers_out_of_range_are_refused_by_name(
    slow_release: Dataset, name: str, params: dict[str, str]
) -> None:
    with pytest.raises(ReportParamError) as refused:
        run_report(slow_release.store, slow_release.plan, name, params, now=NOW)
    (param,) = params
    assert str(refused.value).startswith(f"{param} must be")
