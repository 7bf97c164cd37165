"""The report pages: one builder per page, each answering one question.

Every number comes from ``PageContext.report`` — the catalog's reports with the filters'
parameters — so a page shows what ``/api/v1/reports/...`` answers for the same filters.
Charts are built from the same rows as their table view and CSV export.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlencode

from stumble.analytics.compare import CompareResult, MetricComparison
from stumble.analytics.failures import FailureResult
from stumble.analytics.field_errors import FieldErrorResult, FieldErrorRow
from stumble.analytics.funnels import FunnelGroup, FunnelResult
from stumble.analytics.health import HealthResult
from stumble.analytics.loops import LoopResult, ScreenLoops
from stumble.analytics.paths import MAX_HOPS, PathsResult
from stumble.analytics.queries import DIMENSIONS, form_specs
from stumble.analytics.rendering import format_value
from stumble.analytics.results import Column, Table
from stumble.analytics.rollup_read import sharing_cells
from stumble.analytics.stats import IMPROVED, NO_CHANGE, REGRESSED, two_proportion_test
from stumble.analytics.timings import TimingResult
from stumble.analytics.usage import UsageResult
from stumble.dashboard import charts
from stumble.dashboard.context import PageContext, PageParamError, notes_of
from stumble.dashboard.fixes_page import loop_health
from stumble.dashboard.model import (
    BulletList,
    Callout,
    Chart,
    Choice,
    Facts,
    Metric,
    Page,
    Picker,
    ProblemCard,
    ProblemList,
    Section,
    TableBlock,
    Tile,
    TileGrid,
    Tone,
)
from stumble.events import NAVIGATION_KINDS
from stumble.pipeline import PipelineStatus
from stumble.plan.model import describe_window
from stumble.reports.top_problems import Problem, TopProblemsResult
from stumble.review.fixes import suggested_expectation

TREND_WEEKS: Final = 12
SIGNIFICANCE: Final = 0.05
NOTABLE_TIME_CHANGE: Final = 0.2
"""A p95 that moves by a fifth or more is listed under "what changed" (not a test)."""
NO_OWNER: Final = "no owner in the plan"
MAX_BARS: Final = 15
PATH_LABEL_LIMIT: Final = 420
"""Pixels for a path's label: up to eight screen names, which the axis must not cut."""
BREAKDOWN_LABELS: Final = {
    "role": "role",
    "division": "division",
    "device_type": "device",
    "browser": "browser",
    "region": "region",
    "ui_version": "UI version",
    "experiment": "experiment",
    "day": "day",
    "week": "week",
}
PROBLEM_KINDS: Final = {
    "drop_off": "Drop-off",
    "conversion": "Low conversion",
    "field_error": "Field errors",
    "error_rate": "Errors",
    "regression": "Regression",
    "slow_step": "Slow step",
    "slow_operation": "Slow operation",
}


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, 3)


def _fmt(value: object, kind: Any) -> str:
    return format_value(value, kind)


def _scenario_owner(ctx: PageContext, scenario: str | None) -> str:
    spec = ctx.plan.scenarios.get(scenario or "")
    return spec.owner if spec is not None and spec.owner else NO_OWNER


def _scenario_choices(ctx: PageContext) -> dict[str, str]:
    if not ctx.plan.scenarios:
        raise PageParamError("the tracking plan declares no scenario")
    # The plan's order: its authors put the main scenario first.
    return {name: name.replace("_", " ") for name in ctx.plan.scenarios}


# --- overview -----------------------------------------------------------------------------


def overview(ctx: PageContext) -> Page:
    with sharing_cells():  # the tiles' funnels read the cells top problems read
        top = ctx.report("top-problems")
        tiles, changes = scenario_tiles(ctx)
    sections = [
        Section(
            "Top problems this period",
            [problem_list(ctx, top.data)],
            intro="Ranked by impact: sessions affected × how far the metric is beyond the "
            "plan's threshold. Each has a suggested action and the team that owns it.",
            id="problems",
        ),
        Section(
            "Scenarios",
            [TileGrid(tiles)],
            intro=f"Conversion and p95 time to complete, against the previous "
            f"{ctx.filters.days} days; the line is the last {TREND_WEEKS} weeks.",
            id="scenarios",
        ),
        loop_health(ctx.fixes, top.data.problems, ctx.now.date()),
        Section(
            "What changed since the previous period",
            [
                BulletList(
                    changes,
                    empty="No significant change in conversion, and no p95 "
                    "moved by a fifth or more.",
                )
            ],
            id="changes",
        ),
    ]
    return Page(
        slug="overview",
        question="What needs attention this week?",
        owner="the UX review: every scenario's owner team",
        sections=sections,
        notes=notes_of(top.meta),
    )


def _problem_link(ctx: PageContext, problem: Problem) -> str | None:
    scenario = problem.scenario
    if problem.kind in ("drop_off", "conversion", "slow_step") and scenario:
        return ctx.filters.link("/funnel", scenario=scenario)
    if problem.kind == "field_error":
        return ctx.filters.link("/forms")
    if problem.kind == "slow_operation":
        return ctx.filters.link("/operations")
    if problem.kind == "error_rate":
        return ctx.filters.link("/failures")
    if problem.kind == "regression" and scenario:
        return ctx.filters.link("/compare", scenario=scenario)
    return None


def _fix_link(ctx: PageContext, problem: Problem) -> str:
    """The fixes page with a fix for ``problem`` begun: its wording, scenario, owner and the
    metric the fix should move."""
    prefill = {
        "problem": f"{problem.kind}: {problem.subject}",
        "scenario": problem.scenario or "",
        "owner": _scenario_owner(ctx, problem.scenario) if problem.scenario else "",
        "expect": suggested_expectation(problem.kind, problem.subject, ctx.plan, problem.scenario),
        "env": ctx.filters.environment,
    }
    return "/fixes?" + urlencode({k: v for k, v in prefill.items() if v}) + "#record"


