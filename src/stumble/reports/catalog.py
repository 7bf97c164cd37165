"""The named reports: parameters in, a typed ``Report`` out. The read API and the CLI share it.

Parameters are strings, as they arrive in a query string (``?from=2026-03-01&by=role``):

* every report: ``from``, ``to`` (a date, inclusive, or an ISO datetime; default the last
  ``DEFAULT_DAYS`` days), ``env`` (default ``prod``), ``by`` (a breakdown dimension) and the
  filters ``role``, ``division``, ``device_type``, ``browser``, ``region``, ``ui_version``,
  ``experiment`` (comma-separated values) and ``flag`` (``name`` on, ``!name`` off);
* ``funnel``: ``scenario``, ``last_actions`` (1: what sessions that stopped at each step did
  last, a second pass over the events); ``timings``: ``operation``; ``field-errors``: ``form``;
  ``usage``: ``barely`` (share); ``top-problems``: ``limit``; ``health``: ``env`` may be
  ``*`` (every environment, its default);
* ``clicks``: ``screen`` (comma-separated); ``paths``: ``screen`` (its next and previous
  screens) and/or ``start`` + ``end`` (the paths between them; neither: the most frequent
  moves), ``limit``; ``frustration``:
  ``repeat_ms``, ``quick_back_ms``, ``dead_ms`` (default: the settings' values);
* ``compare``: ``scenario`` and, per arm, ``a.from``/``a.to``, ``a.ui_version``, ``a.flag``
  and ``a.label`` (likewise ``b.``): two windows, two versions or a flag on and off.

An unknown parameter or value raises ``ReportParamError`` with a message fit for a 400.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from stumble.analytics.clicks import ClickQuery, ClickResult, run_clicks
from stumble.analytics.common import stored_values
from stumble.analytics.compare import CompareResult, run_compare
from stumble.analytics.failures import FailureResult, run_failures
from stumble.analytics.field_errors import FieldErrorResult, run_field_errors
from stumble.analytics.frustration import (
    FrustrationQuery,
    FrustrationResult,
    FrustrationThresholds,
    run_frustration,
)
from stumble.analytics.funnels import FunnelResult, run_funnel
from stumble.analytics.health import HealthResult, run_health
from stumble.analytics.loops import LoopResult, run_loops
from stumble.analytics.paths import PathQuery, PathsResult, run_paths
from stumble.analytics.queries import (
    DEFAULT_ENVIRONMENT,
    DIMENSIONS,
    Arm,
    CompareQuery,
    Dimension,
    FailureQuery,
    FieldErrorQuery,
    Filters,
    FlagFilter,
    FunnelQuery,
    HealthQuery,
    LoopQuery,
    QueryError,
    Scope,
    TimeRange,
    TimingQuery,
    UsageQuery,
    form_specs,
)
from stumble.analytics.results import Report
from stumble.analytics.rollup_read import SourceAsked
from stumble.analytics.timings import TimingResult, run_timings
from stumble.analytics.usage import UsageResult, run_usage
from stumble.config import Settings
from stumble.plan.model import TrackingPlan
from stumble.reports.top_problems import TopProblemsQuery, TopProblemsResult, run_top_problems
from stumble.storage.base import EventStore

DEFAULT_DAYS: Final = 28
# Reports cover [EARLIEST, LATEST]: events are stamped in Unix milliseconds, and dates beyond
# leave room for a default window or an inclusive end day without leaving the calendar.
EARLIEST: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST: Final = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
ALL_ENVIRONMENTS: Final = "*"
SCOPE_PARAMS: Final = (
    "from",
    "to",
    "env",
    "by",
    "role",
    "division",
    "device_type",
    "browser",
    "region",
    "ui_version",
    "experiment",
    "flag",
)
ARM_PARAMS: Final = ("from", "to", "ui_version", "flag", "label")


class ReportParamError(QueryError):
    """A parameter the report does not take, or a value it cannot use."""


Params = Mapping[str, str]
Runner = Callable[[EventStore, TrackingPlan, "ReportCall"], Report[Any]]


@dataclass(frozen=True, slots=True)
class ReportSpec:
    name: str
    summary: str
    params: tuple[str, ...]
    """Parameters beyond ``SCOPE_PARAMS``."""
    result_type: type
    run: Runner


# --- parsing ------------------------------------------------------------------------------


def _values(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_moment(text: str, *, end_of_day: bool, name: str = "from/to") -> dt.datetime:
    """A date (the start of that UTC day, or the next day's start for an inclusive end) or an
    ISO datetime (UTC unless it says otherwise), between ``EARLIEST`` and ``LATEST``.

    ``name`` is the parameter, for the error message; the value itself is never echoed: an
    error message is no place for client text."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            moment = moment + dt.timedelta(days=1) if end_of_day else moment
        else:
            parsed = dt.datetime.fromisoformat(text)
            moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except ValueError:
        raise ReportParamError(f"{name} must be a date (YYYY-MM-DD) or an ISO datetime") from None
    except OverflowError:  # 9999-12-31 plus a day, or an offset past the calendar's ends
        raise _out_of_range(name) from None
    if not EARLIEST <= moment <= LATEST:
        raise _out_of_range(name)
    return moment


def _out_of_range(name: str) -> ReportParamError:
    return ReportParamError(f"{name} must be within the years {EARLIEST.year} to {LATEST.year - 1}")


def parse_time(params: Params, now: dt.datetime, prefix: str = "") -> TimeRange | None:
    start_name, end_name = prefix + "from", prefix + "to"
    start_text, end_text = params.get(start_name), params.get(end_name)
    if prefix and start_text is None and end_text is None:
        return None
    end = parse_moment(end_text, end_of_day=True, name=end_name) if end_text else _end_of_today(now)
    start = (
        parse_moment(start_text, end_of_day=False, name=start_name)
        if start_text
        else end - dt.timedelta(days=DEFAULT_DAYS)  # within range: EARLIEST is far from year 1
    )
    try:
        return TimeRange(start, end)
    except QueryError as error:
        raise ReportParamError(str(error)) from None


def _end_of_today(now: dt.datetime) -> dt.datetime:
    today = now.astimezone(dt.UTC).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)


