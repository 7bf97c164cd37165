"""Report 1, the scenario funnel: how many start, reach each step, drop off, and how long it takes.

Semantics (``order: ordered``, the default; README "How funnels count"): **attempts**, as
PostHog's funnel engine counts them. Every step-1 event starts an attempt; a later step joins
the most recent attempt that has reached the previous step, if it happens no later than that
attempt's step-1 event plus the window (the end is inclusive). A session counts once, at the
furthest step any attempt reached, with the step times of the first attempt that got there.
Events of one instant are matched in step order, identical events at one instant are one
entry, and one event never fills two steps of an attempt. ``strict`` also needs the steps
back to back; exclusions remove an attempt they fall inside of; optional steps may be
skipped.

Why attempts replaced first touch (decision 38): an operator opens the form, is called away,
reopens it twenty minutes later and submits. First touch follows the first opening only, so
it counts a drop-off and adds the interruption to the step times. ``first_touch`` stays as an
explicit order for scenarios that want "the first time they saw it".

Suppression: the cells are "sessions that reached step i" for each breakdown group; a hidden
cell hides its count, conversion, drop-off and step times. Drop-off is derived from two shown
counts, so it is shown only when both are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import msgspec

from stumble.analytics import sketch
from stumble.analytics.attempts import attempts_sql, previous_steps
from stumble.analytics.common import Row, Suppressor, dialect_of, fetch
from stumble.analytics.dropoff import (
    StepLastActions,
    StoppedCounts,
    last_actions,
    step_last_actions,
)
from stumble.analytics.queries import FunnelQuery
from stumble.analytics.results import (
    EMPTY_DURATIONS,
    NO_SHARE,
    Column,
    Durations,
    Report,
    Share,
    Table,
    estimate,
    group_label,
    meta_for,
)
from stumble.analytics.rollup_cells import TOTAL_STEP, CellSpec, Family, definition_hash
from stumble.analytics.rollup_read import (
    CellKey,
    Cells,
    CombinedSource,
    MergedCell,
    RollupSlice,
    SourceAsked,
    choose_source,
    groups_of,
    merged_cells,
    raw_asked,
    read_rows,
)
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    dimension_expr,
    disjunction,
    grouping,
    render,
    scope_filter,
    step_condition,
)
from stumble.storage.base import EventStore

LEVELS: Final = (0.5, 0.95)
SEMANTICS: Final = "ordered"
"""The default order (``Scenario.order``); each result names the one it used."""

ORDER_NOTES: Final[dict[str, str]] = {
    "ordered": (
        "ordered: every step-1 event starts an attempt; a later step joins the most recent "
        "attempt that reached the step before it, within the window from that attempt's "
        "step 1 (its end included); events of one instant count in step order"
    ),
    "strict": (
        "strict: like ordered, but the steps must follow each other back to back in the "
        "session's events (vitals aside); any other event in between breaks the attempt, and "
        "a repeated step-1 event restarts it"
    ),
    "first_touch": (
        "first touch: each session follows one chain from its first step-1 event, every "
        "later step being the first matching event after the previous one within the window"
    ),
}
COUNTING_NOTE: Final = (
    "sessions, not people: a session counts once, at the furthest step any of its attempts "
    "reached, with the step times of the first attempt that got there; a funnel never spans "
    "two sessions (a new tab, 30 minutes idle or the daily key change start a new one)"
)


def funnel_notes(query: FunnelQuery) -> list[str]:
    """How this funnel counted, for ``meta.notes``."""
    notes = [ORDER_NOTES[query.scenario.order], COUNTING_NOTE]
    if query.scenario.exclusions:
        labels = ", ".join(step.label for step in query.scenario.exclusions)
        notes.append(
            f"excluded: an attempt with {labels} between its step 1 and its end (its last "
            "step, or its window's end if it never got there) is not counted"
        )
    if any(step.optional for step in query.scenario.steps):
        notes.append(
            "optional steps may be skipped: their count is the sessions that took them, and "
            "drop-off is measured from the last required step"
        )
    return notes


# --- SQL ----------------------------------------------------------------------------------


def chain_sql(query: FunnelQuery, dialect: SqlDialect, group: str | None = None) -> Sql:
    """CTEs ending in ``chain(session_id, grp, weight, t0, t1, ...)``: one row per session
    that reached step 1, with the time its counted attempt reached each step (NULL when it
    did not, or skipped an optional step). ``group`` replaces the breakdown dimension as
    ``grp`` (the rollups carry every dimension at once)."""
    if query.scenario.order == "first_touch":
        return _first_touch_sql(query, dialect, group)
    return attempts_sql(query, dialect, group)


def _step_flags(query: FunnelQuery) -> Sql:
    steps = query.scenario.steps
    return Sql.join(", ", (step_condition(step) + f" AS s{i}" for i, step in enumerate(steps)))


def _first_touch_sql(query: FunnelQuery, dialect: SqlDialect, group: str | None) -> Sql:
    """One chain per session from its first step-1 event (``order: first_touch``)."""
    steps = query.scenario.steps
    ctes = [
        render(
            "m AS (SELECT {sid} AS session_id, ts, sample_rate, {grp} AS grp, {flags} "
            "FROM events WHERE {scope} AND ({any_step}))",
            sid=dialect.session_key("session_id"),
            grp=group or dimension_expr(query.scope.by, dialect),
            flags=_step_flags(query),
            scope=scope_filter(query.scope, dialect),
            any_step=disjunction(step_condition(step) for step in steps),
        ),
        # min(grp): a session has one value of a context dimension or ui_version, and for
        # ``day`` the smallest is the day of its first step (arg_min would cost twice as much).
        Sql(
            "c0 AS (SELECT session_id, min(ts) AS t0, min(grp) AS grp, "
            "min(sample_rate) AS rate FROM m WHERE s0 GROUP BY session_id)"
        ),
    ]
    deadline = dialect.plus_ms("c.t0", query.scenario.window_ms)
    for i in range(1, len(steps)):
        carried = ", ".join(f"c.t{j}" for j in range(i))
        ctes.append(
            render(
                "{this} AS (SELECT c.session_id, {carried}, min(m.ts) AS {t} "
                "FROM {previous} AS c JOIN m ON m.session_id = c.session_id AND m.{flag} "
                "AND m.ts > c.{t_previous} AND m.ts <= {deadline} "
                "GROUP BY c.session_id, {carried})",
                this=f"c{i}",
                carried=carried,
                t=f"t{i}",
                previous=f"c{i - 1}",
                flag=f"s{i}",
                t_previous=f"t{i - 1}",
                deadline=deadline,
            )
        )
    reached = "".join(f", c{i}.t{i} AS t{i}" for i in range(1, len(steps)))
    joins = "".join(
        f" LEFT JOIN c{i} ON c{i}.session_id = c0.session_id" for i in range(1, len(steps))
    )
    ctes.append(
        render(
            "chain AS (SELECT c0.session_id, c0.grp, {weight} AS weight, c0.t0{reached} "
            "FROM c0{joins})",
            weight=dialect.weight("c0.rate"),
            reached=reached,
            joins=joins,
        )
    )
    return "WITH " + Sql.join(",\n", ctes)


def previous_time(query: FunnelQuery, step: int, dialect: SqlDialect) -> str:
    """The time a chain left the step before ``step``: past skipped optional steps."""
    del dialect  # coalesce is spelled alike everywhere
    earlier = [f"t{j}" for j in previous_steps(query, step)]
    return earlier[0] if len(earlier) == 1 else f"coalesce({', '.join(earlier)})"


def gap_expr(query: FunnelQuery, step: int, dialect: SqlDialect) -> str:
    """Milliseconds from the step before ``step`` (as the chain did it) to ``step``."""
    return dialect.ms_between(previous_time(query, step, dialect), f"t{step}")


def funnel_sql(query: FunnelQuery, dialect: SqlDialect) -> Sql:
    """Per group (and the total): sessions and weights per step, step and total times."""
    count = len(query.scenario.steps)
    columns = ["count(*) AS n0", "sum(weight) AS w0"]
    for i in range(1, count):
        reached = f"t{i} IS NOT NULL"
        gap = gap_expr(query, i, dialect)
        columns.append(f"{dialect.count_if(reached)} AS n{i}")
        columns.append(f"{dialect.sum_if('weight', reached)} AS w{i}")
        columns.append(f"{dialect.quantiles(gap, LEVELS)} AS q{i}")
        if query.slow_after_ms is not None:
            slow = f"{gap} > {float(query.slow_after_ms)!r}"
            columns.append(f"{dialect.count_if(slow)} AS slow{i}")
    total = dialect.quantiles(dialect.ms_between("t0", f"t{count - 1}"), LEVELS)
    group_by, is_total = grouping(query.scope.by)
    return chain_sql(query, dialect) + render(
        "\nSELECT {is_total} AS is_total, grp, {columns}, {total} AS total FROM chain "
        "{group_by} ORDER BY is_total DESC, grp",
        is_total=is_total,
        columns=", ".join(columns),
        total=total,
        group_by=group_by,
    )


def step_durations_sql(query: FunnelQuery, dialect: SqlDialect) -> Sql:
    """Per group: sessions that reached each step and the list of their times from the
    previous step (compare resamples these). Lists, not a row per session: fetching a
    million rows costs more than the query."""
    columns = ["count(*) AS n0"]
    for i in range(1, len(query.scenario.steps)):
        reached = f"t{i} IS NOT NULL"
        gap = gap_expr(query, i, dialect)
        columns.append(f"{dialect.count_if(reached)} AS n{i}")
        columns.append(f"{dialect.collect(gap, reached)} AS d{i}")
    return chain_sql(query, dialect) + render(
        "\nSELECT grp, {columns} FROM chain GROUP BY grp", columns=", ".join(columns)
    )


# --- results ------------------------------------------------------------------------------


class FunnelStep(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    hidden: bool = False
    sessions: int | None = None
    """Sessions that reached this step (estimated when sampled); for an optional step, the
    sessions whose counted attempt took it."""
    conversion: Share = NO_SHARE
    """From the first step to this one."""
    step_conversion: Share = NO_SHARE
    """From the previous required step to this one."""
    drop_off: int | None = None
    """Sessions that reached the previous required step but not this one (None for an
    optional step: skipping it is not dropping off)."""
    drop_off_share: float | None = None
    time_from_previous: Durations = EMPTY_DURATIONS
    """From the step the counted attempt did before this one (past skipped optional steps)."""
    slower_than_limit: int | None = None
    """Sessions whose time from the previous step exceeded ``FunnelResult.step_limit_ms``."""
    optional: bool = False
    """A step sessions may skip (the plan's ``optional: true``)."""


class FunnelGroup(msgspec.Struct, frozen=True, kw_only=True):
    group: str | None
    """The breakdown value; None is the total over every group."""
    steps: list[FunnelStep]
    conversion: Share = NO_SHARE
    """First step to last."""
    time_to_convert: Durations = EMPTY_DURATIONS
    """First step to last, over converted sessions."""

    @property
    def started(self) -> int | None:
        return self.steps[0].sessions


class FunnelResult(msgspec.Struct, frozen=True, kw_only=True):
    scenario: str
    semantics: str
    """How steps follow each other: ``ordered`` (attempts), ``strict`` or ``first_touch``."""
    window_minutes: float
    steps: list[str]
    groups: list[FunnelGroup]
    step_limit_ms: float | None = None
    """The plan's ``max_step_p95_ms`` for this scenario, if any."""
    window_ms: int = 0
    """The conversion window (``window_minutes`` in milliseconds: seconds-long windows)."""
    exclusions: list[str] = []
    """Labels of the events that remove an attempt they fall inside of."""
    counting_unit: str = "session"
    """What is counted: sessions, never people (stumble has no user id)."""
    last_actions: list[StepLastActions] = []
    """Per step sessions stopped at (total only): what they did last (``analytics.dropoff``);
    empty unless asked (``FunnelQuery.last_actions``, the report's ``last_actions=1``)."""

    def total(self) -> FunnelGroup:
        return next(g for g in self.groups if g.group is None)

    def tables(self) -> list[Table]:
        columns = (
            Column("group"),
            Column("step"),
            Column("sessions", "int"),
            Column("conversion", "share"),
            Column("from previous", "share"),
            Column("dropped", "int"),
            Column("p50", "ms"),
            Column("p95", "ms"),
        )
        rows: list[tuple[object, ...]] = [
            (
                group_label(group.group),
                step.label,
                "hidden" if step.hidden else step.sessions,
                step.conversion.value,
                step.step_conversion.value,
                step.drop_off,
                step.time_from_previous.p50,
                step.time_from_previous.p95,
            )
            for group in self.groups
            for step in group.steps
        ]
        totals = [
            (
                group_label(g.group),
                g.conversion.value,
                g.conversion.low,
                g.conversion.high,
                g.time_to_convert.p50,
                g.time_to_convert.p95,
            )
            for g in self.groups
        ]
        return [
            Table(
                f"Funnel {self.scenario} ({self.semantics}, window {self.window_minutes:g} min)",
                columns,
                rows,
                "p50/p95: time from the previous step",
            ),
            Table(
                "Conversion and total time",
                (
                    Column("group"),
                    Column("conversion", "share"),
                    Column("95% low", "share"),
                    Column("95% high", "share"),
                    Column("p50 total", "ms"),
                    Column("p95 total", "ms"),
                ),
                totals,
            ),
        ]


# --- running ------------------------------------------------------------------------------


def run_funnel(
    store: EventStore, query: FunnelQuery, *, min_group_size: int = 5, source: SourceAsked = "auto"
) -> Report[FunnelResult]:
    """``source``: ``auto`` picks daily rollups when they can answer (``rollup_read``)."""
    answer = read_rows(
        store,
        query.scope,
        CellSpec(Family.FUNNEL, query.scenario.name, definition_hash(query.scenario)),
        rolled=lambda chosen: _rollup_rows(store, query, chosen),
        raw=lambda: fetch(store, funnel_sql(query, dialect_of(store))),
        needs_raw=raw_asked(source),
    )
    rows, choice, sampling = answer.rows, answer.choice, answer.sampling
    stopped = _last_actions(store, query, source, min_group_size)
    if not rows or not rows[0]["is_total"]:
        rows.insert(0, _empty_total(len(query.scenario.steps)))
    suppressor = Suppressor(min_group_size)
    tickets = [
        [
            suppressor.add(("step", i), None if row["is_total"] else row["grp"], row[f"n{i}"])
            for i in range(len(query.scenario.steps))
        ]
        for row in rows
    ]
    suppressor.decide()
    groups = [
        _group(query, row, [suppressor.is_hidden(t) for t in row_tickets], min_group_size)
        for row, row_tickets in zip(rows, tickets, strict=True)
    ]
    result = FunnelResult(
        scenario=query.scenario.name,
        semantics=query.scenario.order,
        window_minutes=query.scenario.window_ms / 60_000,
        steps=[step.label for step in query.scenario.steps],
        groups=groups,
        step_limit_ms=query.slow_after_ms,
        window_ms=query.scenario.window_ms,
        exclusions=[step.label for step in query.scenario.exclusions],
        last_actions=stopped.steps,
    )
    used = CombinedSource.of({choice.source, *stopped.sources})
    meta = meta_for(
        "funnel",
        time=query.scope.time,
        scope=query.scope,
        sampling=sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[*funnel_notes(query), choice.note if used.source == choice.source else used.note],
        source=used.source,
    )
    return Report(meta=meta, data=result)


@dataclass(frozen=True, slots=True)
class _LastActions:
    steps: list[StepLastActions]
    sources: tuple[str, ...] = ()


def _last_actions(
    store: EventStore, query: FunnelQuery, source: SourceAsked, k: int
) -> _LastActions:
    """What the sessions that stopped did last, when asked: from rollups when they answer."""
    if not query.last_actions:
        return _LastActions([])
    name, definition = query.scenario.name, definition_hash(query.scenario)
    choice = choose_source(
        store,
        query.scope,
        family=Family.LAST_ACTION,
        key=name,
        definition=definition,
        needs_raw=raw_asked(source),
    )
    if choice.slice is None:
        dialect = dialect_of(store)
        return _LastActions(
            last_actions(store, chain_sql(query, dialect), query, dialect, k), ("raw",)
        )
    environment = query.scope.filters.environment
    total = replace(choice.slice, group_by="none")
    counts: StoppedCounts = {}
    for key, cell in merged_cells(
        store, environment, total, Family.LAST_ACTION, k1=name, k3=definition
    ).items():
        counts.setdefault(int(str(key.keys[1])), {})[str(key.keys[3])] = cell.sessions
    return _LastActions(step_last_actions(counts, query, k), ("rollups",))


def _rollup_rows(store: EventStore, query: FunnelQuery, chosen: RollupSlice) -> list[Row]:
    """The rows ``funnel_sql`` would give (total first, then groups), from daily rollups."""
    cells = merged_cells(
        store,
        query.scope.filters.environment,
        chosen,
        Family.FUNNEL,
        k1=query.scenario.name,
        k3=definition_hash(query.scenario),
    )
    return [_rollup_row(query, cells, group, is_total) for is_total, group in groups_of(cells)]


def _rollup_row(query: FunnelQuery, cells: Cells, group: str | None, is_total: bool) -> Row:
    keys = (query.scenario.name, None, definition_hash(query.scenario), None)

    def cell(step: str) -> MergedCell:
        return cells.get(CellKey(group, is_total, keys, step)) or MergedCell()

    row: Row = {"is_total": is_total, "grp": group}
    for i in range(len(query.scenario.steps)):
        reached = cell(str(i))
        row[f"n{i}"] = reached.sessions
        row[f"w{i}"] = reached.weighted
        if i:
            row[f"q{i}"] = reached.quantiles(LEVELS)
            if query.slow_after_ms is not None:
                row[f"slow{i}"] = sketch.count_above(reached.sketch, query.slow_after_ms)
    row["total"] = cell(TOTAL_STEP).quantiles(LEVELS)
    return row


def _empty_total(steps: int) -> Row:
    row: Row = {"is_total": True, "grp": None, "n0": 0, "w0": None, "total": None}
    for i in range(1, steps):
        row.update({f"n{i}": 0, f"w{i}": None, f"q{i}": None})
    return row


def _group(query: FunnelQuery, row: Row, hidden: list[bool], k: int) -> FunnelGroup:
    specs = query.scenario.steps
    n = [int(row[f"n{i}"]) for i in range(len(specs))]
    w = [row[f"w{i}"] for i in range(len(specs))]
    steps = [
        FunnelStep(label=spec.label, hidden=True, optional=spec.optional)
        if hidden[i]
        else _step(query, row, i, n=n, w=w, hidden=hidden, k=k)
        for i, spec in enumerate(specs)
    ]
    last = len(specs) - 1
    converted_shown = not hidden[last] and not hidden[0]
    return FunnelGroup(
        group=None if row["is_total"] else row["grp"],
        steps=steps,
        conversion=Share.of(n[last], n[0], weighted_part=w[last], weighted_whole=w[0])
        if converted_shown
        else NO_SHARE,
        time_to_convert=Durations.of(n[last], row["total"])
        if converted_shown and last
        else EMPTY_DURATIONS,
    )


def _step(
    query: FunnelQuery,
    row: Row,
    i: int,
    *,
    n: list[int],
    w: list[float | None],
    hidden: list[bool],
    k: int,
) -> FunnelStep:
    """One shown step. Step conversion and drop-off are against the last *required* step
    before it: skipping an optional step is not dropping off, so an optional step has no
    drop-off and its step conversion is the share of sessions that took it."""
    spec = query.scenario.steps[i]
    before = _required_before(query, i)
    shown_before = before is not None and not hidden[before]
    drops = shown_before and not spec.optional
    j = before or 0
    return FunnelStep(
        label=spec.label,
        optional=spec.optional,
        sessions=estimate(n[i], w[i]),
        conversion=NO_SHARE
        if hidden[0]
        else Share.of(n[i], n[0], weighted_part=w[i], weighted_whole=w[0]),
        step_conversion=Share.of(n[i], n[j], weighted_part=w[i], weighted_whole=w[j])
        if shown_before
        else NO_SHARE,
        drop_off=estimate(n[j], w[j]) - estimate(n[i], w[i]) if drops else None,
        drop_off_share=_drop_share(n[j], n[i], w[j], w[i]) if drops else None,
        time_from_previous=Durations.of(n[i], row.get(f"q{i}")) if i else EMPTY_DURATIONS,
        slower_than_limit=_slow(row, i, k),
    )


def _required_before(query: FunnelQuery, step: int) -> int | None:
    """The nearest required step before ``step`` (None for the first step)."""
    earlier = [j for j in range(step) if not query.scenario.steps[j].optional]
    return earlier[-1] if earlier else None


def _slow(row: Row, step: int, k: int) -> int | None:
    """Sessions slower than the limit; a count under k is itself a small cell."""
    value = row.get(f"slow{step}")
    return None if value is None or int(value) < k else int(value)


def _drop_share(
    before: int, after: int, w_before: float | None, w_after: float | None
) -> float | None:
    if not before:
        return None
    if w_before and w_after is not None:
        return 1.0 - w_after / w_before
    return 1.0 - after / before


__all__ = [
    "SEMANTICS",
    "FunnelGroup",
    "FunnelResult",
    "FunnelStep",
    "chain_sql",
    "funnel_sql",
    "run_funnel",
    "step_durations_sql",
]
