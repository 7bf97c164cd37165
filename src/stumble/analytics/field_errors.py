"""Report 3, form errors by field: which field breaks the flow, how often, and what it costs.

Definitions, per form step (``form_id``, ``step``):

* A session *entered* step 1 at the form's entry event (``queries.form_entries``: the funnel
  step before the form's first step in a plan scenario) or, without one, at its first event
  of that form; it entered step s > 1 at its first successful submit of step s - 1. A step
  exists when some session submitted it or got an error on it.
* It *completed* the step at its first successful submit of the step; *time on step* is
  completion minus entry, *input* is entry to the first submit, and *error fixing* is the
  first submit to the successful one, over the completed sessions that had an error on the
  step (over every completer it read 0 ms unless most had an error).
  Time on step 1 of a form without an entry event is not reported: its entry is its first
  submit.
* Per field and error type: error events (every one in scope), the sessions that entered the
  step and had at least one, their *share* of the sessions that entered the step (so it never
  exceeds one), the attempt number of the successful submit for sessions with the error (how
  many tries it took), and time on step with and without the error. Rows are ranked by
  impact: the sessions with the error (the total's, when shown), most first.

Sessions are grouped on ``SqlDialect.session_key``, a 64-bit integer of the pseudonym.

Over whole days the rows come from daily rollups when they can answer (``rollup_read``):
``form_step`` and ``field_error`` cells per day, built by these CTEs over every stored form.
Counts and shares are the raw ones, durations and attempt medians within ``sketch.ALPHA``.
"""

from __future__ import annotations

from typing import Final

import msgspec

from stumble.analytics import sketch
from stumble.analytics.common import Row, Suppressor, dialect_of, fetch, row_group
from stumble.analytics.queries import FieldErrorQuery
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
    dimension_expr,
    disjunction,
    grouping,
    param,
    params_list,
    render,
    scope_filter,
    step_condition,
)
from stumble.storage.base import EventStore

LEVELS: Final = (0.5, 0.95)
ERROR_KEY: Final = "form_id, step, field_id, error_type"
ALL_FORMS: Final = "*"
"""The rollup marker key of cells built for every stored form (an unrestricted query)."""


