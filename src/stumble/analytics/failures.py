"""Report 6, failures and performance: what breaks, where, and how fast the pages and APIs are.

* Errors by kind, by (kind, type), by JS fingerprint (with module and type) and by route:
  events, sessions, and the share of the sessions in scope that saw one.
* Errors by scenario: of the sessions that started a scenario (its first step), the share
  with an error during it, overall and by kind. An error belongs to the scenario the session
  started most recently before it, if the error falls within that scenario's window.
* HTTP errors by status class (``4xx``, ``5xx``) and by status code.
* API response time per route template (the ``api`` vital): p50/p95/p99.
* Long tasks per screen (the ``long_task`` vital, main-thread work over 50 ms that freezes the
  page): how many, in how many sessions, p50/p95/p99 of their length.
* Web Vitals per screen and metric: p75 (as Google defines the assessment) and the shares
  rated good / needs-improvement / poor. A vital without a rating is rated here with
  Google's thresholds (``VITAL_THRESHOLDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

from stumble.analytics import sketch
from stumble.analytics.common import Row, Suppressor, dialect_of, fetch, row_group
from stumble.analytics.queries import FailureQuery, ScenarioSpec
from stumble.analytics.results import (
    EMPTY_DURATIONS,
    NO_SHARE,
    Column,
    Durations,
    Report,
    Share,
    Table,
    at_least,
    group_label,
    meta_for,
)
from stumble.analytics.rollup_cells import CellSpec, Family, definition_hash
from stumble.analytics.rollup_read import (
    CellKey,
    Cells,
    MergedCell,
    RollupSlice,
    SourceAsked,
    merged_cells,
    raw_asked,
    read_rows,
)
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    dimension_expr,
    grouping,
    param,
    render,
    scope_filter,
    step_condition,
)
from stumble.storage.base import EventStore

VITAL_THRESHOLDS: Final[dict[str, tuple[float, float]]] = {
    "LCP": (2_500, 4_000),
    "INP": (200, 500),
    "CLS": (0.1, 0.25),
    "FCP": (1_800, 3_000),
    "TTFB": (800, 1_800),
}
"""Google's Web Vitals thresholds: good <= first, poor > second (CLS is unitless)."""
RATINGS: Final = ("good", "needs-improvement", "poor")
API_LEVELS: Final = (0.5, 0.95, 0.99)
FAILURES_KEY: Final = "failures"
ROLLUP_VERSION: Final = "failures-1"
"""Changes whenever the failure cells change meaning: days built before are not read."""
VITAL_SCALE: Final[dict[str, float]] = {"CLS": 1000.0}
"""Sketch buckets start at 1 (below is 0): unitless CLS is kept in thousandths."""
CLS_NOTE: Final = "CLS from rollups: within 1%, or within 0.001 for values under 0.001"


def failures_cells(scenarios: tuple[ScenarioSpec, ...]) -> CellSpec:
    """What failure cells were built for: the scenarios errors belong to. (Hashed without the
    family's name, unlike ``CellSpec.versioned``: days built so far keep answering.)"""
    return CellSpec(Family.FAILURES, FAILURES_KEY, definition_hash((ROLLUP_VERSION, scenarios)))


def errors_cte(query: FailureQuery, dialect: SqlDialect, group: str | None = None) -> Sql:
    """CTE ``e``: the error events in scope. ``group``: an expression replacing the
    breakdown dimension as ``grp`` (rollups: the struct of every rolled dimension)."""
    return render(
        "WITH e AS (SELECT {sid} AS session_id, error_kind, error_type, fingerprint, module, "
        "route, http_status, CAST(http_status // 100 AS VARCHAR) || 'xx' AS status_class, "
        "{grp} AS grp, {weight} AS weight FROM events WHERE {scope} AND kind = 'error')",
        sid=dialect.session_key("session_id"),
        grp=group or dimension_expr(query.scope.by, dialect),
        weight=dialect.weight("sample_rate"),
        scope=scope_filter(query.scope, dialect),
    )