def problem_list(ctx: PageContext, result: TopProblemsResult) -> ProblemList:
    """The problem cards and their table (public: the weekly digest lists the same cards)."""
    cards = [
        ProblemCard(
            rank=p.rank,
            title=f"{PROBLEM_KINDS.get(p.kind, p.kind)}: {p.subject}",
            finding=p.finding,
            action=p.action,
            owner=_scenario_owner(ctx, p.scenario),
            sessions=_fmt(p.sessions_affected, "int"),
            link=_problem_link(ctx, p),
            fix_link=_fix_link(ctx, p),
        )
        for p in result.problems
    ]
    table = Table(
        "Top problems",
        (
            Column("#", "int"),
            Column("problem"),
            Column("owner"),
            Column("sessions affected", "int"),
            Column("impact", "number"),
            Column("finding"),
            Column("suggested action"),
        ),
        [
            (c.rank, c.title, c.owner, p.sessions_affected, round(p.impact, 1), c.finding, c.action)
            for c, p in zip(cards, result.problems, strict=True)
        ],
        f"{result.considered} problems found; impact = sessions affected × severity",
    )
    empty = "Nothing beyond the plan's thresholds in this period."
    return ProblemList(id="problems", problems=cards, table=table, empty=empty)


@dataclass(frozen=True, slots=True)
class _Period:
    started: int | None
    converted: int | None
    conversion: float | None
    p95_ms: float | None


def _period(group: FunnelGroup) -> _Period:
    first, last = group.steps[0], group.steps[-1]
    return _Period(first.sessions, last.sessions, group.conversion.value, group.time_to_convert.p95)


def scenario_tiles(ctx: PageContext) -> tuple[list[Tile], list[tuple[str, Tone]]]:
    """Per scenario: conversion and p95 now, against the previous period of the same length,
    with a weekly trend; and the changes worth a line under "what changed". Public: the weekly
    digest shows the same tiles for a week against the week before."""
    tiles: list[Tile] = []
    changes: list[tuple[str, Tone]] = []
    filters = ctx.filters
    previous = filters.shifted(-filters.days)
    trend_start = filters.end - dt.timedelta(weeks=TREND_WEEKS) + dt.timedelta(days=1)
    weeks = filters.spanning(trend_start, filters.end)
    for name in ctx.plan.scenarios:
        now = _period(ctx.report("funnel", {"scenario": name}).data.total())
        before = _period(ctx.report("funnel", {"scenario": name}, previous).data.total())
        weekly: FunnelResult = ctx.report("funnel", {"scenario": name, "by": "week"}, weeks).data
        conversion = _conversion_metric(now, before)
        p95 = _p95_metric(now, before)
        label = name.replace("_", " ")
        changes.extend(
            (f"{label}: {metric.label} {metric.value} ({metric.change})", metric.tone)
            for metric in (conversion, p95)
            if metric.tone in ("good", "bad")
        )
        tiles.append(
            Tile(
                title=label,
                owner=_scenario_owner(ctx, name),
                link=filters.link("/funnel", scenario=name),
                metrics=[conversion, p95],
                trend=_weekly_trend(name, weekly),
                note=f"{_fmt(now.started, 'int')} sessions started"
                if now.started
                else "fewer sessions than the small-cell threshold",
            )
        )
    return tiles, changes


def _conversion_metric(now: _Period, before: _Period) -> Metric:
    """Conversion with its change in percentage points; coloured only when the change is
    significant (a two-proportion test at ``SIGNIFICANCE``)."""
    value = _fmt(now.conversion, "share")
    if not now.started or not before.started or now.converted is None or before.converted is None:
        return Metric("conversion", value, "no comparison", "neutral")
    test = two_proportion_test(before.converted, before.started, now.converted, now.started)
    change = f"{test.diff * 100:+.1f} pp"
    direction = _direction(test.diff)
    if test.p_value >= SIGNIFICANCE:
        return Metric("conversion", value, f"{change}, not significant", "neutral", direction)
    return Metric("conversion", value, change, "good" if test.diff > 0 else "bad", direction)


def _direction(change: float) -> Literal["up", "down", ""]:
    return "up" if change > 0 else "down" if change < 0 else ""


def _p95_metric(now: _Period, before: _Period) -> Metric:
    """p95 time to complete and its relative change; a fifth or more is called out (not a
    significance test: the compare page tests durations)."""
    value = _fmt(now.p95_ms, "ms")
    if now.p95_ms is None or not before.p95_ms:
        return Metric("p95 to complete", value, "no comparison", "neutral")
    relative = now.p95_ms / before.p95_ms - 1
    tone: Tone = "neutral"
    if abs(relative) >= NOTABLE_TIME_CHANGE:
        tone = "bad" if relative > 0 else "good"
    return Metric("p95 to complete", value, f"{relative:+.0%}", tone, _direction(relative))


def _weekly_trend(scenario: str, weekly: FunnelResult) -> Chart:
    rows = [
        (group.group, group.started, group.conversion.value, group.time_to_convert.p95)
        for group in weekly.groups
        if group.group is not None
    ]
    table = Table(
        f"Weekly conversion of {scenario}",
        (
            Column("week from"),
            Column("started", "int"),
            Column("conversion", "share"),
            Column("p95 to complete", "ms"),
        ),
        rows,
        "weeks start on Monday (UTC); hidden weeks had fewer sessions than the threshold",
    )
    values = [{"week": r[0], "conversion": r[2]} for r in rows if r[2] is not None]
    return Chart(
        id=f"trend-{scenario}",
        title=f"Conversion per week, {scenario.replace('_', ' ')}",
        spec=charts.sparkline(values, x="week", y="conversion"),
        table=table,
        summary=f"Weekly conversion of {scenario} over the last {TREND_WEEKS} weeks",
        small=True,
    )


# --- funnel -------------------------------------------------------------------------------


