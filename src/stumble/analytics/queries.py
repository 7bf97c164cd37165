"""Query objects: frozen, typed descriptions of what a report asks, free of SQL and of I/O.

Every query has a ``Scope``: a half-open time range ``[start, end)`` on the skew-corrected
event time, ``Filters`` (environment, context dimensions, ui_version, a feature flag, an
experiment) and an optional breakdown dimension. Report-specific parts that come from the
tracking plan (funnel steps, forms, declared features) are resolved into the query object by
its ``from_plan`` constructor, so compiling a query needs nothing but the query itself.

Identifiers that end up in SQL text (column names of ``where`` clauses, breakdown dimensions)
are checked against the stored column list here; every value travels as a bound parameter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Final, Literal, get_args

from stumble.events import CONTEXT_FIELDS
from stumble.plan.model import FunnelOrder, FunnelStep, Scenario, Thresholds, TrackingPlan
from stumble.storage.dialect import EVENT_COLUMN_NAMES

Dimension = Literal[
    "role",
    "division",
    "device_type",
    "browser",
    "region",
    "ui_version",
    "experiment",
    "day",
    "week",
]
DIMENSIONS: Final[tuple[str, ...]] = get_args(Dimension)
DEFAULT_ENVIRONMENT: Final = "prod"
DEFAULT_MIN_GROUP_SIZE: Final = 5
StepValue = str | int | bool


class QueryError(ValueError):
    """A query that cannot be asked: unknown scenario, form, dimension or column."""


def utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a naive one is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` in UTC on the skew-corrected event time ``ts``."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise QueryError("a time range must end after it starts")

    @classmethod
    def days(cls, first: dt.date, last: dt.date) -> TimeRange:
        """Whole UTC days ``first`` to ``last`` inclusive."""
        start = dt.datetime.combine(first, dt.time(), dt.UTC)
        return cls(start, dt.datetime.combine(last, dt.time(), dt.UTC) + dt.timedelta(days=1))

    @classmethod
    def last_days(cls, count: int, now: dt.datetime | None = None) -> TimeRange:
        """The ``count`` whole UTC days up to and including today."""
        today = utc(now or dt.datetime.now(dt.UTC)).date()
        return cls.days(today - dt.timedelta(days=count - 1), today)

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """Naive UTC datetimes: what a ``TIMESTAMP`` column compares with."""
        return self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class FlagFilter:
    """Events carrying the feature flag (``enabled``) or events without it."""

    name: str
    enabled: bool = True

    @classmethod
    def parse(cls, text: str) -> FlagFilter:
        """``name`` for on, ``!name`` for off."""
        if text.startswith("!"):
            return cls(text[1:], enabled=False)
        return cls(text)

    def __str__(self) -> str:
        return self.name if self.enabled else f"!{self.name}"


@dataclass(frozen=True, slots=True)
class Filters:
    """Which events count. Empty tuples mean "any value"; values within one field are ORed."""

    environment: str = DEFAULT_ENVIRONMENT
    role: tuple[str, ...] = ()
    division: tuple[str, ...] = ()
    device_type: tuple[str, ...] = ()
    browser: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    ui_version: tuple[str, ...] = ()
    experiment: tuple[str, ...] = ()
    feature_flag: FlagFilter | None = None

    def value_filters(self) -> list[tuple[str, tuple[str, ...]]]:
        """(column, allowed values) for every restricted column, in a fixed order."""
        columns = (*CONTEXT_FIELDS, "ui_version", "experiment")
        return [(name, getattr(self, name)) for name in columns if getattr(self, name)]


@dataclass(frozen=True, slots=True)
class Scope:
    """When, which events, and an optional breakdown dimension."""

    time: TimeRange
    filters: Filters = field(default_factory=Filters)
    by: Dimension | None = None

    def __post_init__(self) -> None:
        if self.by is not None and self.by not in DIMENSIONS:
            raise QueryError(f"cannot break down by that; choose one of {DIMENSIONS}")

    def narrowed(
        self,
        *,
        time: TimeRange | None = None,
        ui_version: tuple[str, ...] | None = None,
        feature_flag: FlagFilter | None = None,
    ) -> Scope:
        """The same scope with a different window, ui_version or flag (a compare arm)."""
        filters = self.filters
        if ui_version is not None:
            filters = replace(filters, ui_version=ui_version)
        if feature_flag is not None:
            filters = replace(filters, feature_flag=feature_flag)
        return replace(self, time=time or self.time, filters=filters)


# --- plan-derived parts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A funnel step: an event name narrowed by stored column values."""

    label: str
    event_name: str
    where: tuple[tuple[str, StepValue], ...] = ()
    optional: bool = False
    """A session may skip this step (funnels only)."""

    def __post_init__(self) -> None:
        for column, _ in self.where:
            if column not in EVENT_COLUMN_NAMES:
                raise QueryError(f"step {self.label!r} filters on unknown column {column!r}")

    @classmethod
    def from_plan(cls, step: FunnelStep) -> StepSpec:
        return cls(step.label, step.event, tuple(sorted(step.where.items())), step.optional)


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A plan scenario reduced to what queries need."""

    name: str
    steps: tuple[StepSpec, ...]
    window_ms: int
    form_id: str | None = None
    operation: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    order: FunnelOrder = "ordered"
    exclusions: tuple[StepSpec, ...] = ()

    def __post_init__(self) -> None:
        if len(self.steps) < 1:
            raise QueryError(f"scenario {self.name!r} has no steps")
        if self.steps[0].optional or self.steps[-1].optional:
            raise QueryError(f"scenario {self.name!r}: the first and last steps are required")

    @classmethod
    def from_plan(cls, name: str, scenario: Scenario) -> ScenarioSpec:
        return cls(
            name=name,
            steps=tuple(StepSpec.from_plan(step) for step in scenario.steps),
            window_ms=scenario.window_ms,
            form_id=scenario.form_id,
            operation=scenario.operation,
            thresholds=scenario.thresholds,
            order=scenario.order,
            exclusions=tuple(StepSpec.from_plan(step) for step in scenario.exclusions),
        )


def scenario_spec(plan: TrackingPlan, name: str) -> ScenarioSpec:
    scenario = plan.scenarios.get(name)
    if scenario is None:
        raise QueryError(f"the tracking plan has no such scenario; it has {sorted(plan.scenarios)}")
    return ScenarioSpec.from_plan(name, scenario)


def all_scenarios(plan: TrackingPlan) -> tuple[ScenarioSpec, ...]:
    return tuple(ScenarioSpec.from_plan(name, s) for name, s in sorted(plan.scenarios.items()))


@dataclass(frozen=True, slots=True)
class FormSpec:
    """A form whose steps are analysed; ``entry`` marks entering its step 1 (see
    ``form_entries``), else the session's first event of the form does."""

    form_id: str
    entry: StepSpec | None = None


