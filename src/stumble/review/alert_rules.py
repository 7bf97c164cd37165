"""Alert rules and their evaluation: which metrics are watched, what each window measured, and
whether a rule is *breaching* (statistically, not by its point estimate alone).

Rules come from the tracking plan, so nobody writes them by hand:

* **thresholds** (``max_error_rate:create_service_request:sessions``): each scenario's
  ``thresholds`` (the ones top problems judges) over the recent window;
* **changes** (``operation_p95_change:search:search``): error rate, field-error share, step
  p95 and operation p95 of the recent window against the window before it;
* **flags** (``error_rate_flag:search:sessions/new_search``): the same metrics with a rollout
  flag on against off, in the recent window (flags are found in the data, not the plan).

A rule id is ``<kind>:<scenario>:<subject>``; its owner is its scenario's owner team.

Deciding (docs/decisions.md, "alerts: significance"): a rule is tested only when each side
has at least ``min_sessions`` sessions; every tested rule of one evaluation forms one family
and is judged at ``alpha / m`` (Bonferroni, m = rules tested). A threshold rule breaches
when its interval at that level lies wholly beyond the threshold (for a p95: when the share
of sessions slower than the limit is significantly above 5%); a change rule when the
difference is significant and in the bad direction (a p95 change is tested as the share of
each side above the pooled p95, a quantile test that needs no resampling).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Final, Literal

import msgspec

from stumble.analytics.common import fetch
from stumble.analytics.failures import scenarios_sql
from stumble.analytics.field_errors import field_errors_sql
from stumble.analytics.funnels import step_durations_sql
from stumble.analytics.queries import (
    FailureQuery,
    FieldErrorQuery,
    Filters,
    FlagFilter,
    FunnelQuery,
    ScenarioSpec,
    Scope,
    TimeRange,
    all_scenarios,
    form_specs,
)
from stumble.analytics.sql import dialect_for, param, params_list, render, scope_filter
from stumble.analytics.stats import (
    REGRESSED,
    quantile,
    quantile_of_sorted,
    two_proportion_test,
    verdict,
    wilson_interval,
)
from stumble.plan.model import TrackingPlan
from stumble.privacy.detectors import detect
from stumble.reports.top_problems import TopProblemsQuery
from stumble.storage.base import EventStore

Metric = Literal[
    "conversion", "drop_off", "field_error_share", "step_p95", "operation_p95", "error_rate"
]
Against = Literal["threshold", "previous", "flag"]
Status = Literal["breaching", "ok", "no_data"]

WINDOW: Final = dt.timedelta(hours=24)
"""The recent window: a whole daily cycle, so the mix of hours (and of the people who work
them) is the same on both sides of a comparison with the 24 hours before."""
SETTLE: Final = dt.timedelta(minutes=10)
"""The recent window ends this long before now: late batches of the latest sessions arrive."""
MAX_FLAGS: Final = 5
"""Rollout flags compared per evaluation (the most used ones): each costs two more windows."""
P95: Final = 0.95
CHANGE_METRICS: Final[tuple[Metric, ...]] = (
    "error_rate", "field_error_share", "step_p95", "operation_p95"
)  # fmt: skip
DURATION_METRICS: Final = frozenset({"step_p95", "operation_p95"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One watched metric of one scenario, compared with a threshold, the previous window or
    the other arm of a flag."""

    metric: Metric
    against: Against
    scenario: str
    subject: str
    """``sessions`` (error rate), ``overall`` (conversion), a step label, an operation, or
    ``step/field/error_type`` (``form/step/field/error_type`` for a form that is not the
    scenario's ``form_id``); flag rules add ``/<flag>``."""
    owner: str
    threshold: float | None = None
    flag: str | None = None

    @property
    def kind(self) -> str:
        """``max_error_rate``, ``op_p95_change``, ``field_error_flag``…: short, because the id
        travels inside message keys and audit targets (``<team>/<key>``, at most 128)."""
        short = SHORT_NAMES.get(self.metric, self.metric)
        if self.against == "threshold":
            return f"{'min' if self.metric == 'conversion' else 'max'}_{short}"
        return f"{short}_{'change' if self.against == 'previous' else 'flag'}"

    @property
    def id(self) -> str:
        return rule_id(self.kind, self.scenario, self.subject, self.owner)

    @property
    def key(self) -> str:
        """The subject without the flag: what the window measurements are keyed by."""
        return self.subject.removesuffix(f"/{self.flag}") if self.flag else self.subject

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "conversion"