def _pipeline(
    query: FieldErrorQuery,
    dialect: SqlDialect,
    *,
    every_step: bool = False,
    group: str | None = None,
) -> Sql:
    """CTEs ``base`` (the form events and form entries in scope, read once), ``done`` (one row
    per session and form step entered, with its times) and ``errs`` (per session, form step
    and error key: the error events).

    Sessions are joined on ``session_key`` (an integer) and grouped without ``arg_min``: a
    session's breakdown value is the smallest it had on the step's entry rows, which is its
    only value for the context dimensions and ui_version, and its first day for ``day``.

    ``every_step``: ``done`` keeps steps nobody submitted or got an error on (rollups: a step
    may be seen on another day of the range read).

    ``group``: an expression replacing the breakdown dimension as ``grp`` (rollups: the struct
    of every rolled dimension, ``rollup_cells.dimensions_struct``).
    """
    forms = [form.form_id for form in query.forms]
    entries = [form for form in query.forms if form.entry is not None]
    entry_form = (
        Sql.join(
            " ",
            [
                Sql("CASE"),
                *(
                    render("WHEN {c} THEN {f}", c=step_condition(f.entry), f=param(f.form_id))
                    for f in entries
                    if f.entry is not None
                ),
                Sql("END"),
            ],
        )
        if entries
        else Sql("CAST(NULL AS VARCHAR)")
    )
    any_entry = disjunction(step_condition(f.entry) for f in entries if f.entry is not None)
    form_filter = Sql("TRUE")
    if query.restricted:
        form_filter = render("form_id IN ({forms})", forms=params_list(forms))
    # A form without an entry event is entered at the session's first event of its step 1.
    no_entry = [f.form_id for f in query.forms if f.entry is None]
    first_events = (
        render(
            " UNION ALL SELECT sid, form_id, ts, grp, rate FROM base "
            "WHERE kind IN ('form_submit', 'field_error') AND step = 1 AND form_id IN ({forms})",
            forms=params_list(no_entry),
        )
        if no_entry
        else Sql("")
    )
    success = "status = 'success'"
    return render(
        "WITH {base_cte} (SELECT {sid} AS sid, kind, form_id, step, status, attempt, field_id, "
        "error_type, ts, sample_rate AS rate, {grp} AS grp, {entry_form} AS entry_form "
        "FROM events WHERE {scope} AND ((kind IN ('form_submit', 'field_error') "
        "AND {form_filter}) OR {any_entry})), "
        "outcomes AS (SELECT sid, form_id, step, min(ts) AS first_submit_at, "
        "{done_at} AS done_at, {attempts} AS attempts, min(grp) AS grp, min(rate) AS rate "
        "FROM base WHERE kind = 'form_submit' GROUP BY sid, form_id, step), "
        "firsts AS (SELECT sid, form_id, min(ts) AS entered_at, min(grp) AS grp, "
        "min(rate) AS rate FROM (SELECT sid, entry_form AS form_id, ts, grp, rate FROM base "
        "WHERE entry_form IS NOT NULL{first_events}) AS f GROUP BY sid, form_id), "
        "entered AS (SELECT sid, form_id, 1 AS step, entered_at, grp, rate FROM firsts "
        "UNION ALL SELECT sid, form_id, step + 1, done_at, grp, rate FROM outcomes "
        "WHERE done_at IS NOT NULL), "
        "errs AS (SELECT sid, form_id, step, field_id, error_type FROM base "
        "WHERE kind = 'field_error' GROUP BY sid, form_id, step, field_id, error_type), "
        "seen AS (SELECT DISTINCT form_id, step FROM outcomes "
        "UNION SELECT DISTINCT form_id, step FROM errs), "
        "{done_cte} (SELECT e.sid, e.form_id, e.step, e.grp, {weight} AS weight, e.entered_at, "
        "o.first_submit_at, o.done_at, o.attempts, "
        "EXISTS (SELECT 1 FROM errs AS x WHERE x.sid = e.sid AND x.form_id = e.form_id "
        "AND x.step = e.step) AS any_error "
        "FROM entered AS e {seen_join}LEFT JOIN outcomes AS o USING (sid, form_id, step))",
        base_cte=dialect.materialized("base"),
        sid=dialect.session_key("session_id"),
        grp=group or dimension_expr(query.scope.by, dialect),
        entry_form=entry_form,
        scope=scope_filter(query.scope, dialect),
        form_filter=form_filter,
        any_entry=any_entry,
        first_events=first_events,
        done_at=dialect.aggregate_if("min", "ts", success),
        attempts=dialect.arg_min("attempt", "ts", success),
        done_cte=dialect.materialized("done"),
        weight=dialect.weight("e.rate"),
        seen_join="" if every_step else "JOIN seen USING (form_id, step) ",
    )