def parse_filters(params: Params) -> Filters:
    flag = params.get("flag")
    return Filters(
        environment=params.get("env") or DEFAULT_ENVIRONMENT,
        role=_values(params.get("role")),
        division=_values(params.get("division")),
        device_type=_values(params.get("device_type")),
        browser=_values(params.get("browser")),
        region=_values(params.get("region")),
        ui_version=_values(params.get("ui_version")),
        experiment=_values(params.get("experiment")),
        feature_flag=FlagFilter.parse(flag) if flag else None,
    )


def parse_scope(params: Params, now: dt.datetime) -> Scope:
    by = params.get("by") or None
    if by is not None and by not in DIMENSIONS:
        raise ReportParamError(f"by must be one of {', '.join(DIMENSIONS)}")
    time = parse_time(params, now)
    assert time is not None
    return Scope(time, parse_filters(params), cast(Dimension | None, by))


def _required(params: Params, name: str, choices: list[str]) -> str:
    value = params.get(name)
    if not value:
        raise ReportParamError(f"{name} is required; one of {', '.join(sorted(choices))}")
    return value


def _check_choices(name: str, values: tuple[str, ...], choices: list[str]) -> None:
    """A 400 naming the parameter and the valid choices (from the plan or the data, never
    the client's text) when a value is not among them; today's answer would be empty."""
    unknown = [value for value in values if value not in choices]
    if unknown:
        listed = ", ".join(sorted(choices)) or "none yet"
        raise ReportParamError(f"{name} has {len(unknown)} unknown value(s); choose from {listed}")


def operation_choices(store: EventStore, plan: TrackingPlan, environment: str) -> list[str]:
    """Operations the plan declares, or (a plan that does not close the list) those stored."""
    declared = {v for spec in plan.events.values() for v in spec.values.get("operation", ())}
    declared |= {s.operation for s in plan.scenarios.values() if s.operation}
    return sorted(declared) or stored_values(store, "operation", environment)


def screen_choices(store: EventStore, plan: TrackingPlan, environment: str) -> list[str]:
    """Screens the plan declares, or (a plan that does not close the list) those stored."""
    declared = {v for spec in plan.events.values() for v in spec.values.get("screen_id", ())}
    return sorted(declared) or stored_values(store, "screen_id", environment)


def _check_environment(store: EventStore, name: str, params: Params) -> None:
    env = params.get("env")
    if env and not (env == ALL_ENVIRONMENTS and name == "health"):
        known = {DEFAULT_ENVIRONMENT, *stored_values(store, "environment")}
        _check_choices("env", (env,), sorted(known))


def _flag(text: str | None, name: str) -> bool:
    if text in (None, "", "0", "false"):
        return False
    if text in ("1", "true"):
        return True
    raise ReportParamError(f"{name} must be 1 or 0")


def _share(text: str | None, default: float, name: str) -> float:
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ReportParamError(f"{name} must be a number") from None
    if not 0.0 <= value <= 1.0:
        raise ReportParamError(f"{name} must be within [0, 1]")
    return value


def _positive_int(text: str | None, default: int, name: str) -> int:
    if text is None:
        return default
    # isascii: str.isdigit() also says yes to "²", which int() refuses
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ReportParamError(f"{name} must be a positive integer")
    return int(text)


