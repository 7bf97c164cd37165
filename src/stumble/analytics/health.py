"""Report 9, data health: can the numbers be trusted?

Over a window of *server receive time* (what arrived, whatever the clients' clocks said):

* events and sessions per UTC day and environment;
* gaps and sudden drops per day and environment: a day whose events fell to nothing, or below
  ``DROP_SHARE`` of the median of the same weekday in the four weeks before (weekday against
  weekday, so a quiet weekend is not an alarm); judged only with ``MIN_BASELINE`` events or
  more expected, and only for days that are over;
* rejected events by reason and redactions by detector (the quarantine counters: codes and
  field paths only), and stored events that carry a redaction;
* duplicates the loader dropped (client retries), per day of loading;
* clock skew (server minus client clock) per environment: quantiles and buckets;
* impossible timers: an ``operation_end`` without its start, one that ends before it starts,
  one whose ``duration_ms`` disagrees with its timestamps by more than a second, and starts
  that never ended (informational: people close tabs);
* events and fields not in the plan: rejections for plan reasons, and stored rows the current
  plan no longer allows (a renamed event, a removed value);
* schema versions: ``current``, ``old`` (below the plan's) and ``stale`` (below its minimum);
* test data in production: ui_versions, experiments or flags named like test traffic
  (``test``, ``dev``, ``staging``...) under the production environment's keys.

Event and reason counts describe data, not people, and are never suppressed; session counts
are: a day's session count below k is hidden, as is a test-data hint's (its value, a version
or flag name, is shown).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Final

import msgspec

from stumble.analytics import sketch
from stumble.analytics.common import Row, Suppressor, dialect_of, fetch
from stumble.analytics.queries import HealthQuery, PlanFacts, Scope, TimeRange
from stumble.analytics.results import Column, Report, Sampling, Table, meta_for
from stumble.analytics.rollup_cells import CellSpec, Family
from stumble.analytics.rollup_read import (
    RAW_NOTE,
    ROLLUP_NOTE,
    SourceAsked,
    days_missing,
    raw_asked,
    whole_days,
)
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    conjunction,
    param,
    params_list,
    render,
)
from stumble.storage.base import EventStore

SKEW_BUCKETS_MS: Final = ((1_000, "within_1s"), (60_000, "within_1min"), (3_600_000, "within_1h"))
DURATION_TOLERANCE_MS: Final = 1_000
PLAN_REASON_PREFIXES: Final = ("plan.", "schema.unknown_field")
DROP_SHARE: Final = 0.5
MIN_GAP_BASELINE: Final = 50
"""Events a day must usually have before a day with none is a gap."""
MIN_DROP_BASELINE: Final = 500
"""...and before a day under ``DROP_SHARE`` of it is a drop: events come in sessions of
dozens, so a few hundred swing by half from one week to the next by chance alone."""
BASELINE_WEEKS: Final = 4


def health_cells(closed: tuple[tuple[str, str], ...]) -> CellSpec:
    """What health cells were built for: the closed fields whose values they count."""
    return CellSpec.versioned(Family.HEALTH, "health-1", closed)


def closed_fields(plan: PlanFacts) -> tuple[tuple[str, str], ...]:
    return tuple((name, column) for name, column, values in plan.allowed_values if values)


def _received(query: HealthQuery) -> Sql:
    start, end = query.time.bounds()
    conditions = [render("received_at >= {s} AND received_at < {e}", s=param(start), e=param(end))]
    if query.environment is not None:
        conditions.append(render("environment = {env}", env=param(query.environment)))
    return conjunction(conditions)


def per_day_sql(query: HealthQuery, dialect: SqlDialect) -> Sql:
    return render(
        "SELECT {day} AS day, environment, count(*) AS events, "
        "count(DISTINCT {sid}) AS sessions, {redacted} AS redacted "
        "FROM events WHERE {where} GROUP BY day, environment ORDER BY day, environment",
        day=dialect.day("received_at"),
        sid=dialect.session_key("session_id"),
        redacted=dialect.count_if("redactions > 0"),
        where=_received(query),
    )


def volume_sql(query: HealthQuery, dialect: SqlDialect) -> Sql:
    """Events per day and environment from ``BASELINE_WEEKS`` before the window to its end."""
    start, end = query.time.bounds()
    conditions = [
        render(
            "received_at >= {s} AND received_at < {e}",
            s=param(start - dt.timedelta(weeks=BASELINE_WEEKS)),
            e=param(end),
        )
    ]
    if query.environment is not None:
        conditions.append(render("environment = {env}", env=param(query.environment)))
    return render(
        "SELECT {day} AS day, environment, count(*) AS events FROM events WHERE {where} "
        "GROUP BY day, environment",
        day=dialect.day("received_at"),
        where=conjunction(conditions),
    )


def duplicates_sql(query: HealthQuery, dialect: SqlDialect) -> Sql:
    start, end = query.time.bounds()
    return render(
        "SELECT {day} AS day, count(*) AS segments, sum(rows) AS rows, "
        "sum(duplicates) AS duplicates FROM loaded_segments "
        "WHERE loaded_at >= {s} AND loaded_at < {e} GROUP BY day ORDER BY day",
        day=dialect.day("loaded_at"),
        s=param(start),
        e=param(end),
    )


def skew_sql(query: HealthQuery, dialect: SqlDialect) -> Sql:
    buckets = ", ".join(
        dialect.count_if(f"abs(skew_ms) <= {limit}") + f" AS {name}"
        for limit, name in SKEW_BUCKETS_MS
    )
    return render(
        "SELECT environment, count(*) AS events, {q} AS q, max(abs(skew_ms)) AS max_abs, "
        "{buckets} FROM events WHERE {where} GROUP BY environment ORDER BY environment",
        q=dialect.quantiles("skew_ms", (0.01, 0.5, 0.99)),
        buckets=buckets,
        where=_received(query),
    )


def timers_sql(query: HealthQuery, dialect: SqlDialect) -> Sql:
    return render(
        "WITH ops AS (SELECT environment, session_id, operation_id, "
        "any_value(operation) AS operation, {starts} AS starts, {ends} AS ends, "
        "{started} AS started, {ended} AS ended, {duration} AS duration "
        "FROM events WHERE {where} AND kind IN ('operation_start', 'operation_end') "
        "GROUP BY environment, session_id, operation_id) "
        "SELECT environment, operation, {n_ends} AS ends, {orphan} AS ends_without_start, "
        "{negative} AS negative, {mismatch} AS duration_mismatch, "
        "{unfinished} AS starts_without_end FROM ops GROUP BY environment, operation "
        "ORDER BY environment, operation",
        starts=dialect.count_if("kind = 'operation_start'"),
        ends=dialect.count_if("kind = 'operation_end'"),
        started=dialect.aggregate_if("min", "ts", "kind = 'operation_start'"),
        ended=dialect.aggregate_if("min", "ts", "kind = 'operation_end'"),
        duration=dialect.aggregate_if("min", "duration_ms", "kind = 'operation_end'"),
        where=_received(query),
        n_ends=dialect.count_if("ends > 0"),
        orphan=dialect.count_if("ends > 0 AND starts = 0"),
        negative=dialect.count_if("ends > 0 AND starts > 0 AND (ended < started OR duration < 0)"),
        mismatch=dialect.count_if(
            "ends > 0 AND starts > 0 AND ended >= started AND "
            f"abs(duration - {dialect.ms_between('started', 'ended')}) > {DURATION_TOLERANCE_MS}"
        ),
        unfinished=dialect.count_if("starts > 0 AND ends = 0"),
    )


def names_sql(query: HealthQuery) -> Sql:
    return render(
        "SELECT event_name, kind, count(*) AS events FROM events WHERE {where} "
        "GROUP BY event_name, kind",
        where=_received(query),
    )


def values_sql(query: HealthQuery) -> Sql | None:
    """Stored values of closed fields that the current plan does not allow."""
    parts = [
        render(
            "SELECT {name} AS event_name, {label} AS field, count(*) AS events FROM events "
            "WHERE {where} AND event_name = {name} AND {column} IS NOT NULL "
            "AND {column} NOT IN ({allowed})",
            name=param(name),
            label=f"'{column}'",
            column=column,  # checked against the stored columns by PlanFacts
            where=_received(query),
            allowed=params_list(allowed),
        )
        for name, column, allowed in query.plan.allowed_values
        if allowed
    ]
    return Sql.join(" UNION ALL ", parts) if parts else None


def versions_sql(query: HealthQuery) -> Sql:
    return render(
        "SELECT environment, schema_version, count(*) AS events FROM events WHERE {where} "
        "GROUP BY environment, schema_version ORDER BY environment, schema_version",
        where=_received(query),
    )


def test_data_sql(query: HealthQuery, dialect: SqlDialect) -> Sql:
    pattern = "(^|[^a-z])(" + "|".join(query.test_markers) + ")([^a-z]|$)"
    checks = {
        "ui_version": dialect.matches("lower(ui_version)", param(pattern)),
        "experiment": dialect.matches("lower(coalesce(experiment, ''))", param(pattern)),
        "feature_flags": dialect.any_element_matches("feature_flags", param(pattern)),
    }
    start, end = query.time.bounds()
    parts = [
        render(
            "SELECT {field} AS field, {value} AS found, count(*) AS events, "
            "count(DISTINCT session_id) AS sessions FROM events WHERE environment = {env} "
            "AND received_at >= {s} AND received_at < {e} AND {check} GROUP BY found",
            field=f"'{field}'",
            value=dialect.to_text(field),
            env=param(query.production),
            s=param(start),
            e=param(end),
            check=check,
        )
        for field, check in checks.items()
    ]
    return Sql.join(" UNION ALL ", parts)


# --- results ------------------------------------------------------------------------------


class DayVolume(msgspec.Struct, frozen=True, kw_only=True):
    day: dt.date
    environment: str
    events: int
    sessions: int | None
    redacted_events: int
    hidden: bool = False


class VolumeAlert(msgspec.Struct, frozen=True, kw_only=True):
    """A day an environment sent far less than usual: ``gap`` (nothing) or ``drop``."""

    day: dt.date
    environment: str
    kind: str
    events: int
    expected: float
    """The median of the same weekday's events in the weeks before."""


