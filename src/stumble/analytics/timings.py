"""Report 2, operation timings: how long operations take, how they end, and where the time goes.

* Durations are the ``duration_ms`` the client measured on ``operation_end``: p50/p95/p99 of
  successful operations (a timeout is pinned at the client's limit and would flatter nothing),
  and of all operations.
* Outcome rates are shares of ended operations: success, fail, timeout, cancel.
* Retries: within a session, every instance of an operation that follows a ``fail`` or
  ``timeout`` of the same operation is a retry.
* Phases split an operation at its ``operation_step`` checkpoints: the time from the previous
  checkpoint (or the start) to each checkpoint is attributed to the phase that checkpoint
  closes (``PHASES``): waiting for the server, rendering, the person's input, fixing errors.
  An end straight after ``request_sent`` (a timeout, a cancel while waiting) closes an
  ``unanswered_wait``. That is what tells "slow server" from "clumsy UI".

How: one pass groups the events into operation instances (one row per session and
``operation_id``, with the first time of each checkpoint), and every figure is an aggregate
over those rows. A checkpoint reported twice in one instance counts once, at its first time;
checkpoints at the same millisecond are both measured from the one before them.

Over whole days the rows come from daily rollups when they can answer (``rollup_read``): the
``timing`` and ``timing_phase`` cells hold every operation and checkpoint, measured as above
per day (an instance never spans days: its session key changes at midnight), so counts,
retries and phase sums are the raw ones and quantiles are within ``sketch.ALPHA``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from stumble.analytics.common import Row, Suppressor, dialect_of, fetch, row_group
from stumble.analytics.queries import TimingQuery
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
from stumble.analytics.rollup_cells import Family, definition_hash
from stumble.analytics.rollup_read import (
    CellKey,
    Cells,
    MergedCell,
    RollupSlice,
    SourceAsked,
    SourceChoice,
    choose_source,
    merged_cells,
    raw_asked,
    sampling_for,
)
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    conjunction,
    dimension_expr,
    grouping,
    param,
    params_list,
    render,
    scope_filter,
)
from stumble.events import OPERATION_STATUSES
from stumble.storage.base import EventStore

LEVELS: Final = (0.5, 0.95, 0.99)
PHASE_LEVELS: Final = (0.5, 0.95)
END_CHECKPOINT: Final = "(end)"
UNANSWERED_CHECKPOINT: Final = "(end, no response)"
REQUEST_SENT: Final = "request_sent"
PHASES: Final[dict[str, str]] = {
    REQUEST_SENT: "preparing",
    "validation_done": "validation",
    "input_done": "input",
    "error_fixed": "error_fixing",
    "server_response_received": "server_wait",
    "rendered": "rendering",
    "file_ready": "rendering",
    END_CHECKPOINT: "finishing",
    UNANSWERED_CHECKPOINT: "unanswered_wait",
}
"""Checkpoint (``step_name``) -> the phase that ends there. Unknown names are their own phase."""
FAILED_STATUSES: Final = ("fail", "timeout")
ROLLUP_KEY: Final = "*"
ROLLUP_DEFINITION: Final = "gaps from the latest earlier checkpoint or the start; v1"
"""What the timing cells of a day measure (every operation, so no plan definition): a
change to how they are built changes it, and days built the old way are rebuilt."""


def _operation_events(query: TimingQuery, dialect: SqlDialect, kinds: tuple[str, ...]) -> Sql:
    conditions = [scope_filter(query.scope, dialect), render("kind IN ({k})", k=params_list(kinds))]
    if query.operations:
        conditions.append(render("operation IN ({ops})", ops=params_list(query.operations)))
    return conjunction(conditions)


def checkpoints_sql(query: TimingQuery, dialect: SqlDialect) -> Sql:
    """The checkpoint names (``step_name``) the operations in scope report."""
    return render(
        "SELECT DISTINCT step_name FROM events WHERE {where} AND step_name IS NOT NULL "
        "ORDER BY step_name",
        where=_operation_events(query, dialect, ("operation_step",)),
    )


def _gap_columns(dialect: SqlDialect, checkpoints: Sequence[str]) -> list[str]:
    """Per checkpoint ``g<i>``: ms since the latest earlier checkpoint or the start; then
    ``g_end`` (since the latest checkpoint) and ``unanswered`` (that one was request_sent)."""
    names = [f"c{i}" for i in range(len(checkpoints))]

    def latest_before(time: str, others: list[str], inclusive: bool) -> str:
        compare = "<=" if inclusive else "<"
        earlier = [f"CASE WHEN {o} {compare} {time} THEN {o} END" for o in others]
        return dialect.latest(["t_start", *earlier]) if earlier else "t_start"

    columns = [
        f"{dialect.ms_between(latest_before(name, [o for o in names if o != name], False), name)}"
        f" AS g{i}"
        for i, name in enumerate(names)
    ]
    end_previous = latest_before("t_end", names, True)
    columns.append(f"{dialect.ms_between(end_previous, 't_end')} AS g_end")
    if REQUEST_SENT in checkpoints:
        sent = names[list(checkpoints).index(REQUEST_SENT)]
        columns.append(f"coalesce({sent} = {end_previous}, FALSE) AS unanswered")
    else:
        columns.append("FALSE AS unanswered")
    return columns


def instances_sql(
    query: TimingQuery,
    dialect: SqlDialect,
    checkpoints: Sequence[str],
    group: str | None = None,
) -> Sql:
    """CTE ``ops``: one row per operation instance, its outcome, and the gap closed by each
    checkpoint (see ``_gap_columns``). ``group``: an expression replacing the breakdown
    dimension as ``grp`` (rollups: the struct of every rolled dimension)."""
    marks = Sql.join(
        "",
        (
            Sql(
                ", "
                + dialect.aggregate_if("min", "ts", "kind = 'operation_step' AND step_name = ?")
                + f" AS c{i}",
                (checkpoint,),
            )
            for i, checkpoint in enumerate(checkpoints)
        ),
    )
    return render(
        "WITH {ops_cte} (SELECT *, {gaps} FROM (SELECT {sid} AS sid, {instance} AS instance, "
        "min(operation) AS operation, min(grp) AS grp, {weight} AS weight, "
        "{status} AS status, {duration} AS duration, {started} AS t_start, {ended} AS t_end"
        "{marks} FROM (SELECT session_id, operation_id, operation, kind, status, duration_ms, "
        "step_name, ts, sample_rate, {grp} AS grp FROM events WHERE {where}) AS e "
        "GROUP BY sid, instance) AS grouped)",
        ops_cte=dialect.materialized("ops"),
        gaps=", ".join(_gap_columns(dialect, checkpoints)),
        sid=dialect.session_key("session_id"),
        instance=dialect.session_key("session_id", "operation_id"),
        weight=dialect.weight("min(sample_rate)"),
        status=dialect.aggregate_if("min", "status", "kind = 'operation_end'"),
        duration=dialect.aggregate_if("min", "duration_ms", "kind = 'operation_end'"),
        started=dialect.aggregate_if("min", "ts", "kind = 'operation_start'"),
        ended=dialect.aggregate_if("min", "ts", "kind = 'operation_end'"),
        marks=marks,
        grp=group or dimension_expr(query.scope.by, dialect),
        where=_operation_events(
            query, dialect, ("operation_start", "operation_step", "operation_end")
        ),
    )


def _phase_aggregates(dialect: SqlDialect, gaps: Sequence[tuple[str, str, str]]) -> str:
    """Instances, sum and quantiles of each (alias, gap column, condition)."""
    parts = []
    for alias, gap, condition in gaps:
        present = f"{gap} IS NOT NULL AND {condition}"
        parts += [
            f"{dialect.count_if(present)} AS n_{alias}",
            f"{dialect.aggregate_if('sum', gap, present)} AS sum_{alias}",
            f"{dialect.quantiles(gap, PHASE_LEVELS, present)} AS q_{alias}",
        ]
    return ", ".join(parts)


def timings_sql(query: TimingQuery, dialect: SqlDialect, checkpoints: Sequence[str]) -> Sql:
    """One row per operation (and group): outcomes, durations, retries and every phase.

    Distinct sessions (for suppression) are counted from one row per session and operation,
    which also yields the retries: a session's failed instances except a failed last one.
    """
    group_by, is_total = grouping(query.scope.by, "operation")
    ended = "status IS NOT NULL"
    statuses = ", ".join(
        dialect.count_if(f"status = '{status}'") + f" AS {status}" for status in OPERATION_STATUSES
    )
    gaps = [(f"p{i}", f"g{i}", "TRUE") for i in range(len(checkpoints))]
    gaps += [("end", "g_end", "NOT unanswered"), ("unanswered", "g_end", "unanswered")]
    has = ", ".join(
        f"{dialect.any_of(f'{gap} IS NOT NULL AND {condition}')} AS has_{alias}"
        for alias, gap, condition in gaps
    )
    sessions = ", ".join(f"{dialect.count_if(f'has_{alias}')} AS s_{alias}" for alias, _, _ in gaps)
    return instances_sql(query, dialect, checkpoints) + render(
        ", per_session AS (SELECT operation, grp, sid, {retries} AS retries, "
        "{any_ended} AS has_ended, {has} FROM ops GROUP BY operation, grp, sid), "
        "by_session AS (SELECT {is_total} AS is_total, operation, grp, "
        "sum(retries) AS retries, {n_sessions} AS sessions, {sessions} "
        "FROM per_session {group_by}), "
        "outcomes AS (SELECT {is_total} AS is_total, operation, grp, {n_ended} AS ended, "
        "{w_ended} AS weighted, {statuses}, count(t_start) AS started, "
        "{q_success} AS q_success, {q_all} AS q_all, {phases} FROM ops {group_by}) "
        "SELECT o.*, s.retries, s.sessions, {session_columns} FROM outcomes AS o "
        "JOIN by_session AS s ON s.is_total = o.is_total AND s.operation = o.operation "
        "AND s.grp IS NOT DISTINCT FROM o.grp ORDER BY o.operation, o.is_total DESC, o.grp",
        retries=_retries(dialect),
        any_ended=dialect.any_of(ended),
        has=has,
        is_total=is_total,
        n_sessions=dialect.count_if("has_ended"),
        sessions=sessions,
        session_columns=", ".join(f"s.s_{alias}" for alias, _, _ in gaps),
        group_by=group_by,
        n_ended=dialect.count_if(ended),
        w_ended=dialect.sum_if("weight", ended),
        statuses=statuses,
        q_success=dialect.quantiles("duration", LEVELS, "status = 'success'"),
        q_all=dialect.quantiles("duration", LEVELS),
        phases=_phase_aggregates(dialect, gaps),
    )


def _retries(dialect: SqlDialect) -> str:
    """A session's retries of an operation (grouped per session and operation): its failed
    instances, except a failed last one."""
    failed = "status IN ('fail', 'timeout')"
    return (
        f"{dialect.count_if(failed)} - CASE WHEN "
        f"{dialect.arg_max(f'coalesce({failed}, FALSE)', 'coalesce(t_start, t_end)')} "
        "THEN 1 ELSE 0 END"
    )


def rollup_sources_sql(query: TimingQuery, dialect: SqlDialect, group: str | None = None) -> Sql:
    """The report's CTEs for a day's rollups (``rollup_build.timing_cells``): ``ops`` (the
    instances, without checkpoint columns: a day cannot know the checkpoints of the range
    read), ``per_session`` (retries, ended), ``phase_rows`` (per instance, a row per
    checkpoint and one for its end, with the gap it closes, measured as ``_gap_columns``
    does) and ``phase_sessions`` (per session, operation and phase: whether it had one).
    ``group``: as ``instances_sql``'s."""
    instance = dialect.session_key("session_id", "operation_id")
    previous = dialect.latest(["o.t_start", "max(m.c) FILTER (WHERE m.c <= o.t_end)"])
    return instances_sql(query, dialect, (), group) + render(
        ", marks AS (SELECT {instance} AS instance, step_name AS name, min(ts) AS c "
        "FROM events WHERE {where} AND step_name IS NOT NULL GROUP BY ALL), "
        # EXCLUDE GROUP: the latest checkpoint strictly before this one (same instant: both
        # from the one before them).
        "stepped AS (SELECT o.operation, o.grp, o.weight, o.sid, m.name, {gap} AS g "
        "FROM (SELECT instance, name, c, max(c) OVER (PARTITION BY instance ORDER BY c "
        "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP) AS before "
        "FROM marks) AS m JOIN ops AS o USING (instance)), "
        "ended AS (SELECT o.operation, o.grp, o.weight, o.sid, o.t_end, {previous} AS previous, "
        "min(m.c) FILTER (WHERE m.name = {sent}) AS sent FROM ops AS o "
        "LEFT JOIN marks AS m USING (instance) "
        "GROUP BY o.instance, o.operation, o.grp, o.weight, o.sid, o.t_start, o.t_end), "
        "phase_rows AS (SELECT operation, grp, weight, sid, name, g, TRUE AS seen FROM stepped "
        "UNION ALL SELECT operation, grp, weight, sid, CASE WHEN coalesce(sent = previous, "
        "FALSE) THEN {unanswered} ELSE {end} END, {end_gap}, FALSE FROM ended), "
        "phase_sessions AS (SELECT operation, name, grp, sid, bool_or(g IS NOT NULL) AS has "
        "FROM phase_rows GROUP BY operation, name, grp, sid), "
        "per_session AS (SELECT operation, grp, sid, {retries} AS retries, "
        "{any_ended} AS has_ended FROM ops GROUP BY operation, grp, sid)",
        instance=instance,
        where=_operation_events(query, dialect, ("operation_step",)),
        gap=dialect.ms_between(dialect.latest(["o.t_start", "m.before"]), "m.c"),
        previous=previous,
        sent=param(REQUEST_SENT),
        unanswered=param(UNANSWERED_CHECKPOINT),
        end=param(END_CHECKPOINT),
        end_gap=dialect.ms_between("previous", "t_end"),
        retries=_retries(dialect),
        any_ended=dialect.any_of("status IS NOT NULL"),
    )


