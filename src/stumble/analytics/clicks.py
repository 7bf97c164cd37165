"""Report 10, clicks by target and position per screen: the privacy-safe answer to heatmaps.

The SDK reports semantic actions (``target`` and ``position`` are identifiers the page
declares, never coordinates or element text), so "where do people click" is a count per
screen, target and position: events, and the sessions on the screen that used it. The plan's
``aliases`` are applied first, so a target renamed in a redesign (``btn_send`` → ``btn_submit``)
keeps one trend instead of two half ones. Small cells are hidden; no total is shown beside
them (a session may click several targets), so none can give one away.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from stumble.analytics.common import Row, Suppressor, dialect_of, fetch
from stumble.analytics.queries import Scope
from stumble.analytics.results import Column, Report, Table, meta_for
from stumble.analytics.rollup_cells import CellSpec, Family
from stumble.analytics.rollup_read import (
    RollupSlice,
    SourceAsked,
    raw_asked,
    read_rows,
    total_rows,
)
from stumble.analytics.sql import Sql, SqlDialect, param, render, scope_filter
from stumble.plan.model import TrackingPlan
from stumble.storage.base import EventStore


@dataclass(frozen=True, slots=True)
class ClickQuery:
    """Actions per screen, target and position; every screen unless ``screens`` is set."""

    scope: Scope
    aliases: tuple[tuple[str, str], ...] = ()
    """(old target, current target) pairs from the plan."""
    screens: tuple[str, ...] = ()

    @classmethod
    def from_plan(
        cls, plan: TrackingPlan, scope: Scope, screens: tuple[str, ...] = ()
    ) -> ClickQuery:
        return cls(scope, tuple(sorted(plan.aliases.items())), screens)


def canonical_target(query: ClickQuery) -> Sql:
    """The target with the plan's aliases applied (one step, as the linter requires)."""
    if not query.aliases:
        return Sql("target")
    cases = Sql.join(
        " ",
        (
            render("WHEN {old} THEN {new}", old=param(old), new=param(new))
            for old, new in query.aliases
        ),
    )
    return render("CASE target {cases} ELSE target END", cases=cases)


def clicks_cells(aliases: tuple[tuple[str, str], ...]) -> CellSpec:
    """Cells count targets after the plan's aliases: another set of aliases, other cells."""
    return CellSpec.versioned(Family.CLICKS, "clicks-1", aliases)


def _screens(query: ClickQuery) -> Sql:
    if not query.screens:
        return Sql("")
    return render(" AND screen_id IN ({s})", s=Sql.join(", ", (param(s) for s in query.screens)))


def clicks_sql(query: ClickQuery, dialect: SqlDialect) -> Sql:
    return render(
        "WITH a AS (SELECT {sid} AS session_id, screen_id, {target} AS target, position, kind "
        "FROM events WHERE {scope}{screens} AND kind IN ('action', 'screen_view')) "
        "SELECT CASE WHEN grouping(target) = 1 THEN 'clicked' ELSE 'target' END AS row_kind, "
        "screen_id, target, position, count(*) AS events, count(DISTINCT session_id) AS sessions "
        "FROM a WHERE kind = 'action' "
        "GROUP BY GROUPING SETS ((screen_id, target, position), (screen_id)) "
        "UNION ALL SELECT 'viewed', screen_id, NULL, NULL, count(*), "
        "count(DISTINCT session_id) FROM a WHERE kind = 'screen_view' GROUP BY screen_id",
        sid=dialect.session_key("session_id"),
        target=canonical_target(query),
        scope=scope_filter(query.scope, dialect),
        screens=_screens(query),
    )


def per_session_cte(query: ClickQuery, dialect: SqlDialect, group: str) -> Sql:
    """CTEs ending in ``ct``: per session, the rows ``clicks_sql`` counts (``row_kind``;
    screen, target, position) with their events, each session's dimensions as ``grp``:
    what the daily rollups count, so the cells of several days add up."""
    return render(
        "WITH a AS (SELECT {sid} AS session_id, screen_id, {target} AS target, position, kind, "
        "{grp} AS grp FROM events WHERE {scope} AND kind IN ('action', 'screen_view')), "
        "ct AS (SELECT 'target' AS row_kind, session_id, min(grp) AS grp, 1.0 AS weight, "
        "screen_id, target, position, count(*) AS events FROM a WHERE kind = 'action' "
        "GROUP BY session_id, screen_id, target, position "
        "UNION ALL SELECT 'clicked', session_id, min(grp), 1.0, screen_id, NULL, NULL, count(*) "
        "FROM a WHERE kind = 'action' GROUP BY session_id, screen_id "
        "UNION ALL SELECT 'viewed', session_id, min(grp), 1.0, screen_id, NULL, NULL, count(*) "
        "FROM a WHERE kind = 'screen_view' GROUP BY session_id, screen_id)",
        sid=dialect.session_key("session_id"),
        target=canonical_target(query),
        grp=group,
        scope=scope_filter(query.scope, dialect),
    )