class Evaluation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What one rule measured at one evaluation and what was decided. Rates are shares
    (0..1), durations milliseconds."""

    rule: str
    status: Status
    value: float | None = None
    """The recent window's (or the flag-on arm's) value."""
    reference: float | None = None
    """The threshold, or the previous window's (flag-off arm's) value."""
    low: float | None = None
    high: float | None = None
    """The interval at the family-adjusted level: of the value (threshold rules; for a p95,
    of the share slower than the limit) or of the difference (change rules; for a p95, of the
    share above the pooled p95)."""
    confidence: float | None = None
    p_value: float | None = None
    """Unadjusted; the rule breaches when it is below ``alpha / tested``."""
    sessions: int = 0
    reference_sessions: int | None = None
    tested: int = 0
    """Rules tested together in this evaluation (the Bonferroni divisor)."""


SHORT_NAMES: Final[dict[str, str]] = {"field_error_share": "field_error", "operation_p95": "op_p95"}
_NOT_ID: Final = re.compile(r"[^A-Za-z0-9_.:/-]")
_PLAIN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_ID: Final = 80
AUDIT_TARGET: Final = 128
KEY_EXTRA: Final = len("alert:") + len(":resolved:") + len("20260304T061505Z")
MIN_ID: Final = 40


def rule_id(kind: str, scenario: str, subject: str, owner: str = "") -> str:
    """``<kind>:<scenario>:<subject>`` as an identifier the audit log accepts: other characters
    become ``_``, and a long id keeps its start and a hash of the whole. Long means beyond
    ``MAX_ID``, or beyond what lets the deliverer's audit target ``<owner>/<message key>`` stay
    within 128 characters (a stable limit: a rule's owner is its scenario's)."""
    text = _NOT_ID.sub("_", f"{kind}:{scenario}:{subject}")
    limit = max(MIN_ID, min(MAX_ID, AUDIT_TARGET - len(owner) - 1 - KEY_EXTRA))
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[: limit - 13]}.{digest}"


# --- what a window measured --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    hits: int
    trials: int


@dataclass(frozen=True, slots=True)
class Durations:
    values: tuple[float, ...]
    """Sorted ascending."""
    sessions: int


Sample = Rate | Durations


@dataclass(frozen=True, slots=True)
class WindowData:
    """One window's counts and durations, keyed by (metric, scenario, key)."""

    samples: Mapping[tuple[Metric, str, str], Sample]
    field_error_keys: tuple[tuple[str, str], ...] = ()
    """(scenario, field-error subject) of every field error seen."""

    def get(self, metric: Metric, scenario: str, key: str) -> Sample | None:
        return self.samples.get((metric, scenario, key))


@dataclass(frozen=True, slots=True)
class Scopes:
    """The windows of one evaluation."""

    recent: Scope
    previous: Scope

    @classmethod
    def at(cls, now: dt.datetime, environment: str) -> Scopes:
        end = now - SETTLE
        filters = Filters(environment=environment)
        return cls(
            recent=Scope(TimeRange(end - WINDOW, end), filters),
            previous=Scope(TimeRange(end - 2 * WINDOW, end - WINDOW), filters),
        )

    def flag(self, name: str, enabled: bool) -> Scope:
        return self.recent.narrowed(feature_flag=FlagFilter(name, enabled))


