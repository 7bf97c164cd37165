"""Report 12, frustration from semantic events: where people struggle with the page itself.

Three signals, each counted per screen (and target) as events and sessions:

* ``repeats``: an action on the same target as the session's previous action there, at most
  ``repeat_ms`` later (a button that seems not to answer gets pressed again);
* ``quick_backs``: a screen left for the screen before it at most ``quick_back_ms`` after it
  was opened (A → B → A: B was not what they wanted);
* ``dead_actions``: an action followed by nothing for ``dead_ms``: no screen view, operation,
  error, form submit or field error (the click did nothing anybody could see).

Actions on text inputs are left out (``text_targets``): clicking into a field again and again
is typing, not frustration. Thresholds come from the settings (``frustration_*``). Cells are
sessions; each signal's screens are suppressed with complements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

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
from stumble.config import Settings
from stumble.storage.base import EventStore

RESPONSES: Final = (
    "('screen_view', 'operation_start', 'operation_step', 'operation_end', 'error', "
    "'form_submit', 'field_error')"
)
"""Kinds that show an action was answered."""


@dataclass(frozen=True, slots=True)
class FrustrationThresholds:
    """Defaults equal the settings' (``Settings.frustration_*``; a test keeps them equal)."""

    repeat_ms: int = 1_000
    quick_back_ms: int = 5_000
    dead_ms: int = 3_000
    text_targets: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> FrustrationThresholds:
        return cls(
            repeat_ms=settings.frustration_repeat_ms,
            quick_back_ms=settings.frustration_quick_back_ms,
            dead_ms=settings.frustration_dead_ms,
            text_targets=tuple(settings.frustration_text_targets),
        )


@dataclass(frozen=True, slots=True)
class FrustrationQuery:
    scope: Scope
    thresholds: FrustrationThresholds = FrustrationThresholds()


def frustration_cells(thresholds: FrustrationThresholds) -> CellSpec:
    """Cells count with one set of thresholds (the settings'): other thresholds, raw rows."""
    return CellSpec.versioned(Family.FRUSTRATION, "frustration-1", thresholds)


def signals_ctes(query: FrustrationQuery, dialect: SqlDialect, group: str = "NULL") -> Sql:
    """CTEs ending in ``signals(signal, screen_id, target, session_id, grp)``: one row per
    signal event. ``group``: the session's dimensions as ``grp`` (rollups: the struct of
    every rolled dimension)."""
    limits = query.thresholds
    text = (
        render(
            " AND (target IS NULL OR target NOT IN ({t}))",
            t=Sql.join(", ", (param(t) for t in limits.text_targets)),
        )
        if limits.text_targets
        else Sql("")
    )
    gap = dialect.ms_between
    return render(
        "WITH e AS (SELECT {sid} AS session_id, ts, kind, screen_id, target, {grp} AS grp, "
        "max(ts) OVER (PARTITION BY {sid2}) AS last_at FROM events "
        "WHERE {scope} AND kind <> 'vital'), "
        "acts AS (SELECT session_id, grp, ts, screen_id, target, "
        "lag(ts) OVER (PARTITION BY session_id, screen_id, target ORDER BY ts) AS before, "
        "ts < last_at AS went_on FROM e "
        "WHERE kind = 'action'{text}), "
        "answers AS (SELECT session_id, ts FROM e WHERE kind IN {responses}), "
        "screens AS (SELECT session_id, grp, ts, screen_id, "
        "lag(screen_id) OVER w AS came_from, lead(screen_id) OVER w AS went_to, "
        "lead(ts) OVER w AS left_at FROM e WHERE kind = 'screen_view' "
        "WINDOW w AS (PARTITION BY session_id ORDER BY ts)), "
        "signals AS (SELECT 'repeats' AS signal, screen_id, target, session_id, grp FROM acts "
        "WHERE before IS NOT NULL AND {repeat} <= {repeat_ms} "
        "UNION ALL SELECT 'quick_backs', screen_id, NULL, session_id, grp FROM screens "
        "WHERE went_to = came_from AND {stay} <= {quick_ms} "
        "UNION ALL SELECT 'dead_actions', a.screen_id, a.target, a.session_id, a.grp "
        "FROM acts AS a WHERE {dead_before} AND NOT EXISTS (SELECT 1 FROM answers AS r "
        "WHERE r.session_id = a.session_id AND r.ts >= a.ts AND r.ts <= {dead_until}))",
        sid=dialect.session_key("session_id"),
        sid2=dialect.session_key("session_id"),
        grp=group,
        scope=scope_filter(query.scope, dialect),
        text=text,
        responses=RESPONSES,
        repeat=gap("before", "ts"),
        repeat_ms=str(int(limits.repeat_ms)),
        stay=gap("ts", "left_at"),
        quick_ms=str(int(limits.quick_back_ms)),
        # Judged only when the session went on (a closed tab says nothing about the click).
        dead_before="a.went_on",
        dead_until=dialect.plus_ms("a.ts", limits.dead_ms),
    )


