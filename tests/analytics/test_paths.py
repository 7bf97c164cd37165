"""Paths: next and previous screens, top paths between two screens, repeats folded, small hidden."""

from __future__ import annotations

import pytest
from tests.analytics.handmade import SCOPE, view

from stumble.analytics import paths
from stumble.analytics.paths import LEFT, MAX_HOPS, PathQuery, run_paths
from stumble.events import StoredEvent
from stumble.plan.model import TrackingPlan
from stumble.rollups import RollupMaintainer
from stumble.storage import DuckDBStore


def journeys(*paths: tuple[int, list[str]]) -> list[StoredEvent]:
    """``count`` sessions walking each list of screens, ten seconds a screen."""
    rows, session = [], 0
    for count, screens in paths:
        for _ in range(count):
            rows += [view(session, 10 * i, screen) for i, screen in enumerate(screens)]
            session += 1
    return rows


def run(rows: list[StoredEvent], query: PathQuery, k: int = 1):  # type: ignore[no-untyped-def]
    with DuckDBStore(":memory:") as store:
        store.write_rows(rows)
        return run_paths(store, query, min_group_size=k).data


def test_next_and_previous_screens() -> None:
    rows = journeys(
        (6, ["home", "list", "view"]),
        (3, ["home", "list", "list", "home"]),  # list twice at once: one list
        (2, ["search", "list"]),
    )
    result = run(rows, PathQuery(SCOPE, screen="list"))
    assert [(s.screen, s.sessions) for s in result.next] == [("view", 6), ("home", 3), (LEFT, 2)]
    assert [(s.screen, s.sessions) for s in result.previous] == [("home", 9), ("search", 2)]


def test_the_sdks_referrer_screen_is_the_previous_screen() -> None:
    rows = [view(s, 0, "list", referrer_screen="dashboard") for s in range(5)]
    result = run(rows, PathQuery(SCOPE, screen="list"))
    assert [(s.screen, s.sessions) for s in result.previous] == [("dashboard", 5)]


def test_top_paths_between_two_screens_for_a_sankey() -> None:
    rows = journeys(
        (5, ["home", "list", "view"]),
        (3, ["home", "search", "list", "view"]),
        (2, ["home", "view"]),
        (1, ["list", "view"]),  # never from home
    )
    result = run(rows, PathQuery(SCOPE, start="home", end="view"))
    assert [(p.screens, p.sessions) for p in result.paths] == [
        (["home", "list", "view"], 5),
        (["home", "search", "list", "view"], 3),
        (["home", "view"], 2),
    ]
    links = {(t.source, t.target): t.sessions for t in result.transitions}
    assert links[("0:home", "1:list")] == 5
    assert links[("1:list", "2:view")] == 5
    assert links[("0:home", "1:view")] == 2


def test_small_paths_are_hidden() -> None:
    rows = journeys((6, ["a", "b"]), (2, ["a", "c", "b"]))
    result = run(rows, PathQuery(SCOPE, start="a", end="b"), k=5)
    assert [(p.screens, p.hidden, p.sessions) for p in result.paths] == [
        (["a", "b"], False, 6),
        (["a", "c", "b"], True, None),
    ]


def test_without_screens_the_most_frequent_moves() -> None:
    rows = journeys((6, ["home", "list", "view"]), (3, ["home", "view"]))
    result = run(rows, PathQuery(SCOPE))
    assert [(p.screens, p.sessions) for p in result.paths] == [
        (["home", "list"], 6),
        (["list", "view"], 6),
        (["home", "view"], 3),
    ]


def test_a_path_ends_at_the_next_view_of_end_within_the_hop_limit() -> None:
    too_far = ["a"] + [f"x{i}" for i in range(MAX_HOPS)] + ["b"]
    rows = journeys((3, ["a", "b", "c", "b"]), (2, ["a", "c", "a", "b"]), (4, too_far))
    result = run(rows, PathQuery(SCOPE, start="a", end="b"))
    # a > b > c > b stops at the first b; the second a of a > c > a > b starts its own path.
    assert [(p.screens, p.sessions) for p in result.paths] == [
        (["a", "b"], 5),
        (["a", "c", "a", "b"], 2),
    ]


LOOPS = (
    (3, ["home", "list", "view", "list", "view", "home"]),
    (2, ["home", "list", "list", "view"]),
    (4, ["home", "search", "list", "search", "list", "view", "home", "view"]),
    (1, ["home", *[f"x{i}" for i in range(MAX_HOPS + 1)], "view"]),
)


@pytest.mark.parametrize(
    ("start", "end"),
    [("home", "view"), ("list", "list"), ("home", "home"), ("search", "view"), ("view", "home")],
)
def test_paths_between_two_screens_from_rollups_equal_raw_rows(
    plan: TrackingPlan, start: str, end: str
) -> None:
    with DuckDBStore(":memory:") as store:
        store.write_rows(journeys(*LOOPS))
        assert RollupMaintainer(store, plan).refresh().days_built == 1
        query = PathQuery(SCOPE, start=start, end=end, limit=50)
        rolled = run_paths(store, query, min_group_size=1)
        raw = run_paths(store, query, min_group_size=1, source="raw")
    assert (rolled.meta.source, raw.meta.source) == ("rollups", "raw")
    assert rolled.data == raw.data
    assert rolled.data.paths


def test_a_day_keeps_its_most_frequent_paths_and_says_what_a_count_may_lack(
    plan: TrackingPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "PATHS_KEPT_PER_PAIR", 2)
    rows = journeys(
        (6, ["a", "b"]),
        (4, ["a", "c", "b"]),
        (3, ["a", "d", "b"]),  # the third path of the day: not kept
        (2, ["a", "e", "b"]),
    )
    with DuckDBStore(":memory:") as store:
        store.write_rows(rows)
        RollupMaintainer(store, plan).refresh()
        query = PathQuery(SCOPE, start="a", end="b")
        rolled = run_paths(store, query, min_group_size=1)
        raw = run_paths(store, query, min_group_size=1, source="raw")
    assert rolled.meta.source == "rollups"
    assert [(p.screens, p.sessions) for p in rolled.data.paths] == [
        (["a", "b"], 6),
        (["a", "c", "b"], 4),
    ]
    assert len(raw.data.paths) == 4
    assert any("may lack up to 3 sessions" in note for note in rolled.meta.notes)
    assert not any("may lack" in note for note in raw.meta.notes)