def errors_by_sql(query: FailureQuery, dialect: SqlDialect, keys: tuple[str, ...]) -> Sql:
    """Events and distinct sessions per ``keys`` (columns of ``e``) and group."""
    key = ", ".join(keys)
    group_by, is_total = grouping(query.scope.by, key)
    return errors_cte(query, dialect) + render(
        " SELECT {is_total} AS is_total, {key}, grp, count(*) AS events, "
        "count(DISTINCT session_id) AS sessions FROM e {where} {group_by}",
        is_total=is_total,
        key=key,
        where=_where(keys),
        group_by=group_by,
    )


def _where(keys: tuple[str, ...]) -> str:
    """Rows a breakdown is about: JS errors for fingerprints, HTTP errors for statuses."""
    if "fingerprint" in keys:
        return "WHERE fingerprint IS NOT NULL"
    if "status_class" in keys:
        return "WHERE http_status IS NOT NULL"
    return ""


def active_sql(query: FailureQuery, dialect: SqlDialect) -> Sql:
    group_by, is_total = grouping(query.scope.by)
    return render(
        "WITH a AS (SELECT {sid} AS sid, {grp} AS grp FROM events WHERE {scope} "
        "GROUP BY sid, grp) "
        "SELECT {is_total} AS is_total, grp, count(*) AS sessions FROM a {group_by}",
        sid=dialect.session_key("session_id"),
        grp=dimension_expr(query.scope.by, dialect),
        scope=scope_filter(query.scope, dialect),
        is_total=is_total,
        group_by=group_by,
    )


def scenarios_sql(query: FailureQuery, dialect: SqlDialect) -> Sql:
    """Per scenario (and error kind): sessions started, sessions with an error in window."""
    anchors = Sql.join(
        " UNION ALL ",
        (_anchor(scenario, query, dialect) for scenario in query.scenarios),
    )
    return render(
        "WITH starts AS ({anchors}), "
        "errs AS (SELECT event_id, {sid} AS session_id, error_kind, ts FROM events WHERE {scope} "
        "AND kind = 'error'), "
        "owned AS (SELECT e.event_id, e.session_id, e.error_kind, {latest} AS scenario "
        "FROM errs AS e JOIN starts AS s ON e.session_id = s.session_id AND e.ts >= s.t0 "
        "AND e.ts <= s.deadline GROUP BY e.event_id, e.session_id, e.error_kind), "
        "hits AS (SELECT DISTINCT scenario, session_id, error_kind FROM owned) "
        "SELECT scenario, NULL AS error_kind, count(*) AS sessions FROM starts "
        "GROUP BY scenario "
        "UNION ALL SELECT scenario, '*' AS error_kind, count(DISTINCT session_id) FROM hits "
        "GROUP BY scenario "
        "UNION ALL SELECT scenario, error_kind, count(*) FROM hits GROUP BY scenario, error_kind",
        anchors=anchors,
        scope=scope_filter(query.scope, dialect),
        latest=dialect.arg_max("s.scenario", "s.t0"),
        sid=dialect.session_key("session_id"),
    )


def _anchor(scenario: ScenarioSpec, query: FailureQuery, dialect: SqlDialect) -> Sql:
    return render(
        "SELECT {name} AS scenario, {sid} AS session_id, min(ts) AS t0, {deadline} AS deadline "
        "FROM events WHERE {scope} AND {first_step} GROUP BY 2",
        name=param(scenario.name),
        sid=dialect.session_key("session_id"),
        deadline=dialect.plus_ms("min(ts)", scenario.window_ms),
        scope=scope_filter(query.scope, dialect),
        first_step=step_condition(scenario.steps[0]),
    )