def frustration_sql(query: FrustrationQuery, dialect: SqlDialect) -> Sql:
    return signals_ctes(query, dialect) + Sql(
        " SELECT signal, screen_id, target, count(*) AS events, "
        "count(DISTINCT session_id) AS sessions FROM signals GROUP BY signal, screen_id, target"
    )


def per_session_cte(query: FrustrationQuery, dialect: SqlDialect, group: str) -> Sql:
    """``signals_ctes`` + ``fs``: per signal, screen, target and session, its events (the
    daily rollups' source: cells of several days add up, sessions do not span days)."""
    return signals_ctes(query, dialect, group) + Sql(
        ", fs AS (SELECT signal, screen_id, target, session_id, min(grp) AS grp, "
        "1.0 AS weight, count(*) AS n FROM signals GROUP BY signal, screen_id, target, "
        "session_id)"
    )


class SignalCount(msgspec.Struct, frozen=True, kw_only=True):
    screen_id: str
    target: str | None = None
    hidden: bool = False
    events: int | None = None
    sessions: int | None = None


class FrustrationResult(msgspec.Struct, frozen=True, kw_only=True):
    repeats: list[SignalCount]
    quick_backs: list[SignalCount]
    dead_actions: list[SignalCount]
    thresholds: dict[str, int]
    """The thresholds used (ms)."""

    def tables(self) -> list[Table]:
        def table(title: str, rows: list[SignalCount]) -> Table:
            return Table(
                title,
                (
                    Column("screen"),
                    Column("target"),
                    Column("events", "int"),
                    Column("sessions", "int"),
                ),
                [
                    (r.screen_id, r.target, "hidden" if r.hidden else r.events, r.sessions)
                    for r in rows
                ],
            )

        return [
            table("Repeated actions on one target", self.repeats),
            table("Screens left at once for the one before", self.quick_backs),
            table("Actions followed by nothing", self.dead_actions),
        ]


SIGNALS = ("repeats", "quick_backs", "dead_actions")


def run_frustration(
    store: EventStore,
    query: FrustrationQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[FrustrationResult]:
    """``source``: ``auto`` reads daily rollups when they were built with these thresholds."""
    answer = read_rows(
        store,
        query.scope,
        frustration_cells(query.thresholds),
        rolled=lambda chosen: _rollup_rows(store, query, chosen),
        raw=lambda: fetch(store, frustration_sql(query, dialect_of(store))),
        needs_raw=raw_asked(source),
    )
    rows = sorted(
        answer.rows, key=lambda r: (-int(r["sessions"]), r["screen_id"], str(r["target"]))
    )
    suppressor = Suppressor(min_group_size)
    tickets = [
        suppressor.add(r["signal"], f"{r['screen_id']} {r['target']}", int(r["sessions"]))
        for r in rows
    ]
    suppressor.decide()
    counted: dict[str, list[SignalCount]] = {signal: [] for signal in SIGNALS}
    for row, ticket in zip(rows, tickets, strict=True):
        counted[row["signal"]].append(_count(row, suppressor.is_hidden(ticket)))
    limits = query.thresholds
    result = FrustrationResult(
        **counted,
        thresholds={
            "repeat_ms": limits.repeat_ms,
            "quick_back_ms": limits.quick_back_ms,
            "dead_ms": limits.dead_ms,
        },
    )
    meta = meta_for(
        "frustration",
        time=query.scope.time,
        scope=query.scope,
        sampling=answer.sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[
            (
                f"repeat: same target again within {limits.repeat_ms} ms; quick back: the "
                f"screen before again within {limits.quick_back_ms} ms; dead: no screen, "
                f"operation, error or submit within {limits.dead_ms} ms"
            ),
            "actions on text inputs (settings: frustration_text_targets) are left out",
            answer.note,
        ],
        source=answer.source,
    )
    return Report(meta=meta, data=result)


def _rollup_rows(store: EventStore, query: FrustrationQuery, chosen: RollupSlice) -> list[Row]:
    """The rows of ``frustration_sql``, from daily cells."""
    names = ("signal", "screen_id", "target", None)
    return total_rows(store, query.scope.filters.environment, chosen, Family.FRUSTRATION, names)


def _count(row: Row, hidden: bool) -> SignalCount:
    base = {"screen_id": row["screen_id"], "target": row["target"]}
    if hidden:
        return SignalCount(**base, hidden=True)
    return SignalCount(**base, events=int(row["events"]), sessions=int(row["sessions"]))
