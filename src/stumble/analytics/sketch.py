"""Mergeable duration summaries: DDSketch's log buckets, kept as (bucket key, count) pairs.

A duration ``x`` (ms) of at least 1 falls in bucket ``ceil(log_gamma(x)) + 1`` with
``gamma = (1 + ALPHA) / (1 - ALPHA)``; the bucket stands for ``2 * gamma**(k - 1) / (gamma + 1)``,
which is within ``ALPHA`` (1%) of every value in it (Masson, Rim and Lee, "DDSketch", VLDB
2019). Anything under 1 ms (the same instant) is bucket 0, standing for 0. Buckets of any set of
days merge by adding their counts, so a p95 over 13 months is one ``GROUP BY`` of small lists,
and a quantile read from them is within 1% of the sample value of the same rank.

Why not the ``ddsketch`` or ``datasketches`` libraries: the summaries are built and merged
inside DuckDB (``bucket_key_sql`` in the rollup build, a ``sum`` per key to merge); Python only
turns the merged counts into quantiles, which is the few lines below. A library would need the
values in Python first, which is the cost rollups exist to avoid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from stumble.analytics.stats import CountedSample

ALPHA: Final = 0.01
"""Relative accuracy of every quantile read from a sketch (above 1 ms)."""
GAMMA: Final = (1 + ALPHA) / (1 - ALPHA)
_LN_GAMMA: Final = math.log(GAMMA)


def bucket_key_sql(expr: str) -> str:
    """The bucket key of the duration ``expr`` (ms), in SQL (DuckDB and ClickHouse alike)."""
    return (
        f"CASE WHEN ({expr}) >= 1 THEN CAST(ceil(ln({expr}) / {_LN_GAMMA!r}) AS INTEGER) + 1 "
        "ELSE 0 END"
    )


def bucket_key(value: float) -> int:
    """The same key in Python (tests and the simulator's ground truth)."""
    if value < 1:
        return 0
    return math.ceil(math.log(value) / _LN_GAMMA) + 1


def bucket_value(key: int) -> float:
    """The value a bucket stands for: within ``ALPHA`` of everything in it."""
    if key <= 0:
        return 0.0
    return 2 * GAMMA ** (key - 1) / (GAMMA + 1)


def merge(parts: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """Counts of several sketches added key by key."""
    merged: dict[int, int] = {}
    for part in parts:
        for key, count in part.items():
            merged[key] = merged.get(key, 0) + count
    return merged


def from_lists(keys: Sequence[int] | None, counts: Sequence[int] | None) -> dict[int, int]:
    """A sketch from the two parallel lists a rollup cell stores."""
    if not keys or not counts:
        return {}
    return {int(key): int(count) for key, count in zip(keys, counts, strict=True)}


def quantiles(
    sketch: Mapping[int, int], levels: Sequence[float], *, integral: bool = False
) -> list[float] | None:
    """The values at ``levels`` (0..1), interpolated as ``quantile_cont`` does; None if empty.

    Rank ``q * (n - 1)`` (0-based) falls between two order statistics; each is read from its
    bucket (within ``ALPHA``) and the two are interpolated linearly, so the result is within
    ``ALPHA`` of what the raw rows' ``quantile_cont`` gives (above 1 ms). ``integral``: the
    values are whole numbers (attempts), so each order statistic is rounded to one, which is
    exact below 50 (1% of 50 is half a unit)."""
    total = sum(sketch.values())
    if total <= 0:
        return None
    ordered = sorted(sketch.items())
    values = []
    for level in levels:
        rank = level * (total - 1)
        low = math.floor(rank)
        low_value = _order_statistic(ordered, low)
        high_value = _order_statistic(ordered, min(low + 1, total - 1))
        if integral:
            low_value, high_value = float(round(low_value)), float(round(high_value))
        values.append(low_value + (rank - low) * (high_value - low_value))
    return values


def _order_statistic(ordered: Sequence[tuple[int, int]], index: int) -> float:
    """The value of the ``index``-th smallest (0-based) of the sketch's values."""
    seen = 0
    for key, count in ordered:
        seen += count
        if seen > index:
            return bucket_value(key)
    return bucket_value(ordered[-1][0])


def sample(sketch: Mapping[int, int]) -> CountedSample:
    """The sketch as a sorted sample of its buckets' values (for tests and the bootstrap):
    each value within ``ALPHA`` of the one it stands for."""
    return CountedSample([(bucket_value(key), count) for key, count in sketch.items()])


def count_above(sketch: Mapping[int, int], limit: float) -> int:
    """How many values exceed ``limit`` (buckets whose value does; within ``ALPHA``)."""
    return sum(count for key, count in sketch.items() if bucket_value(key) > limit)
