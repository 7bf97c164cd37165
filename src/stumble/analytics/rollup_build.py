"""What one (environment, UTC day) of rollups holds, as SELECTs over that day's raw rows.

A *cell* of the ``rollups`` table is (environment, day, family, dimension and value, keys k1
to k4, measure) with ``sessions``, ``events``, ``weighted`` (re-weighted for sampling),
``value_sum`` and a duration sketch (``analytics.sketch``). Every family has cells without a
breakdown (``dim = ''``) and per rolled dimension (``ROLLED_DIMENSIONS``), made in one pass:
the source carries all the dimensions as a struct and each row is counted once per level
(``measure_cells``), so a report can read a total, a
breakdown by one dimension, or one dimension's filter, and ``day``/``week`` come from the
cell's day. No cell holds a session id: a session counts inside a cell, and sessions do not
span days (the session key changes at midnight), so the cells of several days add up.

Families (the ``k`` keys):

* ``funnel``: k1 scenario, k2 step index or ``total``, k3 the scenario's definition hash.
  Built by the funnel's own engine (``funnels.chain_sql``) on the day, so rollups count
  exactly as the raw report does: sessions reaching each step, their weights, the sketch of
  the time from the previous step (``total``: first to last step, converted sessions).
* ``audience``: built with the funnel from its ``chain``: level ``ui_version``, k1 scenario,
  k2 an audience dimension (role, division, ...), k3 the definition hash, k4 its value; the
  sessions that started the scenario (compare's check that its arms had the same users).
* ``last_action``: built with the funnel: k1 scenario, k2 the furthest step a session whose
  attempt stopped short reached, k3 the definition hash, k4 what it did last
  (``dropoff``); measure ``stopped``, sessions.
* ``built``: a marker per family key and definition (k1 family, k2 key, k3 hash), written
  even when the day had no session for it, so a reader knows the day was built with the
  definition it asks about.
* ``sampling``: k1 a sample rate seen that day.
* ``field_error``: k1 form, k2 step, k3 field, k4 error type; per error key the sessions that
  entered its step and had it, those of them that completed it (sketch: time on step), their
  successful attempt number (sketch and sum), and ``events`` (one per error event).
  ``form_step``: k1 form, k2 step; entered, with any error, completed (time on step), input
  and fixing times, and ``seen`` (the step was submitted or got an error: read as present,
  its count is of groups). Built by the field error report's own CTEs over every stored form
  with the plan's forms; markers ``*`` (the plan's forms) and per form (its spec) say which
  queries the cells answer.
* ``timing``: k1 operation; instances, ended (weights), started, per status (success: its
  durations), every duration, and per session ``sessions`` and ``retries`` (a sum).
  ``timing_phase``: k1 operation, k2 checkpoint or end; gaps (sketch and sum), ``seen`` and
  the sessions that had the phase. Every operation, so a query filters operations on read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from stumble.analytics.dropoff import stopped_ctes
from stumble.analytics.field_errors import ALL_FORMS
from stumble.analytics.field_errors import rollup_sources_sql as field_errors_ctes
from stumble.analytics.frustration import FrustrationThresholds
from stumble.analytics.funnels import chain_sql, gap_expr
from stumble.analytics.queries import (
    Dimension,
    FieldErrorQuery,
    Filters,
    FormSpec,
    FunnelQuery,
    PlanFacts,
    ScenarioSpec,
    Scope,
    TimeRange,
    TimingQuery,
    all_scenarios,
    form_specs,
)
from stumble.analytics.rollup_cells import (
    AUDIENCE_DIMENSIONS,
    SESSION_ERROR_KINDS,
    TOTAL_STEP,
    VOLUME_DEFINITION,
    Family,
    definition_hash,
    dimensions_struct,
    dimensions_unnest,
)
from stumble.analytics.sketch import bucket_key_sql
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    as_sql,
    dialect_for,
    param,
    render,
    scope_filter,
)
from stumble.analytics.timings import ROLLUP_DEFINITION as TIMING_DEFINITION
from stumble.analytics.timings import ROLLUP_KEY as TIMING_KEY
from stumble.analytics.timings import rollup_sources_sql as timings_ctes
from stumble.events import OPERATION_STATUSES
from stumble.plan.model import TrackingPlan


def day_scope(environment: str, day: dt.date, by: Dimension | None = None) -> Scope:
    return Scope(TimeRange.days(day, day), Filters(environment=environment), by)


def _cell_head(environment: str, day: dt.date, family: Family, dim: str) -> Sql:
    """The first four columns of a cell: environment, day, family, dim."""
    return render(
        "{env} AS environment, CAST({day} AS DATE) AS day, {family} AS family, {dim} AS dim",
        env=param(environment),
        day=param(day),
        family=param(str(family)),
        dim=param(dim),
    )


cell_head = _cell_head
"""Public for the families built in other modules (``rollup_reports``)."""


@dataclass(frozen=True, slots=True)
class Measure:
    """One measure of a cell, over the rows of a per-session (or per-event) CTE.

    ``condition``: which rows count (their number is the cell's ``sessions``, their weights
    its ``weighted``); ``duration``: milliseconds kept in the sketch; ``value``: a number
    summed into ``value_sum`` (for means). Expressions are SQL over the CTE's columns."""

    name: str
    condition: str = "true"
    duration: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class CellSource:
    """Where a family's cells come from: CTEs (``ctes``, starting with ``WITH``), the one
    rows are read from, its group and weight columns, and SQL for keys k1 to k4.

    ``all_dimensions``: ``group`` is the struct of every rolled dimension
    (``rollup_cells.dimensions_struct``), and one pass makes the cells of every level (no
    dimension, then each one); otherwise ``group`` is one dimension's value (or NULL)."""

    ctes: Sql
    table: str
    keys: tuple[Sql | str, Sql | str, Sql | str, Sql | str]
    group: str = "grp"
    weight: str = "weight"
    all_dimensions: bool = False