def funnel(ctx: PageContext) -> Page:
    scenarios = _scenario_choices(ctx)
    scenario = ctx.param("scenario", scenarios, next(iter(scenarios)))
    by_choices = {"": "no breakdown"} | {d: BREAKDOWN_LABELS[d] for d in DIMENSIONS}
    by = ctx.param("by", by_choices, "")
    extra = {"scenario": scenario} | ({"by": by} if by else {})
    report = ctx.report("funnel", {**extra, "last_actions": "1"})
    result: FunnelResult = report.data
    total = result.total()
    window = describe_window(result.window_ms) if result.window_ms else "its window"
    sections = [
        Section(
            "Where sessions drop off",
            [_funnel_chart(result, total)],
            intro=f"Sessions that reached each step of {scenario.replace('_', ' ')} "
            f"within {window} of starting it ({result.semantics.replace('_', ' ')} funnel), "
            "with conversion from the first step (95% interval) and drop-off from the previous "
            "one.",
        ),
        Section("How long each step takes", [_step_times_chart(result, total)]),
    ]
    if result.last_actions:
        sections.append(
            Section(
                "What sessions that stopped did last",
                [_last_actions_chart(result)],
                intro="For the sessions that reached a step and went no further: the last "
                "thing they did in the attempt's window (idle: nothing at all).",
            )
        )
    if by:
        sections.append(
            Section(
                f"Conversion by {BREAKDOWN_LABELS[by]}",
                [_conversion_by_group(result, by)],
                intro="Hidden groups had fewer sessions than the small-cell threshold.",
            )
        )
    return Page(
        slug="funnel",
        question=f"Where do people drop out of {scenario.replace('_', ' ')}?",
        owner=_scenario_owner(ctx, scenario),
        sections=sections,
        notes=notes_of(report.meta),
        pickers=[
            Picker("scenario", "Scenario", _choices(scenarios), scenario),
            Picker("by", "Break down by", _choices(by_choices), by),
        ],
        extra_params=extra,
    )


def _choices(choices: dict[str, str]) -> list[Choice]:
    return [Choice(value, label) for value, label in choices.items()]


def _funnel_chart(result: FunnelResult, total: FunnelGroup) -> Chart:
    rows = [
        (
            step.label,
            "hidden" if step.hidden else step.sessions,
            step.conversion.value,
            step.conversion.low,
            step.conversion.high,
            step.step_conversion.value,
            step.drop_off,
            step.drop_off_share,
        )
        for step in total.steps
    ]
    table = Table(
        f"Funnel {result.scenario}",
        (
            Column("step"),
            Column("sessions", "int"),
            Column("conversion", "share"),
            Column("95% low", "share"),
            Column("95% high", "share"),
            Column("from previous", "share"),
            Column("dropped", "int"),
            Column("dropped share", "share"),
        ),
        rows,
        "conversion: from the first step; dropped: reached the previous step but not this one",
    )
    values = [
        {
            "step": step.label,
            "sessions": step.sessions,
            "label": f"{_fmt(step.sessions, 'int')} · {_fmt(step.conversion.value, 'share')}",
        }
        for step in total.steps
        if not step.hidden
    ]
    spec = charts.horizontal_bars(
        values, category="step", value="sessions", value_title="sessions", label="label"
    )
    return Chart(
        id="funnel",
        title="Sessions per step",
        spec=spec,
        table=table,
        table_open=True,
        summary=f"Sessions reaching each of {len(total.steps)} steps; conversion "
        f"{_fmt(total.conversion.value, 'share')}",
    )


HIDDEN_ACTIONS: Final = "in small groups (hidden)"


def _hidden_rest(result: FunnelResult, *, order: int) -> list[dict[str, object]]:
    """Per step, the share of its stopped sessions whose last action is hidden (fewer than k
    sessions did it), so each bar reaches 100%. It is the stopped total minus the shown
    actions, both in the table already; small-cell suppression hides at least two actions
    of a step, so this sum does not reveal any one of them."""
    rests = []
    for step in result.last_actions:
        shown = sum(a.share or 0.0 for a in step.actions if not a.hidden)
        if any(a.hidden for a in step.actions) and shown < 1.0:
            rests.append(
                {"step": step.step, "action": HIDDEN_ACTIONS, "share": 1.0 - shown, "order": order}
            )
    return rests


def _last_actions_chart(result: FunnelResult) -> Chart:
    rows = [
        (
            step.step,
            step.stopped,
            action.action,
            "hidden" if action.hidden else action.sessions,
            action.share,
        )
        for step in result.last_actions
        for action in step.actions
    ]
    table = Table(
        "Last action of the sessions that stopped at each step",
        (
            Column("stopped after"),
            Column("sessions stopped", "int"),
            Column("last action"),
            Column("sessions", "int"),
            Column("share", "share"),
        ),
        rows,
        "shares of the sessions that stopped after that step",
    )
    actions = list(dict.fromkeys(str(r[2]) for r in rows if r[3] != "hidden"))
    values: list[dict[str, object]] = [
        {"step": r[0], "action": r[2], "share": r[4], "order": actions.index(str(r[2]))}
        for r in rows
        if isinstance(r[4], float) and r[3] != "hidden"
    ]
    values += _hidden_rest(result, order=len(actions))
    spec = charts.stacked_bars(
        values,
        category="step",
        series="action",
        value="share",
        value_title="share of the sessions that stopped there",
        series_order=[*actions, HIDDEN_ACTIONS],
        value_format=charts.SHARE_FORMAT,
        rest=HIDDEN_ACTIONS,
    )
    return Chart(
        id="last-actions",
        title="What they did last, per step they stopped after",
        spec=spec,
        table=table,
        summary="Last actions of sessions that stopped at each funnel step, as shares",
    )


def _step_times_chart(result: FunnelResult, total: FunnelGroup) -> Chart:
    rows = [
        (
            step.label,
            step.time_from_previous.n or None,
            step.time_from_previous.p50,
            step.time_from_previous.p95,
            step.slower_than_limit,
        )
        for step in total.steps[1:]
    ]
    limit = _fmt(result.step_limit_ms, "ms") if result.step_limit_ms else "none"
    table = Table(
        "Time from the previous step",
        (
            Column("step"),
            Column("sessions", "int"),
            Column("p50", "ms"),
            Column("p95", "ms"),
            Column("slower than limit", "int"),
        ),
        rows,
        f"the plan's step limit (p95): {limit}",
    )
    values = [
        {"step": label, "quantile": name, "seconds": _seconds(ms)}
        for label, _, p50, p95, _ in rows
        for name, ms in (("p50", p50), ("p95", p95))
        if ms is not None
    ]
    spec = charts.grouped_bars(
        values,
        category="step",
        series="quantile",
        value="seconds",
        value_title="seconds from the previous step",
        series_order=("p50", "p95"),
    )
    return Chart(
        id="step-times",
        title="Median and p95 time per step",
        spec=spec,
        table=table,
        summary="Median and 95th percentile of the time from the previous step, per step",
    )


