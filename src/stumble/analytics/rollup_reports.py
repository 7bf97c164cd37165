"""Daily cells of the failures, usage and health reports (``rollup_build`` registers them).

Each statement reuses the report's own per-day CTE where one exists, so a cell counts what the
raw report counts on that day. Families (``k4`` names the part of a family):

* ``active``: sessions with any event (their weights): the share denominators of failures
  and usage. Keys all NULL.
* ``failures``, measure ``errors`` (sessions; ``value_sum`` events) per error table
  (k4 ``by_kind``...; k1 to k3 the table's keys); measures ``started``/``hit`` per scenario
  (k4 ``scenario``, k1 scenario, k2 error kind or ``*``); per-event measures of the vitals
  (k4 ``api``, ``long_task`` or ``vital``; k1 route or screen, k2 metric): ``n`` with the
  value's sketch (k3 the rating), ``sessions`` (each session's first row, k3 NULL).
* ``usage``: measure ``used`` per feature (k1): sessions, weights, ``value_sum`` events.
* ``clicks``: k1 screen, k2 target (after the plan's aliases), k3 position, k4 the row of
  the report (``target``; ``clicked`` and ``viewed`` per screen); measure ``n``: sessions,
  ``value_sum`` events.
* ``frustration``: k1 signal, k2 screen, k3 target; measure ``n``: sessions, ``value_sum``
  events; counted with the settings' thresholds (their hash is the definition).
* ``paths``: k1 ``next`` or ``previous``, k2 a screen, k3 the screen after it (``(left)``:
  none) or before it, at every level; for everyone only, k1 ``path``: k2 the start, k3 the
  end, k4 the screens from one to the other (`` > ``-joined), the day's
  ``PATHS_KEPT_PER_PAIR`` most frequent; measure ``sessions``; and k1 ``cut`` (k2, k3 as
  ``path``), measure ``cut``: ``value_sum`` the most sessions a path not kept had.
* ``loops``: per screen (k1) ``loops.LOOP_MEASURES``: its sessions (``value_sum`` views),
  those that reopened it, and per navigation kind those that used it (``value_sum`` events).
* ``health`` (no breakdown; k1 the *receive* day, which a report window is about): k4
  ``day``, measures ``events`` (sessions; ``value_sum`` events) and ``redacted``; measure
  ``count`` (events in ``value_sum``) for k4 ``names`` (k2 name, k3 kind) and ``versions``
  (k2 schema version); measure ``value`` per stored value (k4) of a closed field (k2 event
  name, k3 column): values the plan allows are identifiers, and which ones the *current*
  plan no longer allows is decided when reading.

Distinct values over a range (fingerprints, routes, versions) are keys, never counts, so the
cells of several days add up. No key holds a session id.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from stumble.analytics.clicks import ClickQuery, clicks_cells
from stumble.analytics.clicks import per_session_cte as clicks_cte
from stumble.analytics.failures import (
    ERROR_TABLES,
    VITAL_SCALE,
    VITAL_THRESHOLDS,
    errors_cte,
    failures_cells,
)
from stumble.analytics.frustration import (
    FrustrationQuery,
    FrustrationThresholds,
    frustration_cells,
)
from stumble.analytics.frustration import per_session_cte as frustration_cte
from stumble.analytics.health import health_cells
from stumble.analytics.loops import LOOP_MEASURES, loops_cells, per_screen_cte
from stumble.analytics.paths import PathQuery, kept_paths_cte, paths_cells
from stumble.analytics.paths import per_session_cte as paths_cte
from stumble.analytics.queries import FailureQuery, LoopQuery, ScenarioSpec, UsageQuery
from stumble.analytics.rollup_build import (
    NO_KEY,
    CellPart,
    CellSource,
    CellTarget,
    Measure,
    RollupPlan,
    built_marker,
    day_scope,
    measure_cells,
    shared_cells,
)
from stumble.analytics.rollup_cells import Family, dimensions_struct
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    param,
    render,
    scope_filter,
    step_condition,
)
from stumble.analytics.usage import per_session_cte, usage_cells

# --- active sessions ----------------------------------------------------------------------


def active_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """Sessions with any event, at every level (``grp`` carries every rolled dimension)."""
    ctes = render(
        "WITH a AS (SELECT {sid} AS sid, {grp} AS grp, {weight} AS weight FROM events "
        "WHERE {scope} GROUP BY sid, grp)",
        sid=dialect.session_key("session_id"),
        grp=dimensions_struct(),
        weight=dialect.weight("min(sample_rate)"),
        scope=scope_filter(day_scope(environment, day), dialect),
    )
    source = CellSource(ctes, "a", (NO_KEY, NO_KEY, NO_KEY, NO_KEY), all_dimensions=True)
    return measure_cells(source, [Measure("active")], CellTarget(environment, day, Family.ACTIVE))


# --- failures -----------------------------------------------------------------------------


def errors_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """Per error table: one row per session and key with its error events, at every level
    (``grp`` carries every rolled dimension)."""
    query = FailureQuery(day_scope(environment, day))
    parts = Sql.join(
        " UNION ALL ", (_error_part(name, keys) for name, keys in ERROR_TABLES.items())
    )
    ctes = errors_cte(query, dialect, dimensions_struct()) + render(
        ", ep AS ({parts})", parts=parts
    )
    source = CellSource(ctes, "ep", ("a", "b", "c", "part"), all_dimensions=True)
    return measure_cells(
        source, [Measure("errors", value="n")], CellTarget(environment, day, Family.FAILURES)
    )


ERROR_ROWS: Final = {
    "fingerprint": "fingerprint IS NOT NULL",
    "status_class": "http_status IS NOT NULL",
}
"""As ``failures._where``: fingerprints count JS errors, statuses HTTP errors."""


def _error_part(name: str, keys: tuple[str, ...]) -> Sql:
    padded = [f"CAST({k} AS VARCHAR)" for k in keys] + [NO_KEY] * (3 - len(keys))
    return render(
        "SELECT {name} AS part, {a} AS a, {b} AS b, {c} AS c, grp, session_id, "
        "any_value(weight) AS weight, count(*) AS n FROM e WHERE {rows} GROUP BY ALL",
        name=param(name),
        a=padded[0],
        b=padded[1],
        c=padded[2],
        rows=next((ERROR_ROWS[k] for k in keys if k in ERROR_ROWS), "true"),
    )


def scenarios_statement(
    scenarios: tuple[ScenarioSpec, ...],
    environment: str,
    day: dt.date,
    dialect: SqlDialect,
) -> Sql:
    """``failures.scenarios_sql`` per group: a session's start and its errors in one group,
    at every level (``grp`` carries every rolled dimension)."""
    scope = day_scope(environment, day)
    anchors = Sql.join(
        " UNION ALL ",
        (
            render(
                "SELECT {name} AS scenario, {sid} AS session_id, {grp} AS grp, min(ts) AS t0, "
                "{deadline} AS deadline, {weight} AS weight FROM events "
                "WHERE {scope} AND {first} GROUP BY 2, 3",
                name=param(s.name),
                sid=dialect.session_key("session_id"),
                grp=dimensions_struct(),
                deadline=dialect.plus_ms("min(ts)", s.window_ms),
                weight=dialect.weight("min(sample_rate)"),
                scope=scope_filter(scope, dialect),
                first=step_condition(s.steps[0]),
            )
            for s in scenarios
        ),
    )
    ctes = render(
        "WITH starts AS ({anchors}), "
        "errs AS (SELECT event_id, {sid} AS session_id, {grp} AS grp, error_kind, ts "
        "FROM events WHERE {scope} AND kind = 'error'), "
        "owned AS (SELECT e.event_id, e.session_id, e.grp, e.error_kind, {latest} AS scenario, "
        "any_value(s.weight) AS weight FROM errs AS e JOIN starts AS s "
        "ON e.session_id = s.session_id AND e.grp IS NOT DISTINCT FROM s.grp AND e.ts >= s.t0 "
        "AND e.ts <= s.deadline GROUP BY e.event_id, e.session_id, e.grp, e.error_kind), "
        "hits AS (SELECT scenario, session_id, grp, error_kind, any_value(weight) AS weight "
        "FROM owned GROUP BY ALL), "
        "sp AS (SELECT scenario, NULL AS kind, true AS is_start, grp, weight FROM starts "
        "UNION ALL SELECT scenario, '*', false, grp, any_value(weight) FROM hits "
        "GROUP BY scenario, session_id, grp "
        "UNION ALL SELECT scenario, error_kind, false, grp, weight FROM hits)",
        anchors=anchors,
        sid=dialect.session_key("session_id"),
        grp=dimensions_struct(),
        scope=scope_filter(scope, dialect),
        latest=dialect.arg_max("s.scenario", "s.t0"),
    )
    source = CellSource(ctes, "sp", ("scenario", "kind", NO_KEY, "'scenario'"), all_dimensions=True)
    measures = [Measure("started", "is_start"), Measure("hit", "NOT is_start")]
    return measure_cells(source, measures, CellTarget(environment, day, Family.FAILURES))


def vitals_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """API timings, long tasks and Web Vitals: one row per measurement, at every level
    (``grp`` carries every rolled dimension)."""
    scope = day_scope(environment, day)
    rated = " ".join(
        f"WHEN metric = '{metric}' THEN CASE WHEN value <= {good} THEN 'good' "
        f"WHEN value > {poor} THEN 'poor' ELSE 'needs-improvement' END"
        for metric, (good, poor) in VITAL_THRESHOLDS.items()
    )
    scaled = " ".join(f"WHEN metric = '{m}' THEN value * {f!r}" for m, f in VITAL_SCALE.items())
    metrics = ", ".join(f"'{m}'" for m in VITAL_THRESHOLDS)
    ctes = render(
        "WITH v AS (SELECT CASE metric WHEN 'api' THEN 'api' WHEN 'long_task' THEN 'long_task' "
        "ELSE 'vital' END AS part, CASE WHEN metric = 'api' THEN route ELSE screen_id END AS a, "
        "CASE WHEN metric IN ('api', 'long_task') THEN NULL ELSE metric END AS b, "
        "{sid} AS sid, {grp} AS grp, {weight} AS weight, CASE {scaled} ELSE value END AS ms, "
        "CASE WHEN metric IN ('api', 'long_task') THEN NULL "
        "ELSE coalesce(rating, CASE {rated} END) END AS r FROM events "
        "WHERE {scope} AND kind = 'vital' AND metric IN ('api', 'long_task', {metrics})), "
        "vr AS (SELECT part, a, b, grp, weight, ms, r, false AS first FROM v UNION ALL "
        "SELECT part, a, b, grp, any_value(weight), NULL, NULL, true FROM v "
        "GROUP BY part, a, b, grp, sid)",
        sid=dialect.session_key("session_id"),
        grp=dimensions_struct(),
        weight=dialect.weight("sample_rate"),
        scaled=scaled,
        rated=rated,
        scope=scope_filter(scope, dialect),
        metrics=metrics,
    )
    # The rating is a key, not a measure: two rows per measurement instead of five, and the
    # sketches of the three ratings add up to the metric's.
    measures = [Measure("n", "NOT first", duration="ms"), Measure("sessions", "first")]
    source = CellSource(ctes, "vr", ("a", "b", "r", "part"), all_dimensions=True)
    return measure_cells(source, measures, CellTarget(environment, day, Family.FAILURES))


# --- usage --------------------------------------------------------------------------------


def usage_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """Per feature, at every level (``grp`` carries every rolled dimension)."""
    query = UsageQuery(day_scope(environment, day))
    source = CellSource(
        per_session_cte(query, dialect, dimensions_struct()),
        "u",
        ("event_name", NO_KEY, NO_KEY, NO_KEY),
        all_dimensions=True,
    )
    return measure_cells(
        source, [Measure("used", value="events")], CellTarget(environment, day, Family.USAGE)
    )


# --- loops --------------------------------------------------------------------------------


def loops_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """Per screen, at every level (``grp`` carries every rolled dimension)."""
    query = LoopQuery(day_scope(environment, day))
    source = CellSource(
        per_screen_cte(query, dialect, dimensions_struct()),
        "s",
        ("screen_id", NO_KEY, NO_KEY, NO_KEY),
        all_dimensions=True,
    )
    return measure_cells(source, LOOP_MEASURES, CellTarget(environment, day, Family.LOOPS))


# --- clicks -------------------------------------------------------------------------------


def clicks_statement(
    aliases: tuple[tuple[str, str], ...], environment: str, day: dt.date, dialect: SqlDialect
) -> Sql:
    """Per screen, target and position (after the plan's aliases), at every level."""
    query = ClickQuery(day_scope(environment, day), aliases)
    source = CellSource(
        clicks_cte(query, dialect, dimensions_struct()),
        "ct",
        ("screen_id", "target", "position", "row_kind"),
        all_dimensions=True,
    )
    measures = [Measure("n", value="events")]
    return measure_cells(source, measures, CellTarget(environment, day, Family.CLICKS))


# --- frustration --------------------------------------------------------------------------


def frustration_statement(
    thresholds: FrustrationThresholds, environment: str, day: dt.date, dialect: SqlDialect
) -> Sql:
    """Per signal, screen and target, at every level, with the settings' thresholds."""
    query = FrustrationQuery(day_scope(environment, day), thresholds)
    source = CellSource(
        frustration_cte(query, dialect, dimensions_struct()),
        "fs",
        ("signal", "screen_id", "target", NO_KEY),
        all_dimensions=True,
    )
    measures = [Measure("n", value="n")]
    return measure_cells(source, measures, CellTarget(environment, day, Family.FRUSTRATION))


# --- paths --------------------------------------------------------------------------------


def paths_statement(environment: str, day: dt.date, dialect: SqlDialect) -> Sql:
    """Per screen and the screen after (or before) it, at every level; the day's most
    frequent paths between each two screens, and what the others had at most, for everyone
    (no breakdown: paths would outnumber every other cell of the day)."""
    query = PathQuery(day_scope(environment, day))
    ctes = paths_cte(query, dialect, dimensions_struct()) + kept_paths_cte()
    neighbours = CellSource(
        ctes, "ps", ("direction", "screen", "other", NO_KEY), all_dimensions=True
    )
    kept = CellSource(
        ctes, "kept", ("direction", "start_screen", "end_screen", "path"), group="NULL"
    )
    cut = CellSource(ctes, "cut", ("direction", "start_screen", "end_screen", NO_KEY), group="NULL")
    target = CellTarget(environment, day, Family.PATHS)
    return shared_cells(
        ctes,
        [
            CellPart(neighbours, (Measure("sessions"),), target),
            CellPart(kept, (Measure("sessions"),), target),
            CellPart(cut, (Measure("cut", value="n"),), target),
        ],
    )


# --- health -------------------------------------------------------------------------------


def health_statement(
    closed: tuple[tuple[str, str], ...], environment: str, day: dt.date, dialect: SqlDialect
) -> Sql:
    """Per receive day: sessions, events, redacted events; events per name and kind, per
    schema version, and per stored value of each closed field (``closed``). Grouped by
    session first so ``sessions`` counts distinct ones."""
    scope = scope_filter(day_scope(environment, day), dialect)
    rday = dialect.to_text(dialect.day("received_at"))
    values = [
        render(
            " UNION ALL SELECT 'values', {rday}, {name}, {label}, CAST({column} AS VARCHAR), "
            "count(*) FROM events WHERE {scope} AND event_name = {name} "
            "AND {column} IS NOT NULL GROUP BY ALL",
            rday=rday,
            name=param(name),
            label=param(column),
            column=column,  # a stored column: PlanFacts keeps only those
            scope=scope,
        )
        for name, column in closed
    ]
    ctes = render(
        "WITH hs AS (SELECT {sid} AS sid, {rday} AS rday, count(*) AS n, "
        "{redacted} AS red FROM events WHERE {scope} GROUP BY ALL), "
        "hk AS (SELECT 'names' AS part, {rday} AS rday, event_name AS a, kind AS b, "
        "'names' AS c, count(*) AS n FROM events WHERE {scope} GROUP BY ALL "
        "UNION ALL SELECT 'versions', {rday}, CAST(schema_version AS VARCHAR), NULL, 'versions', "
        "count(*) FROM events WHERE {scope} GROUP BY ALL{values}), "
        "hx AS (SELECT 'day' AS part, rday, NULL AS a, NULL AS b, 'day' AS c, n, red, "
        "true AS session FROM hs UNION ALL SELECT part, rday, a, b, c, n, 0, false FROM hk)",
        sid=dialect.session_key("session_id"),
        rday=rday,
        redacted=dialect.count_if("redactions > 0"),
        scope=scope,
        values=Sql.join("", values),
    )
    # k4 is the part, except for stored values, where it is the value (measure ``value``).
    measures = [
        Measure("events", "session", value="n"),
        Measure("redacted", "session AND red > 0", value="red"),
        Measure("count", "NOT session AND part <> 'values'", value="n"),
        Measure("value", "part = 'values'", value="n"),
    ]
    source = CellSource(ctes, "hx", ("rday", "a", "b", "c"), group="NULL", weight="1.0")
    return measure_cells(source, measures, CellTarget(environment, day, Family.HEALTH, None))


# --- the builder --------------------------------------------------------------------------


def report_cells(
    plan: RollupPlan, environment: str, day: dt.date, dialect: SqlDialect
) -> list[Sql]:
    """Active sessions, failures, usage and health cells of one day, with their markers."""
    specs = (
        failures_cells(plan.scenarios),
        usage_cells(),
        loops_cells(),
        clicks_cells(plan.aliases),
        paths_cells(),
        frustration_cells(plan.frustration),
        health_cells(plan.closed),
    )
    statements = [
        *(built_marker(environment, day, s.family, s.key, s.definition) for s in specs),
        health_statement(plan.closed, environment, day, dialect),
        active_statement(environment, day, dialect),
        usage_statement(environment, day, dialect),
        loops_statement(environment, day, dialect),
        clicks_statement(plan.aliases, environment, day, dialect),
        frustration_statement(plan.frustration, environment, day, dialect),
        paths_statement(environment, day, dialect),
        errors_statement(environment, day, dialect),
        vitals_statement(environment, day, dialect),
    ]
    if plan.scenarios:
        statements.append(scenarios_statement(plan.scenarios, environment, day, dialect))
    return statements