def form_entries(plan: TrackingPlan) -> dict[str, StepSpec]:
    """For each form a scenario leads through, the funnel step just before the form's first
    step (opening the screen the form is on); a scenario that only declares ``form_id``
    enters it at its first step."""
    entries: dict[str, StepSpec] = {}
    for _, scenario in sorted(plan.scenarios.items()):
        for index, step in enumerate(scenario.steps):
            form_id = step.where.get("form_id")
            if index and isinstance(form_id, str) and form_id not in entries:
                entries[form_id] = StepSpec.from_plan(scenario.steps[index - 1])
    for _, scenario in sorted(plan.scenarios.items()):
        if scenario.form_id and scenario.form_id not in entries:
            entries[scenario.form_id] = StepSpec.from_plan(scenario.steps[0])
    return entries


def form_specs(plan: TrackingPlan, form_ids: tuple[str, ...] = ()) -> tuple[FormSpec, ...]:
    """Every form the plan allows on form events (or just ``form_ids``), with entries."""
    entries = form_entries(plan)
    declared: set[str] = set(entries)
    for spec in plan.events.values():
        if spec.kind in ("form_submit", "field_error"):
            declared.update(spec.values.get("form_id", ()))
    wanted = form_ids or tuple(sorted(declared))
    return tuple(FormSpec(form_id, entries.get(form_id)) for form_id in wanted)


# --- the queries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunnelQuery:
    """Sessions through a scenario's steps within its conversion window.

    Semantics (``scenario.order``, README "How funnels count"): every step-1 event starts an
    attempt; a later step joins the most recent attempt that reached the step before it (or
    skipped it, when optional). A session counts once, at the furthest step any attempt
    reached, with the step times of the first attempt that got there.
    """

    scope: Scope
    scenario: ScenarioSpec
    slow_after_ms: float | None = None
    """Also count, per step, the sessions slower than this (the plan's ``max_step_p95_ms``)."""
    last_actions: bool = False
    """Also say what sessions that stopped at each step did last: a second pass over every
    event of the scope (measured: it more than doubles the funnel's time), so on request."""

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, scope: Scope, scenario: str, *, last_actions: bool = False
    ) -> FunnelQuery:
        spec = scenario_spec(plan, scenario)
        return cls(scope, spec, spec.thresholds.max_step_p95_ms, last_actions)


