"""The rollup maintainer: which days it rebuilds and when, past months added up, and the daily
cells put in order once a day. A real DuckDB store; both clocks are the test's."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.storage.conftest import BASE_MS, DAY_MS, make_event

from stumble.plan.load import default_plan_path, load_plan
from stumble.rollups import CATCHING_UP_INTERVAL_S, RollupMaintainer
from stumble.storage import DuckDBStore

JUNE_1 = dt.date(2024, 6, 1)  # BASE_MS's day; make_event's ts is 120 ms before it
TODAY = dt.date(2024, 8, 10)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> DuckDBStore:
    return DuckDBStore(":memory:")


def _maintainer(
    store: DuckDBStore, clock: Clock, today: dt.date = TODAY, *, days_later: int = 0
) -> RollupMaintainer:
    """``today`` for the months; ``days_later``: a wall clock that many days after the real
    one (the store records when days are built and ordered by the real clock)."""
    plan = load_plan(default_plan_path())
    noon = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    later = dt.timedelta(days=days_later)
    wall = (lambda: dt.datetime.now(dt.UTC) + later) if days_later else (lambda: noon)
    return RollupMaintainer(store, plan, interval_s=60, clock=clock, now=wall)


def _load(store: DuckDBStore, *days_after_june_1: int) -> None:
    store.write_rows(
        [make_event(ts=BASE_MS + offset * DAY_MS + 1_000) for offset in days_after_june_1]
    )


def test_a_refresh_builds_the_dirty_days_then_their_past_months(store: DuckDBStore) -> None:
    _load(store, 0, 1, 35)  # two days of June, one of July
    report = _maintainer(store, Clock()).refresh()
    assert report.days_built == 3
    assert report.months_built == 2
    assert store.rollup_months_due(TODAY.replace(day=1)) == []
    months = store.query("SELECT DISTINCT day FROM rollup_months ORDER BY day").rows
    assert months == [(JUNE_1,), (dt.date(2024, 7, 1),)]


def test_the_current_month_is_never_added_up(store: DuckDBStore) -> None:
    _load(store, 0)
    report = _maintainer(store, Clock(), today=dt.date(2024, 6, 20)).refresh()
    assert (report.days_built, report.months_built) == (1, 0)


def test_months_are_spread_over_refreshes(store: DuckDBStore) -> None:
    _load(store, 0, 31, 62)  # June, July, August (before TODAY's month: September's clock)
    maintainer = _maintainer(store, Clock(), today=dt.date(2024, 9, 3))
    assert maintainer.refresh(max_months=2).months_built == 2
    assert maintainer.refresh(max_months=2).months_built == 1
    assert maintainer.refresh(max_months=2).months_built == 0


def test_refresh_if_due_waits_its_interval_and_a_tenth_of_what_it_spent(
    store: DuckDBStore,
) -> None:
    clock = Clock()
    maintainer = _maintainer(store, clock)
    _load(store, 0)
    first = maintainer.refresh_if_due()
    assert first is not None and first.days_built == 1
    _load(store, 1)
    clock.now += 30
    assert maintainer.refresh_if_due() is None  # inside the interval
    clock.now += max(31.0, first.seconds * 10)
    again = maintainer.refresh_if_due()
    assert again is not None and again.days_built == 1


def test_while_catching_up_a_refresh_waits_its_longer_interval(store: DuckDBStore) -> None:
    clock = Clock()
    maintainer = _maintainer(store, clock)
    _load(store, 0)
    assert maintainer.refresh_if_due(catching_up=True) is not None  # the first one runs
    _load(store, 1)
    clock.now += CATCHING_UP_INTERVAL_S - 1
    assert maintainer.refresh_if_due(catching_up=True) is None
    again = maintainer.refresh_if_due(catching_up=False)  # the spool drained
    assert again is not None and again.days_built == 1


def test_the_daily_cells_are_put_in_order_once_a_day(store: DuckDBStore) -> None:
    _load(store, *range(8))
    clock = Clock()
    report = _maintainer(store, clock).refresh()
    assert report.clustered
    assert store.rollup_layout().cells_since == 0
    _load(store, 1)  # a day of eight rebuilt: an eighth out of order
    assert not _maintainer(store, clock).refresh().clustered
    assert store.rollup_layout().cells_since > 0
    _load(store, 2)
    tomorrow = _maintainer(store, clock, days_later=1).refresh()
    assert tomorrow.clustered
    families = store.query("SELECT environment, family, dim, day FROM rollups").rows
    assert families == sorted(families)


def test_the_daily_cells_are_put_in_order_when_many_were_rebuilt(store: DuckDBStore) -> None:
    _load(store, *range(4))
    clock = Clock()
    _maintainer(store, clock).refresh()
    _load(store, 0, 1)  # half of them rebuilt the same day
    assert _maintainer(store, clock).refresh().clustered


def test_days_built_under_an_older_plan_are_rebuilt_a_few_at_a_time_newest_first(
    store: DuckDBStore,
) -> None:
    _load(store, *range(6))
    clock = Clock()
    _maintainer(store, clock).refresh()
    # As after an upgrade: every day was built under another definition.
    for state in store.rollup_days():
        store.replace_rollup_day(state.environment, state.day, [], "an-older-plan")
    maintainer = _maintainer(store, clock)
    first = maintainer.refresh(max_outdated=4)
    assert sorted(day for _, day in first.built) == [
        JUNE_1 + dt.timedelta(days=offset) for offset in (2, 3, 4, 5)
    ]
    second = maintainer.refresh(max_outdated=4)
    assert sorted(day for _, day in second.built) == [JUNE_1, JUNE_1 + dt.timedelta(days=1)]
    assert maintainer.refresh(max_outdated=4).days_built == 0


def test_an_idle_refresh_does_not_look_for_months(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load(store, 0)
    maintainer = _maintainer(store, Clock())
    maintainer.refresh()
    looks: list[dt.date] = []
    original = store.rollup_months_due

    def counted(current_month: dt.date) -> list[tuple[str, dt.date]]:
        looks.append(current_month)
        return original(current_month)

    monkeypatch.setattr(store, "rollup_months_due", counted)
    maintainer.refresh()
    assert looks == []  # nothing was rebuilt: no month can have changed
    _load(store, 1)
    maintainer.refresh()
    assert len(looks) == 1