def _conversion_by_group(result: FunnelResult, by: str) -> Chart:
    groups = [g for g in result.groups if g.group is not None]
    rows = [
        (
            g.group,
            "hidden" if g.steps[0].hidden else g.started,
            g.conversion.value,
            g.conversion.low,
            g.conversion.high,
            g.time_to_convert.p50,
            g.time_to_convert.p95,
        )
        for g in groups
    ]
    table = Table(
        f"Conversion by {by}",
        (
            Column(by),
            Column("started", "int"),
            Column("conversion", "share"),
            Column("95% low", "share"),
            Column("95% high", "share"),
            Column("p50 to complete", "ms"),
            Column("p95 to complete", "ms"),
        ),
        rows,
    )
    values = [
        {
            "group": g.group,
            "conversion": g.conversion.value,
            "low": g.conversion.low,
            "high": g.conversion.high,
        }
        for g in groups
        if g.conversion.value is not None
    ]
    spec = charts.intervals(
        values,
        category="group",
        value="conversion",
        low="low",
        high="high",
        value_title="conversion (95% interval)",
    )
    return Chart(
        id="by-group",
        title=f"Conversion by {BREAKDOWN_LABELS.get(by, by)}",
        spec=spec,
        table=table,
        summary=f"Conversion with its 95% interval for each {by}",
    )


# --- form errors --------------------------------------------------------------------------


def forms(ctx: PageContext) -> Page:
    choices = {"": "all forms"} | {spec.form_id: spec.form_id for spec in form_specs(ctx.plan)}
    form = ctx.param("form", choices, "")
    extra = {"form": form} if form else {}
    report = ctx.report("field-errors", extra)
    result: FieldErrorResult = report.data
    ranked = _ranked_errors(result)
    sections = [
        Section(
            "Which field errors cost the most",
            [_field_error_chart(ranked)],
            intro="Impact = sessions with the error × the time it added to the step (median "
            "time on the step with the error minus without). Share: of the sessions that "
            "entered the step.",
        ),
        Section("Form steps", [_form_steps_table(result)]),
    ]
    return Page(
        slug="forms",
        question="Which form fields make people stumble, and what does it cost them?",
        owner=_form_owner(ctx, form),
        sections=sections,
        notes=notes_of(report.meta),
        pickers=[Picker("form", "Form", _choices(choices), form)],
        extra_params=extra,
    )


def _form_owner(ctx: PageContext, form: str) -> str:
    owners = {
        s.owner for s in ctx.plan.scenarios.values() if s.owner and (not form or s.form_id == form)
    }
    return ", ".join(sorted(owners)) or NO_OWNER


def _time_lost(row: FieldErrorRow) -> float | None:
    with_error, without = row.time_with_error.p50, row.time_without_error.p50
    if with_error is None or without is None:
        return None
    return max(0.0, with_error - without)


def _ranked_errors(result: FieldErrorResult) -> list[FieldErrorRow]:
    """Total rows (not per group), shown ones, by impact: sessions × time lost."""
    rows = [r for r in result.errors if r.group is None and not r.hidden and r.sessions]

    def impact(row: FieldErrorRow) -> float:
        return (row.sessions or 0) * (_time_lost(row) or 0.0)

    return sorted(rows, key=lambda r: (-impact(r), -(r.sessions or 0), r.field_id))


def _field_error_chart(rows: Sequence[FieldErrorRow]) -> Chart:
    table_rows = [
        (
            r.form_id,
            r.step,
            r.field_id,
            r.error_type,
            r.sessions,
            r.share.value,
            r.attempts_median,
            r.time_with_error.p50,
            r.time_without_error.p50,
            _time_lost(r),
            round((r.sessions or 0) * (_time_lost(r) or 0) / 60_000, 1),
        )
        for r in rows
    ]
    table = Table(
        "Field errors by impact",
        (
            Column("form"),
            Column("step", "int"),
            Column("field"),
            Column("error"),
            Column("sessions", "int"),
            Column("share of sessions", "share"),
            Column("attempts (median)", "number"),
            Column("time on step with", "ms"),
            Column("without", "ms"),
            Column("time lost", "ms"),
            Column("impact (session-minutes)", "number"),
        ),
        table_rows,
        "rows with fewer sessions than the threshold are not listed",
    )
    values = [
        {
            "error": f"{r[2]} · {r[3]}",
            "minutes": r[10],
            "label": f"{_fmt(r[4], 'int')} sessions, {_fmt(r[9], 'ms')} each",
        }
        for r in table_rows[:MAX_BARS]
    ]
    spec = charts.horizontal_bars(
        values,
        category="error",
        value="minutes",
        value_title="session-minutes lost",
        value_format=",.1~f",
        label="label",
    )
    return Chart(
        id="field-errors",
        title="Field errors ranked by time lost",
        spec=spec,
        table=table,
        summary="Field and error type pairs ranked by session-minutes lost",
    )


def _form_steps_table(result: FieldErrorResult) -> Chart:
    steps = [s for s in result.steps if s.group is None]
    rows = [
        (
            s.form_id,
            s.step,
            "hidden" if s.hidden else s.entered,
            s.completion.value,
            s.with_any_error.value,
            s.time_on_step.p50,
            s.input_time.p50,
            s.error_fixing_time.p50,
        )
        for s in steps
    ]
    table = Table(
        "Form steps",
        (
            Column("form"),
            Column("step", "int"),
            Column("entered", "int"),
            Column("completed", "share"),
            Column("with any error", "share"),
            Column("time on step p50", "ms"),
            Column("input p50", "ms"),
            Column("fixing errors p50", "ms"),
        ),
        rows,
    )
    values = [
        {"step": f"{r[0]} step {r[1]}", "part": part, "seconds": _seconds(ms), "order": order}
        for r in rows
        for order, (part, ms) in enumerate((("input", r[6]), ("fixing errors", r[7])))
        if ms is not None
    ]
    spec = charts.stacked_bars(
        values,
        category="step",
        series="part",
        value="seconds",
        value_title="median seconds",
        series_order=("input", "fixing errors"),
    )
    return Chart(
        id="form-steps",
        title="Time on each step: input and fixing errors (medians)",
        spec=spec,
        table=table,
        summary="Median input time and error-fixing time per form step",
    )