class ReasonCount(msgspec.Struct, frozen=True, kw_only=True):
    reason: str
    environment: str
    count: int
    field_path: str = ""
    event_name: str = ""


class DuplicateDay(msgspec.Struct, frozen=True, kw_only=True):
    day: dt.date
    segments: int
    rows: int
    duplicates: int


class SkewSummary(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    events: int
    p01_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    max_abs_ms: int | None
    buckets: dict[str, float]
    """Share of events whose |skew| is within 1 s, 1 min, 1 h, or beyond."""


class TimerCheck(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    operation: str | None
    ends: int
    ends_without_start: int
    negative: int
    duration_mismatch: int
    starts_without_end: int


class PlanMismatch(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    """``stored`` (rows the current plan no longer allows) or ``rejected`` (quarantine)."""
    problem: str
    event_name: str
    field: str = ""
    count: int


class SchemaVersionCount(msgspec.Struct, frozen=True, kw_only=True):
    environment: str
    schema_version: int
    events: int
    status: str
    """``current``, ``old`` (below the plan's version) or ``stale`` (below its minimum)."""


class TestDataHint(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    value: str | None
    events: int
    sessions: int | None
    """None when fewer than k sessions."""


class HealthResult(msgspec.Struct, frozen=True, kw_only=True):
    per_day: list[DayVolume]
    rejected: list[ReasonCount]
    redactions: list[ReasonCount]
    duplicates: list[DuplicateDay]
    clock_skew: list[SkewSummary]
    timers: list[TimerCheck]
    not_in_plan: list[PlanMismatch]
    schema_versions: list[SchemaVersionCount]
    test_data: list[TestDataHint]
    volume_alerts: list[VolumeAlert] = []
    """Gaps and sudden drops per day and environment, oldest first."""

    def tables(self) -> list[Table]:
        return [
            Table(
                "Events per day (server receive time)",
                (
                    Column("day"),
                    Column("environment"),
                    Column("events", "int"),
                    Column("sessions", "int"),
                    Column("redacted", "int"),
                ),
                [
                    (d.day.isoformat(), d.environment, d.events, d.sessions, d.redacted_events)
                    for d in self.per_day
                ],
            ),
            Table(
                "Gaps and drops in volume",
                (
                    Column("day"),
                    Column("environment"),
                    Column("kind"),
                    Column("events", "int"),
                    Column("expected", "number"),
                ),
                [
                    (a.day.isoformat(), a.environment, a.kind, a.events, a.expected)
                    for a in self.volume_alerts
                ],
                "expected: median of the same weekday in the four weeks before",
            ),
            _reasons_table("Rejected events by reason", self.rejected),
            _reasons_table("Redactions by detector", self.redactions),
            Table(
                "Duplicates dropped by the loader",
                (
                    Column("day"),
                    Column("segments", "int"),
                    Column("rows", "int"),
                    Column("duplicates", "int"),
                ),
                [(d.day.isoformat(), d.segments, d.rows, d.duplicates) for d in self.duplicates],
            ),
            Table(
                "Clock skew (server minus client)",
                (
                    Column("environment"),
                    Column("events", "int"),
                    Column("p1", "ms"),
                    Column("p50", "ms"),
                    Column("p99", "ms"),
                    Column("max |skew|", "ms"),
                    *(Column(name, "share") for _, name in SKEW_BUCKETS_MS),
                    Column("beyond_1h", "share"),
                ),
                [
                    (
                        s.environment,
                        s.events,
                        s.p01_ms,
                        s.p50_ms,
                        s.p99_ms,
                        s.max_abs_ms,
                        *(s.buckets.get(name) for _, name in SKEW_BUCKETS_MS),
                        s.buckets.get("beyond_1h"),
                    )
                    for s in self.clock_skew
                ],
            ),
            Table(
                "Timers",
                (
                    Column("environment"),
                    Column("operation"),
                    Column("ends", "int"),
                    Column("end without start", "int"),
                    Column("negative", "int"),
                    Column("duration mismatch", "int"),
                    Column("start without end", "int"),
                ),
                [
                    (
                        t.environment,
                        t.operation,
                        t.ends,
                        t.ends_without_start,
                        t.negative,
                        t.duration_mismatch,
                        t.starts_without_end,
                    )
                    for t in self.timers
                ],
            ),
            Table(
                "Events and fields not in the plan",
                (
                    Column("source"),
                    Column("problem"),
                    Column("event"),
                    Column("field"),
                    Column("count", "int"),
                ),
                [(m.source, m.problem, m.event_name, m.field, m.count) for m in self.not_in_plan],
            ),
            Table(
                "Schema versions",
                (
                    Column("environment"),
                    Column("schema_version", "int"),
                    Column("events", "int"),
                    Column("status"),
                ),
                [
                    (v.environment, v.schema_version, v.events, v.status)
                    for v in self.schema_versions
                ],
            ),
            Table(
                "Test-looking data in production",
                (
                    Column("field"),
                    Column("value"),
                    Column("events", "int"),
                    Column("sessions", "int"),
                ),
                [(t.field, t.value, t.events, t.sessions) for t in self.test_data],
            ),
        ]


def _reasons_table(title: str, rows: list[ReasonCount]) -> Table:
    return Table(
        title,
        (Column("reason"), Column("environment"), Column("field"), Column("count", "int")),
        [(r.reason, r.environment, r.field_path, r.count) for r in rows],
    )


# --- running ------------------------------------------------------------------------------


def run_health(
    store: EventStore,
    query: HealthQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[HealthResult]:
    """``source``: ``auto`` composes daily rollups (volume, names, schema versions) with raw
    rows of the window's last ``RECENT_DAYS`` (checks that need single events)."""
    dialect = dialect_of(store)
    reason = raw_asked(source) or _rollups_cannot(store, query)
    if reason is None:
        days = _rollup_days(store, query)
        recent = _recent(query)
        notes = [ROLLUP_NOTE.format(alpha=sketch.ALPHA), RECENT_NOTE.format(days=RECENT_DAYS)]
    else:
        days = _RollupDays(
            per_day=fetch(store, per_day_sql(query, dialect)),
            volume=fetch(store, volume_sql(query, dialect)),
            names=fetch(store, names_sql(query)),
            versions=fetch(store, versions_sql(query)),
        )
        recent = query
        notes = [RAW_NOTE.format(reason=reason)]
    counts = _quarantine(store, query)
    suppressor = Suppressor(min_group_size)
    day_tickets = [
        suppressor.add(("day", r["day"], r["environment"]), None, r["sessions"])
        for r in days.per_day
    ]
    hint_rows = fetch(store, test_data_sql(recent, dialect))
    suppressor.decide()
    result = HealthResult(
        per_day=[
            _day(r, suppressor.is_hidden(t)) for r, t in zip(days.per_day, day_tickets, strict=True)
        ],
        rejected=counts["rejected"],
        redactions=counts["redacted"],
        duplicates=[
            DuplicateDay(
                day=r["day"],
                segments=int(r["segments"]),
                rows=int(r["rows"]),
                duplicates=int(r["duplicates"]),
            )
            for r in fetch(store, duplicates_sql(query, dialect))
        ],
        clock_skew=[_skew(r) for r in fetch(store, skew_sql(recent, dialect))],
        timers=[_timers(r) for r in fetch(store, timers_sql(recent, dialect))],
        not_in_plan=_not_in_plan(store, query, counts["rejected"], days),
        schema_versions=[_version(r, query) for r in days.versions],
        test_data=[_hint(r, min_group_size) for r in hint_rows],
        volume_alerts=volume_alerts(days.volume, query),
    )
    meta = meta_for(
        "health",
        time=query.time,
        scope=None,
        environment=query.environment,
        sampling=Sampling(),
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[
            "windows are server receive time; event counts are not suppressed",
            (
                "gaps and drops: a finished day with no events (50 or more expected), or under "
                "half the median of the same weekday in the four weeks before (500 or more)"
            ),
            *notes,
        ],
        source="raw" if reason else "rollups",
    )
    return Report(meta=meta, data=result)


RECENT_DAYS: Final = 1
"""Days at the end of the window that checks of single events (clock skew, timers, test
data) read from raw rows when rollups answer the rest: over 28 days they cost seconds; the
newest day is where a new problem shows."""
RECENT_NOTE: Final = (
    "per day, gaps and drops, events and values not in the plan and schema versions from daily "
    "rollups (by receive day); clock skew, timers and test-looking data from raw events of "
    "the window's last {days} day(s)"
)
TS_MARGIN: Final = dt.timedelta(days=1)
"""Cells are kept per day of client time and keyed by receive day: the days checked for
being rolled up reach this far beyond the window on both sides."""


@dataclass(frozen=True, slots=True)
class _RollupDays:
    """The parts of the report rollups can answer, as the rows of their raw queries."""

    per_day: list[Row]
    volume: list[Row]
    names: list[Row]
    versions: list[Row]
    values: list[Row] | None = None
    """Stored values the plan does not allow (``values_sql``'s rows); None: not read yet."""


def _rollups_cannot(store: EventStore, query: HealthQuery) -> str | None:
    """Why rollups cannot answer the window (None: they can)."""
    if store.dialect != "duckdb":
        return "this store keeps no rollups"
    days = whole_days(Scope(query.time))
    if days is None:
        return "the range is not whole days"
    span = (days[0] - dt.timedelta(weeks=BASELINE_WEEKS) - TS_MARGIN, days[1] + TS_MARGIN)
    environments = {d.environment for d in store.rollup_days(query.environment)}
    for environment in sorted(environments):
        cells = health_cells(closed_fields(query.plan))
        missing, _ = days_missing(
            store, environment, span, cells.family, cells.key, cells.definition
        )
        if missing:
            return f"{missing} day(s) not yet rolled up"
    return None


def _recent(query: HealthQuery) -> HealthQuery:
    last = (query.time.end - dt.timedelta(microseconds=1)).date()
    first = max(query.time.start.date(), last - dt.timedelta(days=RECENT_DAYS - 1))
    return replace(query, time=TimeRange.days(first, last))


def _rollup_days(store: EventStore, query: HealthQuery) -> _RollupDays:
    """Per environment, receive day and part: the summed health cells of every client day."""
    start, end = query.time.bounds()
    first = start.date() - dt.timedelta(weeks=BASELINE_WEEKS)
    last = (end - dt.timedelta(microseconds=1)).date()
    conditions = [
        render("family = {f}", f=param(str(Family.HEALTH))),
        render("k1 BETWEEN {a} AND {b}", a=param(first.isoformat()), b=param(last.isoformat())),
    ]
    if query.environment is not None:
        conditions.append(render("environment = {env}", env=param(query.environment)))
    statement = render(
        "SELECT environment, k1, k2, k3, k4, measure, sum(sessions) AS n, sum(value_sum) AS v "
        "FROM rollups WHERE {where} GROUP BY ALL",
        where=conjunction(conditions),
    )
    rows = fetch(store, statement)
    for row in rows:
        row["day"] = dt.date.fromisoformat(row["k1"])
    window = [r for r in rows if r["day"] >= start.date()]
    return _RollupDays(
        per_day=_per_day_rows(window),
        volume=[
            {"day": r["day"], "environment": r["environment"], "events": round(r["v"] or 0)}
            for r in rows
            if r["k4"] == "day" and r["measure"] == "events"
        ],
        names=_summed(window, "names", ("k2", "k3"), ("event_name", "kind")),
        values=_values_not_allowed(window, query),
        versions=sorted(
            _summed(window, "versions", ("environment", "k2"), ("environment", "schema_version")),
            key=lambda r: (r["environment"], int(r["schema_version"])),
        ),
    )


def _per_day_rows(rows: list[Row]) -> list[Row]:
    per_day: dict[tuple[dt.date, str], Row] = {}
    for row in rows:
        if row["k4"] != "day":
            continue
        key = (row["day"], row["environment"])
        out = per_day.setdefault(
            key, {"day": key[0], "environment": key[1], "events": 0, "sessions": 0, "redacted": 0}
        )
        if row["measure"] == "events":
            out["events"] = round(row["v"] or 0)
            out["sessions"] = int(row["n"] or 0)
        else:
            out["redacted"] = round(row["v"] or 0)
    return [per_day[key] for key in sorted(per_day)]


def _summed(
    rows: list[Row], part: str, columns: tuple[str, ...], names: tuple[str, ...]
) -> list[Row]:
    """Events of one part summed per ``columns`` (over days), named as the raw rows."""
    totals: defaultdict[tuple[object, ...], int] = defaultdict(int)
    for row in rows:
        if row["k4"] == part and row["measure"] == "count":
            totals[tuple(row[c] for c in columns)] += round(row["v"] or 0)
    return [{**dict(zip(names, key, strict=True)), "events": n} for key, n in totals.items()]


def _values_not_allowed(rows: list[Row], query: HealthQuery) -> list[Row]:
    """Events per closed field whose stored value the current plan does not allow."""
    allowed = {(name, column): set(values) for name, column, values in query.plan.allowed_values}
    totals: defaultdict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        values = allowed.get((row["k2"], row["k3"]))
        if row["measure"] == "value" and values and row["k4"] not in values:
            totals[row["k2"], row["k3"]] += round(row["v"] or 0)
    return [{"event_name": n, "field": f, "events": c} for (n, f), c in totals.items()]


def _raw_values(store: EventStore, query: HealthQuery) -> list[Row]:
    statement = values_sql(query)
    return fetch(store, statement) if statement is not None else []


def volume_alerts(
    rows: list[Row], query: HealthQuery, today: dt.date | None = None
) -> list[VolumeAlert]:
    """Days of the window, over and for an environment that was sending, whose events fell
    to nothing or below ``DROP_SHARE`` of the same weekday's median in the weeks before."""
    series: defaultdict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in rows:
        series[row["environment"]][row["day"]] = int(row["events"])
    alerts = []
    for environment, counts in sorted(series.items()):
        for day in _finished_days(query, today or dt.datetime.now(dt.UTC).date()):
            expected = _same_weekday_median(counts, day)
            events = counts.get(day, 0)
            if expected is not None and _alarming(events, expected):
                alerts.append(
                    VolumeAlert(
                        day=day,
                        environment=environment,
                        kind="gap" if events == 0 else "drop",
                        events=events,
                        expected=expected,
                    )
                )
    return alerts


def _alarming(events: int, expected: float) -> bool:
    if events == 0:
        return expected >= MIN_GAP_BASELINE
    return expected >= MIN_DROP_BASELINE and events < DROP_SHARE * expected


def _finished_days(query: HealthQuery, today: dt.date) -> list[dt.date]:
    """The window's days before today (today's count is still growing)."""
    first = query.time.start.date()
    last = min((query.time.end - dt.timedelta(microseconds=1)).date(), today - dt.timedelta(1))
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _same_weekday_median(counts: dict[dt.date, int], day: dt.date) -> float | None:
    """Median events of the same weekday in the weeks before, counting only weeks after the
    environment's first event (None without such a week: nothing to judge against)."""
    first = min(counts)
    weeks = [day - dt.timedelta(weeks=w) for w in range(1, BASELINE_WEEKS + 1)]
    history = [counts.get(earlier, 0) for earlier in weeks if earlier >= first]
    return float(statistics.median(history)) if history else None


def _quarantine(store: EventStore, query: HealthQuery) -> dict[str, list[ReasonCount]]:
    """Quarantine counters summed over the window's days, per outcome, largest first."""
    first = query.time.start.date()
    last = (query.time.end - dt.timedelta(microseconds=1)).date()
    totals: defaultdict[tuple[str, str, str, str, str], int] = defaultdict(int)
    for count in store.ingest_counts(first, last, query.environment):
        key = (count.outcome, count.reason, count.environment, count.field_path, count.event_name)
        totals[key] += count.count
    grouped: dict[str, list[ReasonCount]] = {"rejected": [], "redacted": []}
    for (outcome, reason, environment, field_path, event_name), n in totals.items():
        grouped[outcome].append(
            ReasonCount(
                reason=reason,
                environment=environment,
                count=n,
                field_path=field_path,
                event_name=event_name,
            )
        )
    for rows in grouped.values():
        rows.sort(key=lambda r: (-r.count, r.reason, r.environment, r.field_path, r.event_name))
    return grouped


def _day(row: Row, hidden: bool) -> DayVolume:
    return DayVolume(
        day=row["day"],
        environment=row["environment"],
        events=int(row["events"]),
        sessions=None if hidden else int(row["sessions"]),
        redacted_events=int(row["redacted"]),
        hidden=hidden,
    )


def _skew(row: Row) -> SkewSummary:
    events = int(row["events"])
    q = row["q"] or [None, None, None]
    buckets = {name: int(row[name]) / events for _, name in SKEW_BUCKETS_MS}
    buckets["beyond_1h"] = 1.0 - int(row[SKEW_BUCKETS_MS[-1][1]]) / events
    return SkewSummary(
        environment=row["environment"],
        events=events,
        p01_ms=q[0],
        p50_ms=q[1],
        p99_ms=q[2],
        max_abs_ms=row["max_abs"],
        buckets=buckets,
    )


def _timers(row: Row) -> TimerCheck:
    return TimerCheck(
        environment=row["environment"],
        operation=row["operation"],
        ends=int(row["ends"]),
        ends_without_start=int(row["ends_without_start"]),
        negative=int(row["negative"]),
        duration_mismatch=int(row["duration_mismatch"]),
        starts_without_end=int(row["starts_without_end"]),
    )


def _not_in_plan(
    store: EventStore, query: HealthQuery, rejected: list[ReasonCount], days: _RollupDays
) -> list[PlanMismatch]:
    kinds = dict(query.plan.event_kinds)
    found: list[PlanMismatch] = []
    for row in days.names:
        declared = kinds.get(row["event_name"])
        if declared is None or declared != row["kind"]:
            found.append(
                PlanMismatch(
                    source="stored",
                    problem="unknown_event" if declared is None else "kind_mismatch",
                    event_name=row["event_name"],
                    count=int(row["events"]),
                )
            )
    values = days.values if days.values is not None else _raw_values(store, query)
    found.extend(
        PlanMismatch(
            source="stored",
            problem="value_not_allowed",
            event_name=row["event_name"],
            field=row["field"],
            count=int(row["events"]),
        )
        for row in values
        if row["events"]
    )
    found.extend(
        PlanMismatch(
            source="rejected",
            problem=r.reason,
            event_name=r.event_name,
            field=r.field_path,
            count=r.count,
        )
        for r in rejected
        if r.reason.startswith(PLAN_REASON_PREFIXES)
    )
    return sorted(found, key=lambda m: (-m.count, m.source, m.problem, m.event_name, m.field))


def _version(row: Row, query: HealthQuery) -> SchemaVersionCount:
    version = int(row["schema_version"])
    minimum = query.plan.min_schema_version
    if minimum is not None and version < minimum:
        status = "stale"
    elif version < query.plan.schema_version:
        status = "old"
    else:
        status = "current"
    return SchemaVersionCount(
        environment=row["environment"],
        schema_version=version,
        events=int(row["events"]),
        status=status,
    )


def _hint(row: Row, k: int) -> TestDataHint:
    """A version or flag name is not about a person: only a small session count is hidden."""
    sessions = int(row["sessions"])
    return TestDataHint(
        field=row["field"],
        value=row["found"],
        events=int(row["events"]),
        sessions=sessions if sessions >= k else None,
    )
