"""What one (environment, UTC day) of rollups holds, as SELECTs over that day's raw rows.

A *cell* of the ``rollups`` table is (environment, day, family, dimension and value, keys k1 to k4)
with ``sessions``, ``events``, ``weighted`` (sessions re-weighted for sampling) and a duration
sketch (``analytics.sketch``). Every family is built once without a breakdown (``dim = ''``)
and once per rolled dimension (``ROLLED_DIMENSIONS``), so a report can read a total, a
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
from collections.abc import Sequence

from stumble.analytics.funnels import chain_sql, gap_expr
from stumble.analytics.queries import (
    Dimension,
    Filters,
    FunnelQuery,
    ScenarioSpec,
    Scope,
    TimeRange,
)
from stumble.analytics.rollup_cells import (
    ROLLED_DIMENSIONS,
    TOTAL_STEP,
    Family,
    definition_hash,
)
from stumble.analytics.sketch import bucket_key_sql
from stumble.analytics.sql import Sql, SqlDialect, param, render, scope_filter


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


def funnel_statement(
    scenario: ScenarioSpec,
    environment: str,
    day: dt.date,
    dim: Dimension | None,
    dialect: SqlDialect,
) -> Sql:
    """One SELECT of the funnel cells of a scenario on a day, by one dimension (or none)."""
    query = FunnelQuery(day_scope(environment, day, dim), scenario)
    last = len(scenario.steps) - 1
    parts = ["{'step': '0', 'ms': CAST(NULL AS DOUBLE), 'ok': true}"]
    for i in range(1, len(scenario.steps)):
        gap = gap_expr(query, i, dialect)
        parts.append(f"{{'step': '{i}', 'ms': {gap}, 'ok': t{i} IS NOT NULL}}")
    if last:
        total = dialect.ms_between("t0", f"t{last}")
        parts.append(f"{{'step': '{TOTAL_STEP}', 'ms': {total}, 'ok': t{last} IS NOT NULL}}")
    key = bucket_key_sql("u.ms")
    return chain_sql(query, dialect) + render(
        ",\nrollup_x AS (SELECT grp, weight, unnest([{parts}]) AS u FROM chain),\n"
        "rollup_h AS (SELECT grp, u.step AS step, CASE WHEN u.ms IS NULL THEN NULL ELSE {key} END AS key, "
        "count(*) AS c, sum(weight) AS w FROM rollup_x WHERE u.ok GROUP BY ALL)\n"
        "SELECT {head}, grp AS dim_value, {scenario} AS k1, step AS k2, {hash} AS k3, "
        "CAST(NULL AS VARCHAR) AS k4, sum(c) AS sessions, sum(c) AS events, sum(w) AS weighted, "
        "list(key ORDER BY key) FILTER (WHERE key IS NOT NULL) AS sketch_keys, "
        "list(c ORDER BY key) FILTER (WHERE key IS NOT NULL) AS sketch_counts "
        "FROM rollup_h GROUP BY grp, step",
        parts=", ".join(parts),
        key=key,
        head=_cell_head(environment, day, Family.FUNNEL, dim or ""),
        scenario=param(scenario.name),
        hash=param(definition_hash(scenario)),
    )


def built_marker(environment: str, day: dt.date, family: Family, key: str, hash_: str) -> Sql:
    """The marker saying this day was built for ``family``/``key`` under ``hash_``."""
    return render(
        "SELECT {head}, CAST(NULL AS VARCHAR) AS dim_value, {family} AS k1, {key} AS k2, "
        "{hash} AS k3, CAST(NULL AS VARCHAR) AS k4, 0 AS sessions, 0 AS events, "
        "CAST(NULL AS DOUBLE) AS weighted, CAST(NULL AS INTEGER[]) AS sketch_keys, "
        "CAST(NULL AS BIGINT[]) AS sketch_counts",
        head=_cell_head(environment, day, Family.BUILT, ""),
        family=param(str(family)),
        key=param(key),
        hash=param(hash_),
    )


def sampling_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    return render(
        "SELECT {head}, CAST(NULL AS VARCHAR) AS dim_value, "
        "CAST(sample_rate AS VARCHAR) AS k1, CAST(NULL AS VARCHAR) AS k2, "
        "CAST(NULL AS VARCHAR) AS k3, CAST(NULL AS VARCHAR) AS k4, "
        "count(DISTINCT session_id) AS sessions, count(*) AS events, "
        "CAST(NULL AS DOUBLE) AS weighted, CAST(NULL AS INTEGER[]) AS sketch_keys, "
        "CAST(NULL AS BIGINT[]) AS sketch_counts FROM events WHERE {scope} GROUP BY sample_rate",
        head=_cell_head(environment, day, Family.SAMPLING, ""),
        scope=scope_filter(day_scope(environment, day), dialect),
    )


def day_statements(
    scenarios: Sequence[ScenarioSpec], environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    """Every cell of one (environment, day)."""
    statements = [sampling_statement(environment, day, dialect)]
    for scenario in scenarios:
        statements.append(
            built_marker(environment, day, Family.FUNNEL, scenario.name, definition_hash(scenario))
        )
        statements.extend(
            funnel_statement(scenario, environment, day, dim, dialect)
            for dim in (None, *ROLLED_DIMENSIONS)
        )
    return statements