# --- operations ---------------------------------------------------------------------------

PHASE_GROUPS: Final = {
    "server_wait": "waiting",
    "unanswered_wait": "waiting",
    "rendering": "waiting",
    "preparing": "input",
    "validation": "input",
    "input": "input",
    "error_fixing": "fixing errors",
    "finishing": "input",
}
"""How the timing report's phases read on the page: time spent waiting for the system, the
person's own input, and fixing errors."""
PARTS: Final = ("waiting", "input", "fixing errors")


def operations(ctx: PageContext) -> Page:
    report = ctx.report("timings")
    result: TimingResult = report.data
    tables = result.tables()
    sections = [
        Section("How long operations take", [_operation_quantiles(result, tables[0])]),
        Section(
            "Where the time goes",
            [_operation_parts(result)],
            intro="Median time per part of each operation, from its checkpoints: waiting "
            "for the system (server, rendering), the person's input, and fixing errors.",
        ),
        Section("Timeouts, failures and retries", [_outcomes_chart(result)]),
    ]
    return Page(
        slug="operations",
        question="Which operations are slow, and is it the system or the person?",
        owner=_owners_of_operations(ctx),
        sections=sections,
        notes=notes_of(report.meta),
    )


def _owners_of_operations(ctx: PageContext) -> str:
    owners = {s.owner for s in ctx.plan.scenarios.values() if s.operation and s.owner}
    return ", ".join(sorted(owners)) or NO_OWNER


def _operation_quantiles(result: TimingResult, table: Table) -> Chart:
    values = [
        {"operation": o.operation, "quantile": name, "seconds": _seconds(ms)}
        for o in result.operations
        if o.group is None and not o.hidden
        for name, ms in (
            ("p50", o.duration_success.p50),
            ("p95", o.duration_success.p95),
            ("p99", o.duration_success.p99),
        )
        if ms is not None
    ]
    spec = charts.grouped_bars(
        values,
        category="operation",
        series="quantile",
        value="seconds",
        value_title="seconds (successful operations)",
        series_order=("p50", "p95", "p99"),
    )
    return Chart(
        id="operations",
        title="p50, p95 and p99 per operation",
        spec=spec,
        table=table,
        summary="Duration quantiles of successful operations",
    )


def _operation_parts(result: TimingResult) -> Chart:
    totals: dict[tuple[str, str], float] = {}
    for phase in result.phases:
        if phase.group is not None or phase.hidden or phase.duration.p50 is None:
            continue
        part = PHASE_GROUPS.get(phase.phase, "input")
        key = (phase.operation, part)
        totals[key] = totals.get(key, 0.0) + phase.duration.p50
    rows = [(op, part, ms) for (op, part), ms in sorted(totals.items())]
    table = Table(
        "Where the time goes (sum of phase medians)",
        (Column("operation"), Column("part"), Column("median", "ms")),
        rows,
        "parts: waiting = server_wait, rendering, unanswered_wait; fixing errors = "
        "error_fixing; input = the rest",
    )
    values = [
        {"operation": op, "part": part, "seconds": _seconds(ms), "order": PARTS.index(part)}
        for op, part, ms in rows
    ]
    spec = charts.stacked_bars(
        values,
        category="operation",
        series="part",
        value="seconds",
        value_title="median seconds",
        series_order=PARTS,
    )
    return Chart(
        id="parts",
        title="Waiting, input and fixing errors per operation",
        spec=spec,
        table=table,
        summary="Median seconds waiting, in input and fixing errors per operation",
    )


def _outcomes_chart(result: TimingResult) -> Chart:
    statuses = ("fail", "timeout", "cancel")
    rows = [
        (
            o.operation,
            "hidden" if o.hidden else o.ended,
            *(o.rates[s].value if s in o.rates else None for s in statuses),
            o.retries,
            o.retry_rate,
        )
        for o in result.operations
        if o.group is None
    ]
    table = Table(
        "Outcomes",
        (
            Column("operation"),
            Column("ended", "int"),
            Column("failed", "share"),
            Column("timed out", "share"),
            Column("cancelled", "share"),
            Column("retries", "int"),
            Column("retries per start", "number"),
        ),
        rows,
    )
    values = [
        {"operation": r[0], "outcome": name, "share": share, "order": i}
        for r in rows
        for i, (name, share) in enumerate(
            zip(("failed", "timed out", "cancelled"), r[2:5], strict=True)
        )
        if isinstance(share, float)
    ]
    spec = charts.stacked_bars(
        values,
        category="operation",
        series="outcome",
        value="share",
        value_title="share of ended operations",
        series_order=("failed", "timed out", "cancelled"),
        value_format=charts.SHARE_FORMAT,
    )
    return Chart(
        id="outcomes",
        title="Failed, timed out and cancelled operations",
        spec=spec,
        table=table,
        summary="Share of operations that failed, timed out or were cancelled",
    )


# --- failures -----------------------------------------------------------------------------


def failures(ctx: PageContext) -> Page:
    report = ctx.report("failures")
    result: FailureResult = report.data
    tables = {t.title: t for t in result.tables()}
    sections = [
        Section("Errors per scenario", [_scenario_errors_chart(result, tables)]),
        Section(
            "JavaScript errors",
            [_fingerprint_chart(result, tables)],
            intro="Grouped by fingerprint (a hash of the error's type and code location, never "
            "its message) and module.",
        ),
        Section(
            "HTTP errors and API time",
            [
                TableBlock("errors-by-route", tables["Errors by route"]),
                _api_chart(result, tables),
            ],
        ),
        Section("Web Vitals", [_vitals_chart(result, tables)]),
        Section(
            "Errors by kind and type", [TableBlock("errors-by-type", tables["Errors by type"])]
        ),
    ]
    return Page(
        slug="failures",
        question="What breaks, where, and how fast is the system for people?",
        owner=_owners_of_all(ctx),
        sections=sections,
        notes=notes_of(report.meta),
    )


def _owners_of_all(ctx: PageContext) -> str:
    owners = {spec.owner for spec in ctx.plan.events.values() if spec.owner}
    return ", ".join(sorted(owners)) or NO_OWNER


def _table_named(tables: dict[str, Table], prefix: str) -> Table:
    return next(t for title, t in tables.items() if title.startswith(prefix))