class Measurer:
    """Runs the few queries a window needs (one per scenario funnel, one each for field
    errors, scenario errors and operation durations) and keeps the last windows measured, so
    an evaluation's previous window is usually an earlier one's recent window."""

    def __init__(self, store: EventStore, plan: TrackingPlan, cache_size: int = 0) -> None:
        """``cache_size`` windows are kept: only worth it when evaluations fall on a fixed
        grid (a sweep over simulated days); a server's ticks never repeat a window."""
        self.store = store
        self.scenarios = all_scenarios(plan)
        self.forms = form_specs(plan)
        self.plan = plan
        self.dialect = dialect_for(store.dialect)
        self._cache: dict[Scope, WindowData] = {}
        self._cache_size = cache_size

    def measure(self, scope: Scope) -> WindowData:
        cached = self._cache.get(scope)
        if cached is not None:
            return cached
        data = self._measure(scope)
        if not self._cache_size:
            return data
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[scope] = data
        return data

    def form_scenarios(self, scope: Scope) -> dict[str, str]:
        """Form id -> the scenario that judges it (as top problems assigns them)."""
        return dict(TopProblemsQuery.from_plan(self.plan, scope).form_scenarios)

    def flags(self, scope: Scope) -> list[str]:
        """The rollout flags seen in ``scope``, most used first."""
        statement = render(
            "SELECT flag, count(DISTINCT session_id) AS sessions FROM (SELECT {flag} AS flag, "
            "session_id FROM events WHERE {scope}) AS f GROUP BY flag "
            "ORDER BY sessions DESC, flag LIMIT {limit}",
            flag=self.dialect.elements("feature_flags"),
            scope=scope_filter(scope, self.dialect),
            limit=param(MAX_FLAGS),
        )
        names = [str(row["flag"]) for row in fetch(self.store, statement)]
        # A flag name becomes part of rule ids, message keys and audit targets: only names
        # that are plain identifiers no personal-data detector hits (the collector screened
        # them already; this keeps one odd name from stopping every notification).
        return [name for name in names if _PLAIN.fullmatch(name) and detect(name) is None]

    def _measure(self, scope: Scope) -> WindowData:
        samples: dict[tuple[Metric, str, str], Sample] = {}
        for scenario in self.scenarios:
            self._funnel(scope, scenario, samples)
        self._scenario_errors(scope, samples)
        keys = self._field_errors(scope, samples)
        self._operations(scope, samples)
        return WindowData(samples, keys)

    def _funnel(
        self, scope: Scope, scenario: ScenarioSpec, out: dict[tuple[Metric, str, str], Sample]
    ) -> None:
        rows = fetch(self.store, step_durations_sql(FunnelQuery(scope, scenario), self.dialect))
        if not rows:
            return
        row = rows[0]
        labels = [step.label for step in scenario.steps]
        reached = [int(row[f"n{i}"]) for i in range(len(labels))]
        name = scenario.name
        if len(labels) > 1:
            out["conversion", name, "overall"] = Rate(reached[-1], reached[0])
        for i in range(1, len(labels)):
            out["drop_off", name, labels[i]] = Rate(reached[i - 1] - reached[i], reached[i - 1])
            values = tuple(sorted(float(d) for d in row[f"d{i}"]))
            out["step_p95", name, labels[i]] = Durations(values, len(values))

    def _scenario_errors(self, scope: Scope, out: dict[tuple[Metric, str, str], Sample]) -> None:
        rows = fetch(self.store, scenarios_sql(FailureQuery(scope, self.scenarios), self.dialect))
        started = {r["scenario"]: int(r["sessions"]) for r in rows if r["error_kind"] is None}
        with_error = {r["scenario"]: int(r["sessions"]) for r in rows if r["error_kind"] == "*"}
        for name, n in started.items():
            out["error_rate", name, "sessions"] = Rate(with_error.get(name, 0), n)

    def _field_errors(
        self, scope: Scope, out: dict[tuple[Metric, str, str], Sample]
    ) -> tuple[tuple[str, str], ...]:
        owners = self.form_scenarios(scope)
        own_forms = {s.name: s.form_id for s in self.scenarios if s.form_id}
        keys = []
        query = FieldErrorQuery(scope, self.forms)
        for row in fetch(self.store, field_errors_sql(query, self.dialect)):
            scenario = owners.get(row["form_id"])
            if row["row_kind"] != "error" or not row["is_total"] or scenario is None:
                continue
            # the form is named only when it is not the scenario's own (ids stay short)
            form = "" if row["form_id"] == own_forms.get(scenario) else f"{row['form_id']}/"
            key = f"{form}{row['step']}/{row['field_id']}/{row['error_type']}"
            out["field_error_share", scenario, key] = Rate(
                int(row["with_error"]), int(row["entered"])
            )
            keys.append((scenario, key))
        return tuple(sorted(keys))

    def _operations(self, scope: Scope, out: dict[tuple[Metric, str, str], Sample]) -> None:
        owners = {s.operation: s.name for s in self.scenarios if s.operation}
        if not owners:
            return
        statement = render(
            "SELECT operation, count(DISTINCT {sid}) AS sessions, {durations} AS durations "
            "FROM events WHERE {scope} AND kind = 'operation_end' AND status = 'success' "
            "AND duration_ms IS NOT NULL AND operation IN ({operations}) GROUP BY operation",
            sid=self.dialect.session_key("session_id"),
            durations=self.dialect.collect("duration_ms", "TRUE"),
            scope=scope_filter(scope, self.dialect),
            operations=params_list(sorted(owners)),
        )
        for row in fetch(self.store, statement):
            values = tuple(sorted(float(d) for d in row["durations"]))
            out["operation_p95", owners[row["operation"]], row["operation"]] = Durations(
                values, int(row["sessions"])
            )


