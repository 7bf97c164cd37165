"""Monthly rollups: a whole month read from its monthly cells gives exactly the numbers its
daily cells give (a month's cells are its days' cells summed, sketches merged key by key).

The ``rolled`` simulation runs 2 to 15 March 2026, so a range over all of March reads the
month from ``rollup_months`` (the maintainer built it: March is over), the edges from days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from tests.analytics.conftest import AFTER, BEFORE, Dataset

from stumble.analytics import rollup_read
from stumble.analytics.compare import run_compare
from stumble.analytics.failures import run_failures
from stumble.analytics.field_errors import run_field_errors
from stumble.analytics.funnels import run_funnel
from stumble.analytics.queries import (
    Arm,
    CompareQuery,
    Dimension,
    FailureQuery,
    FieldErrorQuery,
    Filters,
    FunnelQuery,
    Scope,
    TimeRange,
    TimingQuery,
    UsageQuery,
)
from stumble.analytics.results import Report
from stumble.analytics.rollup_read import RollupSlice, cell_rows, whole_months
from stumble.analytics.timings import run_timings
from stumble.analytics.usage import run_usage
from stumble.rollups import RollupMaintainer

MARCH = dt.date(2026, 3, 1)
# February's end to April's start: March whole, a few days on each side.
AROUND_MARCH = TimeRange.days(dt.date(2026, 2, 25), dt.date(2026, 4, 3))

Runner = Callable[[Dataset, Scope], Report[Any]]
REPORTS: dict[str, Runner] = {
    "funnel": lambda d, s: run_funnel(
        d.store, FunnelQuery.from_plan(d.plan, s, "create_service_request")
    ),
    "field errors": lambda d, s: run_field_errors(d.store, FieldErrorQuery.from_plan(d.plan, s)),
    "timings": lambda d, s: run_timings(d.store, TimingQuery(s)),
    "failures": lambda d, s: run_failures(d.store, FailureQuery.from_plan(d.plan, s)),
    "usage": lambda d, s: run_usage(d.store, UsageQuery.from_plan(d.plan, s)),
    "compare": lambda d, s: run_compare(
        d.store,
        CompareQuery.from_plan(
            d.plan,
            s,
            "create_service_request",
            Arm(BEFORE, ui_version=(BEFORE,)),
            Arm(AFTER, ui_version=(AFTER,)),
        ),
    ),
}


@pytest.mark.parametrize(
    ("first", "last", "months"),
    [
        (dt.date(2026, 3, 1), dt.date(2026, 3, 31), [MARCH]),
        (dt.date(2026, 3, 2), dt.date(2026, 3, 31), []),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 30), []),
        (dt.date(2025, 12, 15), dt.date(2026, 3, 1), [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]),
        (dt.date(2024, 2, 1), dt.date(2024, 2, 29), [dt.date(2024, 2, 1)]),
    ],
)
def test_whole_months_are_the_months_entirely_in_the_range(
    first: dt.date, last: dt.date, months: list[dt.date]
) -> None:
    assert whole_months(first, last) == months


def test_march_is_read_from_its_monthly_cells(rolled: Dataset) -> None:
    chosen = RollupSlice(AROUND_MARCH.start.date(), dt.date(2026, 4, 3), "", (), "none")
    statement = cell_rows(rolled.store, "prod", chosen)
    assert "rollup_months" in statement.text
    assert MARCH in statement.params
    # A breakdown by day cannot come from a month.
    by_day = RollupSlice(chosen.first_day, chosen.last_day, "", (), "day")
    assert "rollup_months" not in cell_rows(rolled.store, "prod", by_day).text


@pytest.fixture
def days_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make every reader use daily cells only."""

    def switch() -> None:
        monkeypatch.setattr(rollup_read, "_months_built", lambda *_: ())

    return switch


@pytest.mark.parametrize("report", sorted(REPORTS))
@pytest.mark.parametrize("by", [None, "role", "ui_version"])
def test_a_month_from_monthly_cells_equals_its_days(
    rolled: Dataset, days_only: Callable[[], None], report: str, by: Dimension | None
) -> None:
    scope = Scope(AROUND_MARCH, Filters(), by)
    from_months = REPORTS[report](rolled, scope)
    days_only()
    from_days = REPORTS[report](rolled, scope)
    assert from_months.meta.source == "rollups", from_months.meta.notes
    assert from_months.data == from_days.data
    assert from_months.meta.hidden == from_days.meta.hidden


def test_a_month_whose_day_was_rebuilt_is_not_read_until_added_up_again(
    rolled: Dataset,
) -> None:
    chosen = RollupSlice(MARCH, dt.date(2026, 3, 31), "", (), "none")
    assert MARCH in cell_rows(rolled.store, "prod", chosen).params
    maintainer = RollupMaintainer(rolled.store, rolled.plan)
    maintainer.rebuild("prod")  # every day again, then the months
    assert MARCH in cell_rows(rolled.store, "prod", chosen).params
    # Only the days: the month no longer matches them.
    maintainer._build([("prod", dt.date(2026, 3, 4))])
    assert "rollup_months" not in cell_rows(rolled.store, "prod", chosen).text
    assert rolled.store.rollup_months_due(dt.date(2026, 12, 1)) == [("prod", MARCH)]
    # A day rebuilt outside a refresh: the next process's first refresh adds the month up.
    assert RollupMaintainer(rolled.store, rolled.plan).refresh().months_built == 1
    assert MARCH in cell_rows(rolled.store, "prod", chosen).params
