"""Report 4, loops and returns: where people go back, cancel, close, retry or reopen.

Per screen: the sessions on it (a ``screen_view`` or a ``navigation`` event with that
``screen_id``), and for each navigation kind the share of those sessions that used it at least
once and the number of events. A screen is *reopened* in a session when it was viewed more
than once; ``reopen`` navigation events are counted as well, as the SDK may report them.
"""

from __future__ import annotations

from typing import Final

import msgspec

from stumble.analytics.common import Row, Suppressor, dialect_of, fetch, row_group
from stumble.analytics.queries import LoopQuery
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
from stumble.analytics.rollup_build import Measure
from stumble.analytics.rollup_cells import CellSpec, Family
from stumble.analytics.rollup_read import (
    RollupSlice,
    SourceAsked,
    merged_cells,
    raw_asked,
    read_rows,
)
from stumble.analytics.sql import Sql, SqlDialect, dimension_expr, grouping, render, scope_filter
from stumble.events import NAVIGATION_KINDS
from stumble.storage.base import EventStore


def loops_cells() -> CellSpec:
    """The loops cells; their version goes up whenever they change meaning (days
    built before are then not read)."""
    return CellSpec.versioned(Family.LOOPS, "loops-1")


def per_screen_cte(query: LoopQuery, dialect: SqlDialect, group: str | None = None) -> Sql:
    """CTEs ending in ``s``: one row per session and screen with its views and its events of
    each navigation kind. ``group``: an expression replacing the breakdown dimension as
    ``grp`` (rollups: the struct of every rolled dimension)."""
    per_session = ", ".join(
        dialect.count_if(f"nav = '{nav}'") + f" AS {nav}" for nav in NAVIGATION_KINDS
    )
    return render(
        "WITH v AS (SELECT {sid} AS session_id, screen_id, kind, nav, ts, sample_rate, "
        "{grp} AS grp "
        "FROM events WHERE {scope} AND kind IN ('screen_view', 'navigation')), "
        "s AS (SELECT session_id, screen_id, min(grp) AS grp, {weight} AS weight, "
        "{views} AS views, {per_session} FROM v GROUP BY session_id, screen_id)",
        grp=group or dimension_expr(query.scope.by, dialect),
        scope=scope_filter(query.scope, dialect),
        sid=dialect.session_key("session_id"),
        weight=dialect.weight("min(sample_rate)"),
        views=dialect.count_if("kind = 'screen_view'"),
        per_session=per_session,
    )


def loops_sql(query: LoopQuery, dialect: SqlDialect) -> Sql:
    group_by, is_total = grouping(query.scope.by, "screen_id")
    per_screen = ", ".join(
        f"{dialect.count_if(f'{nav} > 0')} AS {nav}_sessions, sum({nav}) AS {nav}_events"
        for nav in NAVIGATION_KINDS
    )
    return per_screen_cte(query, dialect) + render(
        " SELECT {is_total} AS is_total, screen_id, grp, count(*) AS sessions, "
        "sum(weight) AS weighted, sum(views) AS views, {reopened} AS reopened, "
        "{w_reopened} AS w_reopened, {per_screen} "
        "FROM s {group_by} ORDER BY screen_id, is_total DESC, grp",
        is_total=is_total,
        reopened=dialect.count_if("views > 1"),
        w_reopened=dialect.sum_if("weight", "views > 1"),
        per_screen=per_screen,
        group_by=group_by,
    )


LOOP_MEASURES: Final = (
    Measure("sessions", value="views"),
    Measure("reopened", "views > 1"),
    *(Measure(f"nav:{nav}", f"{nav} > 0", value=nav) for nav in NAVIGATION_KINDS),
)
"""The cells of a screen (``rollup_reports``): its sessions (``value_sum`` views), those that
reopened it (weights), and per navigation kind the sessions that used it (``value_sum``
their events of that kind)."""


class NavigationUse(msgspec.Struct, frozen=True, kw_only=True):
    sessions: Share = NO_SHARE
    """Share of the screen's sessions with at least one such event."""
    events: int | None = None


class ScreenLoops(msgspec.Struct, frozen=True, kw_only=True):
    screen_id: str
    group: str | None
    hidden: bool = False
    sessions: int | None = None
    views: int | None = None
    reopened: Share = NO_SHARE
    """Share of the screen's sessions that viewed it more than once."""
    navigation: dict[str, NavigationUse] = {}