def api_sql(query: FailureQuery, dialect: SqlDialect) -> Sql:
    """API response times per route template (``vital`` events with metric ``api``)."""
    return _vital_values_sql(query, dialect, metric="api", key="route")


def long_tasks_sql(query: FailureQuery, dialect: SqlDialect) -> Sql:
    """Long tasks per screen (``vital`` events with metric ``long_task``)."""
    return _vital_values_sql(query, dialect, metric="long_task", key="screen_id")


def _vital_values_sql(query: FailureQuery, dialect: SqlDialect, *, metric: str, key: str) -> Sql:
    """Per ``key`` (a column name of ours) and group: measurements, sessions and quantiles of
    the values of one vital ``metric`` (bound as a parameter)."""
    group_by, is_total = grouping(query.scope.by, key)
    return render(
        "WITH v AS (SELECT {sid} AS session_id, {key}, value, {grp} AS grp FROM events "
        "WHERE {scope} AND kind = 'vital' AND metric = {metric}) "
        "SELECT {is_total} AS is_total, {key}, grp, count(*) AS n, "
        "count(DISTINCT session_id) AS sessions, {q} AS q FROM v {group_by} "
        "ORDER BY {key}, is_total DESC, grp",
        key=key,
        sid=dialect.session_key("session_id"),
        grp=dimension_expr(query.scope.by, dialect),
        scope=scope_filter(query.scope, dialect),
        metric=param(metric),
        is_total=is_total,
        q=dialect.quantiles("value", API_LEVELS),
        group_by=group_by,
    )


def vitals_sql(query: FailureQuery, dialect: SqlDialect) -> Sql:
    group_by, is_total = grouping(query.scope.by, "screen_id, metric")
    rated = " ".join(
        f"WHEN metric = '{metric}' THEN CASE WHEN value <= {good} THEN 'good' "
        f"WHEN value > {poor} THEN 'poor' ELSE 'needs-improvement' END"
        for metric, (good, poor) in VITAL_THRESHOLDS.items()
    )
    counts = ", ".join(
        dialect.count_if(f"r = '{rating}'") + " AS " + rating.replace("-", "_")
        for rating in RATINGS
    )
    return render(
        "WITH v AS (SELECT {sid} AS session_id, screen_id, metric, value, {grp} AS grp, "
        "coalesce(rating, CASE {rated} END) AS r FROM events "
        "WHERE {scope} AND kind = 'vital' AND metric IN ({metrics})) "
        "SELECT {is_total} AS is_total, screen_id, metric, grp, count(*) AS n, "
        "count(DISTINCT session_id) AS sessions, {p75} AS q, {counts} "
        "FROM v {group_by} ORDER BY screen_id, metric, is_total DESC, grp",
        sid=dialect.session_key("session_id"),
        grp=dimension_expr(query.scope.by, dialect),
        rated=rated,
        scope=scope_filter(query.scope, dialect),
        metrics=", ".join(f"'{m}'" for m in VITAL_THRESHOLDS),
        is_total=is_total,
        p75=dialect.quantiles("value", (0.75,)),
        counts=counts,
        group_by=group_by,
    )


# --- results ------------------------------------------------------------------------------


class ErrorCount(msgspec.Struct, frozen=True, kw_only=True):
    key: dict[str, str | int | None]
    """The grouping columns: error_kind, error_type, fingerprint, module, route..."""
    group: str | None
    hidden: bool = False
    events: int | None = None
    sessions: int | None = None
    share: Share = NO_SHARE
    """Of the sessions in scope (of the group)."""


class ScenarioErrors(msgspec.Struct, frozen=True, kw_only=True):
    scenario: str
    hidden: bool = False
    started: int | None = None
    with_error: Share = NO_SHARE
    by_kind: dict[str, Share] = {}


class RouteTiming(msgspec.Struct, frozen=True, kw_only=True):
    route: str
    group: str | None
    hidden: bool = False
    duration: Durations = EMPTY_DURATIONS