def field_errors_sql(query: FieldErrorQuery, dialect: SqlDialect) -> Sql:
    """One statement, two kinds of rows: ``error`` rows per error key (and group) with the
    sessions that entered its step, those with the error, attempts and time on step with
    and without it; ``step`` rows per form step (and group) with completion and time split.
    """
    key_by, key_total = grouping(query.scope.by, ERROR_KEY)
    step_by, step_total = grouping(query.scope.by, "form_id, step")
    with_error = "has_error"
    done_with = "has_error AND done_at IS NOT NULL"
    done_without = "NOT has_error AND done_at IS NOT NULL"
    completed = "done_at IS NOT NULL"
    fixed = "done_at IS NOT NULL AND any_error"
    on_step = dialect.ms_between("entered_at", "done_at")
    return _pipeline(query, dialect) + render(
        ", keyed AS (SELECT k.form_id, k.step, k.field_id, k.error_type, d.grp, d.weight, "
        "d.entered_at, d.done_at, d.attempts, x.sid IS NOT NULL AS has_error "
        "FROM (SELECT DISTINCT {key} FROM errs) AS k "
        "JOIN done AS d ON d.form_id = k.form_id AND d.step = k.step "
        "LEFT JOIN errs AS x ON x.sid = d.sid AND x.form_id = k.form_id AND x.step = k.step "
        "AND x.field_id = k.field_id AND x.error_type = k.error_type), "
        "counted AS (SELECT {key_total} AS is_total, {key}, grp, count(*) AS events "
        "FROM base WHERE kind = 'field_error' {key_by}), "
        "error_rows AS (SELECT {key_total} AS is_total, {key}, grp, count(*) AS entered, "
        "sum(weight) AS w_entered, {n_with} AS with_error, {w_with} AS w_with_error, "
        "{n_done_with} AS done_with, {n_done_without} AS done_without, "
        "{attempts_q} AS attempts_q, {attempts_mean} AS attempts_mean, "
        "{q_with} AS q_with, {q_without} AS q_without FROM keyed {key_by}) "
        "SELECT 'error' AS row_kind, r.*, c.events, NULL AS completed, NULL AS w_completed, "
        "NULL AS q_step, NULL AS q_input, NULL AS q_fixing, NULL AS fixing_n "
        "FROM error_rows AS r LEFT JOIN counted AS c ON c.is_total = r.is_total "
        "AND c.form_id = r.form_id AND c.step = r.step AND c.field_id = r.field_id "
        "AND c.error_type = r.error_type AND c.grp IS NOT DISTINCT FROM r.grp "
        "UNION ALL SELECT 'step', {step_total}, form_id, step, NULL, NULL, grp, count(*), "
        "sum(weight), {n_err}, {w_err}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "{n_done}, {w_done}, {q_step}, {q_input}, {q_fixing}, {n_fixing} FROM done {step_by}",
        key=ERROR_KEY,
        key_total=key_total,
        key_by=key_by,
        n_with=dialect.count_if(with_error),
        w_with=dialect.sum_if("weight", with_error),
        n_done_with=dialect.count_if(done_with),
        n_done_without=dialect.count_if(done_without),
        attempts_q=dialect.quantiles("attempts", (0.5,), done_with),
        attempts_mean=dialect.aggregate_if("avg", "attempts", done_with),
        q_with=dialect.quantiles(on_step, LEVELS, done_with),
        q_without=dialect.quantiles(on_step, LEVELS, done_without),
        step_total=step_total,
        n_err=dialect.count_if("any_error"),
        w_err=dialect.sum_if("weight", "any_error"),
        n_done=dialect.count_if(completed),
        w_done=dialect.sum_if("weight", completed),
        q_step=dialect.quantiles(on_step, LEVELS),
        q_input=dialect.quantiles(
            dialect.ms_between("entered_at", "first_submit_at"), LEVELS, completed
        ),
        q_fixing=dialect.quantiles(dialect.ms_between("first_submit_at", "done_at"), LEVELS, fixed),
        n_fixing=dialect.count_if(fixed),
        step_by=step_by,
    )


def rollup_sources_sql(
    query: FieldErrorQuery, dialect: SqlDialect, group: str | None = None
) -> Sql:
    """The report's CTEs for a day's rollups (``rollup_build.field_error_cells``), plus
    ``with_errors`` (a row per session, form step and error key it had, with the session's
    times on the step) and ``error_events`` (the error events, one row each).

    Not ``keyed``: its rows for sessions *without* an error exist only for keys seen in the
    range read, which a single day cannot know. Those figures are the step's (``done``) less
    the sessions with the error, so a reader takes them from the step cells. For the same
    reason ``done`` keeps every step entered, and ``seen_by`` says which steps were submitted
    or got an error (per group), so a reader keeps the steps seen in the range read.
    ``group``: as ``_pipeline``'s."""
    return _pipeline(query, dialect, every_step=True, group=group) + render(
        ", with_errors AS (SELECT x.form_id, x.step, x.field_id, x.error_type, d.grp, d.weight, "
        "d.entered_at, d.done_at, d.attempts FROM errs AS x JOIN done AS d "
        "ON d.sid = x.sid AND d.form_id = x.form_id AND d.step = x.step), "
        "error_events AS (SELECT form_id, step, field_id, error_type, grp, {weight} AS weight "
        "FROM base WHERE kind = 'field_error'), "
        "seen_by AS (SELECT DISTINCT form_id, step, grp FROM outcomes "
        "UNION SELECT DISTINCT form_id, step, grp FROM base WHERE kind = 'field_error')",
        weight=dialect.weight("rate"),
    )


