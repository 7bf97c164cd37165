"""Reading rollups: whether they can answer a scope, and the merged cells when they can.

Reports choose their source by themselves (``choose_source``): daily rollups when the range is
whole UTC days, the filters use at most one rolled dimension (the breakdown's, if any), no
feature flag is asked for, and every day of the range that holds data was built with the
definition asked about (or is sealed: its raw rows are gone, so the rollup is all there is).
Otherwise, and whenever a report needs single events (last actions before drop-off, a
session's path), raw rows. The choice and its consequences go into the report's notes.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

from stumble.analytics import sketch
from stumble.analytics.common import Row, fetch
from stumble.analytics.queries import Scope
from stumble.analytics.results import Sampling
from stumble.analytics.rollup_cells import ROLLED_DIMENSIONS, VOLUME_DEFINITION, Family
from stumble.analytics.sql import Sql, conjunction, param, params_list, render
from stumble.storage.base import EventStore

GroupBy = Literal["none", "dim", "day", "week"]
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

    def where(self, environment: str) -> Sql:
        conditions = [
            render("environment = {env}", env=param(environment)),
            render("day BETWEEN {a} AND {b}", a=param(self.first_day), b=param(self.last_day)),
            render("dim = {dim}", dim=param(self.dim)),
        ]
        if self.values:
            conditions.append(render("dim_value IN ({vs})", vs=params_list(self.values)))
        return conjunction(conditions)

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


_coverage_cache: weakref.WeakKeyDictionary[EventStore, dict[tuple[object, ...], Coverage]] = (
    weakref.WeakKeyDictionary()
)
_coverage_lock = threading.Lock()
Coverage = tuple[int, int]


def _coverage(  # noqa: PLR0917 - the identity of what is asked, all six
    store: EventStore,
    environment: str | None,
    chosen: RollupSlice,
    family: Family,
    key: str,
    definition: str,
) -> Coverage:
    """``_uncached_coverage``, remembered until the store next commits a write: a report like
    top problems asks the same question a dozen times, and only a write can change it."""
    asked = (
        store.write_count,
        environment,
        chosen.first_day,
        chosen.last_day,
        family,
        key,
        definition,
    )
    with _coverage_lock:
        known = _coverage_cache.setdefault(store, {})
        if asked in known:
            return known[asked]
    answer = _uncached_coverage(store, environment, chosen, family, key, definition)
    with _coverage_lock:
        if len(known) > 1_000:
            known.clear()
        known[asked] = answer
    return answer


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


class CellKey(NamedTuple):
    group: str | None
    is_total: bool
    keys: tuple[str | None, str | None, str | None, str | None]
    measure: str


Cells = dict[CellKey, MergedCell]


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
    where = chosen.where(environment) + render(" AND family = {f}", f=param(str(family)))
    if k1 is not None:
        where = where + render(" AND k1 = {k1}", k1=param(k1))
    if k3 is not None:
        where = where + render(" AND k3 = {k3}", k3=param(k3))
    keys = "k1, k2, k3, k4, measure"
    counts = render(
        "SELECT grouping(grp) = 1 AS is_total, grp, {keys}, sum(sessions) AS n, "
        "sum(weighted) AS w, sum(value_sum) AS v FROM (SELECT {group} AS grp, {keys}, "
        "sessions, weighted, value_sum FROM rollups WHERE {where}) "
        "GROUP BY GROUPING SETS ((grp, {keys}), ({keys}))",
        keys=keys,
        group=chosen.group_expr(),
        where=where,
    )
    # The merged buckets go back as one list per cell: a row per bucket would be a hundred
    # thousand rows for Python to read over 28 days by day.
    buckets = render(
        "SELECT is_total, grp, {keys}, list(key ORDER BY key) AS ks, list(c ORDER BY key) AS cs "
        "FROM (SELECT grouping(grp) = 1 AS is_total, grp, {keys}, key, sum(c) AS c FROM ("
        "SELECT {group} AS grp, {keys}, unnest(sketch_keys) AS key, "
        "unnest(sketch_counts) AS c FROM rollups WHERE {where} AND sketch_keys IS NOT NULL) "
        "GROUP BY GROUPING SETS ((grp, {keys}, key), ({keys}, key))) "
        "GROUP BY is_total, grp, {keys}",
        keys=keys,
        group=chosen.group_expr(),
        where=where,
    )
    # Each (group, keys, measure) comes once from each statement: the grouping sets merge days.
    cells: Cells = {
        _key(row): MergedCell(
            sessions=int(row["n"] or 0),
            weighted=None if row["w"] is None else float(row["w"]),
            value_sum=None if row["v"] is None else float(row["v"]),
        )
        for row in _rows(store, counts, chosen)
    }
    for row in _rows(store, buckets, chosen):
        cells.setdefault(_key(row), MergedCell()).sketch = sketch.from_lists(row["ks"], row["cs"])
    return cells


def _rows(store: EventStore, statement: Sql, chosen: RollupSlice) -> list[Row]:
    rows = fetch(store, statement)
    # Without groups the group rows of the grouping set only repeat the total.
    return [row for row in rows if row["is_total"]] if chosen.group_by == "none" else rows


def _key(row: Row) -> CellKey:
    is_total = bool(row["is_total"])
    return CellKey(
        None if is_total else row["grp"],
        is_total,
        (row["k1"], row["k2"], row["k3"], row["k4"]),
        row["measure"],
    )


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
