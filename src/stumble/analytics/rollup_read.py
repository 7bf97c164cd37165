"""Reading rollups: whether they can answer a scope, and the merged cells when they can.

Reports choose their source by themselves (``choose_source``): daily rollups when the range is
whole UTC days, the filters use at most one rolled dimension (the breakdown's, if any), no
feature flag is asked for, and every day of the range that holds data was built with the
definition asked about (or is sealed: its raw rows are gone, so the rollup is all there is).
Otherwise, and whenever a report needs single events (last actions before drop-off, a
session's path), raw rows. The choice and its consequences go into the report's notes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Final, Generic, Literal, NamedTuple, TypeVar

from stumble.analytics import sketch
from stumble.analytics.common import Row, fetch, sampling_of
from stumble.analytics.queries import Scope
from stumble.analytics.results import Sampling
from stumble.analytics.rollup_cells import (
    ROLLED_DIMENSIONS,
    VOLUME_DEFINITION,
    CellSpec,
    Family,
)
from stumble.analytics.sql import Sql, disjunction, param, params_list, render
from stumble.storage.base import EventStore, month_end, month_start

GroupBy = Literal["none", "dim", "day", "week"]
T = TypeVar("T")
Source = Literal["raw", "rollups"]
SourceAsked = Literal["auto", "raw"]

ROLLUP_NOTE: Final = (
    "from daily rollups: durations within {alpha:.0%} of the raw value; a session that spans "
    "midnight UTC counts on each of its days"
)
RAW_NOTE: Final = "from raw events ({reason})"


@dataclass(frozen=True, slots=True)
class RollupSlice:
    """Which cells answer a scope: a dimension (``''`` for none), the values it is limited to
    (empty: all) and what a row's group is."""

    first_day: dt.date
    last_day: dt.date
    dim: str
    values: tuple[str, ...]
    group_by: GroupBy

    def cell_filter(self) -> Sql:
        """The level and values asked for (the environment and days are the source's)."""
        condition = render("dim = {dim}", dim=param(self.dim))
        if self.values:
            condition += render(" AND dim_value IN ({vs})", vs=params_list(self.values))
        return condition

    @property
    def by_day(self) -> bool:
        """Whether a row's group is its day or week, which monthly cells cannot say."""
        return self.group_by in ("day", "week")

    def group_expr(self) -> str:
        return {
            "none": "CAST(NULL AS VARCHAR)",
            "dim": "dim_value",
            "day": "CAST(day AS VARCHAR)",
            "week": "CAST(CAST(date_trunc('week', day) AS DATE) AS VARCHAR)",
        }[self.group_by]


@dataclass(frozen=True, slots=True)
class SourceChoice:
    source: Source
    note: str
    slice: RollupSlice | None = None
    sealed_days: int = 0


def whole_days(scope: Scope) -> tuple[dt.date, dt.date] | None:
    """First and last UTC day when the range is exactly whole days, else None."""
    start, end = scope.time.start, scope.time.end
    midnight = dt.time(0, 0)
    if (
        start.timetz().replace(tzinfo=None) != midnight
        or end.timetz().replace(tzinfo=None) != midnight
    ):
        return None
    return start.date(), (end - dt.timedelta(days=1)).date()


def rollup_slice(scope: Scope) -> tuple[RollupSlice | None, str]:  # noqa: PLR0911 - one per reason
    """The cells that answer ``scope``, or None and the reason rollups cannot."""
    days = whole_days(scope)
    if days is None:
        return None, "the range is not whole days"
    if scope.filters.feature_flag is not None:
        return None, "a feature flag filter"
    filters = scope.filters.value_filters()
    if len(filters) > 1:
        return None, "filters on more than one dimension"
    column, values = filters[0] if filters else ("", ())
    by = scope.by
    if column and column not in ROLLED_DIMENSIONS:
        return None, "a filter rollups do not keep"
    if by in ROLLED_DIMENSIONS:
        if column and column != by:
            return None, "a filter on another dimension than the breakdown"
        return RollupSlice(days[0], days[1], str(by), values, "dim"), ""
    group_by: GroupBy = "none" if by is None else "day" if by == "day" else "week"
    return RollupSlice(days[0], days[1], column, values, group_by), ""