# --- results ------------------------------------------------------------------------------


class OperationTiming(msgspec.Struct, frozen=True, kw_only=True):
    operation: str
    group: str | None
    hidden: bool = False
    ended: int | None = None
    sessions: int | None = None
    rates: dict[str, Share] = {}
    """Share of ended operations per status: success, fail, timeout, cancel."""
    duration_success: Durations = EMPTY_DURATIONS
    duration_all: Durations = EMPTY_DURATIONS
    started: int | None = None
    retries: int | None = None
    retry_rate: float | None = None
    """Retries per started operation."""


class OperationPhase(msgspec.Struct, frozen=True, kw_only=True):
    operation: str
    phase: str
    checkpoint: str
    group: str | None
    hidden: bool = False
    duration: Durations = EMPTY_DURATIONS
    share_of_time: float | None = None
    """This phase's part of all the time measured between checkpoints of the operation."""


class TimingResult(msgspec.Struct, frozen=True, kw_only=True):
    operations: list[OperationTiming]
    phases: list[OperationPhase]

    def operation(self, name: str, group: str | None = None) -> OperationTiming | None:
        return next((o for o in self.operations if o.operation == name and o.group == group), None)

    def phase(self, operation: str, phase: str, group: str | None = None) -> OperationPhase | None:
        return next(
            (
                p
                for p in self.phases
                if (p.operation, p.phase, p.group) == (operation, phase, group)
            ),
            None,
        )

    def tables(self) -> list[Table]:
        operations = Table(
            "Operations",
            (
                Column("operation"),
                Column("group"),
                Column("ended", "int"),
                Column("success", "share"),
                Column("fail", "share"),
                Column("timeout", "share"),
                Column("cancel", "share"),
                Column("retries", "share"),
                Column("p50", "ms"),
                Column("p95", "ms"),
                Column("p99", "ms"),
            ),
            [
                (
                    o.operation,
                    group_label(o.group),
                    "hidden" if o.hidden else o.ended,
                    *(o.rates.get(s, NO_SHARE).value for s in OPERATION_STATUSES),
                    o.retry_rate,
                    o.duration_success.p50,
                    o.duration_success.p95,
                    o.duration_success.p99,
                )
                for o in self.operations
            ],
            "p50/p95/p99: successful operations; retries: per started operation",
        )
        phases = Table(
            "Where the time goes",
            (
                Column("operation"),
                Column("phase"),
                Column("group"),
                Column("n", "int"),
                Column("p50", "ms"),
                Column("p95", "ms"),
                Column("share of time", "share"),
            ),
            [
                (
                    p.operation,
                    p.phase,
                    group_label(p.group),
                    "hidden" if p.hidden else p.duration.n,
                    p.duration.p50,
                    p.duration.p95,
                    p.share_of_time,
                )
                for p in self.phases
            ],
        )
        return [operations, phases]


