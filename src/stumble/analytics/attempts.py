"""The funnel's attempts engine in SQL: ``attempts_sql`` ends in the ``chain`` CTE.

The rules (README "How funnels count"; ``simulate/attempts.py`` is the same state machine in
plain Python, and the tests hold the two to each other): every step-1 event starts an
attempt; a step-k event joins the most recent earlier row of step k-1 (or, past optional
steps, of an earlier step) if it is no later than that attempt's step-1 event plus the
window; a session counts at its furthest step, with the first attempt that got there.

The CTEs:

* ``m``, ``e``: the session's step events (every event but vitals in strict mode) with an
  integer *place* (see ``Places``) and, in strict mode, a position in the stream. ``e`` is
  materialised: every step reads it.
* ``r0``: one row per attempt start. ``r{k}``: a row per step-k event that joined an attempt,
  carrying the attempt's step times ``t0..t{n-1}``. ``j{k}`` finds each event's latest
  earlier row with a join on the session and ``arg_max`` over the key: measured cheaper than
  an ASOF join or a window, which both sort, and than a join back to fetch the times.
* ``pick``, ``chain``: per session the smallest *furthest-first* key, and its times.

Exclusions: a step row is not made when an excluded event lies between its attempt's start
and the step; at the end an attempt that never finished is dropped when one lies anywhere in
its window (one that finished was checked by its last step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from stumble.analytics.queries import FunnelQuery, QueryError
from stumble.analytics.sql import (
    Sql,
    SqlDialect,
    dimension_expr,
    disjunction,
    render,
    scope_filter,
    step_condition,
)

MAX_STEPS: Final = 20
"""More steps than the place keys have room for (and than any funnel a person reads)."""
EPOCH: Final = "TIMESTAMP '1970-01-01 00:00:00'"
"""Stands for a step not reached inside the pick (stored events are from 2000 on)."""
TIME_BITS: Final = 44
"""Milliseconds from the scope's start: 557 years, and no stored event is older than 2000."""


@dataclass(frozen=True, slots=True)
class Places:
    """Integer sort keys, so joins and picks compare one number (comparing structs cost more
    than the rest of the query).

    An event's *place* orders a session's events: time from the scope's start, then the
    lowest step it matches (``mk``: the events of one instant in step order), then, when two
    steps share an event name, its set of steps (``mask``). Identical events of one instant
    share a place: they are one entry. A row's *key* appends ``role`` (the event 0, the rows
    it made 1, so an event never sees its own rows: one event never fills two steps of an
    attempt) and the step ``k``. BIGINT when the bits fit, which they do unless steps share
    an event name (HUGEINT then)."""

    count: int
    start_ms: int
    shared: bool

    @classmethod
    def of(cls, query: FunnelQuery) -> Places:
        steps = query.scenario.steps
        if len(steps) > MAX_STEPS:
            raise QueryError(f"a funnel has at most {MAX_STEPS} steps")
        start = int(query.scope.time.start.timestamp() * 1000)
        return cls(len(steps), start, len({s.event_name for s in steps}) < len(steps))

    @property
    def k_bits(self) -> int:
        return max(1, (self.count - 1).bit_length())

    @property
    def mask_bits(self) -> int:
        return self.count if self.shared else 0

    @property
    def key_bits(self) -> int:
        return TIME_BITS + self.count.bit_length() + self.mask_bits + 1 + self.k_bits

    @property
    def type(self) -> str:
        return "BIGINT" if self.key_bits + self.k_bits <= 62 else "HUGEINT"

    def place(self, dialect: SqlDialect) -> str:
        since = f"CAST({dialect.epoch_ms('ts')} - {self.start_ms} AS {self.type})"
        scale = 2 ** (self.count.bit_length() + self.mask_bits)
        mask = " + mask" if self.shared else ""
        return f"{since} * {scale} + mk * {2**self.mask_bits}{mask}"

    def key(self, role: int, k: int, prefix: str = "") -> str:
        return f"({prefix}place * {2 ** (1 + self.k_bits)} + {role * 2**self.k_bits + k})"

    def furthest_first(self, key: str, k: str) -> str:
        """Smallest for the furthest step, then for the earliest row."""
        return f"(CAST({self.count - 1} - {k} AS {self.type}) * {2**self.key_bits} + {key})"