@dataclass(frozen=True, slots=True)
class CombinedSource:
    """Where a report made of several parts got its numbers, and the note saying so."""

    source: str
    note: str

    @classmethod
    def of(cls, used: set[str]) -> CombinedSource:
        """``rollups`` or ``raw`` when every part read the same, else ``mixed``."""
        source = next(iter(used)) if len(used) == 1 else "mixed" if used else "raw"
        return cls(source, COMBINED_NOTES[source])


COMBINED_NOTES: Final = {
    "rollups": ROLLUP_NOTE.format(alpha=sketch.ALPHA),
    "raw": "from raw events",
    "mixed": "from daily rollups where they answer, raw events for the rest",
}


def raw_asked(source: SourceAsked) -> str | None:
    """The reason to read raw rows when the caller asked for them."""
    return "raw rows asked for" if source == "raw" else None


def choose_source(
    store: EventStore,
    scope: Scope,
    *,
    family: Family,
    key: str,
    definition: str,
    needs_raw: str | None = None,
) -> SourceChoice:
    """Rollups when they can answer, else raw rows; the note says which and why."""
    if needs_raw is not None:
        return SourceChoice("raw", RAW_NOTE.format(reason=needs_raw))
    if store.dialect != "duckdb":
        return SourceChoice("raw", RAW_NOTE.format(reason="this store keeps no rollups"))
    chosen, reason = rollup_slice(scope)
    if chosen is None:
        return SourceChoice("raw", RAW_NOTE.format(reason=reason))
    missing, sealed_other = _coverage(
        store, scope.filters.environment, chosen, family, key, definition
    )
    if missing:
        return SourceChoice("raw", RAW_NOTE.format(reason=f"{missing} day(s) not yet rolled up"))
    note = ROLLUP_NOTE.format(alpha=sketch.ALPHA)
    if sealed_other:
        note += (
            f"; {sealed_other} day(s) older than raw retention were rolled up under an "
            "earlier definition and are left out"
        )
    return SourceChoice("rollups", note, chosen, sealed_other)


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A report's rows from where they were read, with that source's sample rates."""

    rows: T
    sampling: Sampling
    choice: SourceChoice

    @property
    def source(self) -> Source:
        return self.choice.source

    @property
    def note(self) -> str:
        return self.choice.note


def read_rows(
    store: EventStore,
    scope: Scope,
    cells: CellSpec,
    *,
    rolled: Callable[[RollupSlice], T],
    raw: Callable[[], T],
    needs_raw: str | None = None,
) -> Answer[T]:
    """The report's rows from rollups when they can answer (``choose_source``), else from
    raw rows; the sample rates come from the same place."""
    choice = choose_source(
        store,
        scope,
        family=cells.family,
        key=cells.key,
        definition=cells.definition,
        needs_raw=needs_raw,
    )
    rows = raw() if choice.slice is None else rolled(choice.slice)
    return Answer(rows, sampling_for(store, scope, choice), choice)


def sampling_for(store: EventStore, scope: Scope, choice: SourceChoice) -> Sampling:
    """The sample rates of what a report counted: the days' sampling cells when it read
    rollups, else its raw rows'."""
    if choice.slice is None:
        return sampling_of(store, scope)
    return rollup_sampling(store, scope.filters.environment, choice.slice)


def days_missing(  # noqa: PLR0917 - the identity of what is asked, all six
    store: EventStore,
    environment: str,
    days: tuple[dt.date, dt.date],
    family: Family,
    key: str,
    definition: str,
) -> tuple[int, int]:
    """(days of ``environment`` in ``days`` with data but no cells of this definition and
    still raw, sealed such days): for readers whose window is not a ``Scope``."""
    chosen = RollupSlice(days[0], days[1], "", (), "none")
    return _coverage(store, environment, chosen, family, key, definition)