@dataclass(frozen=True, slots=True)
class CellTarget:
    """Whose cells a statement writes: environment, day, family, and the dimension when the
    source carries only one (``None``: no breakdown)."""

    environment: str
    day: dt.date
    family: Family
    dim: Dimension | None = None


def measure_cells(source: CellSource, measures: Sequence[Measure], target: CellTarget) -> Sql:
    """The cells of every measure per level, group and key: one pass over ``source.table``."""
    return source.ctes + _measure_ctes(source, measures, target, "") + _measure_select(target, "")


@dataclass(frozen=True, slots=True)
class CellPart:
    """One table of a statement shared by several parts (``shared_cells``): its source (whose
    ``ctes`` are the statement's, not its own), its measures and whose cells they are."""

    source: CellSource
    measures: tuple[Measure, ...]
    target: CellTarget


def shared_cells(ctes: Sql, parts: Sequence[CellPart]) -> Sql:
    """The cells of several tables of the same CTEs in one statement, so a report's CTEs
    (which cost far more than the cells) run once for all of them."""
    tails = [_measure_ctes(p.source, p.measures, p.target, f"_{i}") for i, p in enumerate(parts)]
    selects = [_measure_select(p.target, f"_{i}") for i, p in enumerate(parts)]
    return ctes + Sql.join("", tails) + "\n" + Sql.join("\nUNION ALL ", selects)


def _measure_ctes(
    source: CellSource, measures: Sequence[Measure], target: CellTarget, suffix: str
) -> Sql:
    """``rollup_x``: a row per source row and measure; ``rollup_g``: counted per group, key,
    measure and bucket; ``rollup_h``: the same per level (when the source carries all
    dimensions, each ``rollup_g`` row once per level: no dimension, then each one)."""
    structs = ", ".join(
        f"{{'m': '{m.name}', 'ok': {m.condition}, "
        f"'ms': CAST({m.duration or 'NULL'} AS DOUBLE), 'v': CAST({m.value or 'NULL'} AS DOUBLE)}}"
        for m in measures
    )
    keys = [as_sql(k) for k in source.keys]
    rows = render(
        ",\nrollup_x{s} AS (SELECT {group} AS grp, {k1} AS k1, {k2} AS k2, {k3} AS k3, "
        "{k4} AS k4, {weight} AS weight, unnest([{structs}]) AS u FROM {table}),\n"
        "rollup_g{s} AS (SELECT grp, k1, k2, k3, k4, u.m AS measure, "
        "CASE WHEN u.ms IS NULL THEN NULL ELSE {bucket} END AS key, count(*) AS c, "
        "sum(weight) AS w, sum(u.v) AS v FROM rollup_x{s} WHERE u.ok GROUP BY ALL)",
        group=source.group,
        weight=source.weight,
        structs=structs,
        table=source.table,
        bucket=bucket_key_sql("u.ms"),
        s=suffix,
        k1=keys[0],
        k2=keys[1],
        k3=keys[2],
        k4=keys[3],
    )
    if not source.all_dimensions:
        return rows + render(
            ",\nrollup_h{s} AS (SELECT {dim} AS dim, * FROM rollup_g{s})",
            dim=param(target.dim or ""),
            s=suffix,
        )
    # Counted per group (the struct) first, then per level: fewer rows to unnest.
    return rows + render(
        ",\nrollup_h{s} AS (SELECT rollup_level.dim AS dim, rollup_level.v AS grp, k1, k2, k3, "
        "k4, measure, key, sum(c) AS c, sum(w) AS w, sum(v) AS v FROM (SELECT *, "
        "unnest({levels}) AS rollup_level FROM rollup_g{s}) AS rollup_d GROUP BY ALL)",
        levels=dimensions_unnest("grp"),
        s=suffix,
    )