# --- running ------------------------------------------------------------------------------


def run_timings(
    store: EventStore,
    query: TimingQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[TimingResult]:
    """``source``: ``auto`` picks daily rollups when they can answer (``rollup_read``)."""
    choice, checkpoints, rows = timing_rows(store, query, source)
    sampling = sampling_for(store, query.scope, choice)
    phase_names = [*checkpoints, END_CHECKPOINT, UNANSWERED_CHECKPOINT]
    aliases = [*(f"p{i}" for i in range(len(checkpoints))), "end", "unanswered"]
    suppressor = Suppressor(min_group_size)
    outcome_tickets = [
        suppressor.add(("operation", r["operation"]), row_group(r), int(r["sessions"] or 0))
        for r in rows
    ]
    phase_tickets = [
        {
            alias: suppressor.add(
                ("phase", r["operation"], name), row_group(r), int(r[f"s_{alias}"])
            )
            for alias, name in zip(aliases, phase_names, strict=True)
            if r[f"n_{alias}"]
        }
        for r in rows
    ]
    suppressor.decide()
    operations = [
        _operation(row, suppressor.is_hidden(ticket))
        for row, ticket in zip(rows, outcome_tickets, strict=True)
        if row["ended"] or row["started"]
    ]
    phases = [
        _phase(row, alias, name, suppressor.is_hidden(tickets[alias]))
        for row, tickets in zip(rows, phase_tickets, strict=True)
        for alias, name in zip(aliases, phase_names, strict=True)
        if alias in tickets
    ]
    result = TimingResult(
        operations=operations,
        phases=sorted(
            phases, key=lambda p: (p.operation, p.group is not None, p.group or "", p.phase)
        ),
    )
    meta = meta_for(
        "timings",
        time=query.scope.time,
        scope=query.scope,
        sampling=sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[
            "durations: operation_end.duration_ms of successful operations",
            "a retry is an instance after a failed or timed-out one of the same operation",
            choice.note,
        ],
        source=choice.source,
    )
    return Report(meta=meta, data=result)


# --- from daily rollups -------------------------------------------------------------------


def timing_rows(
    store: EventStore,
    query: TimingQuery,
    source: SourceAsked = "auto",
    *,
    with_checkpoints: bool = True,
) -> tuple[SourceChoice, list[str], list[Row]]:
    """The checkpoints and rows of ``timings_sql`` (from rollups when they answer) and where
    from; ``with_checkpoints=False``: outcomes only (no phase columns from raw rows)."""
    choice = choose_source(
        store,
        query.scope,
        family=Family.TIMING,
        key=ROLLUP_KEY,
        definition=definition_hash(ROLLUP_DEFINITION),
        needs_raw=raw_asked(source),
    )
    if choice.slice is not None:
        checkpoints, rows = _rollup_rows(store, query, choice.slice)
        return choice, checkpoints, rows
    dialect = dialect_of(store)
    checkpoints = (
        [row["step_name"] for row in fetch(store, checkpoints_sql(query, dialect))]
        if with_checkpoints
        else []
    )
    return choice, checkpoints, fetch(store, timings_sql(query, dialect, checkpoints))


def _rollup_rows(
    store: EventStore, query: TimingQuery, chosen: RollupSlice
) -> tuple[list[str], list[Row]]:
    """The checkpoints ``checkpoints_sql`` and the rows ``timings_sql`` would give, from daily
    rollups (operations filtered here: every operation has its cells)."""
    environment = query.scope.filters.environment
    ops = merged_cells(store, environment, chosen, Family.TIMING)
    phases = merged_cells(store, environment, chosen, Family.TIMING_PHASE)

    def kept(operation: str | None) -> bool:
        return not query.operations or operation in query.operations

    checkpoints = sorted(
        {str(k.keys[1]) for k in phases if k.measure == "seen" and k.is_total and kept(k.keys[0])}
    )
    names = [*checkpoints, END_CHECKPOINT, UNANSWERED_CHECKPOINT]
    aliases = [*(f"p{i}" for i in range(len(checkpoints))), "end", "unanswered"]
    instances = [k for k in ops if k.measure == "instances" and kept(k.keys[0])]
    rows = [_cells_row(ops, phases, k, list(zip(aliases, names, strict=True))) for k in instances]
    rows.sort(
        key=lambda r: (str(r["operation"]), not r["is_total"], r["grp"] is None, str(r["grp"]))
    )
    return checkpoints, rows


def _cells_row(ops: Cells, phases: Cells, at: CellKey, named: list[tuple[str, str]]) -> Row:
    operation = at.keys[0]

    def cell(cells: Cells, measure: str, name: str | None = None) -> MergedCell:
        key = CellKey(at.group, at.is_total, (operation, name, None, None), measure)
        return cells.get(key) or MergedCell()

    ended, success = cell(ops, "ended"), cell(ops, "success")
    retries = cell(ops, "retries").value_sum
    row: Row = {
        "is_total": at.is_total,
        "operation": operation,
        "grp": at.group,
        "ended": ended.sessions,
        "weighted": ended.weighted,
        **{status: cell(ops, status).sessions for status in OPERATION_STATUSES},
        "started": cell(ops, "started").sessions,
        "q_success": success.quantiles(LEVELS),
        "q_all": cell(ops, "all").quantiles(LEVELS),
    }
    for alias, name in named:
        gap = cell(phases, "gap", name)
        row[f"n_{alias}"] = gap.sessions
        row[f"sum_{alias}"] = gap.value_sum
        row[f"q_{alias}"] = gap.quantiles(PHASE_LEVELS)
    row["retries"] = None if retries is None else round(retries)
    row["sessions"] = cell(ops, "sessions").sessions
    for alias, name in named:
        row[f"s_{alias}"] = cell(phases, "sessions", name).sessions
    return row


def _operation(row: Row, hidden: bool) -> OperationTiming:
    operation, group = row["operation"], row_group(row)
    if hidden:
        return OperationTiming(operation=operation, group=group, hidden=True)
    ended, started = int(row["ended"]), int(row["started"])
    retries = int(row["retries"] or 0)
    return OperationTiming(
        operation=operation,
        group=group,
        ended=estimate(ended, row["weighted"]),
        sessions=int(row["sessions"]),
        rates={status: Share.of(int(row[status]), ended) for status in OPERATION_STATUSES},
        duration_success=Durations.of(int(row["success"]), row["q_success"]),
        duration_all=Durations.of(ended, row["q_all"]),
        started=started,
        retries=retries,
        retry_rate=retries / started if started else None,
    )


def _phase(row: Row, alias: str, checkpoint: str, hidden: bool) -> OperationPhase:
    operation, group = row["operation"], row_group(row)
    phase = PHASES.get(checkpoint) or checkpoint
    if hidden:
        return OperationPhase(
            operation=operation, phase=phase, checkpoint=checkpoint, group=group, hidden=True
        )
    total = sum(float(value) for key, value in row.items() if key.startswith("sum_") and value)
    return OperationPhase(
        operation=operation,
        phase=phase,
        checkpoint=checkpoint,
        group=group,
        duration=Durations.of(int(row[f"n_{alias}"]), row[f"q_{alias}"]),
        share_of_time=float(row[f"sum_{alias}"] or 0.0) / total if total else None,
    )


def slow_sessions_sql(query: TimingQuery, dialect: SqlDialect, threshold_ms: float) -> Sql:
    """Per operation: sessions with an operation that took longer than ``threshold_ms``."""
    return render(
        "SELECT operation, count(DISTINCT session_id) AS sessions FROM events "
        "WHERE {where} AND duration_ms > {limit} GROUP BY operation",
        where=_operation_events(query, dialect, ("operation_end",)),
        limit=param(float(threshold_ms)),
    )


def slow_sessions(store: EventStore, query: TimingQuery, threshold_ms: float) -> dict[str, int]:
    rows = fetch(store, slow_sessions_sql(query, dialect_of(store), threshold_ms))
    return {row["operation"]: int(row["sessions"]) for row in rows}
