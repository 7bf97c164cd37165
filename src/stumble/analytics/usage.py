"""Report 5, feature usage: which features people use each day, and which they barely touch.

A *feature* is an ``action`` or ``custom`` event name. Per feature: sessions and events per
day, sessions over the whole range, and the share of active sessions (sessions with any event
in scope) that used it. A feature is *barely touched* when that share is below
``UsageQuery.barely_used_share``; features the plan declares but nobody used are listed too.
A breakdown applies to the range totals; the daily series is for all groups together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import msgspec

from stumble.analytics.common import Row, Suppressor, dialect_of, fetch, row_group
from stumble.analytics.queries import UsageQuery
from stumble.analytics.results import (
    NO_SHARE,
    Column,
    Report,
    Share,
    Table,
    estimate,
    group_label,
    meta_for,
)
from stumble.analytics.rollup_cells import CellSpec, Family
from stumble.analytics.rollup_read import (
    RollupSlice,
    SourceAsked,
    merged_cells,
    raw_asked,
    read_rows,
)
from stumble.analytics.sql import Sql, SqlDialect, dimension_expr, grouping, render, scope_filter
from stumble.storage.base import EventStore


def usage_cells() -> CellSpec:
    """The usage cells; their version goes up whenever they change meaning (days
    built before are then not read)."""
    return CellSpec.versioned(Family.USAGE, "usage-1")


def per_session_cte(query: UsageQuery, dialect: SqlDialect, group: str | None = None) -> Sql:
    """CTE ``u``: one row per feature, session and day with its event count and weight.
    ``group``: an expression replacing the breakdown dimension as ``grp`` (rollups: the
    struct of every rolled dimension)."""
    return render(
        "WITH u AS (SELECT event_name, {sid} AS session_id, {day} AS day, {grp} AS grp, "
        "count(*) AS events, {weight} AS weight FROM events "
        "WHERE {scope} AND kind IN ('action', 'custom') "
        "GROUP BY event_name, session_id, day, grp)",
        sid=dialect.session_key("session_id"),
        day=dialect.day("ts"),
        grp=group or dimension_expr(query.scope.by, dialect),
        weight=dialect.weight("min(sample_rate)"),
        scope=scope_filter(query.scope, dialect),
    )


def totals_sql(query: UsageQuery, dialect: SqlDialect) -> Sql:
    """Per feature (and group) over the range."""
    group_by, is_total = grouping(query.scope.by, "event_name")
    return per_session_cte(query, dialect) + render(
        " SELECT {is_total} AS is_total, event_name, grp, count(DISTINCT session_id) AS sessions, "
        "sum(weight) AS weighted, sum(events) AS events FROM u {group_by}",
        is_total=is_total,
        group_by=group_by,
    )


def daily_sql(query: UsageQuery, dialect: SqlDialect) -> Sql:
    """Per feature and day, all groups together."""
    return per_session_cte(query, dialect) + Sql(
        " SELECT event_name, day, count(DISTINCT session_id) AS sessions, "
        "sum(weight) AS weighted, sum(events) AS events FROM u GROUP BY event_name, day "
        "ORDER BY event_name, day"
    )


def active_sql(query: UsageQuery, dialect: SqlDialect) -> Sql:
    """Active sessions (any event in scope) per group and in total: the share's denominator."""
    group_by, is_total = grouping(query.scope.by)
    return render(
        "WITH a AS (SELECT {sid} AS sid, {grp} AS grp, {weight} AS weight FROM events "
        "WHERE {scope} GROUP BY sid, grp) "
        "SELECT {is_total} AS is_total, grp, count(*) AS sessions, sum(weight) AS weighted "
        "FROM a {group_by}",
        sid=dialect.session_key("session_id"),
        grp=dimension_expr(query.scope.by, dialect),
        weight=dialect.weight("min(sample_rate)"),
        scope=scope_filter(query.scope, dialect),
        is_total=is_total,
        group_by=group_by,
    )