# --- results ------------------------------------------------------------------------------


class FieldErrorRow(msgspec.Struct, frozen=True, kw_only=True):
    form_id: str
    step: int
    field_id: str
    error_type: str
    group: str | None
    hidden: bool = False
    events: int | None = None
    sessions: int | None = None
    """Sessions with at least one such error (estimated when sampled)."""
    entered: int | None = None
    """Sessions that entered the step: the share's denominator."""
    share: Share = NO_SHARE
    attempts_median: float | None = None
    """Attempt number of the successful submit, for sessions with the error that succeeded."""
    attempts_mean: float | None = None
    time_with_error: Durations = EMPTY_DURATIONS
    time_without_error: Durations = EMPTY_DURATIONS


class FormStepRow(msgspec.Struct, frozen=True, kw_only=True):
    form_id: str
    step: int
    group: str | None
    hidden: bool = False
    entered: int | None = None
    completed: int | None = None
    completion: Share = NO_SHARE
    with_any_error: Share = NO_SHARE
    time_on_step: Durations = EMPTY_DURATIONS
    input_time: Durations = EMPTY_DURATIONS
    """Entering the step to the first submit."""
    error_fixing_time: Durations = EMPTY_DURATIONS
    """First submit to the successful one, over the completed sessions that had an error on
    the step (``n`` is how many)."""


class FieldErrorResult(msgspec.Struct, frozen=True, kw_only=True):
    errors: list[FieldErrorRow]
    steps: list[FormStepRow]

    def error(
        self,
        field_id: str,
        error_type: str,
        *,
        form_id: str | None = None,
        group: str | None = None,
    ) -> FieldErrorRow | None:
        return next(
            (
                row
                for row in self.errors
                if (row.field_id, row.error_type, row.group) == (field_id, error_type, group)
                and (form_id is None or row.form_id == form_id)
            ),
            None,
        )

    def step(self, form_id: str, step: int, group: str | None = None) -> FormStepRow | None:
        return next(
            (r for r in self.steps if (r.form_id, r.step, r.group) == (form_id, step, group)),
            None,
        )

    def tables(self) -> list[Table]:
        errors = Table(
            "Field errors",
            (
                Column("form"),
                Column("step", "int"),
                Column("field"),
                Column("error"),
                Column("group"),
                Column("sessions", "int"),
                Column("share", "share"),
                Column("events", "int"),
                Column("attempts", "number"),
                Column("p50 with", "ms"),
                Column("p50 without", "ms"),
            ),
            [
                (
                    r.form_id,
                    r.step,
                    r.field_id,
                    r.error_type,
                    group_label(r.group),
                    "hidden" if r.hidden else r.sessions,
                    r.share.value,
                    r.events,
                    r.attempts_median,
                    r.time_with_error.p50,
                    r.time_without_error.p50,
                )
                for r in self.errors
            ],
            "share: of sessions that entered the step; attempts: median attempt that succeeded",
        )
        steps = Table(
            "Form steps",
            (
                Column("form"),
                Column("step", "int"),
                Column("group"),
                Column("entered", "int"),
                Column("completed", "share"),
                Column("any error", "share"),
                Column("p50 on step", "ms"),
                Column("p95 on step", "ms"),
                Column("p50 input", "ms"),
                Column("p50 fixing", "ms"),
            ),
            [
                (
                    r.form_id,
                    r.step,
                    group_label(r.group),
                    "hidden" if r.hidden else r.entered,
                    r.completion.value,
                    r.with_any_error.value,
                    r.time_on_step.p50,
                    r.time_on_step.p95,
                    r.input_time.p50,
                    r.error_fixing_time.p50,
                )
                for r in self.steps
            ],
        )
        return [errors, steps]


