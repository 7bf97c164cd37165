"""Report 7, compare: did the change make things better? Arm ``a`` is before, ``b`` after.

Metrics, each with the difference (b - a), an interval, a test and a verdict:

* conversion from each funnel step to the next, and overall (two-proportion z test, Newcombe
  interval; higher is better);
* p50 and p95 of the time between steps (percentile bootstrap of the difference; p50 is also
  tested with Mann-Whitney U; lower is better);
* the share of sessions entering a form step that hit each field error (two-proportion;
  lower is better);
* error rates normalised by exposure, so reaching a step more often is not mistaken for a
  regression: failed or timed-out operations per ended operation, and sessions with a JS,
  network or unavailable error per active session (two-proportion; lower is better).

Many metrics are judged at once, so the verdicts control the family-wise error rate, and the
intervals shown are the ones judged: *simultaneous* intervals (Bonferroni: each at confidence
1 - alpha/m for m metrics, so all of them cover together with probability 1 - alpha), and
Holm-adjusted p-values. A change counts when its interval excludes zero and, where a test
runs, its adjusted p is below alpha; since Holm never adjusts more than Bonferroni, an
interval that excludes zero all but always comes with a significant test (unadjusted 95%
intervals next to Holm p-values used to show rows whose interval excluded zero as "no
significant change"). An A/A split says "no significant change" everywhere with probability
at least 1 - alpha. A metric with fewer than k sessions in either arm is hidden, as any small
cell is.

Warnings (``CompareResult.warnings``): windows of different lengths (counts then differ for
that reason alone; rates stay comparable), and arms whose audiences differ (the mix of roles,
divisions, devices, browsers or regions among the sessions that started the scenario moved by
``AUDIENCE_SHIFT`` or more): a change may come from who used it, not from what changed.

``overall`` is "improved" when some metric improved and none regressed, "regressed" in the
mirror case, "mixed" when both happened, else "no significant change".
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

import msgspec

from stumble.analytics import sketch
from stumble.analytics.common import Row, dialect_of, fetch, merge_sampling, sampling_of
from stumble.analytics.field_errors import field_error_rows
from stumble.analytics.funnels import step_durations_sql
from stumble.analytics.queries import (
    Arm,
    CompareQuery,
    FieldErrorQuery,
    FormSpec,
    FunnelQuery,
    ScenarioSpec,
    Scope,
    TimeRange,
    TimingQuery,
)
from stumble.analytics.results import Column, Format, Report, Sampling, Table, at_least, meta_for
from stumble.analytics.rollup_cells import SESSION_ERROR_KINDS, Family, definition_hash
from stumble.analytics.rollup_read import (
    CellKey,
    CombinedSource,
    MergedCell,
    RollupSlice,
    SourceAsked,
    choose_source,
    groups_of,
    merged_cells,
    raw_asked,
    rollup_sampling,
    rollup_slice,
    volume_covers,
)
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    dimension_expr,
    render,
    scope_filter,
    step_condition,
)
from stumble.analytics.stats import (
    IMPROVED,
    NO_CHANGE,
    REGRESSED,
    QuantileStat,
    Verdict,
    bootstrap_diff_ci,
    holm_adjust,
    mann_whitney_u,
    two_proportion_test,
    verdict,
)
from stumble.analytics.timings import timing_rows
from stumble.storage.base import EventStore

Overall = Literal["improved", "regressed", "mixed", "no significant change"]
FUNNEL_METRICS: Final = ("step_conversion", "conversion")
AUDIENCE_SHIFT: Final = 0.10
"""Total variation distance between the arms' mixes of one context dimension that warns."""
WINDOW_RATIO: Final = 1.01