class DayUsage(msgspec.Struct, frozen=True, kw_only=True):
    day: dt.date
    hidden: bool = False
    sessions: int | None = None
    events: int | None = None


class FeatureUsage(msgspec.Struct, frozen=True, kw_only=True):
    feature: str
    group: str | None
    hidden: bool = False
    sessions: int | None = None
    events: int | None = None
    share: Share = NO_SHARE
    """Of the active sessions (of the group)."""
    days: list[DayUsage] = []
    """Daily series; only on the total row."""


class UsageResult(msgspec.Struct, frozen=True, kw_only=True):
    active_sessions: int | None
    """Sessions with any event in scope (None: fewer than k)."""
    features: list[FeatureUsage]
    barely_used: list[str]
    """Features below the threshold share (or unused though declared), least used first."""
    barely_used_share: float

    def feature(self, name: str, group: str | None = None) -> FeatureUsage | None:
        return next((f for f in self.features if f.feature == name and f.group == group), None)

    def tables(self) -> list[Table]:
        days = sorted({d.day for f in self.features for d in f.days})
        per_day = {
            (f.feature, d.day): ("hidden" if d.hidden else d.sessions)
            for f in self.features
            for d in f.days
        }
        totals = Table(
            "Feature usage",
            (
                Column("feature"),
                Column("group"),
                Column("sessions", "int"),
                Column("events", "int"),
                Column("share of sessions", "share"),
            ),
            [
                (
                    f.feature,
                    group_label(f.group),
                    "hidden" if f.hidden else f.sessions,
                    f.events,
                    f.share.value,
                )
                for f in self.features
            ],
            f"barely touched (< {self.barely_used_share:.1%} of sessions): "
            + (", ".join(self.barely_used) or "none"),
        )
        daily = Table(
            "Sessions per feature per day",
            (Column("feature"), *(Column(d.isoformat(), "int") for d in days)),
            [
                (f.feature, *(per_day.get((f.feature, d)) for d in days))
                for f in self.features
                if f.group is None
            ],
        )
        return [totals, daily]