# --- rules from the plan -----------------------------------------------------------------


def plan_rules(
    plan: TrackingPlan, field_error_keys: Iterable[tuple[str, str]], flags: Sequence[str] = ()
) -> list[Rule]:
    """Every rule of the plan: its thresholds, change detection against the previous window
    and, for each flag, against the flag's other arm. Field-error subjects are the errors the
    data shows (the plan closes their list, but most combinations never happen)."""
    scenarios = {s.name: s for s in all_scenarios(plan)}
    owners = {name: scenario.owner for name, scenario in plan.scenarios.items()}
    errors_by_scenario: dict[str, list[str]] = {}
    for scenario, key in sorted(set(field_error_keys)):
        errors_by_scenario.setdefault(scenario, []).append(key)
    rules: list[Rule] = []
    for name, spec in sorted(scenarios.items()):
        owner = owners.get(name, "")
        changes = list(_change_subjects(spec, errors_by_scenario.get(name, [])))
        rules += _threshold_rules(spec, owner, errors_by_scenario.get(name, []))
        rules += [Rule(metric, "previous", name, key, owner) for metric, key in changes]
        for flag in flags:
            rules += [
                Rule(metric, "flag", name, f"{key}/{flag}", owner, flag=flag)
                for metric, key in changes
            ]
    return rules


def _change_subjects(spec: ScenarioSpec, field_errors: list[str]) -> Iterable[tuple[Metric, str]]:
    yield "error_rate", "sessions"
    for key in field_errors:
        yield "field_error_share", key
    for step in spec.steps[1:]:
        yield "step_p95", step.label
    if spec.operation:
        yield "operation_p95", spec.operation


def _threshold_rules(spec: ScenarioSpec, owner: str, field_errors: list[str]) -> list[Rule]:
    limits = spec.thresholds
    name = spec.name
    found: list[tuple[Metric, str, float | None]] = [
        ("conversion", "overall", limits.min_conversion if len(spec.steps) > 1 else None),
        ("error_rate", "sessions", limits.max_error_rate),
        *(("drop_off", s.label, limits.max_step_drop_off) for s in spec.steps[1:]),
        *(("step_p95", s.label, limits.max_step_p95_ms) for s in spec.steps[1:]),
        *(("field_error_share", key, limits.max_field_error_share) for key in field_errors),
    ]
    if spec.operation:
        found.append(("operation_p95", spec.operation, limits.max_operation_p95_ms))
    return [
        Rule(metric, "threshold", name, key, owner, threshold=limit)
        for metric, key, limit in found
        if limit is not None
    ]