def _scenario_errors_chart(result: FailureResult, tables: dict[str, Table]) -> Chart:
    shares = [
        (s.scenario, s.with_error.value)
        for s in result.by_scenario
        if not s.hidden and s.with_error.value is not None
    ]
    return _share_chart(
        ShareChart(
            "scenario-errors",
            "Share of sessions with an error, per scenario",
            "Share of sessions of each scenario that met an error",
            "sessions with an error",
        ),
        shares,
        _table_named(tables, "Errors by scenario"),
    )


def _fingerprint_chart(result: FailureResult, tables: dict[str, Table]) -> Chart:
    rows = [c for c in result.by_fingerprint if c.group is None and not c.hidden and c.sessions]
    rows.sort(key=lambda c: -(c.sessions or 0))
    values = [
        {
            "error": f"{c.key.get('fingerprint')} · {c.key.get('module') or '?'}",
            "sessions": c.sessions,
        }
        for c in rows[:MAX_BARS]
    ]
    spec = charts.horizontal_bars(
        values,
        category="error",
        value="sessions",
        value_title="sessions affected",
        color=charts.BAD,
    )
    return Chart(
        id="fingerprints",
        title="JavaScript errors by sessions affected",
        spec=spec,
        table=_table_named(tables, "JavaScript errors"),
        summary="JavaScript error fingerprints ranked by sessions affected",
    )


def _api_chart(result: FailureResult, tables: dict[str, Table]) -> Chart:
    rows = [r for r in result.api if r.group is None and not r.hidden and r.duration.p95]
    rows.sort(key=lambda r: -(r.duration.p95 or 0))
    values = [
        {"route": r.route, "seconds": _seconds(r.duration.p95), "label": _fmt(r.duration.p95, "ms")}
        for r in rows[:MAX_BARS]
    ]
    spec = charts.horizontal_bars(
        values,
        category="route",
        value="seconds",
        value_title="p95 seconds",
        value_format=",.1f",
        label="label",
    )
    return Chart(
        id="api",
        title="API response time (p95) by route",
        spec=spec,
        table=_table_named(tables, "API response time"),
        summary="95th percentile API response time per route template",
    )


def _vitals_chart(result: FailureResult, tables: dict[str, Table]) -> Chart:
    ratings = ("good", "needs-improvement", "poor")
    values = [
        {
            "vital": f"{v.metric} · {v.screen_id}",
            "rating": rating,
            "share": v.ratings.get(rating, 0.0),
            "order": i,
        }
        for v in result.vitals
        if v.group is None and not v.hidden
        for i, rating in enumerate(ratings)
    ]
    spec = charts.stacked_bars(
        values,
        category="vital",
        series="rating",
        value="share",
        value_title="share of measurements",
        series_order=ratings,
        value_format=charts.SHARE_FORMAT,
    )
    spec["encoding"]["color"]["scale"]["range"] = [charts.GOOD, "#b45309", charts.BAD]
    return Chart(
        id="vitals",
        title="Web Vitals ratings per screen",
        spec=spec,
        table=_table_named(tables, "Web Vitals"),
        summary="Share of good, needs-improvement and poor Web Vitals measurements per screen",
    )


# --- compare ------------------------------------------------------------------------------

COMPARE_MODES: Final = {
    "versions": "two UI versions",
    "windows": "this period and the one before",
    "flag": "a feature flag on and off",
}
VERDICT_TONES: Final[dict[str, Tone]] = {"improved": "good", "regressed": "bad"}


def compare(ctx: PageContext) -> Page:
    scenarios = _scenario_choices(ctx)
    scenario = ctx.param("scenario", scenarios, next(iter(scenarios)))
    versions = ctx.inventory.ui_versions  # newest first
    default_mode = "versions" if len(versions) >= 2 else "windows"
    mode = ctx.param("mode", COMPARE_MODES, default_mode)
    arms, pickers = _compare_arms(ctx, mode)
    extra = {"scenario": scenario, "mode": mode} | {
        k: v for k, v in ctx.query.items() if k in ("a", "b", "flag_name") and v
    }
    report = ctx.report("compare", {"scenario": scenario, **arms})
    result: CompareResult = report.data
    rates, durations = result.tables()
    sections = [
        Section(
            "Verdict",
            [Callout(_verdict_text(result), VERDICT_TONES.get(result.overall, "neutral"))],
        ),
        Section(
            "Rates",
            [
                _difference_chart(
                    "rates",
                    metrics=_rate_metrics(result),
                    table=rates,
                    value_format=charts.SHARE_FORMAT,
                    title="difference, b − a",
                )
            ],
            intro="Differences (b − a) with simultaneous intervals (all hold together with "
            "95% confidence); a verdict needs the interval to exclude zero and the p-value, "
            "adjusted over every metric of the comparison, to be below alpha.",
        ),
        Section(
            "Step times",
            [
                _difference_chart(
                    "times",
                    metrics=_duration_metrics(result),
                    table=durations,
                    value_format=",.1f",
                    title="difference in seconds, b − a",
                    scale=0.001,
                )
            ],
        ),
    ]
    return Page(
        slug="compare",
        question=f"Did the change make {scenario.replace('_', ' ')} better or worse?",
        owner=_scenario_owner(ctx, scenario),
        sections=sections,
        notes=notes_of(report.meta),
        pickers=[
            Picker("scenario", "Scenario", _choices(scenarios), scenario),
            Picker("mode", "Compare", _choices(dict(COMPARE_MODES)), mode),
            *pickers,
        ],
        extra_params=extra,
    )