def run_usage(
    store: EventStore,
    query: UsageQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[UsageResult]:
    """``source``: ``auto`` reads daily rollups when they can answer (``rollup_read``)."""
    answer = read_rows(
        store,
        query.scope,
        usage_cells(),
        rolled=lambda chosen: _rollup_rows(store, query, chosen),
        raw=lambda: _raw_rows(store, query),
        needs_raw=raw_asked(source),
    )
    totals, daily, active = answer.rows
    suppressor = Suppressor(min_group_size)
    total_tickets = {
        (r["event_name"], row_group(r)): suppressor.add(
            ("feature", r["event_name"]), row_group(r), r["sessions"]
        )
        for r in totals
    }
    for name, group in list(total_tickets):
        if group is None:  # the range total is also the total of the daily series
            row = next(r for r in totals if r["event_name"] == name and row_group(r) is None)
            suppressor.add(("days", name), None, row["sessions"], same_as=total_tickets[name, None])
    day_tickets = [
        suppressor.add(("days", r["event_name"]), r["day"].isoformat(), r["sessions"])
        for r in daily
    ]
    suppressor.decide()
    series: dict[str, list[DayUsage]] = {}
    for row, ticket in zip(daily, day_tickets, strict=True):
        series.setdefault(row["event_name"], []).append(_day(row, suppressor.is_hidden(ticket)))
    features = [
        _feature(r, active.get(row_group(r)), series, suppressor.is_hidden(ticket))
        for r, ticket in ((r, total_tickets[r["event_name"], row_group(r)]) for r in totals)
    ]
    overall = active.get(None)
    active_sessions = int(overall["sessions"]) if overall else 0
    result = UsageResult(
        # Hidden below k on the observed count, like every other cell.
        active_sessions=estimate(active_sessions, overall["weighted"] if overall else None)
        if active_sessions >= min_group_size
        else None,
        features=sorted(features, key=lambda f: (f.feature, f.group is not None, f.group or "")),
        barely_used=_barely_used(query, totals, active_sessions),
        barely_used_share=query.barely_used_share,
    )
    meta = meta_for(
        "usage",
        time=query.scope.time,
        scope=query.scope,
        sampling=answer.sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=["a feature is an action or custom event name; days are UTC", answer.note],
        source=answer.source,
    )
    return Report(meta=meta, data=result)


UsageRows = tuple[list[Row], list[Row], dict[str | None, Row]]
"""The rows of ``totals_sql``, ``daily_sql`` and ``active_sql`` (by group)."""


def _raw_rows(store: EventStore, query: UsageQuery) -> UsageRows:
    dialect = dialect_of(store)
    totals = fetch(store, totals_sql(query, dialect))
    daily = fetch(store, daily_sql(query, dialect))
    active = {row_group(r): r for r in fetch(store, active_sql(query, dialect))}
    return totals, daily, active


def _rollup_rows(store: EventStore, query: UsageQuery, chosen: RollupSlice) -> UsageRows:
    """The rows of ``totals_sql``, ``daily_sql`` and ``active_sql``, from daily cells."""
    environment = query.scope.filters.environment
    totals = [
        {
            "is_total": key.is_total,
            "event_name": key.keys[0],
            "grp": key.group,
            "sessions": cell.sessions,
            "weighted": cell.weighted,
            "events": round(cell.value_sum or 0),
        }
        for key, cell in merged_cells(store, environment, chosen, Family.USAGE).items()
    ]
    # The daily series is for all groups together: the same cells, grouped by their day.
    per_day = merged_cells(store, environment, replace(chosen, group_by="day"), Family.USAGE)
    daily = sorted(
        (
            {
                "event_name": key.keys[0],
                "day": dt.date.fromisoformat(key.group or ""),
                "sessions": cell.sessions,
                "weighted": cell.weighted,
                "events": round(cell.value_sum or 0),
            }
            for key, cell in per_day.items()
            if not key.is_total
        ),
        key=lambda r: (r["event_name"], r["day"]),
    )
    active = {
        None if key.is_total else key.group: {
            "is_total": key.is_total,
            "grp": key.group,
            "sessions": cell.sessions,
            "weighted": cell.weighted,
        }
        for key, cell in merged_cells(store, environment, chosen, Family.ACTIVE).items()
    }
    return totals, daily, active


def _day(row: Row, hidden: bool) -> DayUsage:
    if hidden:
        return DayUsage(day=row["day"], hidden=True)
    return DayUsage(
        day=row["day"],
        sessions=estimate(int(row["sessions"]), row["weighted"]),
        events=int(row["events"]),
    )


def _feature(
    row: Row, active: Row | None, series: dict[str, list[DayUsage]], hidden: bool
) -> FeatureUsage:
    name, group = row["event_name"], row_group(row)
    days = series.get(name, []) if group is None else []
    if hidden:
        return FeatureUsage(feature=name, group=group, hidden=True, days=days)
    sessions = int(row["sessions"])
    return FeatureUsage(
        feature=name,
        group=group,
        sessions=estimate(sessions, row["weighted"]),
        events=int(row["events"]),
        share=Share.of(
            sessions,
            int(active["sessions"]),
            weighted_part=row["weighted"],
            weighted_whole=active["weighted"],
        )
        if active
        else NO_SHARE,
        days=days,
    )


def _barely_used(query: UsageQuery, totals: list[Row], active_sessions: int) -> list[str]:
    """Least used first: declared but unused, then below the threshold share."""
    used = {r["event_name"]: int(r["sessions"]) for r in totals if row_group(r) is None}
    shares = {
        name: used.get(name, 0) / active_sessions if active_sessions else 0.0
        for name in {*used, *query.declared}
    }
    rare = [name for name, share in shares.items() if share < query.barely_used_share]
    return sorted(rare, key=lambda name: (shares[name], name))