class LongTasks(msgspec.Struct, frozen=True, kw_only=True):
    """Long tasks on one screen: the page froze for ``duration`` each time."""

    screen_id: str
    group: str | None
    hidden: bool = False
    tasks: int | None = None
    sessions: int | None = None
    """Sessions with at least one long task on the screen."""
    duration: Durations = EMPTY_DURATIONS


class VitalSummary(msgspec.Struct, frozen=True, kw_only=True):
    screen_id: str
    metric: str
    group: str | None
    hidden: bool = False
    n: int | None = None
    p75: float | None = None
    ratings: dict[str, float] = {}
    """Share of measurements rated good / needs-improvement / poor."""
    assessment: str | None = None
    """The rating of the p75, as Google assesses a page."""


class FailureResult(msgspec.Struct, frozen=True, kw_only=True):
    sessions: int | None
    """Sessions in scope (None: fewer than k)."""
    by_kind: list[ErrorCount]
    by_type: list[ErrorCount]
    by_fingerprint: list[ErrorCount]
    by_route: list[ErrorCount]
    by_scenario: list[ScenarioErrors]
    api: list[RouteTiming]
    vitals: list[VitalSummary]
    by_status_class: list[ErrorCount] = []
    """HTTP errors by status class (``4xx``, ``5xx``), most frequent first."""
    by_status: list[ErrorCount] = []
    """HTTP errors by status class and code, most frequent first."""
    long_tasks: list[LongTasks] = []
    """Long tasks per screen, most frequent first."""

    def kind(self, error_kind: str, group: str | None = None) -> ErrorCount | None:
        return next(
            (c for c in self.by_kind if c.key["error_kind"] == error_kind and c.group == group),
            None,
        )

    def fingerprint(self, fingerprint: str, group: str | None = None) -> ErrorCount | None:
        return next(
            (
                c
                for c in self.by_fingerprint
                if c.key["fingerprint"] == fingerprint and c.group == group
            ),
            None,
        )

    def route(self, route: str, group: str | None = None) -> RouteTiming | None:
        return next((r for r in self.api if r.route == route and r.group == group), None)

    def vital(self, screen_id: str, metric: str, group: str | None = None) -> VitalSummary | None:
        return next(
            (
                v
                for v in self.vitals
                if (v.screen_id, v.metric, v.group) == (screen_id, metric, group)
            ),
            None,
        )

    def scenario(self, name: str) -> ScenarioErrors | None:
        return next((s for s in self.by_scenario if s.scenario == name), None)

    def tables(self) -> list[Table]:
        return [
            _counts_table("Errors by kind", self.by_kind, ("error_kind",)),
            _counts_table("Errors by type", self.by_type, ("error_kind", "error_type")),
            _counts_table(
                "JavaScript errors by fingerprint",
                self.by_fingerprint,
                ("fingerprint", "error_type", "module"),
            ),
            _counts_table("Errors by route", self.by_route, ("error_kind", "route")),
            _counts_table("HTTP errors by status class", self.by_status_class, ("status_class",)),
            _counts_table("HTTP errors by status", self.by_status, ("status_class", "http_status")),
            Table(
                "Errors by scenario",
                (
                    Column("scenario"),
                    Column("started", "int"),
                    Column("with error", "share"),
                    Column("kinds"),
                ),
                [
                    (
                        s.scenario,
                        "hidden" if s.hidden else s.started,
                        s.with_error.value,
                        ", ".join(f"{k} {v.value:.1%}" for k, v in s.by_kind.items() if v.value),
                    )
                    for s in self.by_scenario
                ],
                "sessions with an error during the scenario (the latest one started before it)",
            ),
            Table(
                "API response time by route",
                (
                    Column("route"),
                    Column("group"),
                    Column("n", "int"),
                    Column("p50", "ms"),
                    Column("p95", "ms"),
                    Column("p99", "ms"),
                ),
                [
                    (
                        r.route,
                        group_label(r.group),
                        "hidden" if r.hidden else r.duration.n,
                        r.duration.p50,
                        r.duration.p95,
                        r.duration.p99,
                    )
                    for r in self.api
                ],
            ),
            Table(
                "Long tasks per screen",
                (
                    Column("screen"),
                    Column("group"),
                    Column("tasks", "int"),
                    Column("sessions", "int"),
                    Column("p50", "ms"),
                    Column("p95", "ms"),
                ),
                [
                    (
                        t.screen_id,
                        group_label(t.group),
                        "hidden" if t.hidden else t.tasks,
                        t.sessions,
                        t.duration.p50,
                        t.duration.p95,
                    )
                    for t in self.long_tasks
                ],
                "main-thread tasks over 50 ms: the page did not answer for that long",
            ),
            Table(
                "Web Vitals per screen",
                (
                    Column("screen"),
                    Column("metric"),
                    Column("group"),
                    Column("n", "int"),
                    Column("p75", "number"),
                    Column("assessment"),
                    *(Column(rating, "share") for rating in RATINGS),
                ),
                [
                    (
                        v.screen_id,
                        v.metric,
                        group_label(v.group),
                        "hidden" if v.hidden else v.n,
                        v.p75,
                        v.assessment,
                        *(v.ratings.get(rating) for rating in RATINGS),
                    )
                    for v in self.vitals
                ],
                "p75 in ms (CLS unitless), rated with Google's thresholds",
            ),
        ]