def _compare_arms(ctx: PageContext, mode: str) -> tuple[dict[str, str], list[Picker]]:
    """The compare report's arm parameters for a mode, and the mode's own pickers."""
    if mode == "windows":
        before = ctx.filters.shifted(-ctx.filters.days)
        now = ctx.filters
        return {
            "a.from": before.start.isoformat(),
            "a.to": before.end.isoformat(),
            "a.label": "previous period",
            "b.from": now.start.isoformat(),
            "b.to": now.end.isoformat(),
            "b.label": "this period",
        }, []
    if mode == "flag":
        flags = {f: f for f in ctx.inventory.flags}
        if not flags:
            raise PageParamError("no feature flag occurs in this period and environment")
        name = ctx.param("flag_name", flags, next(iter(flags)))
        arms = {
            "a.flag": f"!{name}",
            "a.label": f"{name} off",
            "b.flag": name,
            "b.label": f"{name} on",
        }
        return arms, [Picker("flag_name", "Flag", _choices(flags), name)]
    versions = {v: v for v in ctx.inventory.ui_versions}
    if len(versions) < 2:
        raise PageParamError("fewer than two UI versions occur in this period and environment")
    newest = list(versions)
    a = ctx.param("a", versions, newest[1])
    b = ctx.param("b", versions, newest[0])
    arms = {"a.ui_version": a, "a.label": a, "b.ui_version": b, "b.label": b}
    return arms, [
        Picker("a", "Before (a)", _choices(versions), a),
        Picker("b", "After (b)", _choices(versions), b),
    ]


def _verdict_text(result: CompareResult) -> str:
    counts = result.verdicts()
    parts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    a = result.a.started if result.a.started is not None else "fewer than k"
    b = result.b.started if result.b.started is not None else "fewer than k"
    return (
        f"{result.b.label} against {result.a.label}: {result.overall} "
        f"({parts}; {a} and {b} sessions started)."
    )


def _rate_metrics(result: CompareResult) -> list[MetricComparison]:
    return [m for m in result.metrics if not m.metric.startswith("step_p")]


def _duration_metrics(result: CompareResult) -> list[MetricComparison]:
    return [m for m in result.metrics if m.metric.startswith("step_p")]


METRIC_PHRASES: Final = {
    "step_conversion": "reached {}",
    "conversion": "{}",
    "field_error_share": "errors: {}",
    "operation_failure_rate": "{} failed",
    "session_error_rate": "sessions with {} errors",
    "step_p50": "median time to {}",
    "step_p95": "p95 time to {}",
}
"""How a compared metric reads on a chart's axis; the table view keeps the report's names."""


def _metric_label(metric: MetricComparison) -> str:
    """A short axis label that tells a metric from its neighbours. A field error's subject
    starts with its form (``service_request step 1 category required``), which every row of
    one scenario shares: the label keeps what differs (``errors: step 1 category required``).
    """
    subject = metric.subject.replace(" -> ", " → ")
    if metric.metric == "field_error_share" and " step " in subject:
        subject = subject.split(" ", 1)[1]
    return METRIC_PHRASES.get(metric.metric, metric.metric + " · {}").format(subject)


def _difference_chart(
    chart_id: str,
    *,
    metrics: Sequence[MetricComparison],
    table: Table,
    value_format: str,
    title: str,
    scale: float = 1.0,
) -> Chart:
    labels = [_metric_label(m) for m in metrics]
    if len(set(labels)) < len(labels):  # one label per row, or Vega draws two on one line
        labels = [f"{m.metric} · {m.subject}" for m in metrics]
    values = [
        {
            "metric": label,
            "diff": m.diff * scale,
            "low": m.ci_low * scale,
            "high": m.ci_high * scale,
            "tone": m.verdict,
        }
        for m, label in zip(metrics, labels, strict=True)
        if not m.hidden
        and None not in (m.diff, m.ci_low, m.ci_high)
        and m.diff is not None
        and m.ci_low is not None
        and m.ci_high is not None
    ]
    spec = charts.intervals(
        values,
        category="metric",
        value="diff",
        low="low",
        high="high",
        value_title=title,
        value_format=value_format,
        zero_rule=True,
        tones={IMPROVED: charts.GOOD, REGRESSED: charts.BAD, NO_CHANGE: charts.MUTED},
    )
    return Chart(
        id=chart_id,
        title="Differences with simultaneous intervals",
        spec=spec,
        table=table,
        summary="Difference between the two arms per metric with its interval",
    )


# --- usage and loops ----------------------------------------------------------------------


def usage(ctx: PageContext) -> Page:
    usage_report = ctx.report("usage")
    loops_report = ctx.report("loops")
    result: UsageResult = usage_report.data
    loops: LoopResult = loops_report.data
    screens = {"": "any screen"} | {screen: screen for screen in _screens_seen(loops)}
    start = ctx.param("from", screens, "")
    end = ctx.param("to", screens, "")
    between = {"start": start, "end": end} if start and end and start != end else {}
    paths_report = ctx.report("paths", between)
    usage_tables = result.tables()
    barely: list[tuple[str, Tone]] = [
        (f"{name} is barely used", "warning") for name in result.barely_used
    ]
    sections = [
        Section("Which features are used", [_features_chart(result, usage_tables[0])]),
        Section(
            f"Barely used (under {result.barely_used_share:.0%} of active sessions)",
            [BulletList(barely, empty="Every declared feature is used by enough sessions.")],
        ),
        Section(
            "Where people go round in circles",
            [_loops_chart(loops)],
            intro="Share of a screen's sessions that reopened it, or used back, cancel, close "
            "or retry on it.",
        ),
        _paths_section(paths_report.data),
    ]
    return Page(
        slug="usage",
        question="What do people use, how do they move, and where do they go round in circles?",
        owner=_owners_of_all(ctx),
        sections=sections,
        notes=notes_of(usage_report.meta, loops_report.meta, paths_report.meta),
        pickers=[
            Picker("from", "Paths from", _choices(screens), start),
            Picker("to", "to", _choices(screens), end),
        ],
        extra_params={"from": start, "to": end} if between else {},
    )


def _screens_seen(loops: LoopResult) -> list[str]:
    """The screens with enough sessions in the range to be shown, for the path pickers."""
    return sorted({s.screen_id for s in loops.screens if s.group is None and not s.hidden})