def parse_arm(params: Params, prefix: str, now: dt.datetime) -> Arm:
    flag = params.get(prefix + "flag")
    versions = _values(params.get(prefix + "ui_version"))
    arm = Arm(
        label=params.get(prefix + "label") or prefix.rstrip("."),
        time=parse_time(params, now, prefix),
        ui_version=versions or None,
        feature_flag=FlagFilter.parse(flag) if flag else None,
    )
    if arm.time is None and arm.ui_version is None and arm.feature_flag is None:
        raise ReportParamError(
            f"arm {prefix.rstrip('.')} needs {prefix}from/{prefix}to, {prefix}ui_version "
            f"or {prefix}flag"
        )
    return arm


# --- runners ------------------------------------------------------------------------------


SOURCE: Final = "source"
"""``source=raw`` reads raw rows even where daily rollups could answer (an engineer checking a
figure); ``auto``, the default, lets the report choose (``analytics.rollup_read``)."""


def _source(p: Params) -> SourceAsked:
    value = p.get(SOURCE) or "auto"
    if value not in ("auto", "raw"):
        raise ReportParamError("source must be auto or raw")
    return "raw" if value == "raw" else "auto"


NO_THRESHOLDS: Final = FrustrationThresholds()


@dataclass(frozen=True, slots=True)
class ReportDefaults:
    """Defaults the server's settings give reports (a request's parameters still win)."""

    frustration: FrustrationThresholds = NO_THRESHOLDS

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportDefaults:
        return cls(FrustrationThresholds.from_settings(settings))


@dataclass(frozen=True, slots=True)
class ReportCall:
    """One call of a report: its parameters, the suppression threshold, now, and defaults."""

    params: Params
    min_group_size: int
    now: dt.datetime
    defaults: ReportDefaults