def attempts_sql(query: FunnelQuery, dialect: SqlDialect, group: str | None = None) -> Sql:
    """CTEs ending in ``chain(session_id, grp, weight, t0, t1, ...)``; ``grp`` is the
    breakdown dimension's value, or ``group`` (an expression over event columns) if given."""
    ctes = [*_events(query, dialect, group), _first_rows(query, dialect)]
    for k in range(1, len(query.scenario.steps)):
        ctes += _step_rows(query, dialect, k)
    ctes += _pick_chain(query, dialect)
    return "WITH " + Sql.join(",\n", ctes)


def previous_steps(query: FunnelQuery, k: int) -> list[int]:
    """The steps an attempt may come from into step k: k-1, and past it while optional."""
    steps = query.scenario.steps
    previous = [k - 1]
    while steps[previous[-1]].optional:
        previous.append(previous[-1] - 1)
    return previous


def _strict(query: FunnelQuery) -> bool:
    return query.scenario.order == "strict"


def _flags(count: int) -> str:
    return ", ".join(f"s{i}" for i in range(count))


def _times(count: int) -> str:
    return ", ".join(f"t{i}" for i in range(count))


def _events(query: FunnelQuery, dialect: SqlDialect, group: str | None) -> list[Sql]:
    steps, exclusions = query.scenario.steps, query.scenario.exclusions
    count, places = len(steps), Places.of(query)
    # Strict mode reads the whole stream; vitals are measurements the browser takes at any
    # moment, not something the person did between two steps (decision 38).
    wanted = (
        Sql("kind <> 'vital'")
        if _strict(query)
        else disjunction(step_condition(s) for s in (*steps, *exclusions))
    )
    mask = " + ".join(f"CAST(s{i} AS INTEGER) * {1 << i}" for i in range(count))
    # dense_rank: identical events of one instant share a position too.
    position = "dense_rank() OVER (PARTITION BY session_id ORDER BY place)"
    return [
        render(
            "m AS (SELECT {sid} AS session_id, ts, sample_rate AS rate, {grp} AS grp, {flags}, "
            "{excluded} AS x FROM events WHERE {scope} AND ({wanted}))",
            sid=dialect.session_key("session_id"),
            grp=group or dimension_expr(query.scope.by, dialect),
            flags=Sql.join(", ", (step_condition(s) + f" AS s{i}" for i, s in enumerate(steps))),
            excluded=disjunction(step_condition(s) for s in exclusions),
            scope=scope_filter(query.scope, dialect),
            wanted=wanted,
        ),
        render(
            "e1 AS (SELECT session_id, ts, rate, grp, {flags}, CASE {mk} ELSE {count} END AS mk"
            "{mask} FROM m{kept})",
            flags=_flags(count),
            mk=" ".join(f"WHEN s{i} THEN {i}" for i in range(count)),
            count=str(count),
            mask=f", {mask} AS mask" if places.shared else "",
            kept="" if _strict(query) else " WHERE " + " OR ".join(f"s{i}" for i in range(count)),
        ),
        render("e0 AS (SELECT *, {place} AS place FROM e1)", place=places.place(dialect)),
        render(
            "{e} (SELECT session_id, ts, rate, grp, {flags}, place, {pos} AS pos FROM e0)",
            e=dialect.materialized("e"),
            flags=_flags(count),
            pos=position if _strict(query) else "0",
        ),
        Sql("x AS (SELECT DISTINCT session_id, ts FROM m WHERE x)"),
    ]


def _first_rows(query: FunnelQuery, dialect: SqlDialect) -> Sql:
    # Identical step-1 events of one instant make identical rows: every later step sees
    # them as one (arg_max of equal values), and so does the pick.
    return render(
        "{r0} (SELECT session_id, ts, 0 AS k, {key} AS ok, ts AS t0{nulls}, pos AS p, grp, "
        "rate FROM e WHERE s0)",
        r0=dialect.materialized("r0"),
        key=Places.of(query).key(1, 0),
        nulls="".join(
            f", CAST(NULL AS TIMESTAMP) AS t{i}" for i in range(1, len(query.scenario.steps))
        ),
    )