def _paths_section(result: PathsResult) -> Section:
    """The most frequent paths between the two picked screens, or, with none picked, the
    most frequent moves from one screen to the next."""
    if result.start is not None and result.end is not None:
        title = f"How people get from {result.start} to {result.end}"
        chart_title = "Sessions per path, most frequent first"
        intro = (
            f"Sessions that went from a view of {result.start} to the next view of "
            f"{result.end} at most {MAX_HOPS} screens later, by the screens in between "
            "(a session counts once per path)."
        )
        empty = f"No path from {result.start} to {result.end} had enough sessions to show."
    else:
        title = "How people move between screens"
        chart_title = "Sessions per move from one screen to the next, most frequent first"
        intro = (
            "Sessions that went from one screen straight to the next, most frequent first. "
            "Pick two screens above to see the paths between them."
        )
        empty = "No move between screens had enough sessions to show."
    table = result.paths_table(title)
    bars = [
        {"path": path, "sessions": sessions}
        for path, sessions in table.rows
        if isinstance(sessions, int) and sessions
    ][:MAX_BARS]
    if not bars:
        return Section(title, [Callout(empty, "info")], intro=intro)
    spec = charts.horizontal_bars(
        bars,
        category="path",
        value="sessions",
        value_title="sessions",
        label="sessions",
        label_limit=PATH_LABEL_LIMIT,
    )
    chart = Chart(
        id="paths",
        title=chart_title,
        spec=spec,
        table=table,
        summary=f"{title}: sessions per path, most first",
    )
    return Section(title, [chart], intro=intro)


def _features_chart(result: UsageResult, table: Table) -> Chart:
    rows = [f for f in result.features if f.group is None and not f.hidden]
    shares = [(f.feature, f.share.value) for f in rows if f.share.value is not None]
    shares.sort(key=lambda pair: -pair[1])
    return _share_chart(
        ShareChart(
            "features",
            "Share of active sessions using each feature",
            "Features ranked by the share of active sessions that used them",
            "share of active sessions",
        ),
        shares[: MAX_BARS * 2],
        table,
    )


def _loops_chart(result: LoopResult) -> Chart:
    """The largest shares of a screen's sessions that reopened it or used a kind of
    navigation on it (back, cancel, close, retry), one bar per screen and signal: a screen
    nobody leaves by back takes no room."""
    rows = [s for s in result.screens if s.group is None and not s.hidden]
    bars = [
        (f"{screen.screen_id} · {signal}", share)
        for screen in rows
        for signal, share in _loop_shares(screen)
        if share
    ]
    bars.sort(key=lambda bar: (-bar[1], bar[0]))
    return _share_chart(
        ShareChart(
            "loops",
            "Screens people reopen or leave by back, cancel, close or retry",
            "The largest shares of a screen's sessions that reopened it or used back, cancel, "
            "close or retry on it",
            "share of the screen's sessions",
        ),
        bars[:MAX_BARS],
        result.tables()[0],
    )


def _loop_shares(screen: ScreenLoops) -> list[tuple[str, float | None]]:
    """(signal, share of the screen's sessions): ``reopened``, then each navigation kind."""
    navigation = [
        (kind, use.sessions.value if (use := screen.navigation.get(kind)) else None)
        for kind in NAVIGATION_KINDS
    ]
    return [("reopened", screen.reopened.value), *navigation]


@dataclass(frozen=True, slots=True)
class ShareChart:
    """What a chart of one share per row says about itself."""

    id: str
    title: str
    summary: str
    value_title: str


def _share_chart(chart: ShareChart, shares: Sequence[tuple[str, float]], table: Table) -> Chart:
    """Horizontal bars of a share per row (in the order given), each labelled with its value."""
    values = [{"row": row, "share": share, "label": _fmt(share, "share")} for row, share in shares]
    spec = charts.horizontal_bars(
        values,
        category="row",
        value="share",
        value_title=chart.value_title,
        value_format=charts.SHARE_FORMAT,
        label="label",
    )
    return Chart(id=chart.id, title=chart.title, spec=spec, table=table, summary=chart.summary)


# --- data health --------------------------------------------------------------------------


def health(ctx: PageContext) -> Page:
    report = ctx.report("health")
    result: HealthResult = report.data
    tables = {t.title: t for t in result.tables()}
    sections = [
        *([Section("Pipeline now", [_pipeline_facts(ctx.pipeline)])] if ctx.pipeline else []),
        Section("Events per day", [_volume_chart(result, tables)]),
        Section(
            "Refused and redacted",
            [
                TableBlock(_slug(title), table)
                for title, table in tables.items()
                if title.lower().startswith(("rejected", "refused", "redact", "quarantine"))
            ],
            intro="Counts by reason code and field path only: what was refused is never kept.",
        ),
        Section(
            "Pipeline checks",
            [
                TableBlock(_slug(title), table)
                for title, table in tables.items()
                if not title.lower().startswith(
                    ("rejected", "refused", "redact", "quarantine", "events per day", "volume")
                )
            ],
        ),
    ]
    return Page(
        slug="health",
        question="Can we trust this week's numbers?",
        owner="the team that runs stumble",
        sections=sections,
        notes=notes_of(report.meta),
    )


def _pipeline_facts(pipeline: PipelineStatus) -> Facts:
    waiting = pipeline.oldest_sealed_age_s
    backlog = f"{pipeline.sealed_segments} segments, {pipeline.unloaded_bytes / 1_048_576:.1f} MB"
    return Facts(
        [
            ("loader", "running" if pipeline.loader_alive else "STOPPED"),
            ("segments loaded since start", f"{pipeline.segments_loaded:,}"),
            ("rows loaded since start", f"{pipeline.rows_loaded:,}"),
            ("duplicates dropped", f"{pipeline.duplicates_dropped:,}"),
            ("waiting to load", backlog),
            ("oldest waiting", "nothing waits" if waiting is None else f"{waiting:.0f} s"),
            ("last loader error", pipeline.last_error or "none"),
        ]
    )


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _volume_chart(result: HealthResult, tables: dict[str, Table]) -> Chart:
    values = [
        {"day": d.day.isoformat(), "events": d.events, "environment": d.environment}
        for d in result.per_day
    ]
    spec = charts.trend(
        values, x="day", y="events", y_title="events", y_format=",.0f", series="environment"
    )
    volume = next(iter(tables.values()))
    return Chart(
        id="volume",
        title="Events stored per day",
        spec=spec,
        table=volume,
        summary="Events stored per day and environment",
    )


PageBuilder = Callable[[PageContext], Page]
REPORT_PAGES: Final[dict[str, PageBuilder]] = {
    "overview": overview,
    "funnel": funnel,
    "forms": forms,
    "operations": operations,
    "failures": failures,
    "compare": compare,
    "usage": usage,
    "health": health,
}
"""Every page built from the reports, by slug."""
