"""Statistics: reference values from independent implementations, and properties.

The reference numbers were computed once with scipy 1.17.1 and statsmodels 0.15.0 in a
throw-away environment (neither is a dependency of stumble): ``scipy.stats.mannwhitneyu(a, b,
method="asymptotic")``, ``statsmodels...proportion_confint(method="wilson")``,
``confint_proportions_2indep(method="newcomb")``, ``proportions_ztest`` and
``multipletests(method="holm")``. Quantiles are checked against DuckDB itself, bit for bit.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Sequence

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stumble.analytics.stats import (
    IMPROVED,
    NO_CHANGE,
    REGRESSED,
    QuantileStat,
    bootstrap_diff_ci,
    holm_adjust,
    mann_whitney_u,
    median,
    p95,
    quantile,
    quantiles,
    two_proportion_test,
    verdict,
    wilson_interval,
)

# --- quantiles ------------------------------------------------------------------------------


@functools.cache
def _duckdb() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def _duckdb_quantile(values: list[float], q: float) -> float:
    row = (
        _duckdb()
        .execute(
            # q bound, not inlined: DuckDB 1.4 reads a 16-digit decimal literal as a DOUBLE
            # one ulp away from Python's (0.9543827815191721 became 0.954382781519172)
            "SELECT quantile_cont(v, ?::DOUBLE) FROM (SELECT unnest(?::DOUBLE[]) AS v)",
            [q, values],
        )
        .fetchone()
    )
    assert row is not None
    return float(row[0])


finite_floats = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(finite_floats, min_size=1, max_size=40), q=st.floats(0.0, 1.0))
def test_quantile_equals_duckdb_quantile_cont_bit_for_bit(values: list[float], q: float) -> None:
    assert quantile(values, q) == _duckdb_quantile(values, q)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=40))
def test_quantile_of_integers_equals_duckdb(values: list[int]) -> None:
    floats = [float(v) for v in values]
    for q in (0.5, 0.75, 0.95):
        assert quantile(values, q) == _duckdb_quantile(floats, q)


def test_quantile_small_examples() -> None:
    assert quantile([1, 2, 3, 4, 10], 0.5) == 3.0
    assert quantile([1, 2, 3, 4, 10], 0.95) == pytest.approx(8.8)
    assert quantile([5.0], 0.95) == 5.0
    assert quantile([3, 1, 2, 4], 0.5) == 2.5  # unsorted input is sorted first
    assert quantiles([4, 1, 3, 2], [0.0, 0.5, 1.0]) == [1.0, 2.5, 4.0]
    assert median([7, 1, 3]) == 3.0
    with pytest.raises(ValueError, match="empty"):
        quantile([], 0.5)
    with pytest.raises(ValueError, match="level"):
        quantile([1.0], 1.5)


@given(
    values=st.lists(finite_floats, min_size=1, max_size=40), q1=st.floats(0, 1), q2=st.floats(0, 1)
)
def test_quantile_is_monotone_and_within_range(values: list[float], q1: float, q2: float) -> None:
    # DuckDB's ``lo * (1 - d) + hi * d`` can land an ulp outside [lo, hi] (even when lo == hi),
    # and matching it bit for bit means inheriting that: allow rounding-sized slack.
    low_q, high_q = sorted((q1, q2))
    slack = 1e-12 * max(abs(v) for v in values)
    low_value, high_value = quantile(values, low_q), quantile(values, high_q)
    assert min(values) - slack <= low_value <= high_value + slack
    assert high_value <= max(values) + slack


# --- Wilson ---------------------------------------------------------------------------------

WILSON_REFERENCE = [
    (81, 263, 0.2552885198782742, 0.36620957698280004),
    (0, 10, 0.0, 0.27753279986288926),
    (10, 10, 0.7224672001371106, 1.0),
    (1, 29, 0.006113214292762667, 0.17175521879320294),
    (15, 148, 0.06238639953073628, 0.16048724172330803),
]


@pytest.mark.parametrize(("x", "n", "low", "high"), WILSON_REFERENCE)
def test_wilson_matches_reference(x: int, n: int, low: float, high: float) -> None:
    got_low, got_high = wilson_interval(x, n)
    assert got_low == pytest.approx(low, rel=1e-12, abs=1e-15)
    assert got_high == pytest.approx(high, rel=1e-12)


def test_wilson_edges_and_confidence() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow = wilson_interval(30, 100, confidence=0.8)
    wide = wilson_interval(30, 100, confidence=0.99)
    assert wide[0] < narrow[0] < 0.3 < narrow[1] < wide[1]
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 10, confidence=1.0)


@given(data=st.data(), n=st.integers(1, 10**7), confidence=st.floats(0.5, 0.999))
def test_wilson_contains_the_estimate_within_unit_interval(
    data: st.DataObject, n: int, confidence: float
) -> None:
    x = data.draw(st.integers(0, n))
    low, high = wilson_interval(x, n, confidence)
    assert 0.0 <= low <= x / n <= high <= 1.0


# --- two proportions ------------------------------------------------------------------------

# ((x1, n1, x2, n2), (ci_low, ci_high, z, p)): statsmodels' "newcomb" interval, pooled z test.
PROPORTION_REFERENCE = [
    (
        (48, 80, 56, 70),
        (0.05243147240236498, 0.33387265403690614, 2.6501719512585336, 0.00804508136819656),
    ),
    (
        (5, 56, 0, 29),
        (-0.19256001385511165, 0.038137147903536936, -1.6586488692392285, 0.09718656817057973),
    ),
    (
        (120, 1000, 90, 1000),
        (-0.057009571192658454, -0.0030960486785798005, -2.1882658846227234, 0.028650240398448473),
    ),
]


@pytest.mark.parametrize(("counts", "expected"), PROPORTION_REFERENCE)
def test_two_proportion_test_matches_reference(
    counts: tuple[int, int, int, int], expected: tuple[float, float, float, float]
) -> None:
    x1, n1, x2, n2 = counts
    low, high, z, p = expected
    result = two_proportion_test(x1, n1, x2, n2)
    assert result.diff == pytest.approx(x2 / n2 - x1 / n1)
    assert result.ci_low == pytest.approx(low, rel=1e-10)
    assert result.ci_high == pytest.approx(high, rel=1e-10)
    assert result.z == pytest.approx(z, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_two_proportion_test_degenerate_groups() -> None:
    same = two_proportion_test(0, 50, 0, 80)
    assert (same.diff, same.z, same.p_value) == (0.0, 0.0, 1.0)
    assert same.ci_low < 0.0 < same.ci_high
    with pytest.raises(ValueError, match="observation"):
        two_proportion_test(0, 0, 1, 2)


@st.composite
def proportion_pairs(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n1 = draw(st.integers(1, 100_000))
    n2 = draw(st.integers(1, 100_000))
    return draw(st.integers(0, n1)), n1, draw(st.integers(0, n2)), n2


@given(pair=proportion_pairs())
def test_two_proportion_properties(pair: tuple[int, int, int, int]) -> None:
    x1, n1, x2, n2 = pair
    forward = two_proportion_test(x1, n1, x2, n2)
    assert -1.0 <= forward.ci_low <= forward.diff <= forward.ci_high <= 1.0
    assert 0.0 <= forward.p_value <= 1.0
    backward = two_proportion_test(x2, n2, x1, n1)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9, abs=1e-300)
    assert backward.diff == pytest.approx(-forward.diff, abs=1e-15)
    assert backward.ci_low == pytest.approx(-forward.ci_high, abs=1e-12)
    assert backward.ci_high == pytest.approx(-forward.ci_low, abs=1e-12)


# --- Mann-Whitney ---------------------------------------------------------------------------


def _generated_samples() -> tuple[list[float], list[float]]:
    rng = random.Random(7)
    a = [round(rng.random() * 100, 1) for _ in range(60)]
    b = [round(rng.random() * 100 + 10, 1) for _ in range(45)]
    return a, b


MWU_REFERENCE = [
    ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0.0, 0.012185780355344813),
    ([1, 2], [3, 4], 0.0, 0.2452781168067728),
    ([1, 2, 2, 3, 3, 3, 5], [2, 3, 4, 4, 5, 6, 6, 7], 10.0, 0.03971608699701135),
    (
        [0.5, 1.5, 2.5, 2.5, 9.0, 3.25],
        [1.0, 2.5, 2.5, 4.0, 7.0, 8.0, 2.0],
        18.0,
        0.7172383586012208,
    ),
    (*_generated_samples(), 915.5, 0.0049497971039437205),
]


@pytest.mark.parametrize(("a", "b", "u", "p"), MWU_REFERENCE)
def test_mann_whitney_matches_scipy(a: list[float], b: list[float], u: float, p: float) -> None:
    result = mann_whitney_u(a, b)
    assert result.u == u
    assert result.p_value == pytest.approx(p, rel=1e-10)


def test_mann_whitney_by_hand() -> None:
    # a = [1, 2], b = [3, 4]: no pair with a > b, so U = 0; mu = 2, var = 2*2/12 * 5 = 5/3,
    # z = (4 - 2 - 0.5) / sqrt(5/3), p = erfc(z / sqrt 2).
    z = 1.5 / math.sqrt(5 / 3)
    u, p_value = mann_whitney_u([1, 2], [3, 4])
    assert u == 0.0
    assert p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    # Identical constant samples carry no evidence of a shift.
    assert mann_whitney_u([5, 5, 5], [5, 5]) == (3.0, 1.0)
    with pytest.raises(ValueError, match="sample"):
        mann_whitney_u([], [1.0])


samples = st.lists(st.integers(0, 30).map(float), min_size=1, max_size=40)


@given(a=samples, b=samples)
def test_mann_whitney_properties(a: list[float], b: list[float]) -> None:
    forward = mann_whitney_u(a, b)
    backward = mann_whitney_u(b, a)
    assert 0.0 <= forward.p_value <= 1.0
    assert 0.0 <= forward.u <= len(a) * len(b)
    assert forward.u + backward.u == len(a) * len(b)
    assert backward.p_value == pytest.approx(forward.p_value, rel=1e-12)


def test_mann_whitney_detects_a_shift_and_not_noise() -> None:
    rng = random.Random(3)
    before = [rng.lognormvariate(math.log(90_000), 0.6) for _ in range(800)]
    after = [rng.lognormvariate(math.log(35_000), 0.6) for _ in range(800)]
    same = [rng.lognormvariate(math.log(90_000), 0.6) for _ in range(800)]
    assert mann_whitney_u(before, after).p_value < 1e-50
    assert mann_whitney_u(before, same).p_value > 0.01


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_is_deterministic_and_ordered() -> None:
    rng = random.Random(11)
    a = [rng.lognormvariate(4, 0.5) for _ in range(300)]
    b = [rng.lognormvariate(4.2, 0.5) for _ in range(250)]
    first = bootstrap_diff_ci(a, b, seed=5)
    assert first == bootstrap_diff_ci(a, b, seed=5)
    assert first != bootstrap_diff_ci(a, b, seed=6)
    assert first[0] <= first[1]


def test_bootstrap_recovers_a_known_shift() -> None:
    rng = random.Random(12)
    before = [rng.lognormvariate(math.log(4000), 0.4) for _ in range(3000)]
    after = [value - 1000 for value in before[:1500]] + [
        rng.lognormvariate(math.log(4000), 0.4) - 1000 for _ in range(1500)
    ]
    low, high = bootstrap_diff_ci(before, after, stat=median, seed=1)
    assert low < -1000 < high
    assert high < 0
    low95, high95 = bootstrap_diff_ci(before, after, stat=p95, seed=1)
    assert low95 < -1000 < high95


def test_bootstrap_fast_quantile_path_matches_plain_resampling() -> None:
    """The order-statistic shortcut must give the distribution plain resampling gives."""
    rng = random.Random(13)
    a = [float(rng.randint(1, 60)) for _ in range(25)]
    b = [float(rng.randint(5, 70)) for _ in range(31)]

    def slow_median(values: Sequence[float]) -> float:  # a plain callable: no fast path
        return quantile(values, 0.5)

    def slow_p90(values: Sequence[float]) -> float:
        return quantile(values, 0.9)

    for fast, slow in ((median, slow_median), (QuantileStat(0.9), slow_p90)):
        fast_ci = bootstrap_diff_ci(a, b, stat=fast, n_resamples=20_000, seed=2)
        slow_ci = bootstrap_diff_ci(a, b, stat=slow, n_resamples=20_000, seed=3)
        # Monte Carlo error at 20k resamples on this scale is well under one unit.
        assert fast_ci == pytest.approx(slow_ci, abs=1.5)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="sample"):
        bootstrap_diff_ci([], [1.0])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_diff_ci([1.0], [1.0], n_resamples=0)


# --- verdict and Holm -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "ci", "p", "higher_is_better", "expected"),
    [
        (0.1, (0.05, 0.15), 0.001, True, IMPROVED),  # conversion went up
        (0.1, (0.05, 0.15), 0.001, False, REGRESSED),  # error share went up
        (-20.0, (-30.0, -10.0), 0.001, False, IMPROVED),  # step time went down
        (-20.0, (-30.0, -10.0), 0.001, True, REGRESSED),
        (0.1, (-0.01, 0.2), 0.04, True, NO_CHANGE),  # interval crosses zero
        (0.1, (0.01, 0.2), 0.2, True, NO_CHANGE),  # test not significant
        (0.1, (0.01, 0.2), 0.05, True, NO_CHANGE),  # p == alpha is not below alpha
        (-5.0, (-9.0, -1.0), None, False, IMPROVED),  # bootstrap interval alone
        (0.0, (0.0, 0.0), 0.0, True, NO_CHANGE),
    ],
)
def test_verdict(
    diff: float, ci: tuple[float, float], p: float | None, higher_is_better: bool, expected: str
) -> None:
    assert verdict(diff, ci, p, higher_is_better) == expected


def test_verdict_on_simulated_fix_and_on_an_aa_split() -> None:
    fix = two_proportion_test(700, 1000, 100, 1000)  # iin_bin error share 70% -> 10%
    assert (
        verdict(fix.diff, (fix.ci_low, fix.ci_high), fix.p_value, higher_is_better=False)
        == IMPROVED
    )
    aa = two_proportion_test(400, 1000, 405, 1000)
    assert verdict(aa.diff, (aa.ci_low, aa.ci_high), aa.p_value, higher_is_better=True) == NO_CHANGE


def test_holm_matches_reference() -> None:
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.2, 0.001, 0.5, 0.04, 0.03]) == pytest.approx(
        [0.4, 0.005, 0.5, 0.12, 0.12]
    )
    assert holm_adjust([]) == []


@given(st.lists(st.floats(0.0, 1.0), max_size=30))
def test_holm_properties(p_values: list[float]) -> None:
    adjusted = holm_adjust(p_values)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p_values, adjusted, strict=True))
    pairs = sorted(zip(p_values, adjusted, strict=True))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(pairs))