@dataclass(frozen=True, slots=True)
class TimingQuery:
    """Operation durations, outcomes, retries and phases; all operations when empty."""

    scope: Scope
    operations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldErrorQuery:
    """Validation errors per form step, field and error type."""

    scope: Scope
    forms: tuple[FormSpec, ...]
    restricted: bool = True
    """Only ``forms`` count; False: every form stored (the plan closes the list anyway)."""

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, scope: Scope, form_ids: tuple[str, ...] = ()
    ) -> FieldErrorQuery:
        return cls(scope, form_specs(plan, form_ids), restricted=bool(form_ids))


@dataclass(frozen=True, slots=True)
class LoopQuery:
    """Back, cancel, close, retry and reopen per screen, and screens viewed again."""

    scope: Scope


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Sessions per feature (action and custom event names) per day; rarely used features."""

    scope: Scope
    declared: tuple[str, ...] = ()
    """Feature names the plan declares: a declared feature nobody used is reported too."""
    barely_used_share: float = 0.01

    @classmethod
    def from_plan(cls, plan: TrackingPlan, scope: Scope) -> UsageQuery:
        declared = tuple(
            sorted(
                name
                for name, spec in plan.events.items()
                if spec.kind in ("action", "custom") and not spec.deprecated
            )
        )
        return cls(scope, declared)


@dataclass(frozen=True, slots=True)
class FailureQuery:
    """Errors by kind, type, fingerprint, module and scenario; API and Web Vitals timings."""

    scope: Scope
    scenarios: tuple[ScenarioSpec, ...] = ()

    @classmethod
    def from_plan(cls, plan: TrackingPlan, scope: Scope) -> FailureQuery:
        return cls(scope, all_scenarios(plan))


@dataclass(frozen=True, slots=True)
class Arm:
    """One side of a comparison: the base scope narrowed by a window, ui_version or flag."""

    label: str
    time: TimeRange | None = None
    ui_version: tuple[str, ...] | None = None
    feature_flag: FlagFilter | None = None

    def scope(self, base: Scope) -> Scope:
        narrowed = base.narrowed(
            time=self.time, ui_version=self.ui_version, feature_flag=self.feature_flag
        )
        return replace(narrowed, by=None)


@dataclass(frozen=True, slots=True)
class CompareQuery:
    """Before/after (``a`` then ``b``): step conversion, step p50/p95, field-error shares and
    error rates, each with a difference, a simultaneous interval, a test and a verdict."""

    scope: Scope
    a: Arm
    b: Arm
    scenario: ScenarioSpec
    forms: tuple[FormSpec, ...]
    alpha: float = 0.05
    n_resamples: int = 2000

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise QueryError("alpha must be within (0, 0.5)")

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, scope: Scope, scenario: str, a: Arm, b: Arm
    ) -> CompareQuery:
        spec = scenario_spec(plan, scenario)
        forms = form_specs(plan, (spec.form_id,)) if spec.form_id else ()
        return cls(scope, a, b, spec, forms)


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """What data health checks stored events against."""

    schema_version: int
    min_schema_version: int | None
    event_kinds: tuple[tuple[str, str], ...]
    """(event name, kind) of every declared event."""
    allowed_values: tuple[tuple[str, str, tuple[str, ...]], ...]
    """(event name, column, allowed values) of every closed field."""

    @classmethod
    def from_plan(cls, plan: TrackingPlan) -> PlanFacts:
        allowed = tuple(
            (name, column, tuple(values))
            for name, spec in sorted(plan.events.items())
            for column, values in sorted(spec.values.items())
            if column in EVENT_COLUMN_NAMES
        )
        return cls(
            schema_version=plan.schema_version,
            min_schema_version=plan.min_schema_version,
            event_kinds=tuple(sorted((name, spec.kind) for name, spec in plan.events.items())),
            allowed_values=allowed,
        )


TEST_MARKERS: Final = ("test", "dev", "local", "staging", "e2e", "demo", "load", "qa")
"""Parts of a ui_version, experiment or flag that mark test traffic."""


@dataclass(frozen=True, slots=True)
class HealthQuery:
    """Data health over a window; every environment unless ``environment`` is set."""

    time: TimeRange
    plan: PlanFacts
    environment: str | None = None
    production: str = DEFAULT_ENVIRONMENT
    test_markers: tuple[str, ...] = TEST_MARKERS

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, time: TimeRange, environment: str | None = None
    ) -> HealthQuery:
        return cls(time, PlanFacts.from_plan(plan), environment)


Query = (
    FunnelQuery
    | TimingQuery
    | FieldErrorQuery
    | LoopQuery
    | UsageQuery
    | FailureQuery
    | CompareQuery
    | HealthQuery
)