class TargetClicks(msgspec.Struct, frozen=True, kw_only=True):
    screen_id: str
    target: str | None
    """The target after the plan's aliases (None: an action without a declared target)."""
    position: str | None
    hidden: bool = False
    events: int | None = None
    sessions: int | None = None
    share: float | None = None
    """Of the sessions that viewed the screen."""


class ClickResult(msgspec.Struct, frozen=True, kw_only=True):
    targets: list[TargetClicks]
    """Per screen (most clicked first), its targets by sessions, most first."""
    aliases: dict[str, str] = {}
    """The renames applied: old target → current target."""

    def tables(self) -> list[Table]:
        return [
            Table(
                "Clicks by target and position",
                (
                    Column("screen"),
                    Column("target"),
                    Column("position"),
                    Column("events", "int"),
                    Column("sessions", "int"),
                    Column("of viewers", "share"),
                ),
                [
                    (
                        t.screen_id,
                        t.target,
                        t.position,
                        "hidden" if t.hidden else t.events,
                        t.sessions,
                        t.share,
                    )
                    for t in self.targets
                ],
                "targets after the plan's aliases; of viewers: sessions that viewed the screen",
            )
        ]


def run_clicks(
    store: EventStore,
    query: ClickQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[ClickResult]:
    """``source``: ``auto`` reads daily rollups when they can answer (``rollup_read``)."""
    answer = read_rows(
        store,
        query.scope,
        clicks_cells(query.aliases),
        rolled=lambda chosen: _rollup_rows(store, query, chosen),
        raw=lambda: fetch(store, clicks_sql(query, dialect_of(store))),
        needs_raw=raw_asked(source),
    )
    rows = answer.rows
    viewed = {r["screen_id"]: int(r["sessions"]) for r in rows if r["row_kind"] == "viewed"}
    clicked = {r["screen_id"]: int(r["sessions"]) for r in rows if r["row_kind"] == "clicked"}
    targets = sorted(
        (r for r in rows if r["row_kind"] == "target"),
        key=lambda r: (
            -clicked.get(r["screen_id"], 0),
            r["screen_id"],
            -int(r["sessions"]),
            str(r["target"]),
            str(r["position"]),
        ),
    )
    suppressor = Suppressor(min_group_size)
    tickets = [
        suppressor.add(("clicks", r["screen_id"]), f"{r['target']} {r['position']}", r["sessions"])
        for r in targets
    ]
    # No total is shown (a session may click several targets), so nothing to complement.
    suppressor.decide()
    result = ClickResult(
        targets=[
            _target(r, suppressor.is_hidden(t), viewed)
            for r, t in zip(targets, tickets, strict=True)
        ],
        aliases=dict(query.aliases),
    )
    meta = meta_for(
        "clicks",
        time=query.scope.time,
        scope=query.scope,
        sampling=answer.sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[
            "targets and positions are identifiers the page declares, never coordinates",
            "renamed targets are counted under their current name (the plan's aliases)",
            answer.note,
        ],
        source=answer.source,
    )
    return Report(meta=meta, data=result)


def _rollup_rows(store: EventStore, query: ClickQuery, chosen: RollupSlice) -> list[Row]:
    """The rows of ``clicks_sql``, from daily cells."""
    environment = query.scope.filters.environment
    names = ("screen_id", "target", "position", "row_kind")
    rows = total_rows(store, environment, chosen, Family.CLICKS, names)
    return [r for r in rows if not query.screens or r["screen_id"] in query.screens]


def _target(row: Row, hidden: bool, viewed: dict[str, int]) -> TargetClicks:
    base = {"screen_id": row["screen_id"], "target": row["target"], "position": row["position"]}
    if hidden:
        return TargetClicks(**base, hidden=True)
    sessions = int(row["sessions"])
    viewers = viewed.get(row["screen_id"], 0)
    return TargetClicks(
        **base,
        events=int(row["events"]),
        sessions=sessions,
        share=sessions / viewers if viewers else None,
    )