# --- running ------------------------------------------------------------------------------


def run_field_errors(
    store: EventStore,
    query: FieldErrorQuery,
    *,
    min_group_size: int = 5,
    source: SourceAsked = "auto",
) -> Report[FieldErrorResult]:
    """``source``: ``auto`` picks daily rollups when they can answer (``rollup_read``)."""
    choice, rows = field_error_rows(store, query, source)
    sampling = sampling_for(store, query.scope, choice)
    order = ("form_id", "step", "field_id", "error_type")
    error_rows = _by_impact(
        sorted(
            (r for r in rows if r["row_kind"] == "error"),
            key=lambda r: (*(str(r[c]) for c in order), not r["is_total"], str(r["grp"])),
        ),
        order,
        min_group_size,
    )
    step_rows = sorted(
        (r for r in rows if r["row_kind"] == "step"),
        key=lambda r: (r["form_id"], r["step"], not r["is_total"], str(r["grp"])),
    )
    suppressor = Suppressor(min_group_size)
    error_tickets = [
        suppressor.add(
            ("error", r["form_id"], r["step"], r["field_id"], r["error_type"]),
            row_group(r),
            int(r["with_error"]),
        )
        for r in error_rows
    ]
    step_tickets = [
        suppressor.add(("step", r["form_id"], r["step"]), row_group(r), int(r["entered"]))
        for r in step_rows
    ]
    suppressor.decide()
    timed_steps = _timed_first_steps(query)
    result = FieldErrorResult(
        errors=[
            _error_row(r, suppressor.is_hidden(t), timed_steps)
            for r, t in zip(error_rows, error_tickets, strict=True)
            if int(r["with_error"]) > 0
        ],
        steps=[
            _step_row(r, suppressor.is_hidden(t), timed_steps)
            for r, t in zip(step_rows, step_tickets, strict=True)
        ],
    )
    meta = meta_for(
        "field-errors",
        time=query.scope.time,
        scope=query.scope,
        sampling=sampling,
        min_group_size=min_group_size,
        hidden=suppressor.hidden_count,
        notes=[
            "share: sessions with the error / sessions that entered the form step",
            "time on step: entering the step to its first successful submit",
            "error fixing: first submit to the successful one, over sessions with an error",
            "rows ranked by impact: sessions with the error, most first",
            "sessions are counted by a 64-bit key of their pseudonym",
            choice.note,
        ],
        source=choice.source,
    )
    return Report(meta=meta, data=result)


# --- from daily rollups -------------------------------------------------------------------


def field_error_rows(
    store: EventStore, query: FieldErrorQuery, source: SourceAsked = "auto"
) -> tuple[SourceChoice, list[Row]]:
    """The rows of ``field_errors_sql`` (from rollups when they answer) and where from."""
    choice = _choose_source(store, query, source)
    if not query.forms:
        return choice, []
    if choice.slice is not None:
        return choice, _rollup_rows(store, query, choice.slice)
    return choice, fetch(store, field_errors_sql(query, dialect_of(store)))


def _choose_source(store: EventStore, query: FieldErrorQuery, source: SourceAsked) -> SourceChoice:
    """Cells are built for every stored form with the plan's forms (``rollup_build``): a query
    of every form needs them built under its forms' hash, a query of some forms needs each
    of its forms built under that form's own hash."""
    asked = raw_asked(source)
    if not query.restricted or not query.forms:
        return choose_source(
            store,
            query.scope,
            family=Family.FIELD_ERROR,
            key=ALL_FORMS,
            definition=definition_hash(query.forms),
            needs_raw=asked,
        )
    choices = [
        choose_source(
            store,
            query.scope,
            family=Family.FIELD_ERROR,
            key=form.form_id,
            definition=definition_hash(form),
            needs_raw=asked,
        )
        for form in query.forms
    ]
    return next((c for c in choices if c.slice is None), choices[0])