def _measure_select(target: CellTarget, suffix: str) -> Sql:
    return render(
        "\nSELECT {env} AS environment, CAST({day} AS DATE) AS day, {family} AS family, dim, "
        "grp AS dim_value, CAST(k1 AS VARCHAR) AS k1, CAST(k2 AS VARCHAR) AS k2, "
        "CAST(k3 AS VARCHAR) AS k3, CAST(k4 AS VARCHAR) AS k4, measure, sum(c) AS sessions, "
        "sum(c) AS events, sum(w) AS weighted, sum(v) AS value_sum, "
        "list(key ORDER BY key) FILTER (WHERE key IS NOT NULL) AS sketch_keys, "
        "list(c ORDER BY key) FILTER (WHERE key IS NOT NULL) AS sketch_counts "
        "FROM rollup_h{s} GROUP BY dim, grp, k1, k2, k3, k4, measure",
        env=param(target.environment),
        day=param(target.day),
        family=param(str(target.family)),
        s=suffix,
    )


NO_KEY: Final = "CAST(NULL AS VARCHAR)"


def funnel_statement(
    scenario: ScenarioSpec, environment: str, day: dt.date, dialect: SqlDialect
) -> Sql:
    """One SELECT of a scenario's funnel cells on a day, at every level: measure ``i`` per
    step (reached; time from the step before), ``total`` (first to last step); its
    ``last_action`` cells and its ``audience`` cells, all from one run of the funnel's CTEs."""
    query = FunnelQuery(day_scope(environment, day), scenario)
    last = len(scenario.steps) - 1
    measures = [Measure("0")]
    measures += [
        Measure(str(i), f"t{i} IS NOT NULL", gap_expr(query, i, dialect))
        for i in range(1, len(scenario.steps))
    ]
    if last:
        total = dialect.ms_between("t0", f"t{last}")
        measures.append(Measure(TOTAL_STEP, f"t{last} IS NOT NULL", total))
    name, hash_ = param(scenario.name), param(definition_hash(scenario))
    ctes = chain_sql(query, dialect, group=dimensions_struct()) + stopped_ctes(query, dialect)
    funnel = CellPart(
        CellSource(ctes, "chain", (name, NO_KEY, hash_, NO_KEY), all_dimensions=True),
        tuple(measures),
        CellTarget(environment, day, Family.FUNNEL),
    )
    stopped = CellPart(
        CellSource(
            ctes, "last_action", (name, "CAST(k AS VARCHAR)", hash_, "action"), all_dimensions=True
        ),
        (Measure("stopped"),),
        CellTarget(environment, day, Family.LAST_ACTION),
    )
    cells = shared_cells(ctes, [funnel, stopped])
    return cells + "\nUNION ALL " + _audience_select(scenario, environment, day)