# --- deciding ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sides:
    """What a rule compares: its current sample and, for change rules, the reference one."""

    current: Sample | None
    reference: Sample | None = None


def sessions_of(sample: Sample | None) -> int:
    if sample is None:
        return 0
    return sample.trials if isinstance(sample, Rate) else sample.sessions


def testable(rule: Rule, sides: Sides, min_sessions: int) -> bool:
    if sessions_of(sides.current) < min_sessions:
        return False
    return rule.against == "threshold" or sessions_of(sides.reference) >= min_sessions


def judge(rule: Rule, sides: Sides, level: float, tested: int) -> Evaluation:
    """Decide one testable rule at the family-adjusted ``level`` (alpha / rules tested)."""
    assert sides.current is not None
    if rule.against == "threshold":
        evaluation = _judge_threshold(rule, sides.current, level)
    else:
        assert sides.reference is not None
        evaluation = _judge_change(rule, sides.reference, sides.current, level)
    return replace_evaluation(evaluation, tested=tested)


def replace_evaluation(evaluation: Evaluation, **changes: object) -> Evaluation:
    return msgspec.structs.replace(evaluation, **changes)


def no_data(rule: Rule, sides: Sides) -> Evaluation:
    return Evaluation(
        rule=rule.id,
        status="no_data",
        reference=rule.threshold,
        sessions=sessions_of(sides.current),
        reference_sessions=None if rule.against == "threshold" else sessions_of(sides.reference),
    )


def _upper_tail_p(hits: int, n: int, p0: float) -> float:
    """One-sided score test of ``hits / n > p0`` (the test the Wilson interval inverts)."""
    if p0 <= 0.0:
        return 0.0 if hits else 1.0
    if p0 >= 1.0:
        return 1.0
    z = (hits / n - p0) / (p0 * (1.0 - p0) / n) ** 0.5
    return 1.0 - NormalDist().cdf(z)


def _judge_threshold(rule: Rule, sample: Sample, level: float) -> Evaluation:
    """Breaching when the one-sided ``1 - level`` bound is beyond the threshold: the Wilson
    interval at ``1 - 2 level`` is wholly on the wrong side of it."""
    assert rule.threshold is not None
    confidence = 1.0 - 2.0 * level
    if isinstance(sample, Durations):
        return _judge_p95_limit(rule, sample, level, confidence)
    low, high = wilson_interval(sample.hits, sample.trials, confidence)
    value = sample.hits / sample.trials
    if rule.higher_is_better:
        p = _upper_tail_p(sample.trials - sample.hits, sample.trials, 1.0 - rule.threshold)
        breaching = high < rule.threshold
    else:
        p = _upper_tail_p(sample.hits, sample.trials, rule.threshold)
        breaching = low > rule.threshold
    return Evaluation(
        rule=rule.id,
        status="breaching" if breaching else "ok",
        value=value,
        reference=rule.threshold,
        low=low,
        high=high,
        confidence=confidence,
        p_value=p,
        sessions=sample.trials,
    )


def _judge_p95_limit(rule: Rule, sample: Durations, level: float, confidence: float) -> Evaluation:
    """A p95 above the limit means more than 5% of the sessions slower than it: tested as
    that share against 5%, so the interval is the slow share's (the p95's own interval, from
    order statistics, crosses the limit exactly when this one crosses 5%)."""
    assert rule.threshold is not None
    n = len(sample.values)
    slow = sum(1 for v in sample.values if v > rule.threshold)
    low, high = wilson_interval(slow, n, confidence)
    return Evaluation(
        rule=rule.id,
        status="breaching" if low > 1.0 - P95 else "ok",
        value=quantile_of_sorted(sample.values, P95),
        reference=rule.threshold,
        low=low,
        high=high,
        confidence=confidence,
        p_value=_upper_tail_p(slow, n, 1.0 - P95),
        sessions=sample.sessions,
    )