def _rollup_rows(store: EventStore, query: FieldErrorQuery, chosen: RollupSlice) -> list[Row]:
    """The rows ``field_errors_sql`` would give, from daily rollups: a step row per form step
    and group, and an error row per error key seen in the range and group that entered its
    step (the sessions without the error are the step's less those with it)."""
    environment = query.scope.filters.environment
    steps = merged_cells(store, environment, chosen, Family.FORM_STEP)
    errors = merged_cells(store, environment, chosen, Family.FIELD_ERROR)
    wanted = {form.form_id for form in query.forms}

    def kept(form_id: str | None) -> bool:
        return not query.restricted or form_id in wanted

    seen = {k.keys[:2] for k in steps if k.measure == "seen" and k.is_total}
    entered = [
        k for k in steps if k.measure == "entered" and kept(k.keys[0]) and k.keys[:2] in seen
    ]
    error_keys = sorted(
        {k.keys for k in errors if k.measure == "events" and k.is_total and kept(k.keys[0])},
        key=str,
    )
    rows = [_step_cells_row(steps, k) for k in entered]
    for keys in error_keys:
        rows += [
            _error_cells_row(steps, errors, k, keys) for k in entered if k.keys[:2] == keys[:2]
        ]
    return rows


def _cell(cells: Cells, at: CellKey, keys: tuple[str | None, ...], measure: str) -> MergedCell:
    key = CellKey(at.group, at.is_total, (keys[0], keys[1], keys[2], keys[3]), measure)
    return cells.get(key) or MergedCell()


_STEP_ONLY: Final[dict[str, None]] = dict.fromkeys(
    ("completed", "w_completed", "q_step", "q_input", "q_fixing", "fixing_n")
)
_ERROR_ONLY: Final[dict[str, None]] = dict.fromkeys(
    ("done_with", "done_without", "attempts_q", "attempts_mean", "q_with", "q_without", "events")
)


def _step_cells_row(steps: Cells, at: CellKey) -> Row:
    form_id, step = at.keys[0], at.keys[1]

    def cell(measure: str) -> MergedCell:
        return _cell(steps, at, at.keys, measure)

    entered, errors, completed = cell("entered"), cell("any_error"), cell("completed")
    fixing = cell("fixing")
    return {
        "row_kind": "step",
        "is_total": at.is_total,
        "form_id": form_id,
        "step": int(step or 0),
        "field_id": None,
        "error_type": None,
        "grp": at.group,
        "entered": entered.sessions,
        "w_entered": entered.weighted,
        "with_error": errors.sessions,
        "w_with_error": errors.weighted,
        **_ERROR_ONLY,
        "completed": completed.sessions,
        "w_completed": completed.weighted,
        "q_step": completed.quantiles(LEVELS),
        "q_input": cell("input").quantiles(LEVELS),
        "q_fixing": fixing.quantiles(LEVELS),
        "fixing_n": fixing.sessions,
    }


def _error_cells_row(steps: Cells, errors: Cells, at: CellKey, keys: tuple[str | None, ...]) -> Row:
    entered = _cell(steps, at, at.keys, "entered")
    completed = _cell(steps, at, at.keys, "completed")
    with_error = _cell(errors, at, keys, "with_error")
    done_with = _cell(errors, at, keys, "done_with")
    attempts = _cell(errors, at, keys, "attempts")
    events = errors.get(
        CellKey(at.group, at.is_total, (keys[0], keys[1], keys[2], keys[3]), "events")
    )
    without = sketch.quantiles(_less(completed.sketch, done_with.sketch), LEVELS)
    return {
        "row_kind": "error",
        "is_total": at.is_total,
        "form_id": keys[0],
        "step": int(keys[1] or 0),
        "field_id": keys[2],
        "error_type": keys[3],
        "grp": at.group,
        "entered": entered.sessions,
        "w_entered": entered.weighted,
        "with_error": with_error.sessions,
        "w_with_error": with_error.weighted,
        "done_with": done_with.sessions,
        "done_without": completed.sessions - done_with.sessions,
        "attempts_q": attempts.quantiles((0.5,), integral=True),
        "attempts_mean": attempts.mean(),
        "q_with": done_with.quantiles(LEVELS),
        "q_without": without,
        "events": events.sessions if events is not None else None,
        **_STEP_ONLY,
    }