def _audience_select(scenario: ScenarioSpec, environment: str, day: dt.date) -> Sql:
    """The ``audience`` cells, from the funnel's own ``chain`` (a row per session that started
    the scenario): per ui_version (the level), k1 the scenario, k2 an audience dimension, k3
    the definition hash, k4 its value; ``sessions`` started. Two dimensions in one cell, which
    no other level holds: compare's arms are ui_versions, and it asks who used each."""
    levels = ", ".join(
        f"{{'dim': '{d}', 'v': CAST(grp.{d} AS VARCHAR)}}" for d in AUDIENCE_DIMENSIONS
    )
    return render(
        "SELECT {head}, CAST(grp.ui_version AS VARCHAR) AS dim_value, {scenario} AS k1, "
        "a.dim AS k2, {hash} AS k3, a.v AS k4, 'started' AS measure, count(*) AS sessions, "
        "count(*) AS events, sum(weight) AS weighted, CAST(NULL AS DOUBLE) AS value_sum, "
        "CAST(NULL AS INTEGER[]) AS sketch_keys, CAST(NULL AS BIGINT[]) AS sketch_counts "
        "FROM (SELECT grp, weight, unnest([{levels}]) AS a FROM chain) AS rollup_a "
        "GROUP BY grp.ui_version, a.dim, a.v",
        head=_cell_head(environment, day, Family.AUDIENCE, "ui_version"),
        scenario=param(scenario.name),
        hash=param(definition_hash(scenario)),
        levels=levels,
    )


def built_marker(environment: str, day: dt.date, family: Family, key: str, hash_: str) -> Sql:
    """The marker saying this day was built for ``family``/``key`` under ``hash_``."""
    return render(
        "SELECT {head}, CAST(NULL AS VARCHAR) AS dim_value, {family} AS k1, {key} AS k2, "
        "{hash} AS k3, CAST(NULL AS VARCHAR) AS k4, 'built' AS measure, 0 AS sessions, "
        "0 AS events, CAST(NULL AS DOUBLE) AS weighted, CAST(NULL AS DOUBLE) AS value_sum, "
        "CAST(NULL AS INTEGER[]) AS sketch_keys, CAST(NULL AS BIGINT[]) AS sketch_counts",
        head=_cell_head(environment, day, Family.BUILT, ""),
        family=param(str(family)),
        key=param(key),
        hash=param(hash_),
    )


