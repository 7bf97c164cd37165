"""Report 8, top problems: one list, ranked by impact, each with a finding and an action.

What counts as a problem is the tracking plan's business: each scenario's ``thresholds``
(minimum conversion, maximum drop-off per step, maximum field-error share, maximum step and
operation p95, maximum error rate). A metric beyond its threshold becomes a problem; so does
any metric that a comparison of the two most recent ui_versions judges *regressed* (a p95
that jumps after a release points at that release and that step).

Impact = sessions affected x severity, where severity = the kind's weight (``WEIGHTS``: a
lost session weighs more than a slow one) x how far the metric is beyond its threshold
(capped at ``MAX_EXCEEDANCE`` so one extreme metric cannot drown the list). Sessions affected
are the sessions the problem touched: those with the error, those that dropped, those slower
than the limit. Every number comes from the suppressed reports, so a problem never describes
fewer than k sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeVar

import msgspec

from stumble.analytics.common import fetch
from stumble.analytics.compare import MetricComparison, collect_versions, judge_arms
from stumble.analytics.failures import FailureResult, run_failures
from stumble.analytics.field_errors import FieldErrorResult, run_field_errors
from stumble.analytics.funnels import FunnelGroup, run_funnel
from stumble.analytics.queries import (
    FailureQuery,
    FieldErrorQuery,
    FormSpec,
    FunnelQuery,
    ScenarioSpec,
    Scope,
    TimingQuery,
    all_scenarios,
    form_entries,
    form_specs,
)
from stumble.analytics.results import Column, Report, Sampling, Table, meta_for
from stumble.analytics.rollup_cells import Family
from stumble.analytics.rollup_read import (
    CombinedSource,
    rollup_slice,
    sharing_cells,
    volume_covers,
)
from stumble.analytics.sql import Sql, dialect_for, param, render, scope_filter
from stumble.analytics.timings import TimingResult, run_timings, slow_sessions
from stumble.plan.model import TrackingPlan
from stumble.reports import actions
from stumble.storage.base import EventStore

WEIGHTS: Final[dict[str, float]] = {
    "drop_off": 1.0,
    "conversion": 0.5,  # its lost sessions are the drop-offs again, counted once more
    "field_error": 0.6,
    "error_rate": 0.8,
    "regression": 0.7,
    "slow_step": 0.4,
    "slow_operation": 0.4,
}
MAX_EXCEEDANCE: Final = 2.0
ResultT = TypeVar("ResultT")
DEFAULT_LIMIT: Final = 10


@dataclass(frozen=True, slots=True)
class TopProblemsQuery:
    scope: Scope
    scenarios: tuple[ScenarioSpec, ...]
    forms: tuple[FormSpec, ...]
    form_scenarios: tuple[tuple[str, str], ...]
    """(form_id, scenario name): whose ``max_field_error_share`` judges the form."""
    limit: int = DEFAULT_LIMIT
    check_releases: bool = True
    """Compare the two most recent ui_versions and report what regressed."""

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, scope: Scope, limit: int = DEFAULT_LIMIT
    ) -> TopProblemsQuery:
        scenarios = all_scenarios(plan)
        owners: dict[str, str] = {}
        entries = form_entries(plan)
        for scenario in scenarios:
            for step in scenario.steps:
                form_id = dict(step.where).get("form_id")
                if isinstance(form_id, str) and form_id in entries:
                    owners.setdefault(form_id, scenario.name)
            if scenario.form_id:
                owners.setdefault(scenario.form_id, scenario.name)
        return cls(
            scope=Scope(scope.time, scope.filters),
            scenarios=scenarios,
            forms=form_specs(plan),
            form_scenarios=tuple(sorted(owners.items())),
            limit=limit,
        )


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    rank: int = 0
    kind: str
    scenario: str | None
    subject: str
    sessions_affected: int
    severity: float
    impact: float
    value: float | None = None
    threshold: float | None = None
    finding: str
    action: str


class TopProblemsResult(msgspec.Struct, frozen=True, kw_only=True):
    problems: list[Problem]
    considered: int
    """Problems found before the list was cut to its limit."""

    def tables(self) -> list[Table]:
        columns = (
            Column("#", "int"),
            Column("problem"),
            Column("sessions", "int"),
            Column("impact", "number"),
            Column("finding"),
            Column("suggested action"),
        )
        rows = [
            (
                p.rank,
                f"{p.kind}: {p.subject}",
                p.sessions_affected,
                round(p.impact, 1),
                p.finding,
                p.action,
            )
            for p in self.problems
        ]
        note = f"{self.considered} problems found; impact = sessions affected x severity"
        return [Table("Top problems", columns, rows, note)]


def severity(kind: str, exceedance: float) -> float:
    return WEIGHTS[kind] * min(MAX_EXCEEDANCE, max(1.0, exceedance))


def _problem(
    kind: str,
    *,
    scenario: str | None,
    subject: str,
    sessions: int,
    exceedance: float,
    value: float | None,
    threshold: float | None,
    finding: str,
    action: str,
) -> Problem:
    weight = severity(kind, exceedance)
    return Problem(
        kind=kind,
        scenario=scenario,
        subject=subject,
        sessions_affected=sessions,
        severity=round(weight, 4),
        impact=sessions * weight,
        value=value,
        threshold=threshold,
        finding=finding,
        action=action,
    )


# --- finders ------------------------------------------------------------------------------


class _Finder:
    """Runs the reports once and turns what exceeds a threshold into problems."""

    def __init__(self, store: EventStore, query: TopProblemsQuery, k: int) -> None:
        self.store = store
        self.query = query
        self.k = k
        self.sources: set[str] = set()
        self.rates: set[float] = set()
        self.field_errors: FieldErrorResult = self._read(
            run_field_errors(store, FieldErrorQuery(query.scope, query.forms), min_group_size=k)
        )
        judged = tuple(
            sorted(
                {
                    s.operation
                    for s in query.scenarios
                    if s.operation and s.thresholds.max_operation_p95_ms is not None
                }
            )
        )
        self.timing_query = TimingQuery(query.scope, judged)
        self.timings: TimingResult | None = (
            self._read(run_timings(store, self.timing_query, min_group_size=k)) if judged else None
        )

    def _read(self, report: Report[ResultT]) -> ResultT:
        """A report's data, noting where it came from (raw rows or rollups) and the sample
        rates it counted (what the list as a whole is estimated from)."""
        self.sources.add(report.meta.source)
        self.rates.update(report.meta.sample_rates)
        return report.data

    def sampling(self) -> Sampling:
        return Sampling(tuple(sorted(self.rates)))

    def source(self) -> CombinedSource:
        return CombinedSource.of(self.sources)

    def all(self) -> list[Problem]:
        problems = self.field_error_problems()
        for scenario in self.query.scenarios:
            problems += self.funnel_problems(scenario)
            problems += self.operation_problems(scenario)
        problems += self.error_rate_problems()
        if self.query.check_releases:
            problems += self.regressions()
        return problems

    def _scenario(self, name: str) -> ScenarioSpec | None:
        return next((s for s in self.query.scenarios if s.name == name), None)

    def field_error_problems(self) -> list[Problem]:
        owners = dict(self.query.form_scenarios)
        problems = []
        for row in self.field_errors.errors:
            scenario = self._scenario(owners.get(row.form_id, ""))
            limit = scenario.thresholds.max_field_error_share if scenario else None
            value = row.share.value
            if limit is None or row.group is not None or row.hidden or value is None:
                continue
            if value <= limit:
                continue
            problems.append(
                _problem(
                    "field_error",
                    scenario=scenario.name if scenario else None,
                    subject=f"{row.field_id} ({row.error_type}) on {row.form_id} step {row.step}",
                    sessions=row.sessions or 0,
                    exceedance=value / limit if limit else MAX_EXCEEDANCE,
                    value=value,
                    threshold=limit,
                    finding=actions.field_error_finding(
                        form_id=row.form_id,
                        step=row.step,
                        field_id=row.field_id,
                        error_type=row.error_type,
                        value=value,
                        threshold=limit,
                        sessions=row.sessions or 0,
                        attempts=row.attempts_median,
                        time_with=row.time_with_error.p50,
                        time_without=row.time_without_error.p50,
                    ),
                    action=actions.field_error_action(row.field_id, row.error_type),
                )
            )
        return problems

    def funnel_problems(self, scenario: ScenarioSpec) -> list[Problem]:
        limits = scenario.thresholds
        funnel = FunnelQuery(self.query.scope, scenario, limits.max_step_p95_ms)
        total = self._read(run_funnel(self.store, funnel, min_group_size=self.k)).total()
        problems = self._drop_offs(scenario, total) + self._conversion(scenario, total)
        if limits.max_step_p95_ms is not None:
            problems += self._slow_steps(scenario, total, limits.max_step_p95_ms)
        return problems

    def _drop_offs(self, scenario: ScenarioSpec, total: FunnelGroup) -> list[Problem]:
        limit = scenario.thresholds.max_step_drop_off
        if limit is None:
            return []
        problems = []
        for i, step in enumerate(total.steps[1:], start=1):
            value = step.drop_off_share
            if value is None or step.drop_off is None or value <= limit:
                continue
            previous = total.steps[i - 1].label
            problems.append(
                _problem(
                    "drop_off",
                    scenario=scenario.name,
                    subject=f"{previous} -> {step.label} in {scenario.name}",
                    sessions=step.drop_off,
                    exceedance=value / limit if limit else MAX_EXCEEDANCE,
                    value=value,
                    threshold=limit,
                    finding=actions.drop_off_finding(
                        scenario=scenario.name,
                        previous=previous,
                        step=step.label,
                        value=value,
                        threshold=limit,
                        sessions=step.drop_off,
                    ),
                    action=actions.drop_off_action(step.label, self._top_error(scenario, i)),
                )
            )
        return problems

    def _top_error(self, scenario: ScenarioSpec, step_index: int) -> str | None:
        """The most frequent field error of the form step a funnel step completes."""
        where = dict(scenario.steps[step_index].where)
        form_id, step = where.get("form_id"), where.get("step")
        candidates = [
            row
            for row in self.field_errors.errors
            if row.group is None
            and not row.hidden
            and row.form_id == form_id
            and (step is None or row.step == step)
        ]
        if not candidates:
            return None
        top = max(candidates, key=lambda row: row.share.value or 0.0)
        return f"the {top.error_type} error on {top.field_id}"

    def _conversion(self, scenario: ScenarioSpec, total: FunnelGroup) -> list[Problem]:
        limit = scenario.thresholds.min_conversion
        value = total.conversion.value
        started, finished = total.steps[0].sessions, total.steps[-1].sessions
        if limit is None or value is None or started is None or finished is None:
            return []
        if value >= limit:
            return []
        losses = [(s.drop_off or 0, s.label) for s in total.steps[1:]]
        worst = max(losses)[1] if losses else None
        return [
            _problem(
                "conversion",
                scenario=scenario.name,
                subject=f"conversion of {scenario.name}",
                sessions=started - finished,
                exceedance=limit / value if value else MAX_EXCEEDANCE,
                value=value,
                threshold=limit,
                finding=actions.conversion_finding(
                    scenario=scenario.name, value=value, threshold=limit, lost=started - finished
                ),
                action=actions.conversion_action(worst),
            )
        ]

    def _slow_steps(
        self, scenario: ScenarioSpec, total: FunnelGroup, limit: float
    ) -> list[Problem]:
        problems = []
        for step in total.steps[1:]:
            p95 = step.time_from_previous.p95
            slow = step.slower_than_limit
            if p95 is None or p95 <= limit or slow is None:
                continue
            problems.append(
                _problem(
                    "slow_step",
                    scenario=scenario.name,
                    subject=f"time to {step.label} in {scenario.name}",
                    sessions=slow,
                    exceedance=p95 / limit,
                    value=p95,
                    threshold=limit,
                    finding=actions.slow_step_finding(
                        scenario=scenario.name,
                        step=step.label,
                        p95=p95,
                        threshold=limit,
                        sessions=slow,
                    ),
                    action=actions.slow_step_action(step.label),
                )
            )
        return problems

    def operation_problems(self, scenario: ScenarioSpec) -> list[Problem]:
        limit = scenario.thresholds.max_operation_p95_ms
        operation = scenario.operation
        if limit is None or operation is None:
            return []
        timings = self.timings
        if timings is None:
            return []
        row = timings.operation(operation)
        p95 = row.duration_success.p95 if row is not None else None
        if row is None or row.hidden or p95 is None or p95 <= limit:
            return []
        slow = slow_sessions(self.store, self.timing_query, limit).get(operation, 0)
        if slow < self.k:
            return []
        server = timings.phase(operation, "server_wait")
        server_share = server.share_of_time if server is not None else None
        return [
            _problem(
                "slow_operation",
                scenario=scenario.name,
                subject=f"{operation} operation",
                sessions=slow,
                exceedance=p95 / limit,
                value=p95,
                threshold=limit,
                finding=actions.slow_operation_finding(
                    operation=operation,
                    p95=p95,
                    threshold=limit,
                    sessions=slow,
                    server_share=server_share,
                ),
                action=actions.slow_operation_action(operation, server_share),
            )
        ]

    def error_rate_problems(self) -> list[Problem]:
        judged = [s for s in self.query.scenarios if s.thresholds.max_error_rate is not None]
        if not judged:
            return []
        # Every scenario, as the failures report counts them (and as its rollups are built):
        # an error belongs to the scenario the session was in, judged or not.
        failures = self._read(
            run_failures(
                self.store,
                FailureQuery(self.query.scope, self.query.scenarios),
                min_group_size=self.k,
            )
        )
        problems = []
        for scenario in judged:
            row = failures.scenario(scenario.name)
            limit = scenario.thresholds.max_error_rate
            if row is None or row.hidden or limit is None or row.started is None:
                continue
            value = row.with_error.value
            if value is None or value <= limit:
                continue
            sessions = round(value * row.started)
            kinds = sorted(
                ((share.value or 0.0, kind) for kind, share in row.by_kind.items()), reverse=True
            )
            listed = ", ".join(f"{kind} {actions.share(v)}" for v, kind in kinds if v)
            top = _top_failure(failures, kinds[0][1]) if kinds else None
            problems.append(
                _problem(
                    "error_rate",
                    scenario=scenario.name,
                    subject=f"errors in {scenario.name}",
                    sessions=sessions,
                    exceedance=value / limit if limit else MAX_EXCEEDANCE,
                    value=value,
                    threshold=limit,
                    finding=actions.error_rate_finding(
                        scenario=scenario.name,
                        value=value,
                        threshold=limit,
                        sessions=sessions,
                        kinds=f" ({listed})" if listed else "",
                    ),
                    action=actions.error_rate_action(top),
                )
            )
        return problems

    def regressions(self) -> list[Problem]:
        """Every metric that got worse from the previous ui_version to the latest, judged
        together (one family, so the more metrics, the stronger each verdict must be)."""
        versions = self._latest_versions()
        if versions is None:
            return []
        previous, latest = versions
        arms = collect_versions(
            self.store,
            self.query.scope,
            versions,
            self.query.scenarios,
            self.query.forms,
            name_scenarios=True,
        )
        metrics = judge_arms(*arms, k=self.k, alpha=0.05, n_resamples=1000)
        return [
            _regression(metric, previous, latest)
            for metric in metrics
            if metric.verdict == "regressed" and metric.a is not None and metric.b is not None
        ]

    def _latest_versions(self) -> tuple[str, str] | None:
        """The two ui_versions seen most recently first, each with at least k sessions."""
        rows = fetch(self.store, self._versions_sql())
        versions = [r["ui_version"] for r in rows if int(r["sessions"]) >= self.k]
        return (versions[-2], versions[-1]) if len(versions) >= 2 else None

    def _versions_sql(self) -> Sql:
        """ui_versions by first appearance: from the daily volume cells when they answer
        (first day seen, then name), else from raw rows (first event)."""
        scope = self.query.scope
        chosen, _ = rollup_slice(scope)
        environment = scope.filters.environment
        if (
            chosen is not None
            and chosen.dim == ""
            and volume_covers(self.store, environment, chosen.first_day, chosen.last_day)
        ):
            return render(
                "SELECT dim_value AS ui_version, min(day) AS first_seen, "
                "sum(sessions) AS sessions FROM rollups WHERE family = {family} "
                "AND environment = {env} AND dim = 'ui_version' AND day BETWEEN {a} AND {b} "
                "GROUP BY dim_value ORDER BY first_seen, ui_version",
                family=param(str(Family.VOLUME)),
                env=param(environment),
                a=param(chosen.first_day),
                b=param(chosen.last_day),
            )
        return render(
            "SELECT ui_version, min(ts) AS first_seen, count(DISTINCT session_id) AS sessions "
            "FROM events WHERE {scope} GROUP BY ui_version ORDER BY first_seen",
            scope=scope_filter(scope, dialect_for(self.store.dialect)),
        )


def _top_failure(failures: FailureResult, kind: str) -> str:
    """The most frequent concrete failure of a kind: a JS fingerprint or a route."""
    if kind == "js":
        rows = [r for r in failures.by_fingerprint if r.group is None and not r.hidden]
        if rows:
            top = max(rows, key=lambda r: r.sessions or 0)
            return (
                f"the {top.key.get('error_type')} in module {top.key.get('module')} "
                f"(fingerprint {top.key.get('fingerprint')}, {top.sessions} sessions)"
            )
    routes = [
        r
        for r in failures.by_route
        if r.group is None and not r.hidden and r.key.get("error_kind") == kind
    ]
    if routes:
        top = max(routes, key=lambda r: r.sessions or 0)
        return f"the {kind} errors of {top.key.get('route')} ({top.sessions} sessions)"
    return f"the {kind} errors"


def _regression(metric: MetricComparison, previous: str, latest: str) -> Problem:
    assert metric.a is not None
    assert metric.b is not None
    is_duration = metric.metric.startswith("step_p")
    show = actions.duration if is_duration else actions.share
    if metric.higher_is_better:
        exceedance = metric.a / metric.b if metric.b else MAX_EXCEEDANCE
    else:
        exceedance = metric.b / metric.a if metric.a else MAX_EXCEEDANCE
    sessions = metric.n_b or 0
    if not is_duration and metric.n_b:
        # For a rate, the sessions the change touched, not everyone who could have been.
        sessions = round(abs(metric.b - metric.a) * metric.n_b)
    scenario, _, _ = metric.subject.partition(": ")
    return _problem(
        "regression",
        scenario=scenario if metric.metric.startswith(("step_", "conversion")) else None,
        subject=f"{metric.metric} of {metric.subject} after {latest}",
        sessions=sessions,
        exceedance=exceedance,
        value=metric.b,
        threshold=metric.a,
        finding=actions.regression_finding(
            metric=metric.metric,
            subject=metric.subject,
            before=show(metric.a),
            after=show(metric.b),
            version=latest,
            previous=previous,
        ),
        action=actions.regression_action(latest, metric.subject),
    )


def run_top_problems(
    store: EventStore, query: TopProblemsQuery, *, min_group_size: int = 5
) -> Report[TopProblemsResult]:
    with sharing_cells():
        finder = _Finder(store, query, max(min_group_size, 1))
        found = finder.all()
    ranked = sorted(found, key=lambda p: (-p.impact, p.kind, p.subject))
    problems = [
        msgspec.structs.replace(problem, rank=rank)
        for rank, problem in enumerate(ranked[: query.limit], start=1)
    ]
    meta = meta_for(
        "top-problems",
        time=query.scope.time,
        scope=query.scope,
        sampling=finder.sampling(),
        min_group_size=min_group_size,
        hidden=0,
        notes=[
            (
                "a problem is a metric beyond its scenario's threshold in the tracking plan, "
                "or a regression between the two most recent ui_versions"
            ),
            "impact = sessions affected x severity (kind weight x how far past the threshold)",
            finder.source().note,
        ],
        source=finder.source().source,
    )
    return Report(meta=meta, data=TopProblemsResult(problems=problems, considered=len(found)))
