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
* ``built``: a marker per family key and definition (k1 family, k2 key, k3 hash), written
  even when the day had no session for it, so a reader knows the day was built with the
  definition it asks about.
* ``sampling``: k1 a sample rate seen that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from stumble.analytics.funnels import chain_sql, gap_expr
from stumble.analytics.queries import (
    Dimension,
    Filters,
    FormSpec,
    FunnelQuery,
    PlanFacts,
    ScenarioSpec,
    Scope,
    TimeRange,
    all_scenarios,
    form_specs,
)
from stumble.analytics.rollup_cells import (
    SESSION_ERROR_KINDS,
    TOTAL_STEP,
    VOLUME_DEFINITION,
    Family,
    definition_hash,
    dimensions_struct,
    dimensions_unnest,
)
from stumble.analytics.sketch import bucket_key_sql
from stumble.analytics.sql import Sql, SqlDialect, as_sql, param, render, scope_filter
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
    structs = ", ".join(
        f"{{'m': '{m.name}', 'ok': {m.condition}, "
        f"'ms': CAST({m.duration or 'NULL'} AS DOUBLE), 'v': CAST({m.value or 'NULL'} AS DOUBLE)}}"
        for m in measures
    )
    keys = [as_sql(k) for k in source.keys]
    if source.all_dimensions:
        levels = render(
            ",\nrollup_d AS (SELECT *, unnest({levels}) AS rollup_level FROM {table})",
            levels=dimensions_unnest(source.group),
            table=source.table,
        )
        table, dim, group = "rollup_d", "rollup_level.dim", "rollup_level.v"
    else:
        levels, table, dim, group = Sql(""), source.table, "?", source.group
    dim_sql = Sql(dim, () if source.all_dimensions else (target.dim or "",))
    return (
        source.ctes
        + levels
        + render(
            ",\nrollup_x AS (SELECT {dim} AS dim, {group} AS grp, {k1} AS k1, {k2} AS k2, "
            "{k3} AS k3, {k4} AS k4, {weight} AS weight, unnest([{structs}]) AS u FROM {table}),\n"
            "rollup_h AS (SELECT dim, grp, k1, k2, k3, k4, u.m AS measure, "
            "CASE WHEN u.ms IS NULL THEN NULL ELSE {bucket} END AS key, count(*) AS c, "
            "sum(weight) AS w, sum(u.v) AS v FROM rollup_x WHERE u.ok GROUP BY ALL)\n"
            "SELECT {env} AS environment, CAST({day} AS DATE) AS day, {family} AS family, dim, "
            "grp AS dim_value, CAST(k1 AS VARCHAR) AS k1, CAST(k2 AS VARCHAR) AS k2, "
            "CAST(k3 AS VARCHAR) AS k3, CAST(k4 AS VARCHAR) AS k4, measure, sum(c) AS sessions, "
            "sum(c) AS events, sum(w) AS weighted, sum(v) AS value_sum, "
            "list(key ORDER BY key) FILTER (WHERE key IS NOT NULL) AS sketch_keys, "
            "list(c ORDER BY key) FILTER (WHERE key IS NOT NULL) AS sketch_counts "
            "FROM rollup_h GROUP BY dim, grp, k1, k2, k3, k4, measure",
            dim=dim_sql,
            group=group,
            k1=keys[0],
            k2=keys[1],
            k3=keys[2],
            k4=keys[3],
            weight=source.weight,
            structs=structs,
            table=table,
            bucket=bucket_key_sql("u.ms"),
            env=param(target.environment),
            day=param(target.day),
            family=param(str(target.family)),
        )
    )


NO_KEY: Final = "CAST(NULL AS VARCHAR)"


def funnel_statement(
    scenario: ScenarioSpec, environment: str, day: dt.date, dialect: SqlDialect
) -> Sql:
    """One SELECT of a scenario's funnel cells on a day, at every level: measure ``i`` per
    step (reached; time from the step before), ``total`` (first to last step)."""
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
    source = CellSource(
        chain_sql(query, dialect, group=dimensions_struct()),
        "chain",
        (param(scenario.name), NO_KEY, param(definition_hash(scenario)), NO_KEY),
        all_dimensions=True,
    )
    return measure_cells(source, measures, CellTarget(environment, day, Family.FUNNEL))


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

    @classmethod
    def from_plan(cls, plan: TrackingPlan) -> RollupPlan:
        facts = PlanFacts.from_plan(plan)
        closed = tuple((name, column) for name, column, values in facts.allowed_values if values)
        return cls(all_scenarios(plan), form_specs(plan), closed)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a definition that rollups count by changes, or what the builders
        make of it (their names and ``CELLS_REVISION``): such days are rebuilt."""
        builders = tuple(builder.__name__ for builder in FAMILY_BUILDERS)
        return definition_hash((self.scenarios, self.forms, self.closed, builders, CELLS_REVISION))


CELLS_REVISION: Final = 1
"""Raise it when a builder's cells change meaning (every unsealed day is then rebuilt)."""


FamilyBuilder = Callable[[RollupPlan, str, dt.date, SqlDialect], list[Sql]]
"""The SELECTs of one family's cells for (plan, environment, day, dialect), with the
``built_marker`` of every definition it covers."""


def funnel_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    statements = []
    for scenario in plan.scenarios:
        marker = built_marker(
            environment, day, Family.FUNNEL, scenario.name, definition_hash(scenario)
        )
        statements.append(marker)
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


FAMILY_BUILDERS: Final[tuple[FamilyBuilder, ...]] = (
    sampling_cells,
    volume_cells,
    funnel_cells,
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