def _less(whole: dict[int, int], part: dict[int, int]) -> dict[int, int]:
    """The sketch of ``whole``'s values that are not ``part``'s (``part`` is a subset)."""
    left = {key: count - part.get(key, 0) for key, count in whole.items()}
    return {key: count for key, count in left.items() if count > 0}


def _by_impact(rows: list[Row], key: tuple[str, ...], k: int) -> list[Row]:
    """Error keys ranked by the sessions their total row counts, most first (a total under
    k is not shown, so it ranks last, by name: its place must not tell its size); each key's
    rows stay together, total first."""
    totals = {tuple(r[c] for c in key): int(r["with_error"]) for r in rows if r["is_total"]}

    def impact(row: Row) -> int:
        sessions = totals.get(tuple(row[c] for c in key), 0)
        return -sessions if sessions >= k else 0

    return sorted(rows, key=impact)  # stable: keys and groups keep their order within a rank


def _timed_first_steps(query: FieldErrorQuery) -> frozenset[str]:
    """Forms whose step 1 has a real entry event, so its time on step means something."""
    return frozenset(form.form_id for form in query.forms if form.entry is not None)


def _is_timed(form_id: str, step: int, timed: frozenset[str]) -> bool:
    return step > 1 or form_id in timed


def _error_row(row: Row, hidden: bool, timed: frozenset[str]) -> FieldErrorRow:
    key = {
        "form_id": row["form_id"],
        "step": int(row["step"]),
        "field_id": row["field_id"],
        "error_type": row["error_type"],
        "group": row_group(row),
    }
    if hidden:
        return FieldErrorRow(**key, hidden=True)
    with_error, entered = int(row["with_error"]), int(row["entered"])
    on_time = _is_timed(row["form_id"], int(row["step"]), timed)
    attempts = row["attempts_q"]
    return FieldErrorRow(
        **key,
        events=int(row["events"] or 0),
        sessions=estimate(with_error, row["w_with_error"]),
        entered=estimate(entered, row["w_entered"]),
        share=Share.of(
            with_error, entered, weighted_part=row["w_with_error"], weighted_whole=row["w_entered"]
        ),
        attempts_median=float(attempts[0]) if attempts else None,
        attempts_mean=float(row["attempts_mean"]) if row["attempts_mean"] is not None else None,
        time_with_error=Durations.of(int(row["done_with"]), row["q_with"])
        if on_time
        else EMPTY_DURATIONS,
        time_without_error=Durations.of(int(row["done_without"]), row["q_without"])
        if on_time
        else EMPTY_DURATIONS,
    )


def _step_row(row: Row, hidden: bool, timed: frozenset[str]) -> FormStepRow:
    form_id, step, group = row["form_id"], int(row["step"]), row_group(row)
    if hidden:
        return FormStepRow(form_id=form_id, step=step, group=group, hidden=True)
    entered, completed = int(row["entered"]), int(row["completed"])
    on_time = _is_timed(form_id, step, timed)
    return FormStepRow(
        form_id=form_id,
        step=step,
        group=group,
        entered=estimate(entered, row["w_entered"]),
        completed=estimate(completed, row["w_completed"]),
        completion=Share.of(
            completed, entered, weighted_part=row["w_completed"], weighted_whole=row["w_entered"]
        ),
        with_any_error=Share.of(
            int(row["with_error"]),
            entered,
            weighted_part=row["w_with_error"],
            weighted_whole=row["w_entered"],
        ),
        time_on_step=Durations.of(completed, row["q_step"]) if on_time else EMPTY_DURATIONS,
        input_time=Durations.of(completed, row["q_input"]) if on_time else EMPTY_DURATIONS,
        error_fixing_time=Durations.of(int(row["fixing_n"] or 0), row["q_fixing"]),
    )


__all__ = [
    "FieldErrorResult",
    "FieldErrorRow",
    "FormStepRow",
    "field_errors_sql",
    "run_field_errors",
]