def _counts_table(title: str, rows: list[ErrorCount], keys: tuple[str, ...]) -> Table:
    return Table(
        title,
        (
            *(Column(k) for k in keys),
            Column("group"),
            Column("events", "int"),
            Column("sessions", "int"),
            Column("share", "share"),
        ),
        [
            (
                *(c.key.get(k) for k in keys),
                group_label(c.group),
                "hidden" if c.hidden else c.events,
                c.sessions,
                c.share.value,
            )
            for c in rows
        ],
        "share: of the sessions in scope",
    )


# --- running ------------------------------------------------------------------------------

ERROR_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "by_kind": ("error_kind",),
    "by_type": ("error_kind", "error_type"),
    "by_fingerprint": ("fingerprint", "error_type", "module"),
    "by_route": ("error_kind", "route"),
    "by_status_class": ("status_class",),
    "by_status": ("status_class", "http_status"),
}


def run_failures(
    store: EventStore,
    query: FailureQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[FailureResult]:
    """``source``: ``auto`` reads daily rollups when they can answer (``rollup_read``)."""
    answer = read_rows(
        store,
        query.scope,
        failures_cells(query.scenarios),
        rolled=lambda chosen: _rollup_fetched(store, query, chosen),
        raw=lambda: _raw_fetched(store, query),
        needs_raw=raw_asked(source),
    )
    fetched = answer.rows
    active, counted = fetched.active, fetched.counted
    counted = {
        name: _most_frequent_first(rows, ERROR_TABLES[name]) for name, rows in counted.items()
    }
    counted["by_route"] = [r for r in counted["by_route"] if r["route"] is not None]
    scenario_rows, api_rows, vital_rows = fetched.scenarios, fetched.api, fetched.vitals
    task_rows = _most_frequent_first(fetched.long_tasks, ("screen_id",), "n")

    suppressor = Suppressor(min_group_size)
    tickets = {
        name: [
            suppressor.add((name, *(r[k] for k in ERROR_TABLES[name])), row_group(r), r["sessions"])
            for r in rows
        ]
        for name, rows in counted.items()
    }
    started = {r["scenario"]: int(r["sessions"]) for r in scenario_rows if r["error_kind"] is None}
    scenario_tickets = {
        name: suppressor.add(("scenario", name), None, n) for name, n in started.items()
    }
    api_tickets = [
        suppressor.add(("api", r["route"]), row_group(r), r["sessions"]) for r in api_rows
    ]
    vital_tickets = [
        suppressor.add(("vital", r["screen_id"], r["metric"]), row_group(r), r["sessions"])
        for r in vital_rows
    ]
    task_tickets = [
        suppressor.add(("long_task", r["screen_id"]), row_group(r), r["sessions"])
        for r in task_rows
    ]
    suppressor.decide()

    def counts(name: str) -> list[ErrorCount]:
        return [
            _error_count(r, ERROR_TABLES[name], active, suppressor.is_hidden(t))
            for r, t in zip(counted[name], tickets[name], strict=True)
        ]

    result = FailureResult(
        sessions=at_least(active.get(None, 0), min_group_size),
        by_kind=counts("by_kind"),
        by_type=counts("by_type"),
        by_fingerprint=counts("by_fingerprint"),
        by_route=counts("by_route"),
        by_scenario=_scenarios(scenario_rows, started, scenario_tickets, suppressor),
        api=[
            _route(r, suppressor.is_hidden(t)) for r, t in zip(api_rows, api_tickets, strict=True)
        ],
        vitals=[
            _vital(r, suppressor.is_hidden(t))
            for r, t in zip(vital_rows, vital_tickets, strict=True)
        ],
        by_status_class=counts("by_status_class"),
        by_status=counts("by_status"),
        long_tasks=[
            _long_tasks(r, suppressor.is_hidden(t))
            for r, t in zip(task_rows, task_tickets, strict=True)
        ],
    )
    meta = meta_for(
        "failures",
        time=query.scope.time,
        scope=query.scope,
        sampling=answer.sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[
            "Web Vitals: p75 and ratings with Google's thresholds",
            "HTTP errors by status: 4xx the request (often the form), 5xx the server",
            answer.note,
            *([CLS_NOTE] if answer.source == "rollups" else []),
        ],
        source=answer.source,
    )
    return Report(meta=meta, data=result)


@dataclass(frozen=True, slots=True)
class _Fetched:
    """The rows every part of the report is made of, from raw events or from rollups."""

    active: dict[str | None, int]
    counted: dict[str, list[Row]]
    scenarios: list[Row]
    api: list[Row]
    vitals: list[Row]
    long_tasks: list[Row]


def _raw_fetched(store: EventStore, query: FailureQuery) -> _Fetched:
    dialect = dialect_of(store)
    return _Fetched(
        active={row_group(r): int(r["sessions"]) for r in fetch(store, active_sql(query, dialect))},
        counted={
            name: fetch(store, errors_by_sql(query, dialect, keys))
            for name, keys in ERROR_TABLES.items()
        },
        scenarios=fetch(store, scenarios_sql(query, dialect)) if query.scenarios else [],
        api=fetch(store, api_sql(query, dialect)),
        vitals=fetch(store, vitals_sql(query, dialect)),
        long_tasks=fetch(store, long_tasks_sql(query, dialect)),
    )


def _rollup_fetched(store: EventStore, query: FailureQuery, chosen: RollupSlice) -> _Fetched:
    """The rows the raw SQL gives, rebuilt from merged daily cells (``rollup_reports``)."""
    environment = query.scope.filters.environment
    active = merged_cells(store, environment, chosen, Family.ACTIVE)
    cells = merged_cells(store, environment, chosen, Family.FAILURES)
    parts: dict[str, Cells] = {}
    for key, cell in cells.items():
        parts.setdefault(key.keys[3] or "", {})[key] = cell
    return _Fetched(
        active={None if key.is_total else key.group: cell.sessions for key, cell in active.items()},
        counted={
            name: _error_rows(parts.get(name, {}), keys) for name, keys in ERROR_TABLES.items()
        },
        scenarios=_scenario_rows(parts.get("scenario", {})) if query.scenarios else [],
        api=_value_rows(parts.get("api", {}), "route", API_LEVELS),
        vitals=_vital_rows(parts.get("vital", {})),
        long_tasks=_value_rows(parts.get("long_task", {}), "screen_id", API_LEVELS),
    )


def _error_rows(cells: Cells, keys: tuple[str, ...]) -> list[Row]:
    rows = []
    for key, cell in cells.items():
        row: Row = {"is_total": key.is_total, "grp": key.group}
        for name, value in zip(keys, key.keys, strict=False):
            row[name] = int(value) if name == "http_status" and value is not None else value
        row["events"] = round(cell.value_sum or 0)
        row["sessions"] = cell.sessions
        rows.append(row)
    return rows


def _scenario_rows(cells: Cells) -> list[Row]:
    """In the raw query's order: starts, then sessions with any error, then per kind."""
    totals = [(key, cell) for key, cell in cells.items() if key.is_total]

    def rank(item: tuple[CellKey, MergedCell]) -> tuple[int, str]:
        key = item[0]
        return (
            0 if key.measure == "started" else 1 if key.keys[1] == "*" else 2,
            key.keys[0] or "",
        )

    return [
        {
            "scenario": key.keys[0],
            "error_kind": None if key.measure == "started" else key.keys[1],
            "sessions": cell.sessions,
        }
        for key, cell in sorted(totals, key=rank)
    ]


def _value_rows(cells: Cells, column: str, levels: tuple[float, ...]) -> list[Row]:
    """API timings or long tasks per key and group: n, sessions, quantiles of the values."""
    merged = _by_key_and_group(cells, 1)
    rows = []
    for (is_total, group, key), (counts, sessions) in merged.items():
        n = sum(c.sessions for c in counts.values())
        q = sketch.quantiles(sketch.merge(c.sketch for c in counts.values()), levels)
        rows.append(
            {
                "is_total": is_total,
                "grp": group,
                column: key[0],
                "n": n,
                "sessions": sessions,
                "q": q,
            }
        )
    return sorted(rows, key=lambda r: (_text(r[column]), not r["is_total"], _text(r["grp"])))


def _vital_rows(cells: Cells) -> list[Row]:
    """Web Vitals per screen, metric and group: p75 (CLS back from thousandths) and ratings."""
    merged = _by_key_and_group(cells, 2)
    rows = []
    for (is_total, group, (screen, metric)), (by_rating, sessions) in merged.items():
        scale = VITAL_SCALE.get(metric or "", 1.0)
        q = sketch.quantiles(sketch.merge(c.sketch for c in by_rating.values()), (0.75,))
        row: Row = {
            "is_total": is_total,
            "grp": group,
            "screen_id": screen,
            "metric": metric,
            "n": sum(c.sessions for c in by_rating.values()),
            "sessions": sessions,
            "q": [value / scale for value in q] if q else q,
        }
        for rating in RATINGS:
            cell = by_rating.get(rating)
            row[rating.replace("-", "_")] = cell.sessions if cell else 0
        rows.append(row)
    return sorted(
        rows,
        key=lambda r: (
            _text(r["screen_id"]),
            _text(r["metric"]),
            not r["is_total"],
            _text(r["grp"]),
        ),
    )


_Merged = dict[
    tuple[bool, str | None, tuple[str | None, ...]], tuple[dict[str | None, MergedCell], int]
]


def _by_key_and_group(cells: Cells, width: int) -> _Merged:
    """Per (is total, group, first ``width`` keys): the ``n`` cells by k3, and sessions."""
    merged: dict[tuple[bool, str | None, tuple[str | None, ...]], dict[str | None, MergedCell]] = {}
    sessions: dict[tuple[bool, str | None, tuple[str | None, ...]], int] = {}
    for key, cell in cells.items():
        ident = (key.is_total, key.group, key.keys[:width])
        if key.measure == "sessions":
            sessions[ident] = sessions.get(ident, 0) + cell.sessions
        else:
            merged.setdefault(ident, {})[key.keys[2]] = cell
    return {ident: (counts, sessions.get(ident, 0)) for ident, counts in merged.items()}


def _text(value: object) -> tuple[bool, str]:
    """Sorts like SQL's ORDER BY: NULL last."""
    return (value is None, "" if value is None else str(value))


def _most_frequent_first(
    rows: list[Row], keys: tuple[str, ...], count: str = "events"
) -> list[Row]:
    """Totals by descending ``count``, each followed by its groups."""
    totals = {tuple(r[k] for k in keys): int(r[count]) for r in rows if r["is_total"]}

    def order(row: Row) -> tuple[object, ...]:
        key = tuple(row[k] for k in keys)
        return (-totals.get(key, 0), str(key), not row["is_total"], str(row["grp"]))

    return sorted(rows, key=order)


def _error_count(
    row: Row, keys: tuple[str, ...], active: dict[str | None, int], hidden: bool
) -> ErrorCount:
    key = {k: row[k] for k in keys}
    group = row_group(row)
    if hidden:
        return ErrorCount(key=key, group=group, hidden=True)
    sessions = int(row["sessions"])
    return ErrorCount(
        key=key,
        group=group,
        events=int(row["events"]),
        sessions=sessions,
        share=Share.of(sessions, active.get(group, 0)),
    )


def _scenarios(
    rows: list[Row], started: dict[str, int], tickets: dict[str, int], suppressor: Suppressor
) -> list[ScenarioErrors]:
    hits: dict[str, dict[str, int]] = {}
    for row in rows:
        if row["error_kind"] is not None:
            hits.setdefault(row["scenario"], {})[row["error_kind"]] = int(row["sessions"])
    result = []
    for name, n in sorted(started.items()):
        if suppressor.is_hidden(tickets[name]):
            result.append(ScenarioErrors(scenario=name, hidden=True))
            continue
        by_kind = hits.get(name, {})
        result.append(
            ScenarioErrors(
                scenario=name,
                started=n,
                with_error=Share.of(by_kind.get("*", 0), n),
                by_kind={
                    kind: Share.of(count, n)
                    for kind, count in sorted(by_kind.items())
                    if kind != "*"
                },
            )
        )
    return result


def _route(row: Row, hidden: bool) -> RouteTiming:
    if hidden:
        return RouteTiming(route=row["route"], group=row_group(row), hidden=True)
    return RouteTiming(
        route=row["route"], group=row_group(row), duration=Durations.of(int(row["n"]), row["q"])
    )


def _long_tasks(row: Row, hidden: bool) -> LongTasks:
    if hidden:
        return LongTasks(screen_id=row["screen_id"], group=row_group(row), hidden=True)
    n = int(row["n"])
    return LongTasks(
        screen_id=row["screen_id"],
        group=row_group(row),
        tasks=n,
        sessions=int(row["sessions"]),
        duration=Durations.of(n, row["q"]),
    )


def _vital(row: Row, hidden: bool) -> VitalSummary:
    base = {"screen_id": row["screen_id"], "metric": row["metric"], "group": row_group(row)}
    if hidden:
        return VitalSummary(**base, hidden=True)
    n = int(row["n"])
    p75 = float(row["q"][0]) if row["q"] else None
    return VitalSummary(
        **base,
        n=n,
        p75=p75,
        ratings={rating: int(row[rating.replace("-", "_")]) / n for rating in RATINGS},
        assessment=rate(row["metric"], p75) if p75 is not None else None,
    )


def rate(metric: str, value: float) -> str | None:
    """Google's rating of one value of a metric (None for metrics without thresholds)."""
    thresholds = VITAL_THRESHOLDS.get(metric)
    if thresholds is None:
        return None
    good, poor = thresholds
    if value <= good:
        return "good"
    return "poor" if value > poor else "needs-improvement"
