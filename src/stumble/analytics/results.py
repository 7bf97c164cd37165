"""Typed results shared by every report, and the envelope they travel in.

Results are frozen msgspec Structs, so the read API encodes them to JSON without a
hand-written serialiser and ``stumble report --server`` decodes them back into the same
types. Each report's data type also offers ``tables()``: the rows a person reads, which the
renderers turn into a terminal table, Markdown or (later) a chart.

Conventions: durations are milliseconds; shares are fractions in [0, 1] with a Wilson 95%
interval; a row whose ``hidden`` is true was suppressed (fewer than ``min_group_size``
sessions, or hidden so a total cannot reveal such a group) and carries no numbers; counts of
sessions are re-weighted by the write key's sample rate when ``meta.estimated`` is true.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

import msgspec

from stumble.analytics.queries import Filters, Scope, TimeRange
from stumble.analytics.stats import wilson_interval

ALL_GROUPS = "all"
"""How the total row of a breakdown is labelled in tables (its ``group`` is None)."""


class Durations(msgspec.Struct, frozen=True, kw_only=True):
    """Quantiles of a duration sample in ms; ``None`` when the sample is empty or hidden."""

    n: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, n: int, quantiles: Sequence[float] | None) -> Durations:
        """From an SQL ``quantile_cont(x, [0.5, 0.95(, 0.99)])`` list."""
        if not n or quantiles is None:
            return cls(n=n)
        values = [float(q) for q in quantiles]
        return cls(n=n, p50=values[0], p95=values[1], p99=values[2] if len(values) > 2 else None)


EMPTY_DURATIONS = Durations(n=0)


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """A proportion with its Wilson 95% interval (computed on observed sessions)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(
        cls,
        part: int,
        whole: int,
        *,
        weighted_part: float | None = None,
        weighted_whole: float | None = None,
    ) -> Share:
        """``part / whole``; the point estimate uses the weighted counts when given."""
        if whole <= 0:
            return cls(value=None)
        low, high = wilson_interval(min(part, whole), whole)
        if weighted_part is not None and weighted_whole:
            value = weighted_part / weighted_whole
        else:
            value = part / whole
        return cls(value=value, low=low, high=high)


NO_SHARE = Share(value=None)


def at_least(count: int, k: int) -> int | None:
    """A session count as shown on its own: hidden (None) below the threshold k."""
    return count if count >= k else None


def estimate(observed: int, weighted: float | None) -> int:
    """A session count as shown: the sampling-weighted estimate, rounded."""
    if weighted is None:
        return observed
    return round(weighted)


class ReportMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What was asked and how to read the numbers."""

    report: str
    time_from: dt.datetime
    time_to: dt.datetime
    environment: str | None
    by: str | None = None
    filters: dict[str, str] = {}
    estimated: bool = False
    """True when some counted sessions were sampled: counts are re-weighted estimates."""
    sample_rates: list[float] = []
    min_group_size: int = 5
    hidden: int = 0
    """How many cells small-cell suppression hid."""
    notes: list[str] = []
    source: str = "raw"
    """Where the numbers come from: ``raw`` events or daily ``rollups`` (see the notes)."""


def describe_filters(filters: Filters) -> dict[str, str]:
    """Non-default filters as ``name: comma-separated values``."""
    described = {column: ",".join(values) for column, values in filters.value_filters()}
    if filters.feature_flag is not None:
        described["flag"] = str(filters.feature_flag)
    return described


def meta_for(
    report: str,
    *,
    time: TimeRange,
    scope: Scope | None,
    sampling: Sampling,
    min_group_size: int,
    hidden: int,
    notes: Sequence[str] = (),
    environment: str | None = None,
    source: str = "raw",
) -> ReportMeta:
    return ReportMeta(
        source=source,
        report=report,
        time_from=time.start,
        time_to=time.end,
        environment=scope.filters.environment if scope is not None else environment,
        by=scope.by if scope is not None else None,
        filters=describe_filters(scope.filters) if scope is not None else {},
        estimated=sampling.estimated,
        sample_rates=list(sampling.rates),
        min_group_size=min_group_size,
        hidden=hidden,
        notes=list(notes),
    )


@dataclass(frozen=True, slots=True)
class Sampling:
    """The distinct sample rates of the rows a report counted."""

    rates: tuple[float, ...] = ()

    @property
    def estimated(self) -> bool:
        return any(rate < 1.0 for rate in self.rates)


# --- tables: what renderers draw ----------------------------------------------------------

Format = Literal["text", "int", "share", "ms", "number", "p"]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    format: Format = "text"


@dataclass(frozen=True, slots=True)
class Table:
    """Rows for people: a title, typed columns, and values (None prints as a dash)."""

    title: str
    columns: tuple[Column, ...]
    rows: Sequence[tuple[object, ...]]
    note: str = ""


class Tabular(Protocol):
    def tables(self) -> list[Table]: ...


T = TypeVar("T")


class Report(msgspec.Struct, Generic[T], frozen=True):
    """The envelope of every report: ``meta`` says how to read ``data``."""

    meta: ReportMeta
    data: T


def group_label(group: str | None) -> str:
    return ALL_GROUPS if group is None else group