def sampling_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    return render(
        "SELECT {head}, CAST(NULL AS VARCHAR) AS dim_value, "
        "CAST(sample_rate AS VARCHAR) AS k1, CAST(NULL AS VARCHAR) AS k2, "
        "CAST(NULL AS VARCHAR) AS k3, CAST(NULL AS VARCHAR) AS k4, 'rate' AS measure, "
        "count(DISTINCT session_id) AS sessions, count(*) AS events, "
        "CAST(NULL AS DOUBLE) AS weighted, CAST(NULL AS DOUBLE) AS value_sum, "
        "CAST(NULL AS INTEGER[]) AS sketch_keys, CAST(NULL AS BIGINT[]) AS sketch_counts "
        "FROM events WHERE {scope} GROUP BY sample_rate",
        head=_cell_head(environment, day, Family.SAMPLING, ""),
        scope=scope_filter(day_scope(environment, day), dialect),
    )


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """What the tracking plan decides about rollups: the scenarios and forms they count, and
    the closed fields (event name, column) whose stored values health counts."""

    scenarios: tuple[ScenarioSpec, ...]
    forms: tuple[FormSpec, ...]
    closed: tuple[tuple[str, str], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    """(old target, current target): clicks count renamed targets under their current name."""
    frustration: FrustrationThresholds = field(default_factory=FrustrationThresholds)
    """The settings' thresholds: frustration cells answer the reports asked with them."""

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, frustration: FrustrationThresholds | None = None
    ) -> RollupPlan:
        facts = PlanFacts.from_plan(plan)
        closed = tuple((name, column) for name, column, values in facts.allowed_values if values)
        aliases = tuple(sorted(plan.aliases.items()))
        thresholds = frustration or FrustrationThresholds()
        return cls(all_scenarios(plan), form_specs(plan), closed, aliases, thresholds)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a definition that rollups count by changes, or what the builders
        make of it: such days are rebuilt, so a new family's cells are built for the days
        before it. Both are in the SQL the builders write for a day (rendered for a fixed
        one): the plan's scenarios, forms, closed fields and aliases and the frustration
        thresholds are its parameters, each family's definition is in its ``built`` marker.
        A change to any of them changes it without anyone raising ``CELLS_REVISION``."""
        statements = day_statements(self, "fingerprint", _FINGERPRINT_DAY, dialect_for("duckdb"))
        return definition_hash((tuple((s.text, s.params) for s in statements), CELLS_REVISION))


CELLS_REVISION: Final = 8
"""Raise it when cells change meaning while the SQL that builds them does not (a change in
how stored rows are written, say): every unsealed day is then rebuilt."""
_FINGERPRINT_DAY: Final = dt.date(2000, 1, 1)


FamilyBuilder = Callable[[RollupPlan, str, dt.date, SqlDialect], list[Sql]]
"""The SELECTs of one family's cells for (plan, environment, day, dialect), with the
``built_marker`` of every definition it covers."""


def funnel_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    statements: list[Sql] = []
    for scenario in plan.scenarios:
        hash_ = definition_hash(scenario)
        statements.extend(
            built_marker(environment, day, family, scenario.name, hash_)
            for family in (Family.FUNNEL, Family.AUDIENCE, Family.LAST_ACTION)
        )
        statements.append(funnel_statement(scenario, environment, day, dialect))
    return statements


def volume_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """Per level: sessions (``sessions``) and their events (``value_sum``) — what the pickers
    list and data health counts — and the sessions with an error of each kind
    (measure ``error:<kind>``, compare's session error rates)."""
    kinds = ", ".join(
        dialect.any_of(f"kind = 'error' AND error_kind = '{kind}'") + f" AS error_{kind}"
        for kind in SESSION_ERROR_KINDS
    )
    ctes = render(
        "WITH rollup_s AS (SELECT {sid} AS sid, min({dims}) AS grp, count(*) AS n, "
        "min({weight}) AS weight, {kinds} FROM events WHERE {scope} GROUP BY sid)",
        sid=dialect.session_key("session_id"),
        dims=dimensions_struct(),
        weight=dialect.weight("sample_rate"),
        kinds=kinds,
        scope=scope_filter(day_scope(environment, day), dialect),
    )
    source = CellSource(ctes, "rollup_s", (NO_KEY,) * 4, all_dimensions=True)
    measures = [Measure("sessions", value="n")]
    measures += [Measure(f"error:{kind}", f"error_{kind}") for kind in SESSION_ERROR_KINDS]
    return measure_cells(source, measures, CellTarget(environment, day, Family.VOLUME))


def volume_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    del plan  # volume does not depend on the plan
    return [
        built_marker(environment, day, Family.VOLUME, "", VOLUME_DEFINITION),
        volume_statement(environment, day, dialect),
    ]


def sampling_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    del plan  # every day records its sample rates, whatever the plan
    return [sampling_statement(environment, day, dialect)]


def report_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    """Active sessions, failures, usage and health (``rollup_reports``)."""
    # Imported here: that module builds on this one's primitives (a top import would cycle).
    from stumble.analytics.rollup_reports import report_cells as build  # noqa: PLC0415

    return build(plan, environment, day, dialect)


# --- field errors and form steps ------------------------------------------------------------


def field_error_statement(
    forms: tuple[FormSpec, ...], environment: str, day: dt.date, dialect: SqlDialect
) -> Sql:
    """The ``field_error`` and ``form_step`` cells of a day at every level, from the report's
    own CTEs over every stored form (the plan's forms give the entries), whose ``grp`` is the
    struct of every rolled dimension (a session's value of each is its only one)."""
    query = FieldErrorQuery(day_scope(environment, day), forms, restricted=False)
    on_step = dialect.ms_between("entered_at", "done_at")
    completed = "done_at IS NOT NULL"
    error_keys = ("form_id", "step", "field_id", "error_type")
    step_keys = ("form_id", "step", NO_KEY, NO_KEY)
    errors = CellTarget(environment, day, Family.FIELD_ERROR)
    steps = CellTarget(environment, day, Family.FORM_STEP)
    parts = [
        CellPart(
            _all_levels("with_errors", error_keys),
            (
                Measure("with_error"),
                Measure("done_with", completed, on_step),
                Measure(
                    "attempts", f"{completed} AND attempts IS NOT NULL", "attempts", "attempts"
                ),
            ),
            errors,
        ),
        # Per event: its ``sessions`` is the number of error events.
        CellPart(_all_levels("error_events", error_keys), (Measure("events"),), errors),
        CellPart(
            _all_levels("done", step_keys),
            (
                Measure("entered"),
                Measure("any_error", "any_error"),
                Measure("completed", completed, on_step),
                Measure("input", completed, dialect.ms_between("entered_at", "first_submit_at")),
                Measure(
                    "fixing",
                    f"{completed} AND any_error",
                    dialect.ms_between("first_submit_at", "done_at"),
                ),
            ),
            steps,
        ),
        # ``seen`` says a step was seen at a level and value; its count (of the groups it was
        # seen in, one struct of every dimension each) is not read.
        CellPart(
            _all_levels("seen_by", step_keys, weight="CAST(NULL AS DOUBLE)"),
            (Measure("seen"),),
            steps,
        ),
    ]
    return shared_cells(field_errors_ctes(query, dialect, group=dimensions_struct()), parts)


def _all_levels(
    table: str, keys: tuple[Sql | str, Sql | str, Sql | str, Sql | str], weight: str = "weight"
) -> CellSource:
    """A table of shared CTEs (``shared_cells``) whose ``grp`` carries every dimension."""
    return CellSource(Sql(""), table, keys, weight=weight, all_dimensions=True)


def entry_shared(form: FormSpec, forms: Sequence[FormSpec]) -> bool:
    """Whether an event could enter ``form`` and another form: the report gives it to the
    first such form of its query, so a query of a subset could count it elsewhere."""
    if form.entry is None:
        return False
    mine = dict(form.entry.where)
    for other in forms:
        if other.form_id == form.form_id or other.entry is None:
            continue
        if other.entry.event_name == form.entry.event_name and all(
            mine.get(column, value) == value for column, value in other.entry.where
        ):
            return True
    return False


def field_error_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    """Markers: ``*`` under the hash of the plan's forms (a query of every stored form), and
    each form under its own hash (a query of some forms) unless its entry is shared."""
    statements = [
        built_marker(environment, day, Family.FIELD_ERROR, ALL_FORMS, definition_hash(plan.forms))
    ]
    statements += [
        built_marker(environment, day, Family.FIELD_ERROR, form.form_id, definition_hash(form))
        for form in plan.forms
        if not entry_shared(form, plan.forms)
    ]
    if plan.forms:
        statements.append(field_error_statement(plan.forms, environment, day, dialect))
    return statements


# --- operation timings ----------------------------------------------------------------------


def timing_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """The ``timing`` and ``timing_phase`` cells of a day at every level: every operation
    (k1), its phases by checkpoint name (k2), from the report's own instances, whose ``grp``
    is the struct of every rolled dimension."""
    query = TimingQuery(day_scope(environment, day))
    operation = ("operation", NO_KEY, NO_KEY, NO_KEY)
    phase = ("operation", "name", NO_KEY, NO_KEY)
    no_weight = "CAST(NULL AS DOUBLE)"
    timing = CellTarget(environment, day, Family.TIMING)
    phases = CellTarget(environment, day, Family.TIMING_PHASE)
    statuses = tuple(
        Measure(status, f"status = '{status}'", "duration" if status == "success" else None)
        for status in OPERATION_STATUSES
    )
    parts = [
        CellPart(
            _all_levels("ops", operation),
            (
                Measure("instances"),
                Measure("ended", "status IS NOT NULL"),
                Measure("all", "duration IS NOT NULL", "duration"),
                Measure("started", "t_start IS NOT NULL"),
                *statuses,
            ),
            timing,
        ),
        CellPart(
            _all_levels("per_session", operation, weight=no_weight),
            (Measure("sessions", "has_ended"), Measure("retries", value="retries")),
            timing,
        ),
        CellPart(
            _all_levels("phase_rows", phase),
            (Measure("seen", "seen"), Measure("gap", "g IS NOT NULL", "g", "g")),
            phases,
        ),
        CellPart(
            _all_levels("phase_sessions", phase, weight=no_weight),
            (Measure("sessions", "has"),),
            phases,
        ),
    ]
    return shared_cells(timings_ctes(query, dialect, dimensions_struct()), parts)


def timing_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    del plan  # every operation stored, whatever the plan
    marker = built_marker(
        environment, day, Family.TIMING, TIMING_KEY, definition_hash(TIMING_DEFINITION)
    )
    return [marker, timing_statement(environment, day, dialect)]


FAMILY_BUILDERS: Final[tuple[FamilyBuilder, ...]] = (
    sampling_cells,
    volume_cells,
    funnel_cells,
    field_error_cells,
    timing_cells,
    report_cells,
)
"""Every family a day holds; a new family adds its builder here (and its readers)."""


def day_statements(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    """Every cell of one (environment, day)."""
    return [
        statement
        for builder in FAMILY_BUILDERS
        for statement in builder(plan, environment, day, dialect)
    ]