class ArmSummary(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    description: str
    started: int | None
    """Sessions that started the scenario (None: fewer than k)."""


class MetricComparison(msgspec.Struct, frozen=True, kw_only=True):
    metric: str
    subject: str
    higher_is_better: bool
    test: str
    hidden: bool = False
    a: float | None = None
    b: float | None = None
    n_a: int | None = None
    n_b: int | None = None
    diff: float | None = None
    """b - a (after minus before)."""
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    """Holm-adjusted over every tested metric of the comparison."""
    verdict: Verdict = NO_CHANGE
    confidence: float | None = None
    """The level of ``ci_low``/``ci_high`` alone: 1 - alpha/m (simultaneous over m metrics)."""


class CompareResult(msgspec.Struct, frozen=True, kw_only=True):
    scenario: str
    a: ArmSummary
    b: ArmSummary
    alpha: float
    metrics: list[MetricComparison]
    overall: Overall
    warnings: list[str] = []
    """Why the two arms may not be comparable (window lengths, audiences)."""

    def metric(self, metric: str, subject: str) -> MetricComparison | None:
        return next((m for m in self.metrics if (m.metric, m.subject) == (metric, subject)), None)

    def verdicts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.metrics:
            counts[m.verdict] = counts.get(m.verdict, 0) + 1
        return counts

    def tables(self) -> list[Table]:
        def started(arm: ArmSummary) -> str:
            return "fewer than k" if arm.started is None else str(arm.started)

        title = (
            f"Compare {self.scenario}: {self.a.label} ({started(self.a)} sessions) -> "
            f"{self.b.label} ({started(self.b)} sessions): {self.overall}"
        )
        rates = [m for m in self.metrics if not m.metric.startswith("step_p")]
        durations = [m for m in self.metrics if m.metric.startswith("step_p")]
        return [
            Table(title, self._columns("share"), self._rows(rates), self._note()),
            Table("Step times", self._columns("ms"), self._rows(durations), self._note()),
        ]

    def _columns(self, value_format: Format) -> tuple[Column, ...]:
        return (
            Column("metric"),
            Column("subject"),
            Column(self.a.label, value_format),
            Column(self.b.label, value_format),
            Column("diff", value_format),
            Column("low", value_format),
            Column("high", value_format),
            Column("p (adj.)", "p"),
            Column("verdict"),
        )

    def _note(self) -> str:
        notes = [
            f"diff = b - a; low/high: simultaneous {1 - self.alpha:.0%} intervals",
            *self.warnings,
        ]
        return "; ".join(notes)

    @staticmethod
    def _rows(metrics: list[MetricComparison]) -> list[tuple[object, ...]]:
        return [
            (
                m.metric,
                m.subject,
                *(
                    ("hidden", None, None, None, None, None)
                    if m.hidden
                    else (m.a, m.b, m.diff, m.ci_low, m.ci_high, m.p_adjusted)
                ),
                m.verdict,
            )
            for m in metrics
        ]


# --- collecting each arm ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rate:
    successes: int
    trials: int


@dataclass(slots=True)
class ArmData:
    """What one arm measured: sessions started per scenario, rates and step durations."""

    started: dict[str, int]
    rates: dict[tuple[str, str], _Rate]
    durations: dict[str, Sequence[float]]
    """Step subject -> the time from the previous step, per session that reached it (a
    counted sample when read from rollups)."""
    sources: set[str] = field(default_factory=set)
    """Where its parts came from: ``raw``, ``rollups`` or both."""


def collect_arm(
    store: EventStore,
    scope: Scope,
    scenarios: Sequence[ScenarioSpec],
    forms: Sequence[FormSpec],
    *,
    name_scenarios: bool = False,
    source: SourceAsked = "auto",
) -> ArmData:
    """Everything the comparison needs from one arm; with ``name_scenarios`` the funnel
    subjects are prefixed with the scenario (several scenarios judged together)."""
    arms = _collect(store, replace(scope, by=None), scenarios, forms, name_scenarios, source=source)
    return arms.get(None) or ArmData(started={}, rates={}, durations={})


def collect_versions(
    store: EventStore,
    scope: Scope,
    versions: tuple[str, str],
    scenarios: Sequence[ScenarioSpec],
    forms: Sequence[FormSpec],
    *,
    name_scenarios: bool = False,
    source: SourceAsked = "auto",
) -> tuple[ArmData, ArmData]:
    """Both arms of a ui_version comparison from one pass over the events: each query runs
    once, broken down by ui_version, instead of once per arm."""
    split = Scope(scope.time, replace(scope.filters, ui_version=versions), by="ui_version")
    arms = _collect(store, split, scenarios, forms, name_scenarios, source=source)
    empty = ArmData(started={}, rates={}, durations={})
    return arms.get(versions[0], empty), arms.get(versions[1], empty)


def _collect(
    store: EventStore,
    scope: Scope,
    scenarios: Sequence[ScenarioSpec],
    forms: Sequence[FormSpec],
    name_scenarios: bool,
    *,
    source: SourceAsked = "auto",
) -> dict[str | None, ArmData]:
    """Arm data per breakdown group of ``scope`` (the key None when it has no breakdown).
    Each part reads daily rollups when they answer it (``rollup_read``), both arms alike."""
    dialect = dialect_of(store)
    used: set[str] = set()
    arms: defaultdict[str | None, ArmData] = defaultdict(
        lambda: ArmData(started={}, rates={}, durations={})
    )
    for scenario in scenarios:
        prefix = f"{scenario.name}: " if name_scenarios else ""
        funnel = FunnelQuery(scope, scenario)
        choice = choose_source(
            store,
            scope,
            family=Family.FUNNEL,
            key=scenario.name,
            definition=definition_hash(scenario),
            needs_raw=raw_asked(source),
        )
        if choice.slice is not None:
            _rolled_funnel_metrics(store, funnel, choice.slice, prefix, arms)
        else:
            _funnel_metrics(store, dialect, funnel, prefix, arms)
        used.add(choice.source)
    if forms:
        used.add(_field_error_rates(store, FieldErrorQuery(scope, tuple(forms)), arms, source))
    used.add(_operation_failure_rates(store, scope, arms, source))
    used.add(_session_error_rates(store, dialect, scope, arms, source))
    for arm in arms.values():
        arm.sources |= used
    return dict(arms)


def _group(row: Row, scope: Scope) -> str | None:
    return None if scope.by is None else row["grp"]


def _funnel_metrics(
    store: EventStore,
    dialect: SqlDialect,
    funnel: FunnelQuery,
    prefix: str,
    arms: defaultdict[str | None, ArmData],
) -> None:
    labels = [step.label for step in funnel.scenario.steps]
    for row in fetch(store, step_durations_sql(funnel, dialect)):
        arm = arms[_group(row, funnel.scope)]
        reached = [int(row[f"n{i}"]) for i in range(len(labels))]
        arm.started[funnel.scenario.name] = reached[0]
        for i in range(1, len(labels)):
            arm.rates["step_conversion", prefix + labels[i]] = _Rate(reached[i], reached[i - 1])
            arm.durations[prefix + labels[i]] = [float(d) for d in row[f"d{i}"]]
        if len(labels) > 1:
            subject = f"{prefix}{labels[0]} -> {labels[-1]}"
            arm.rates["conversion", subject] = _Rate(reached[-1], reached[0])


def _rolled_funnel_metrics(
    store: EventStore,
    funnel: FunnelQuery,
    chosen: RollupSlice,
    prefix: str,
    arms: defaultdict[str | None, ArmData],
) -> None:
    """``_funnel_metrics`` from daily rollups: durations as counted samples of the sketch."""
    scenario = funnel.scenario
    cells = merged_cells(
        store,
        funnel.scope.filters.environment,
        chosen,
        Family.FUNNEL,
        k1=scenario.name,
        k3=definition_hash(scenario),
    )
    keys = (scenario.name, None, definition_hash(scenario), None)
    labels = [step.label for step in scenario.steps]
    for is_total, group in groups_of(cells):
        if is_total != (funnel.scope.by is None):
            continue
        steps = [
            cells.get(CellKey(group, is_total, keys, str(i))) or MergedCell()
            for i in range(len(labels))
        ]
        arm = arms[group]
        arm.started[scenario.name] = steps[0].sessions
        for i in range(1, len(labels)):
            arm.rates["step_conversion", prefix + labels[i]] = _Rate(
                steps[i].sessions, steps[i - 1].sessions
            )
            arm.durations[prefix + labels[i]] = sketch.sample(steps[i].sketch)
        if len(labels) > 1:
            subject = f"{prefix}{labels[0]} -> {labels[-1]}"
            arm.rates["conversion", subject] = _Rate(steps[-1].sessions, steps[0].sessions)


def _field_error_rates(
    store: EventStore,
    query: FieldErrorQuery,
    arms: defaultdict[str | None, ArmData],
    source: SourceAsked,
) -> str:
    """Field-error shares per arm; returns where they came from."""
    choice, rows = field_error_rows(store, query, source)
    for row in rows:
        if row["row_kind"] != "error" or bool(row["is_total"]) != (query.scope.by is None):
            continue
        subject = f"{row['form_id']} step {row['step']} {row['field_id']} {row['error_type']}"
        rate = _Rate(int(row["with_error"]), int(row["entered"]))
        arms[_group(row, query.scope)].rates["field_error_share", subject] = rate
    return choice.source


def _operation_failure_rates(
    store: EventStore, scope: Scope, arms: defaultdict[str | None, ArmData], source: SourceAsked
) -> str:
    """Operation failure rates per arm; returns where they came from."""
    # No checkpoints: only the outcomes of each operation are needed here.
    choice, _, rows = timing_rows(store, TimingQuery(scope), source, with_checkpoints=False)
    for row in rows:
        if bool(row["is_total"]) != (scope.by is None):
            continue
        failed = int(row["fail"]) + int(row["timeout"])
        rate = _Rate(failed, int(row["ended"]))
        arms[_group(row, scope)].rates["operation_failure_rate", row["operation"]] = rate
    return choice.source


def session_errors_sql(scope: Scope, dialect: SqlDialect) -> Sql:
    counts = ", ".join(
        dialect.count_distinct_if("sid", f"kind = 'error' AND error_kind = '{kind}'")
        + f" AS {kind}"
        for kind in SESSION_ERROR_KINDS
    )
    return render(
        "SELECT grp, count(DISTINCT sid) AS sessions, {counts} FROM (SELECT {sid} AS sid, "
        "kind, error_kind, {grp} AS grp FROM events WHERE {scope}) AS e GROUP BY grp",
        sid=dialect.session_key("session_id"),
        counts=counts,
        grp=dimension_expr(scope.by, dialect),
        scope=scope_filter(scope, dialect),
    )


def _session_error_rates(
    store: EventStore,
    dialect: SqlDialect,
    scope: Scope,
    arms: defaultdict[str | None, ArmData],
    source: SourceAsked,
) -> str:
    """Session error rates per arm; returns where they came from."""
    chosen, _ = rollup_slice(scope)
    environment = scope.filters.environment
    if (
        chosen is not None
        and source == "auto"
        and volume_covers(store, environment, chosen.first_day, chosen.last_day)
    ):
        _rolled_session_error_rates(store, scope, chosen, arms)
        return "rollups"
    for row in fetch(store, session_errors_sql(scope, dialect)):
        arm = arms[_group(row, scope)]
        for kind in SESSION_ERROR_KINDS:
            arm.rates["session_error_rate", kind] = _Rate(int(row[kind]), int(row["sessions"]))
    return "raw"


def _rolled_session_error_rates(
    store: EventStore, scope: Scope, chosen: RollupSlice, arms: defaultdict[str | None, ArmData]
) -> None:
    cells = merged_cells(store, scope.filters.environment, chosen, Family.VOLUME)
    keys = (None, None, None, None)
    for is_total, group in groups_of(cells):
        if is_total != (scope.by is None):
            continue
        sessions = cells.get(CellKey(group, is_total, keys, "sessions")) or MergedCell()
        arm = arms[group]
        for kind in SESSION_ERROR_KINDS:
            with_error = cells.get(CellKey(group, is_total, keys, f"error:{kind}"))
            arm.rates["session_error_rate", kind] = _Rate(
                with_error.sessions if with_error else 0, sessions.sessions
            )


# --- judging ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pending:
    """A metric measured in both arms, before multiple-testing adjustment."""

    comparison: MetricComparison


def _rate_metric(
    metric: str, subject: str, a: _Rate, b: _Rate, *, k: int, confidence: float
) -> _Pending:
    base = MetricComparison(
        metric=metric,
        subject=subject,
        higher_is_better=metric in FUNNEL_METRICS,
        test="two-proportion z",
    )
    if min(a.trials, b.trials) < k:
        return _Pending(replace_hidden(base))
    test = two_proportion_test(a.successes, a.trials, b.successes, b.trials, confidence)
    return _Pending(
        msgspec.structs.replace(
            base,
            a=a.successes / a.trials,
            b=b.successes / b.trials,
            n_a=a.trials,
            n_b=b.trials,
            diff=test.diff,
            ci_low=test.ci_low,
            ci_high=test.ci_high,
            p_value=test.p_value,
            confidence=confidence,
        )
    )


def replace_hidden(metric: MetricComparison) -> MetricComparison:
    return msgspec.structs.replace(metric, hidden=True)


def _duration_metrics(
    subject: str,
    a: Sequence[float],
    b: Sequence[float],
    *,
    k: int,
    confidence: float,
    n_resamples: int,
) -> list[_Pending]:
    pending = []
    for metric, q in (("step_p50", 0.5), ("step_p95", 0.95)):
        base = MetricComparison(
            metric=metric,
            subject=subject,
            higher_is_better=False,
            test="bootstrap + Mann-Whitney U" if q == 0.5 else "bootstrap",
        )
        if min(len(a), len(b)) < k:
            pending.append(_Pending(replace_hidden(base)))
            continue
        stat = QuantileStat(q)
        seed = zlib.crc32(f"{metric}:{subject}".encode())
        ci = bootstrap_diff_ci(
            a, b, stat=stat, n_resamples=n_resamples, seed=seed, confidence=confidence
        )
        p_value = mann_whitney_u(a, b).p_value if q == 0.5 else None
        before, after = stat(a), stat(b)
        comparison = msgspec.structs.replace(
            base,
            a=before,
            b=after,
            n_a=len(a),
            n_b=len(b),
            diff=after - before,
            ci_low=ci[0],
            ci_high=ci[1],
            p_value=p_value,
            confidence=confidence,
        )
        pending.append(_Pending(comparison))
    return pending


def _judge(pending: list[_Pending], alpha: float) -> list[MetricComparison]:
    tested = [i for i, p in enumerate(pending) if p.comparison.p_value is not None]
    adjusted = holm_adjust([pending[i].comparison.p_value or 0.0 for i in tested])
    adjusted_of = dict(zip(tested, adjusted, strict=True))
    judged = []
    for i, item in enumerate(pending):
        metric = item.comparison
        if metric.hidden or metric.diff is None:
            judged.append(metric)
            continue
        p_adjusted = adjusted_of.get(i)
        interval = (metric.ci_low or 0.0, metric.ci_high or 0.0)
        decided = verdict(metric.diff, interval, p_adjusted, metric.higher_is_better, alpha)
        judged.append(msgspec.structs.replace(metric, p_adjusted=p_adjusted, verdict=decided))
    return judged


def overall_verdict(metrics: Sequence[MetricComparison]) -> Overall:
    improved = any(m.verdict == IMPROVED for m in metrics)
    regressed = any(m.verdict == REGRESSED for m in metrics)
    if improved and regressed:
        return "mixed"
    if improved:
        return "improved"
    if regressed:
        return "regressed"
    return "no significant change"


# --- running ------------------------------------------------------------------------------


def judge_arms(
    arm_a: ArmData, arm_b: ArmData, *, k: int, alpha: float, n_resamples: int
) -> list[MetricComparison]:
    """Every metric either arm measured, tested and judged as one family (a metric one arm
    lacks is added to it empty, so it shows as hidden)."""
    # A metric one arm lacks (no session got that far) is compared with nothing: it is
    # hidden as too small. An error that happened in neither arm has nothing to compare.
    nothing = _Rate(0, 0)
    for arm, other in ((arm_a, arm_b), (arm_b, arm_a)):
        for key in other.rates:
            arm.rates.setdefault(key, nothing)
        for label in other.durations:
            arm.durations.setdefault(label, [])
    shared_rates = [
        key
        for key in arm_a.rates
        if key[0] in FUNNEL_METRICS or arm_a.rates[key].successes + arm_b.rates[key].successes
    ]
    shared_steps = list(arm_a.durations)
    n_metrics = max(1, len(shared_rates) + 2 * len(shared_steps))
    confidence = 1.0 - alpha / n_metrics  # Bonferroni: simultaneous over the family
    funnel_first = sorted(shared_rates, key=lambda key: key[0] not in FUNNEL_METRICS)

    def rate(metric: str, subject: str) -> _Pending:
        a, b = arm_a.rates[metric, subject], arm_b.rates[metric, subject]
        return _rate_metric(metric, subject, a, b, k=k, confidence=confidence)

    pending = [rate(m, subject) for m, subject in funnel_first if m in FUNNEL_METRICS]
    for label in shared_steps:
        pending += _duration_metrics(
            label,
            arm_a.durations[label],
            arm_b.durations[label],
            k=k,
            confidence=confidence,
            n_resamples=n_resamples,
        )
    pending += [rate(m, subject) for m, subject in funnel_first if m not in FUNNEL_METRICS]
    return _judge(pending, alpha)


def run_compare(
    store: EventStore,
    query: CompareQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[CompareResult]:
    """``source``: ``auto`` reads daily rollups for the parts they answer (the bootstrap then
    resamples the sketch's values, each within 1% of the one it stands for)."""
    scope_a, scope_b = query.a.scope(query.scope), query.b.scope(query.scope)
    scenarios = (query.scenario,)
    versions = _version_pair(query)
    if versions is not None:
        arm_a, arm_b = collect_versions(
            store, query.scope, versions, scenarios, query.forms, source=source
        )
    else:
        arm_a = collect_arm(store, scope_a, scenarios, query.forms, source=source)
        arm_b = collect_arm(store, scope_b, scenarios, query.forms, source=source)
    metrics = judge_arms(
        arm_a,
        arm_b,
        k=max(min_group_size, 1),
        alpha=query.alpha,
        n_resamples=query.n_resamples,
    )
    name = query.scenario.name
    result = CompareResult(
        scenario=name,
        a=ArmSummary(
            label=query.a.label,
            description=describe_arm(query.a),
            started=at_least(arm_a.started.get(name, 0), min_group_size),
        ),
        b=ArmSummary(
            label=query.b.label,
            description=describe_arm(query.b),
            started=at_least(arm_b.started.get(name, 0), min_group_size),
        ),
        alpha=query.alpha,
        metrics=metrics,
        overall=overall_verdict(metrics),
        warnings=comparability_warnings(store, query),
    )
    meta = meta_for(
        "compare",
        time=_union_time(query),
        scope=replace(query.scope, by=None),
        sampling=merge_sampling(_sampling(store, scope_a), _sampling(store, scope_b)),
        min_group_size=min_group_size,
        hidden=sum(1 for m in metrics if m.hidden),
        notes=[
            (
                "diff = b - a; p-values Holm-adjusted; p95 judged by a Bonferroni-widened "
                "bootstrap interval"
            ),
            "tests use observed (unweighted) sessions",
            CombinedSource.of(arm_a.sources | arm_b.sources).note,
            *result.warnings,
        ],
        source=CombinedSource.of(arm_a.sources | arm_b.sources).source,
    )
    return Report(meta=meta, data=result)


def _sampling(store: EventStore, scope: Scope) -> Sampling:
    """An arm's sample rates: from the days' sampling cells when they cover its range (what
    every report reading rollups says), else from its raw rows."""
    chosen, _ = rollup_slice(scope)
    environment = scope.filters.environment
    if chosen is not None and volume_covers(store, environment, chosen.first_day, chosen.last_day):
        return rollup_sampling(store, environment, chosen)
    return sampling_of(store, scope)


# --- comparability ------------------------------------------------------------------------

AUDIENCE: Final = ("role", "division", "device_type", "browser", "region")


def comparability_warnings(store: EventStore, query: CompareQuery) -> list[str]:
    """Reasons the arms may differ for something other than the change being judged."""
    warnings = []
    span_a = query.a.time or query.scope.time
    span_b = query.b.time or query.scope.time
    days = [(s.end - s.start).total_seconds() / 86_400 for s in (span_a, span_b)]
    if max(days) > WINDOW_RATIO * min(days):
        warnings.append(
            f"the windows differ in length ({days[0]:g} vs {days[1]:g} days): counts differ "
            "for that alone, compare rates"
        )
    mixes = [
        audience_mix(store, arm.scope(query.scope), query.scenario) for arm in (query.a, query.b)
    ]
    for dimension in AUDIENCE:
        shift = _distance(mixes[0].get(dimension, {}), mixes[1].get(dimension, {}))
        if shift >= AUDIENCE_SHIFT:
            warnings.append(
                f"the audiences differ by {dimension} (its mix moved {shift:.0%}): a change "
                "may come from who used it; compare with by={dimension}"
            )
    return warnings


Mix = dict[str, dict[str | None, int]]


def audience_mix(store: EventStore, scope: Scope, scenario: ScenarioSpec) -> Mix:
    """Per context dimension, the sessions that started the scenario per value: from the
    ``audience`` rollups when the arm is ui_versions over whole days, else raw rows."""
    rolled = _rolled_audience_mix(store, scope, scenario)
    return rolled if rolled is not None else _raw_audience_mix(store, scope, scenario)


def _rolled_audience_mix(store: EventStore, scope: Scope, scenario: ScenarioSpec) -> Mix | None:
    definition = definition_hash(scenario)
    choice = choose_source(
        store,
        replace(scope, by=None),
        family=Family.AUDIENCE,
        key=scenario.name,
        definition=definition,
    )
    chosen = choice.slice
    if chosen is None or chosen.dim not in ("", "ui_version"):
        return None
    versions = replace(chosen, dim="ui_version")
    cells = merged_cells(
        store,
        scope.filters.environment,
        versions,
        Family.AUDIENCE,
        k1=scenario.name,
        k3=definition,
    )
    mix: Mix = defaultdict(dict)
    for key, cell in cells.items():
        _, dimension, _, value = key.keys
        if key.is_total and dimension is not None:
            mix[dimension][value] = cell.sessions
    return dict(mix)


def _raw_audience_mix(store: EventStore, scope: Scope, scenario: ScenarioSpec) -> Mix:
    dialect = dialect_of(store)
    sets = ", ".join(f"({d})" for d in AUDIENCE)
    which = " ".join(f"WHEN grouping({d}) = 0 THEN '{d}'" for d in AUDIENCE)
    value = "coalesce(" + ", ".join(AUDIENCE) + ")"
    statement = render(
        "SELECT CASE {which} END AS dimension, {value} AS value, count(DISTINCT {sid}) AS n "
        "FROM events WHERE {scope} AND {start} GROUP BY GROUPING SETS ({sets})",
        which=which,
        value=value,
        sid=dialect.session_key("session_id"),
        scope=scope_filter(scope, dialect),
        start=step_condition(scenario.steps[0]),
        sets=sets,
    )
    mix: Mix = defaultdict(dict)
    for row in fetch(store, statement):
        mix[row["dimension"]][row["value"]] = int(row["n"])
    return dict(mix)


def _distance(a: dict[str | None, int], b: dict[str | None, int]) -> float:
    """Total variation distance between two mixes (0: the same shares, 1: disjoint)."""
    total_a, total_b = sum(a.values()), sum(b.values())
    if not total_a or not total_b:
        return 0.0
    return sum(abs(a.get(v, 0) / total_a - b.get(v, 0) / total_b) for v in {*a, *b}) / 2


def _version_pair(query: CompareQuery) -> tuple[str, str] | None:
    """The two ui_versions when the arms differ by nothing else (one pass serves both)."""
    arms = (query.a, query.b)
    if any(arm.time is not None or arm.feature_flag is not None for arm in arms):
        return None
    if query.a.ui_version is None or query.b.ui_version is None:
        return None
    if len(query.a.ui_version) != 1 or len(query.b.ui_version) != 1:
        return None
    if query.a.ui_version == query.b.ui_version:
        return None
    return query.a.ui_version[0], query.b.ui_version[0]


def describe_arm(arm: Arm) -> str:
    parts = []
    if arm.time is not None:
        parts.append(f"{arm.time.start.isoformat()} to {arm.time.end.isoformat()}")
    if arm.ui_version is not None:
        parts.append("ui_version " + ",".join(arm.ui_version))
    if arm.feature_flag is not None:
        flag = arm.feature_flag
        parts.append(f"flag {flag.name} {'on' if flag.enabled else 'off'}")
    return "; ".join(parts) or "the whole scope"


def _union_time(query: CompareQuery) -> TimeRange:
    ranges = [arm.time or query.scope.time for arm in (query.a, query.b)]
    return TimeRange(min(r.start for r in ranges), max(r.end for r in ranges))


__all__ = [
    "ArmSummary",
    "CompareResult",
    "MetricComparison",
    "overall_verdict",
    "run_compare",
]