def _judge_change(rule: Rule, before: Sample, after: Sample, level: float) -> Evaluation:
    confidence = 1.0 - level
    if isinstance(before, Durations) and isinstance(after, Durations):
        # Above the pooled p95: the same share on both sides when nothing changed.
        cut = quantile([*before.values, *after.values], P95)
        hits_a = sum(1 for v in before.values if v > cut)
        hits_b = sum(1 for v in after.values if v > cut)
        test = two_proportion_test(
            hits_a, len(before.values), hits_b, len(after.values), confidence
        )
        value_a = quantile_of_sorted(before.values, P95)
        value_b = quantile_of_sorted(after.values, P95)
        worse = value_b > value_a
    else:
        assert isinstance(before, Rate)
        assert isinstance(after, Rate)
        test = two_proportion_test(before.hits, before.trials, after.hits, after.trials, confidence)
        value_a, value_b = before.hits / before.trials, after.hits / after.trials
        worse = True
    decided = verdict(test.diff, (test.ci_low, test.ci_high), test.p_value, False, level)
    return Evaluation(
        rule=rule.id,
        status="breaching" if decided == REGRESSED and worse else "ok",
        value=value_b,
        reference=value_a,
        low=test.ci_low,
        high=test.ci_high,
        confidence=confidence,
        p_value=test.p_value,
        sessions=sessions_of(after),
        reference_sessions=sessions_of(before),
    )


# --- one evaluation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluated:
    """Every rule of one evaluation with what was decided, in rule order."""

    at: dt.datetime
    rules: tuple[Rule, ...]
    evaluations: tuple[Evaluation, ...]
    scopes: Scopes
    flags: tuple[str, ...] = field(default=())

    def breaching(self) -> list[tuple[Rule, Evaluation]]:
        return [
            (rule, ev)
            for rule, ev in zip(self.rules, self.evaluations, strict=True)
            if ev.status == "breaching"
        ]


def evaluate(
    measurer: Measurer,
    now: dt.datetime,
    *,
    environment: str,
    min_sessions: int,
    alpha: float,
) -> Evaluated:
    """Measure the windows and decide every rule of the plan at ``now``."""
    scopes = Scopes.at(now, environment)
    recent = measurer.measure(scopes.recent)
    previous = measurer.measure(scopes.previous)
    flags = tuple(measurer.flags(scopes.recent))
    arms = {
        flag: (
            measurer.measure(scopes.flag(flag, False)),
            measurer.measure(scopes.flag(flag, True)),
        )
        for flag in flags
    }
    keys = {*recent.field_error_keys, *previous.field_error_keys}
    rules = tuple(plan_rules(measurer.plan, keys, flags))
    sides = [_sides(rule, recent, previous, arms) for rule in rules]
    tested = sum(
        1 for rule, side in zip(rules, sides, strict=True) if testable(rule, side, min_sessions)
    )
    level = alpha / max(1, tested)
    evaluations = tuple(
        judge(rule, side, level, tested)
        if testable(rule, side, min_sessions)
        else no_data(rule, side)
        for rule, side in zip(rules, sides, strict=True)
    )
    return Evaluated(now, rules, evaluations, scopes, flags)


def _sides(
    rule: Rule,
    recent: WindowData,
    previous: WindowData,
    arms: Mapping[str, tuple[WindowData, WindowData]],
) -> Sides:
    if rule.against == "threshold":
        return Sides(recent.get(rule.metric, rule.scenario, rule.key))
    if rule.against == "previous":
        return Sides(
            recent.get(rule.metric, rule.scenario, rule.key),
            previous.get(rule.metric, rule.scenario, rule.key),
        )
    assert rule.flag is not None
    off, on = arms[rule.flag]
    return Sides(
        on.get(rule.metric, rule.scenario, rule.key), off.get(rule.metric, rule.scenario, rule.key)
    )


__all__ = [
    "Evaluated",
    "Evaluation",
    "Measurer",
    "Rule",
    "Scopes",
    "evaluate",
    "plan_rules",
]