class LoopResult(msgspec.Struct, frozen=True, kw_only=True):
    screens: list[ScreenLoops]

    def screen(self, screen_id: str, group: str | None = None) -> ScreenLoops | None:
        return next(
            (s for s in self.screens if s.screen_id == screen_id and s.group == group), None
        )

    def tables(self) -> list[Table]:
        columns = (
            Column("screen"),
            Column("group"),
            Column("sessions", "int"),
            Column("reopened", "share"),
            *(Column(nav, "share") for nav in NAVIGATION_KINDS),
        )
        rows = [
            (
                s.screen_id,
                group_label(s.group),
                "hidden" if s.hidden else s.sessions,
                s.reopened.value,
                *(
                    s.navigation.get(nav, NavigationUse()).sessions.value
                    for nav in NAVIGATION_KINDS
                ),
            )
            for s in self.screens
        ]
        return [
            Table("Loops and returns per screen", columns, rows, "shares of the screen's sessions")
        ]


def run_loops(
    store: EventStore,
    query: LoopQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[LoopResult]:
    """``source``: ``auto`` reads daily rollups when they can answer (``rollup_read``)."""
    answer = read_rows(
        store,
        query.scope,
        loops_cells(),
        rolled=lambda chosen: _rollup_rows(store, query, chosen),
        raw=lambda: fetch(store, loops_sql(query, dialect_of(store))),
        needs_raw=raw_asked(source),
    )
    rows = answer.rows
    suppressor = Suppressor(min_group_size)
    tickets = [
        suppressor.add(("screen", r["screen_id"]), row_group(r), int(r["sessions"])) for r in rows
    ]
    suppressor.decide()
    result = LoopResult(
        screens=[_screen(r, suppressor.is_hidden(t)) for r, t in zip(rows, tickets, strict=True)]
    )
    meta = meta_for(
        "loops",
        time=query.scope.time,
        scope=query.scope,
        sampling=answer.sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=["reopened: viewed more than once in the session", answer.note],
        source=answer.source,
    )
    return Report(meta=meta, data=result)


def _rollup_rows(store: EventStore, query: LoopQuery, chosen: RollupSlice) -> list[Row]:
    """The rows of ``loops_sql``, from daily cells, in its order."""
    cells = merged_cells(store, query.scope.filters.environment, chosen, Family.LOOPS)
    rows: dict[tuple[str | None, bool, str | None], Row] = {}
    for key, cell in cells.items():
        screen = key.keys[0]
        row = rows.setdefault(
            (screen, key.is_total, key.group),
            {"is_total": key.is_total, "screen_id": screen, "grp": key.group},
        )
        if key.measure == "sessions":
            row |= {"sessions": cell.sessions, "weighted": cell.weighted}
            row["views"] = round(cell.value_sum or 0)
        elif key.measure == "reopened":
            row |= {"reopened": cell.sessions, "w_reopened": cell.weighted}
        else:
            nav = key.measure.removeprefix("nav:")
            row |= {f"{nav}_sessions": cell.sessions, f"{nav}_events": round(cell.value_sum or 0)}
    complete = [_with_zeros(row) for row in rows.values() if "sessions" in row]
    # As the SQL's ORDER BY screen_id, is_total DESC, grp (NULLs last, as DuckDB sorts them).
    return sorted(
        complete,
        key=lambda r: (
            r["screen_id"] is None,
            r["screen_id"] or "",
            not r["is_total"],
            r["grp"] is None,
            r["grp"] or "",
        ),
    )


def _with_zeros(row: Row) -> Row:
    """A measure no session had has no cell: the SQL counts it as 0."""
    defaults: Row = {"reopened": 0, "w_reopened": None}
    for nav in NAVIGATION_KINDS:
        defaults |= {f"{nav}_sessions": 0, f"{nav}_events": 0}
    return defaults | row


def _screen(row: Row, hidden: bool) -> ScreenLoops:
    if hidden:
        return ScreenLoops(screen_id=row["screen_id"], group=row_group(row), hidden=True)
    sessions = int(row["sessions"])
    weighted = row["weighted"]
    return ScreenLoops(
        screen_id=row["screen_id"],
        group=row_group(row),
        sessions=estimate(sessions, weighted),
        views=int(row["views"]),
        reopened=Share.of(
            int(row["reopened"]),
            sessions,
            weighted_part=row["w_reopened"] or 0.0,
            weighted_whole=weighted,
        ),
        navigation={
            nav: NavigationUse(
                sessions=Share.of(int(row[f"{nav}_sessions"]), sessions),
                events=int(row[f"{nav}_events"] or 0),
            )
            for nav in NAVIGATION_KINDS
        },
    )