def _funnel(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    scenario = _required(p, "scenario", list(plan.scenarios))
    last = _flag(p.get("last_actions"), "last_actions")
    query = FunnelQuery.from_plan(plan, parse_scope(p, now), scenario, last_actions=last)
    return run_funnel(store, query, min_group_size=k, source=_source(p))


def _timings(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    scope = parse_scope(p, now)
    operations = _values(p.get("operation"))
    if operations:
        choices = operation_choices(store, plan, scope.filters.environment)
        _check_choices("operation", operations, choices)
    query = TimingQuery(scope, operations)
    return run_timings(store, query, min_group_size=k, source=_source(p))


def _field_errors(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    forms = _values(p.get("form"))
    _check_choices("form", forms, [spec.form_id for spec in form_specs(plan)])
    query = FieldErrorQuery.from_plan(plan, parse_scope(p, now), forms)
    return run_field_errors(store, query, min_group_size=k, source=_source(p))


def _loops(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    query = LoopQuery(parse_scope(p, now))
    return run_loops(store, query, min_group_size=k, source=_source(p))


def _usage(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    query = UsageQuery.from_plan(plan, parse_scope(p, now))
    share = _share(p.get("barely"), query.barely_used_share, "barely")
    query = UsageQuery(query.scope, query.declared, share)
    return run_usage(store, query, min_group_size=k, source=_source(p))


def _failures(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    query = FailureQuery.from_plan(plan, parse_scope(p, now))
    return run_failures(store, query, min_group_size=k, source=_source(p))


def _compare(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    scenario = _required(p, "scenario", list(plan.scenarios))
    query = CompareQuery.from_plan(
        plan,
        parse_scope(p, now),
        scenario,
        parse_arm(p, "a.", now),
        parse_arm(p, "b.", now),
    )
    return run_compare(store, query, min_group_size=k, source=_source(p))


def _clicks(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    scope = parse_scope(p, now)
    screens = _values(p.get("screen"))
    if screens:
        _check_choices("screen", screens, screen_choices(store, plan, scope.filters.environment))
    query = ClickQuery.from_plan(plan, scope, screens)
    return run_clicks(store, query, min_group_size=k, source=_source(p))


def _paths(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    scope = parse_scope(p, now)
    screen, start, end = p.get("screen") or None, p.get("start") or None, p.get("end") or None
    if (start is None) != (end is None):
        raise ReportParamError("paths needs start and end together")
    choices = screen_choices(store, plan, scope.filters.environment)
    for name, value in (("screen", screen), ("start", start), ("end", end)):
        if value is not None:
            _check_choices(name, (value,), choices)
    query = PathQuery(scope, screen, start, end, _positive_int(p.get("limit"), 10, "limit"))
    return run_paths(store, query, min_group_size=k, source=_source(p))


def _frustration(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now, d = call.params, call.min_group_size, call.now, call.defaults
    base = d.frustration
    thresholds = FrustrationThresholds(
        repeat_ms=_positive_int(p.get("repeat_ms"), base.repeat_ms, "repeat_ms"),
        quick_back_ms=_positive_int(p.get("quick_back_ms"), base.quick_back_ms, "quick_back_ms"),
        dead_ms=_positive_int(p.get("dead_ms"), base.dead_ms, "dead_ms"),
        text_targets=base.text_targets,
    )
    query = FrustrationQuery(parse_scope(p, now), thresholds)
    return run_frustration(store, query, min_group_size=k, source=_source(p))


def _top_problems(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    limit = _positive_int(p.get("limit"), 10, "limit")
    query = TopProblemsQuery.from_plan(plan, parse_scope(p, now), limit)
    return run_top_problems(store, query, min_group_size=k)


def _health(store: EventStore, plan: TrackingPlan, call: ReportCall) -> Report[Any]:
    p, k, now = call.params, call.min_group_size, call.now
    env = p.get("env") or ALL_ENVIRONMENTS
    time = parse_time(p, now)
    assert time is not None
    query = HealthQuery.from_plan(plan, time, None if env == ALL_ENVIRONMENTS else env)
    return run_health(store, query, min_group_size=k, source=_source(p))


REPORTS: Final[dict[str, ReportSpec]] = {
    spec.name: spec
    for spec in (
        ReportSpec("funnel", "scenario funnel: reach, drop-off, conversion, step times",
                   ("scenario", "last_actions", SOURCE), FunnelResult, _funnel),
        ReportSpec("timings", "operation durations, outcomes, retries and phases",
                   ("operation", SOURCE), TimingResult, _timings),
        ReportSpec("field-errors", "form errors by field: share, attempts, time on step",
                   ("form", SOURCE), FieldErrorResult, _field_errors),
        ReportSpec("loops", "back, cancel, close, retry and reopen per screen",
                   (SOURCE,), LoopResult, _loops),
        ReportSpec("usage", "sessions per feature per day; features barely touched",
                   ("barely", SOURCE), UsageResult, _usage),
        ReportSpec("failures", "errors by kind, type, fingerprint, route and scenario; "
                   "API times; Web Vitals", (SOURCE,), FailureResult, _failures),
        ReportSpec("compare", "before/after with intervals, tests and verdicts",
                   ("scenario", SOURCE, *(f"{arm}.{p}" for arm in "ab" for p in ARM_PARAMS)),
                   CompareResult, _compare),
        ReportSpec("top-problems", "problems beyond the plan's thresholds, ranked by impact",
                   ("limit",), TopProblemsResult, _top_problems),
        ReportSpec("health", "volumes, gaps, rejections, redactions, duplicates, skew, "
                   "timers, plan drift, test data", (SOURCE,), HealthResult, _health),
        ReportSpec("clicks", "clicks by target and position per screen, renamed targets "
                   "merged", ("screen", SOURCE), ClickResult, _clicks),
        ReportSpec("paths", "next and previous screens of a screen; top paths between two",
                   ("screen", "start", "end", "limit", SOURCE), PathsResult, _paths),
        ReportSpec("frustration", "repeated actions, quick backs, actions followed by nothing",
                   ("repeat_ms", "quick_back_ms", "dead_ms", SOURCE), FrustrationResult,
                   _frustration),
    )
}  # fmt: skip


def run_report(
    store: EventStore,
    plan: TrackingPlan,
    name: str,
    params: Params,
    *,
    min_group_size: int = 5,
    now: dt.datetime | None = None,
    check_environment: bool = False,
    defaults: ReportDefaults | None = None,
) -> Report[Any]:
    """Run a named report; raises ``ReportParamError`` (bad input) or ``KeyError`` (no such
    report). Storage failures surface as ``StorageError``.

    ``check_environment``: an ``env`` with no stored data is a ``ReportParamError`` listing
    the environments that have some (the read API and the CLI ask for it; the digest and the
    dashboard may name an environment before its first event)."""
    spec = REPORTS[name]
    unknown = set(params) - set(SCOPE_PARAMS) - set(spec.params)
    if unknown:
        accepted = ", ".join(sorted({*SCOPE_PARAMS, *spec.params}))
        raise ReportParamError(
            f"{name} got {len(unknown)} unknown parameter(s); it accepts: {accepted}"
        )
    if check_environment:
        _check_environment(store, name, params)
    try:
        call = ReportCall(
            params, min_group_size, now or dt.datetime.now(dt.UTC), defaults or ReportDefaults()
        )
        return spec.run(store, plan, call)
    except ReportParamError:
        raise
    except QueryError as error:
        raise ReportParamError(str(error)) from None
