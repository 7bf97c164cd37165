"""Reading rollup cells: shared reads inside ``sharing_cells`` give what separate reads give,
in fewer statements; the hashed cell id never merges two cells."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from tests.analytics.conftest import DAYS, START, Dataset
from tests.storage.conftest import make_event

from stumble.analytics.queries import all_scenarios
from stumble.analytics.rollup_cells import Family, definition_hash
from stumble.analytics.rollup_read import (
    Cells,
    RollupSlice,
    UntilNextWrite,
    merged_cells,
    sharing_cells,
)
from stumble.storage import DuckDBStore
from stumble.storage.base import EventStore, QueryResult

DAYS_READ = RollupSlice(START, START + dt.timedelta(days=DAYS - 1), "", (), "none")
BY_ROLE = RollupSlice(DAYS_READ.first_day, DAYS_READ.last_day, "role", (), "dim")


class Counting:
    """Counts the statements a store runs (wraps its ``query``)."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements = 0
        original = store.query

        def query(sql: str, params: Sequence[object] = ()) -> QueryResult:
            self.statements += 1
            return original(sql, params)

        monkeypatch.setattr(store, "query", query)


def _as_numbers(cells: Cells) -> dict[object, tuple[object, ...]]:
    return {k: (c.sessions, c.weighted, c.value_sum, c.sketch) for k, c in cells.items()}


@pytest.mark.parametrize("chosen", [DAYS_READ, BY_ROLE])
def test_shared_reads_equal_separate_ones_in_two_statements(
    rolled: Dataset, monkeypatch: pytest.MonkeyPatch, chosen: RollupSlice
) -> None:
    scenarios = all_scenarios(rolled.plan)
    keys = [(s.name, definition_hash(s)) for s in scenarios]
    apart = [merged_cells(rolled.store, "prod", chosen, Family.FUNNEL, k1=n, k3=h) for n, h in keys]
    counting = Counting(rolled.store, monkeypatch)
    with sharing_cells():
        shared = [
            merged_cells(rolled.store, "prod", chosen, Family.FUNNEL, k1=n, k3=h) for n, h in keys
        ]
        with sharing_cells():  # an inner block shares the outer one's reads
            again = merged_cells(rolled.store, "prod", chosen, Family.FUNNEL, k1=keys[0][0])
    assert [_as_numbers(c) for c in shared] == [_as_numbers(c) for c in apart]
    assert _as_numbers(again) == _as_numbers(apart[0])  # without k3: the one definition stored
    assert all(cells for cells in apart)
    assert counting.statements <= 3  # counts, buckets (and at most one look for months)


def test_totals_of_a_breakdown_are_the_sum_of_its_groups(rolled: Dataset) -> None:
    cells = merged_cells(rolled.store, "prod", BY_ROLE, Family.TIMING)
    total = merged_cells(rolled.store, "prod", DAYS_READ, Family.TIMING)
    totals = {k: c for k, c in cells.items() if k.is_total}
    assert _as_numbers(totals) == _as_numbers(total)
    assert any(not k.is_total for k in cells)


def test_an_answer_is_remembered_until_the_store_next_writes() -> None:
    store = DuckDBStore(":memory:")
    remembered: UntilNextWrite[int] = UntilNextWrite()
    computed: list[int] = []

    def compute() -> int:
        computed.append(store.write_count)
        return len(computed)

    assert remembered.get(store, "q", compute) == 1
    assert remembered.get(store, "q", compute) == 1
    assert remembered.get(store, "other", compute) == 2
    store.write_rows([make_event()])
    assert remembered.get(store, "q", compute) == 3
    assert computed == [0, 0, 1]