class UntilNextWrite(Generic[T]):
    """Answers remembered per store until it next commits a write: a report like top problems
    asks the same question a dozen times, and only a write can change the answer."""

    def __init__(self, most: int = 1_000) -> None:
        self._known: weakref.WeakKeyDictionary[EventStore, dict[Hashable, T]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._most = most

    def get(self, store: EventStore, asked: Hashable, compute: Callable[[], T]) -> T:
        key = (store.write_count, asked)
        with self._lock:
            known = self._known.setdefault(store, {})
            if key in known:
                return known[key]
        answer = compute()
        with self._lock:
            if len(known) > self._most:
                known.clear()
            known[key] = answer
        return answer


Coverage = tuple[int, int]
_coverages: UntilNextWrite[Coverage] = UntilNextWrite()


def _coverage(  # noqa: PLR0917 - the identity of what is asked, all six
    store: EventStore,
    environment: str | None,
    chosen: RollupSlice,
    family: Family,
    key: str,
    definition: str,
) -> Coverage:
    """``_uncached_coverage``, remembered until the store's next write."""
    asked = (environment, chosen.first_day, chosen.last_day, family, key, definition)
    return _coverages.get(
        store,
        asked,
        lambda: _uncached_coverage(store, environment, chosen, family, key, definition),
    )


def _uncached_coverage(  # noqa: PLR0917 - the identity of what is asked, all six
    store: EventStore,
    environment: str | None,
    chosen: RollupSlice,
    family: Family,
    key: str,
    definition: str,
) -> tuple[int, int]:
    """(days with data but no cells of this definition and still raw, sealed such days), in
    one environment or in all (``None``)."""
    window = render("day BETWEEN {a} AND {b}", a=param(chosen.first_day), b=param(chosen.last_day))
    if environment is not None:
        window = render("environment = {env} AND ", env=param(environment)) + window
    statement = render(
        "WITH d AS (SELECT environment, day, bool_or(sealed) AS sealed FROM ("
        "SELECT environment, day, sealed FROM rollup_days WHERE {w1} "
        "UNION ALL SELECT environment, day, false FROM rollup_dirty WHERE {w2}) "
        "GROUP BY environment, day), "
        "m AS (SELECT DISTINCT environment, day FROM rollups WHERE {w3} AND family = {built} "
        "AND k1 = {family} AND k2 = {key} AND k3 = {definition}) "
        "SELECT count(*) FILTER (WHERE m.day IS NULL AND NOT d.sealed) AS missing, "
        "count(*) FILTER (WHERE m.day IS NULL AND d.sealed) AS sealed_other "
        "FROM d LEFT JOIN m USING (environment, day)",
        w1=window,
        w2=window,
        w3=window,
        built=param(str(Family.BUILT)),
        family=param(str(family)),
        key=param(key),
        definition=param(definition),
    )
    (row,) = fetch(store, statement)
    return int(row["missing"] or 0), int(row["sealed_other"] or 0)


def volume_covers(
    store: EventStore, environment: str | None, first_day: dt.date, last_day: dt.date
) -> bool:
    """Whether the volume cells answer for every day with data in the range."""
    if store.dialect != "duckdb":
        return False
    days = RollupSlice(first_day, last_day, "", (), "none")
    missing, _ = _coverage(store, environment, days, Family.VOLUME, "", VOLUME_DEFINITION)
    return missing == 0


# --- where the cells come from: whole months, and days --------------------------------------


def whole_months(first_day: dt.date, last_day: dt.date) -> list[dt.date]:
    """The first days of the months that lie entirely within the range."""
    months = []
    month = month_start(first_day)
    if month < first_day:
        month = month_end(month) + dt.timedelta(days=1)
    while month_end(month) <= last_day:
        months.append(month)
        month = month_end(month) + dt.timedelta(days=1)
    return months


_ONE_DAY: Final = dt.timedelta(days=1)


def cell_rows(store: EventStore, environment: str, chosen: RollupSlice) -> Sql:
    """The cells of the range: each whole month whose monthly cells still match its days from
    ``rollup_months``, every other day from ``rollups``. Both add up to the same numbers (a
    month's cells are its days' cells summed), the months with a twelfth of the rows."""
    months = () if chosen.by_day else _months_built(store, environment, chosen)
    days: list[Sql] = []
    start = chosen.first_day
    for month in (*months, chosen.last_day + _ONE_DAY):
        if start < month:
            days.append(
                render("day BETWEEN {a} AND {b}", a=param(start), b=param(month - _ONE_DAY))
            )
        start = month_end(month) + _ONE_DAY
    daily = render(
        "SELECT * FROM rollups WHERE environment = {env} AND ({days})",
        env=param(environment),
        days=disjunction(days),
    )
    if not months:
        return daily
    return render(
        "SELECT * FROM rollup_months WHERE environment = {env} AND day IN ({months}) "
        "UNION ALL {daily}",
        env=param(environment),
        months=params_list(months),
        daily=daily,
    )


Months = tuple[dt.date, ...]
_months: UntilNextWrite[Months] = UntilNextWrite()


def _months_built(store: EventStore, environment: str, chosen: RollupSlice) -> Months:
    """The whole months of the range whose monthly cells match their days now (remembered
    until the store's next write)."""
    wanted = whole_months(chosen.first_day, chosen.last_day)
    if not wanted:
        return ()
    statement = render(
        "SELECT m.month FROM rollup_month_days AS m JOIN (SELECT CAST(date_trunc('month', day) "
        "AS DATE) AS month, count(*) AS days, max(built_at) AS newest FROM rollup_days "
        "WHERE environment = {env} AND day BETWEEN {a} AND {b} GROUP BY ALL) AS d "
        "ON m.month = d.month AND m.days = d.days AND m.newest_built = d.newest "
        "WHERE m.environment = {env2} ORDER BY m.month",
        env=param(environment),
        a=param(wanted[0]),
        b=param(month_end(wanted[-1])),
        env2=param(environment),
    )
    return _months.get(
        store,
        (environment, wanted[0], wanted[-1]),
        lambda: tuple(row["month"] for row in fetch(store, statement)),
    )


# --- merged cells ---------------------------------------------------------------------------


@dataclass
class MergedCell:
    """One group's cells for one key and measure, added up over the days of the range."""

    sessions: int = 0
    weighted: float | None = None
    value_sum: float | None = None
    sketch: dict[int, int] = field(default_factory=dict)

    def quantiles(self, levels: Sequence[float], *, integral: bool = False) -> list[float] | None:
        return sketch.quantiles(self.sketch, levels, integral=integral)

    def mean(self) -> float | None:
        if self.value_sum is None or not self.sessions:
            return None
        return self.value_sum / self.sessions

    def add(self, other: MergedCell) -> None:
        """Add another group's cell (SQL's ``sum``: None only while every part is None)."""
        self.sessions += other.sessions
        self.weighted = _plus(self.weighted, other.weighted)
        self.value_sum = _plus(self.value_sum, other.value_sum)
        self.sketch = sketch.merge((self.sketch, other.sketch))


def _plus(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


class CellKey(NamedTuple):
    group: str | None
    is_total: bool
    keys: tuple[str | None, str | None, str | None, str | None]
    measure: str


Cells = dict[CellKey, MergedCell]
_CELL_COLUMNS: Final = "k1, k2, k3, k4, measure"


_shared_cells: ContextVar[dict[tuple[object, ...], Cells] | None] = ContextVar(
    "shared_rollup_cells", default=None
)


@contextlib.contextmanager
def sharing_cells() -> Iterator[None]:
    """Within the block, a family's cells over one slice are read once, all keys at a time,
    and every later read of that family and slice is answered from them: top problems asks
    each scenario's funnel apart, the overview asks them again for its tiles, and a read
    costs its scan of the range whatever the keys (a few cells in it or all of them)."""
    if _shared_cells.get() is not None:  # an enclosing block shares already
        yield
        return
    token = _shared_cells.set({})
    try:
        yield
    finally:
        _shared_cells.reset(token)


def merged_cells(
    store: EventStore,
    environment: str,
    chosen: RollupSlice,
    family: Family,
    *,
    k1: str | None = None,
    k3: str | None = None,
) -> Cells:
    """The family's cells (for ``k1``, ``k3`` when given) per group, keys and measure, with
    the total over the groups."""
    shared = _shared_cells.get()
    if shared is None:
        return _read_cells(store, environment, chosen, family, k1=k1, k3=k3)
    read = (id(store), store.write_count, environment, chosen, family)
    if read not in shared:
        shared[read] = _read_cells(store, environment, chosen, family)
    return {
        key: cell
        for key, cell in shared[read].items()
        if k1 in (None, key.keys[0]) and k3 in (None, key.keys[2])
    }


KeyNames = tuple[str | None, str | None, str | None, str | None]


def total_rows(
    store: EventStore,
    environment: str,
    chosen: RollupSlice,
    family: Family,
    names: KeyNames,
    *,
    k1: str | None = None,
    k3: str | None = None,
) -> list[Row]:
    """The family's cells over the range (for ``k1``, ``k3`` when given), groups added up,
    as rows: each key under its name in ``names`` (None: a key the family leaves empty),
    ``sessions``, and ``events`` (the cells' ``value_sum``): the rows of a report counted
    without a breakdown."""
    total = replace(chosen, group_by="none")
    cells = merged_cells(store, environment, total, family, k1=k1, k3=k3)
    return [
        {name: value for name, value in zip(names, key.keys, strict=True) if name}
        | {"sessions": cell.sessions, "events": round(cell.value_sum or 0)}
        for key, cell in cells.items()
    ]


def _read_cells(
    store: EventStore,
    environment: str,
    chosen: RollupSlice,
    family: Family,
    *,
    k1: str | None = None,
    k3: str | None = None,
) -> Cells:
    where = chosen.cell_filter() + render(" AND family = {f}", f=param(str(family)))
    if k1 is not None:
        where += render(" AND k1 = {k1}", k1=param(k1))
    if k3 is not None:
        where += render(" AND k3 = {k3}", k3=param(k3))
    source = cell_rows(store, environment, chosen)
    group = chosen.group_expr()
    # A cell is named by a hash of its group and keys while its sketch's buckets are summed:
    # grouping on one integer instead of six strings halves that statement. Two cells with
    # one hash would be told apart below, and read again by their names.
    cell_id = f"hash({group}, {_CELL_COLUMNS})"
    counts = render(
        "SELECT {cell_id} AS cell, {group} AS grp, {keys}, sum(sessions) AS n, "
        "sum(weighted) AS w, sum(value_sum) AS v FROM ({source}) WHERE {where} GROUP BY ALL",
        cell_id=cell_id,
        group=group,
        keys=_CELL_COLUMNS,
        source=source,
        where=where,
    )
    rows = fetch(store, counts)
    names = {row["cell"]: _key(row) for row in rows}
    by_name = len(names) < len(rows)
    cells: Cells = {
        _key(row): MergedCell(
            sessions=int(row["n"] or 0),
            weighted=None if row["w"] is None else float(row["w"]),
            value_sum=None if row["v"] is None else float(row["v"]),
        )
        for row in rows
    }
    # One list of merged buckets per cell: a row per bucket would be a hundred thousand rows
    # for Python to read over 28 days by day.
    cell = f"{group} AS grp, {_CELL_COLUMNS}" if by_name else f"{cell_id} AS cell"
    buckets = render(
        "SELECT * EXCLUDE (key, c), list(key) AS ks, list(c) AS cs FROM (SELECT * EXCLUDE (c), "
        "sum(c) AS c FROM (SELECT {cell}, unnest(sketch_keys) AS key, "
        "unnest(sketch_counts) AS c FROM ({source}) WHERE {where} AND sketch_keys IS NOT NULL) "
        "GROUP BY ALL) GROUP BY ALL",
        cell=cell,
        source=source,
        where=where,
    )
    for row in fetch(store, buckets):
        key = _key(row) if by_name else names[row["cell"]]
        cells[key].sketch = sketch.from_lists(row["ks"], row["cs"])
    return _with_totals(cells, chosen)


def _with_totals(cells: Cells, chosen: RollupSlice) -> Cells:
    """Without groups the one group is the total; with groups the total is their sum, which
    is what SQL's grouping sets would give, for a twentieth of the work."""
    if chosen.group_by == "none":
        return {key._replace(group=None, is_total=True): cell for key, cell in cells.items()}
    totals: Cells = {}
    for key, cell in cells.items():
        total = totals.setdefault(key._replace(group=None, is_total=True), MergedCell())
        total.add(cell)
    return cells | totals


def _key(row: Row) -> CellKey:
    return CellKey(row["grp"], False, (row["k1"], row["k2"], row["k3"], row["k4"]), row["measure"])


def groups_of(cells: Cells) -> list[tuple[bool, str | None]]:
    """(is total, group) of every group in ``cells``: the total first, then by name."""
    return sorted(
        {(key.is_total, key.group) for key in cells},
        key=lambda pair: (not pair[0], pair[1] is None, pair[1] or ""),
    )


def rollup_sampling(store: EventStore, environment: str, chosen: RollupSlice) -> Sampling:
    """The sample rates seen on the days of the range (the whole day: filters aside)."""
    statement = render(
        "SELECT DISTINCT CAST(k1 AS DOUBLE) AS rate FROM rollups WHERE environment = {env} "
        "AND day BETWEEN {a} AND {b} AND family = {family} ORDER BY rate",
        env=param(environment),
        a=param(chosen.first_day),
        b=param(chosen.last_day),
        family=param(str(Family.SAMPLING)),
    )
    return Sampling(tuple(float(row["rate"]) for row in fetch(store, statement)))
