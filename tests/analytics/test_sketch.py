"""Log-bucket sketches and counted samples: the error bound, merging, and the statistics that
must give the same answer on a counted sample as on the values written out."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stumble.analytics import sketch
from stumble.analytics.stats import (
    CountedSample,
    QuantileStat,
    bootstrap_diff_ci,
    mann_whitney_u,
    quantile,
    quantiles,
)

durations = st.floats(min_value=1.0, max_value=1e9, allow_nan=False)


@given(durations)
def test_a_bucket_stands_for_its_values_within_alpha(value: float) -> None:
    represented = sketch.bucket_value(sketch.bucket_key(value))
    assert abs(represented - value) <= sketch.ALPHA * value * (1 + 1e-9)


def test_the_same_instant_is_bucket_zero() -> None:
    assert sketch.bucket_key(0.0) == sketch.bucket_key(0.4) == 0
    assert sketch.bucket_value(0) == 0.0


@given(st.lists(durations, min_size=1, max_size=300), st.sampled_from([0.0, 0.5, 0.95, 1.0]))
def test_quantiles_from_a_sketch_are_within_alpha_of_the_raw_ones(
    values: list[float], level: float
) -> None:
    counts: dict[int, int] = {}
    for value in values:
        key = sketch.bucket_key(value)
        counts[key] = counts.get(key, 0) + 1
    (estimate,) = sketch.quantiles(counts, [level]) or [None]
    assert estimate is not None
    exact = quantile(values, level)
    assert abs(estimate - exact) <= sketch.ALPHA * exact * (1 + 1e-9)


def test_merging_adds_counts_key_by_key() -> None:
    merged = sketch.merge([{1: 2, 5: 1}, {5: 3, 9: 1}, {}])
    assert merged == {1: 2, 5: 4, 9: 1}
    assert sketch.quantiles({}, [0.5]) is None
    assert sketch.count_above({1: 2, 500: 3}, 10.0) == 3


def test_a_sketch_stored_as_two_lists_comes_back() -> None:
    assert sketch.from_lists([3, 7], [2, 5]) == {3: 2, 7: 5}
    assert sketch.from_lists(None, None) == {}


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(1, 6)), min_size=1, max_size=30))
def test_a_counted_sample_is_its_values_written_out_in_order(
    pairs: list[tuple[int, int]],
) -> None:
    counted = CountedSample([(float(v), n) for v, n in pairs])
    written = sorted(float(v) for v, n in pairs for _ in range(n))
    assert list(counted) == written
    assert len(counted) == len(written)
    assert [counted[i] for i in range(len(written))] == written
    assert counted[-1] == written[-1]
    assert quantiles(counted, [0.25, 0.5, 0.95]) == quantiles(written, [0.25, 0.5, 0.95])
    with pytest.raises(IndexError):
        counted[len(written)]


def _sample(seed: int, size: int, scale: float) -> CountedSample:
    rng = random.Random(seed)
    values = [round(rng.lognormvariate(0, 1) * scale) for _ in range(size)]
    counts: dict[float, int] = {}
    for value in values:
        counts[float(value)] = counts.get(float(value), 0) + 1
    return CountedSample(list(counts.items()))


def test_mann_whitney_on_counts_equals_it_on_the_values() -> None:
    a, b = _sample(1, 400, 100.0), _sample(2, 300, 120.0)
    counted = mann_whitney_u(a, b)
    written = mann_whitney_u(list(a), list(b))
    assert counted.u == pytest.approx(written.u)
    assert counted.p_value == pytest.approx(written.p_value, rel=1e-9)


def test_the_bootstrap_draws_the_same_on_counts_as_on_the_values() -> None:
    a, b = _sample(3, 500, 50.0), _sample(4, 500, 55.0)
    stat = QuantileStat(0.95)
    counted = bootstrap_diff_ci(a, b, stat=stat, n_resamples=300, seed=9)
    written = bootstrap_diff_ci(list(a), list(b), stat=stat, n_resamples=300, seed=9)
    assert counted == written


def test_whole_numbers_come_back_whole() -> None:
    attempts = {sketch.bucket_key(float(v)): 0 for v in (1, 2, 3, 4)}
    for value, count in ((1, 5), (2, 9), (3, 4), (4, 1)):
        attempts[sketch.bucket_key(float(value))] += count
    assert sketch.quantiles(attempts, [0.5], integral=True) == [2.0]
    assert sketch.quantiles(attempts, [0.5]) != [2.0]  # 1.99...: the bucket's value
