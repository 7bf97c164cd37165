"""Every funnel rule on hand-built sessions: counts and step medians, event by event.

Steps are ``a → b → c`` (action events of those names) unless a test says otherwise; ``x`` is
an unrelated action, ``z`` the exclusion. Times are seconds from 09:00 UTC on one day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.analytics.conftest import py_funnel
from tests.analytics.handmade import DAY, event

from stumble.analytics.funnels import FunnelResult, run_funnel
from stumble.analytics.queries import FunnelQuery, ScenarioSpec, Scope, StepSpec, TimeRange
from stumble.events import StoredEvent
from stumble.plan.model import FunnelOrder
from stumble.storage import DuckDBStore

MINUTE = 60

Event = tuple[str, float] | tuple[str, float, str]
"""(event name, seconds after 09:00[, kind]); the kind defaults to ``action``."""


def row(session: str, name: str, seconds: float, kind: str = "action") -> StoredEvent:
    return event(
        session,
        kind,
        seconds,
        event_name=name,
        metric="long_task" if kind == "vital" else None,
        value=60.0 if kind == "vital" else None,
        nav=name if kind == "navigation" else None,
        status="fail" if kind == "form_submit" else None,
    )


@pytest.fixture
def store() -> Iterator[DuckDBStore]:
    store = DuckDBStore(":memory:", threads=1)
    yield store
    store.close()


def funnel(
    store: DuckDBStore,
    sessions: Sequence[Sequence[Event]],
    *,
    steps: Sequence[str | StepSpec] = ("a", "b", "c"),
    window_s: float = 60 * MINUTE,
    order: FunnelOrder = "ordered",
    exclusions: Sequence[str] = (),
) -> FunnelResult:
    rows = [
        row(f"s_{index:020d}", *event) for index, events in enumerate(sessions) for event in events
    ]
    store.write_rows(rows)
    specs = tuple(s if isinstance(s, StepSpec) else StepSpec(s, s) for s in steps)
    scenario = ScenarioSpec(
        "hand",
        specs,
        round(window_s * 1000),
        order=order,
        exclusions=tuple(StepSpec(z, z) for z in exclusions),
    )
    scope = Scope(TimeRange(DAY, DAY + dt.timedelta(days=1)))
    query = FunnelQuery(scope, scenario, last_actions=True)
    return run_funnel(store, query, min_group_size=1).data


def reached(result: FunnelResult) -> list[int | None]:
    return [step.sessions for step in result.total().steps]


def p50s(result: FunnelResult) -> list[float | None]:
    """Median time from the previous step, in seconds, for steps 2..n."""
    return [
        None if s.time_from_previous.p50 is None else s.time_from_previous.p50 / 1000
        for s in result.total().steps[1:]
    ]


def one(store: DuckDBStore, events: Sequence[Event], **options: Any) -> FunnelResult:
    return funnel(store, [events], **options)


# --- ordered ------------------------------------------------------------------------------


def test_steps_in_order_convert_with_their_times(store: DuckDBStore) -> None:
    result = funnel(
        store,
        [
            [("a", 0), ("b", 10), ("c", 30)],
            [("a", 0), ("b", 20), ("c", 60)],
            [("a", 0), ("b", 40)],
            [("a", 0)],
        ],
    )
    assert reached(result) == [4, 3, 2]
    assert p50s(result) == [20.0, 30.0]
    assert result.total().time_to_convert.p50 == 45_000


def test_steps_out_of_order_do_not_count(store: DuckDBStore) -> None:
    result = one(store, [("c", 0), ("b", 10), ("a", 20)])
    assert reached(result) == [1, 0, 0]


def test_a_session_without_step_one_is_not_in_the_funnel(store: DuckDBStore) -> None:
    result = funnel(store, [[("b", 0), ("c", 10)], [("a", 0)]])
    assert reached(result) == [1, 0, 0]


def test_other_events_between_steps_do_not_matter_when_ordered(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("x", 5), ("b", 10), ("x", 15), ("c", 20)])
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [10.0, 10.0]


# --- restarts: the interrupted operator -----------------------------------------------------


def test_reopening_after_the_window_starts_a_new_attempt(store: DuckDBStore) -> None:
    # Opened, called away for 20 minutes (window 10), reopened and submitted: converted,
    # and the step times are the second attempt's, not the interruption.
    events: list[Event] = [("a", 0), ("a", 20 * MINUTE), ("b", 21 * MINUTE), ("c", 22 * MINUTE)]
    result = one(store, events, window_s=10 * MINUTE)
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [60.0, 60.0]


def test_first_touch_counts_the_same_session_as_a_drop_off(store: DuckDBStore) -> None:
    events: list[Event] = [("a", 0), ("a", 20 * MINUTE), ("b", 21 * MINUTE), ("c", 22 * MINUTE)]
    result = one(store, events, window_s=10 * MINUTE, order="first_touch")
    assert result.semantics == "first_touch"
    assert reached(result) == [1, 0, 0]


def test_a_later_step_joins_the_most_recent_attempt(store: DuckDBStore) -> None:
    # Inside the window too: b follows the reopening, so it is timed from it.
    result = one(store, [("a", 0), ("a", 100), ("b", 130), ("c", 140)])
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [30.0, 10.0]


def test_a_step_joins_the_latest_attempt_that_reached_the_previous_step(
    store: DuckDBStore,
) -> None:
    # Attempt 1 reaches b; attempt 2 opens but never reaches b; c belongs to attempt 1.
    result = one(store, [("a", 0), ("b", 10), ("a", 20), ("c", 30)])
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [10.0, 20.0]
    assert result.total().time_to_convert.p50 == 30_000


def test_a_session_counts_once_with_the_first_attempt_that_got_furthest(
    store: DuckDBStore,
) -> None:
    # Two attempts both reach b (10 s, then 30 s); neither reaches c. Counted once, 10 s.
    result = one(store, [("a", 0), ("b", 10), ("a", 100), ("b", 130)])
    assert reached(result) == [1, 1, 0]
    assert p50s(result) == [10.0, None]


def test_the_furthest_attempt_wins_over_an_earlier_shorter_one(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("b", 10), ("a", 100), ("b", 150), ("c", 160)])
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [50.0, 10.0]


def test_a_repeated_step_times_the_next_from_its_latest_occurrence(store: DuckDBStore) -> None:
    # b twice in one attempt: c is timed from the later b, the attempt's step b stays counted.
    result = one(store, [("a", 0), ("b", 10), ("b", 25), ("c", 30)])
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [25.0, 5.0]


# --- the window ---------------------------------------------------------------------------


def test_the_window_end_is_inclusive(store: DuckDBStore) -> None:
    result = funnel(
        store,
        [
            [("a", 0), ("b", 30), ("c", 60)],  # c exactly at the end
            [("a", 0), ("b", 30), ("c", 60.001)],  # one millisecond late
        ],
        window_s=60,
    )
    assert reached(result) == [2, 2, 1]


def test_the_window_counts_from_the_attempts_first_step(store: DuckDBStore) -> None:
    # b is 50 s after a, c 50 s after b: within 60 s of each other, not of the start.
    result = one(store, [("a", 0), ("b", 50), ("c", 100)], window_s=60)
    assert reached(result) == [1, 1, 0]


@pytest.mark.parametrize(("window_s", "converted"), [(14 * 86_400, 1), (86_400, 0)])
def test_windows_of_days(store: DuckDBStore, window_s: float, converted: int) -> None:
    result = one(store, [("a", 0), ("b", 3600), ("c", 13 * 3600)], window_s=window_s)
    # The events sit in one day, so only a window shorter than 13 h drops c.
    assert reached(result)[2] == (1 if window_s >= 13 * 3600 else converted)


def test_a_window_of_seconds(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("b", 2), ("c", 5)], window_s=3)
    assert reached(result) == [1, 1, 0]


# --- ties ---------------------------------------------------------------------------------


def test_events_at_one_instant_are_matched_in_step_order(store: DuckDBStore) -> None:
    # Written in reverse: storage order must not matter.
    result = one(store, [("c", 5), ("b", 5), ("a", 5)])
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [0.0, 0.0]


def test_one_event_never_fills_two_steps(store: DuckDBStore) -> None:
    twice = (StepSpec("open", "a"), StepSpec("again", "a"), StepSpec("c", "c"))
    result = funnel(
        store,
        [
            [("a", 0), ("c", 10)],  # one a: step 1 only
            [("a", 0), ("a", 5), ("c", 10)],  # two a's: both steps
        ],
        steps=twice,
    )
    assert reached(result) == [2, 1, 1]
    assert p50s(result) == [5.0, 5.0]


def test_identical_step_one_events_at_one_instant_are_one_entry(store: DuckDBStore) -> None:
    twice = (StepSpec("open", "a"), StepSpec("again", "a"), StepSpec("c", "c"))
    result = one(store, [("a", 0), ("a", 0), ("a", 0), ("c", 10)], steps=twice)
    assert reached(result) == [1, 0, 0]


def test_a_burst_of_step_one_events_counts_one_session(store: DuckDBStore) -> None:
    result = one(store, [("a", 0)] * 5 + [("b", 1)])
    assert reached(result) == [1, 1, 0]
    assert p50s(result) == [1.0, None]


# --- strict ---------------------------------------------------------------------------------


def test_strict_needs_the_steps_back_to_back(store: DuckDBStore) -> None:
    result = funnel(
        store,
        [
            [("a", 0), ("b", 10), ("c", 20)],
            [("a", 0), ("x", 5), ("b", 10), ("c", 20)],  # broken after a
            [("a", 0), ("b", 10), ("x", 15), ("c", 20)],  # broken after b
        ],
        order="strict",
    )
    assert reached(result) == [3, 2, 1]


def test_strict_restarts_on_a_repeated_first_step(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("a", 10), ("b", 15), ("c", 17)], order="strict")
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [5.0, 2.0]


def test_strict_ignores_vitals_between_steps(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("lt", 5, "vital"), ("b", 10), ("c", 20)], order="strict")
    assert reached(result) == [1, 1, 1]


def test_strict_counts_a_broken_chain_at_its_furthest_attempt(store: DuckDBStore) -> None:
    events: list[Event] = [("a", 0), ("b", 5), ("x", 6), ("c", 7), ("a", 10), ("b", 20)]
    result = one(store, events, order="strict")
    assert reached(result) == [1, 1, 0]
    assert p50s(result) == [5.0, None]  # the first attempt that reached b


# --- exclusions ---------------------------------------------------------------------------


def test_an_excluded_event_inside_an_attempt_removes_it(store: DuckDBStore) -> None:
    result = funnel(
        store,
        [
            [("a", 0), ("z", 5), ("b", 10), ("c", 20)],  # removed
            [("a", 0), ("b", 10), ("z", 30)],  # never finished, z inside its window: removed
            [("a", 0), ("b", 10), ("c", 20), ("z", 30)],  # z after it finished: kept
            [("a", 0), ("b", 10), ("c", 20)],
        ],
        exclusions=["z"],
    )
    assert reached(result) == [2, 2, 2]


def test_an_exclusion_removes_only_the_attempt_it_falls_in(store: DuckDBStore) -> None:
    events: list[Event] = [("a", 0), ("z", 1), ("a", 120), ("b", 130), ("c", 140)]
    result = one(store, events, exclusions=["z"], window_s=60)
    assert reached(result) == [1, 1, 1]
    assert p50s(result) == [10.0, 10.0]


def test_an_exclusion_after_the_window_does_not_count(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("b", 10), ("z", 61)], exclusions=["z"], window_s=60)
    assert reached(result) == [1, 1, 0]


def test_an_exclusion_on_the_window_edge_counts(store: DuckDBStore) -> None:
    result = one(store, [("a", 0), ("b", 10), ("z", 60)], exclusions=["z"], window_s=60)
    assert reached(result) == [0, 0, 0]


# --- optional steps -----------------------------------------------------------------------


def test_an_optional_step_may_be_skipped(store: DuckDBStore) -> None:
    steps = (StepSpec("a", "a"), StepSpec("b", "b", optional=True), StepSpec("c", "c"))
    result = funnel(
        store,
        [
            [("a", 0), ("b", 10), ("c", 30)],
            [("a", 0), ("c", 40)],  # skipped b: c is timed from a
            [("a", 0)],
        ],
        steps=steps,
    )
    assert reached(result) == [3, 1, 2]
    total = result.total()
    assert total.steps[1].time_from_previous.p50 == 10_000
    assert total.steps[2].time_from_previous.p50 == 30_000  # median of 20 s and 40 s
    assert total.steps[1].drop_off is None  # skipping an optional step is not dropping off
    assert total.steps[2].drop_off == 1  # from a, the last required step
    assert total.conversion.value == pytest.approx(2 / 3)


def test_optional_steps_work_in_strict_mode(store: DuckDBStore) -> None:
    steps = (StepSpec("a", "a"), StepSpec("b", "b", optional=True), StepSpec("c", "c"))
    result = funnel(
        store,
        [[("a", 0), ("c", 5)], [("a", 0), ("b", 1), ("c", 5)], [("a", 0), ("x", 1), ("c", 5)]],
        steps=steps,
        order="strict",
    )
    assert reached(result) == [3, 1, 2]


# --- SQL against the plain-Python state machine ------------------------------------------

event_lists = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "x"]), st.integers(0, 12)), max_size=9
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(event_lists, min_size=1, max_size=6),
    window_s=st.sampled_from([0, 2, 5, 60]),
    optional_b=st.booleans(),
)
def test_sql_equals_the_python_state_machine(
    sessions: list[list[tuple[str, int]]], window_s: int, optional_b: bool
) -> None:
    steps = (StepSpec("a", "a"), StepSpec("b", "b", optional=optional_b), StepSpec("c", "c"))
    with DuckDBStore(":memory:", threads=1) as store:
        result = funnel(store, sessions, steps=steps, window_s=window_s)
    events = [row(f"s_{i:020d}", name, ts) for i, evs in enumerate(sessions) for name, ts in evs]
    expected = py_funnel(events, steps, window_s * 1000)
    total = result.total()
    assert [s.sessions for s in total.steps] == expected.reached
    for i in (1, 2):
        median = expected.p(i, 0.5) if expected.gaps[i] else None
        assert total.steps[i].time_from_previous.p50 == median


# --- what sessions that stopped did last -----------------------------------------------------


def test_last_actions_before_dropping_off(store: DuckDBStore) -> None:
    result = funnel(
        store,
        [
            [("a", 0), ("b", 10), ("back", 15, "navigation")],
            [("a", 0), ("b", 10), ("x", 12), ("cancel", 20, "navigation")],  # the last one
            [("a", 0), ("e", 5, "error")],
            [("a", 0), ("b", 10)],  # nothing after: idle
            [("a", 0), ("b", 10), ("close", 61, "navigation")],  # after the window: idle
            [("a", 0), ("b", 10), ("lt", 12, "vital")],  # a vital is not an action: idle
            [("a", 0), ("b", 10), ("c", 20), ("close", 30, "navigation")],  # converted
            [("a", 0), ("send", 3, "form_submit")],  # a failed submit
        ],
        window_s=60,
    )
    stops = {s.step: {a.action: a.sessions for a in s.actions} for s in result.last_actions}
    assert stops == {
        "a": {"error": 1, "form_failed": 1},
        "b": {"idle": 3, "back": 1, "cancel": 1},
    }
    b = next(s for s in result.last_actions if s.step == "b")
    assert b.stopped == result.total().steps[1].sessions - result.total().steps[2].sessions
    assert [a.action for a in b.actions] == ["idle", "back", "cancel"]  # most frequent first
    assert b.actions[0].share == pytest.approx(3 / 5)


def test_last_actions_are_computed_only_on_request(store: DuckDBStore) -> None:
    store.write_rows([row("s_00000000000000000001", "a", 0)])
    steps = tuple(StepSpec(n, n) for n in "abc")
    scope = Scope(TimeRange(DAY, DAY + dt.timedelta(days=1)))
    query = FunnelQuery(scope, ScenarioSpec("hand", steps, 60_000))
    assert run_funnel(store, query, min_group_size=1).data.last_actions == []


def test_last_actions_are_suppressed_like_any_small_cell(store: DuckDBStore) -> None:
    stopped = [[("a", 0), ("b", 10)]] * 6 + [[("a", 0), ("b", 10), ("back", 12, "navigation")]]
    rows = [row(f"s_{i:020d}", *event) for i, events in enumerate(stopped) for event in events]
    store.write_rows(rows)
    steps = tuple(StepSpec(n, n) for n in "abc")
    query = FunnelQuery(
        Scope(TimeRange(DAY, DAY + dt.timedelta(days=1))),
        ScenarioSpec("hand", steps, 60_000),
        last_actions=True,
    )
    (b,) = run_funnel(store, query, min_group_size=5).data.last_actions
    shown = {a.action: a.sessions for a in b.actions if not a.hidden}
    assert shown == {}  # back (1) is small, and idle (6) would give it away: both hidden
    assert all(a.hidden for a in b.actions)