def _step_rows(query: FunnelQuery, dialect: SqlDialect, k: int) -> list[Sql]:
    count, places = len(query.scenario.steps), Places.of(query)
    earlier = Sql.join(
        " UNION ALL ",
        (
            render("SELECT session_id, ok, {times}, p FROM {r}", times=_times(count), r=f"r{j}")
            for j in previous_steps(query, k)
        ),
    )
    # Only what an earlier row can hold: the times of steps before k (and its position in
    # strict mode); later steps are NULL there, and each aggregate costs.
    carried = [f"t{i}" for i in range(k)] + (["p"] if _strict(query) else [])
    latest = ", ".join(
        f"{dialect.arg_max_row(f'b.{column}', 'b.ok')} AS b{column}" for column in carried
    )
    conditions = [f"c.ts <= {dialect.plus_ms('c.bt0', query.scenario.window_ms)}"]
    if _strict(query):
        conditions.append("c.bp = c.pos - 1")  # back to back: nothing in between
    if query.scenario.exclusions:
        conditions.append(
            "NOT EXISTS (SELECT 1 FROM x WHERE x.session_id = c.session_id "
            "AND x.ts >= c.bt0 AND x.ts <= c.ts)"
        )
    # GROUP BY ALL also folds identical events of one instant into one row.
    return [
        render(
            "{j} AS (SELECT c.session_id, c.ts, c.ck, c.pos, {latest} FROM (SELECT session_id, "
            "ts, pos, {ck} AS ck FROM e WHERE {flag}) AS c JOIN ({earlier}) AS b "
            "ON b.session_id = c.session_id AND b.ok < c.ck GROUP BY ALL)",
            j=f"j{k}",
            latest=latest,
            ck=places.key(0, k),
            flag=f"s{k}",
            earlier=earlier,
        ),
        render(
            "{r} (SELECT c.session_id, c.ts, {k} AS k, c.ck + {role} AS ok, {times}, c.pos AS p "
            "FROM {j} AS c WHERE {conditions})",
            r=dialect.materialized(f"r{k}"),
            k=str(k),
            role=str(2**places.k_bits),
            times=", ".join(_carried_time(i, k) + f" AS t{i}" for i in range(count)),
            j=f"j{k}",
            conditions=" AND ".join(conditions),
        ),
    ]


def _carried_time(i: int, k: int) -> str:
    if i == k:
        return "c.ts"
    return f"c.bt{i}" if i < k else "CAST(NULL AS TIMESTAMP)"


def _pick_chain(query: FunnelQuery, dialect: SqlDialect) -> list[Sql]:
    count = len(query.scenario.steps)
    kept = None
    if query.scenario.exclusions:
        kept = render(
            "r.k = {last} OR NOT EXISTS (SELECT 1 FROM x WHERE x.session_id = r.session_id "
            "AND x.ts >= r.t0 AND x.ts <= {deadline})",
            last=str(count - 1),
            deadline=dialect.plus_ms("r.t0", query.scenario.window_ms),
        ).text
    # The furthest step first, then the earliest row: the first attempt that got there. A
    # step not reached is stored as the epoch (no event is older than 2000) so the pick is
    # a plain arg_min, far cheaper than one that keeps NULLs or a join back to the row.
    # The breakdown value and sample rate are those of the session's step-1 rows, excluded
    # attempts included (as before attempts): a session has one of each but for ``day``.
    picked = ", ".join(
        f"nullif({dialect.arg_min(f'r.t{i}', 'r.f', kept)}, {EPOCH}) AS t{i}" for i in range(count)
    )
    return [
        render(
            "rows AS (SELECT *, {furthest} AS f FROM ({rows}))",
            furthest=Places.of(query).furthest_first("ok", "k"),
            rows=Sql.join(
                " UNION ALL ",
                (
                    render(
                        "SELECT session_id, k, ok, {times}, {context} FROM {r}",
                        times=", ".join(f"coalesce(t{i}, {EPOCH}) AS t{i}" for i in range(count)),
                        context="grp, rate" if k == 0 else "NULL AS grp, NULL AS rate",
                        r=f"r{k}",
                    )
                    for k in range(count)
                ),
            ),
        ),
        render(
            "pick AS (SELECT r.session_id, {picked}, min(r.grp) AS grp, min(r.rate) AS rate "
            "FROM rows AS r GROUP BY r.session_id)",
            picked=picked,
        ),
        render(
            "chain AS (SELECT session_id, grp, {weight} AS weight, {times} FROM pick "
            "WHERE t0 IS NOT NULL)",
            weight=dialect.weight("rate"),
            times=_times(count),
        ),
    ]
