"""Report results shared between page views: fresh for a while, then computed again."""

from __future__ import annotations

import pytest

from stumble.dashboard.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_fresh_result_is_computed_once_and_an_old_one_again() -> None:
    clock = Clock()
    cache = ResultCache(ttl_s=60, clock=clock)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get_or_compute("k", compute) == 1
    clock.now = 59.9
    assert cache.get_or_compute("k", compute) == 1
    clock.now = 61.0
    assert cache.get_or_compute("k", compute) == 2
    assert len(calls) == 2


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = ResultCache(ttl_s=60, max_entries=2, clock=Clock())
    cache.get_or_compute("a", lambda: "A")
    cache.get_or_compute("b", lambda: "B")
    cache.get_or_compute("a", lambda: "again")  # a is used: b is now the oldest
    cache.get_or_compute("c", lambda: "C")
    assert cache.get_or_compute("a", lambda: "recomputed") == "A"
    assert cache.get_or_compute("b", lambda: "recomputed") == "recomputed"


def test_a_failed_computation_leaves_nothing_behind() -> None:
    cache = ResultCache(clock=Clock())

    def fail() -> int:
        raise RuntimeError("storage")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", fail)
    assert cache.get_or_compute("k", lambda: 7) == 7
