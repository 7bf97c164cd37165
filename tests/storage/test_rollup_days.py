"""The store's side of rollups: which days a load dirties, replacing a day's cells in one
transaction, sealing days before retention deletes their rows, deleting old cells."""

from __future__ import annotations

import datetime as dt

import pytest
from tests.storage.conftest import BASE_MS, DAY_MS, make_event

from stumble.storage import DuckDBStore, EventStore, MemoryStore, RollupStatement

DAY = dt.date(2024, 6, 1)  # BASE_MS's UTC day; make_event's ts is 120 ms before midnight
CELL = RollupStatement(
    "SELECT ? AS environment, CAST(? AS DATE) AS day, 'volume' AS family, '' AS dim, "
    "NULL AS dim_value, 'action' AS k1, NULL AS k2, NULL AS k3, NULL AS k4, 'n' AS measure, "
    "count(DISTINCT session_id) AS sessions, count(*) AS events, NULL AS weighted, "
    "NULL AS value_sum, "
    "NULL AS sketch_keys, NULL AS sketch_counts FROM events "
    "WHERE environment = ? AND CAST(ts AS DATE) = ?",
)


def _cell(environment: str, day: dt.date) -> RollupStatement:
    return RollupStatement(CELL.text, (environment, day, environment, day))


@pytest.fixture(params=["duckdb", "memory"])
def any_store(request: pytest.FixtureRequest) -> EventStore:
    return DuckDBStore(":memory:") if request.param == "duckdb" else MemoryStore()


def test_a_load_dirties_the_utc_days_and_environments_it_touched(any_store: EventStore) -> None:
    any_store.write_rows(
        [
            make_event(ts=BASE_MS + 10),
            make_event(ts=BASE_MS + DAY_MS + 10, environment="staging"),
            make_event(ts=BASE_MS - 10),
        ]
    )
    assert any_store.dirty_rollup_days() == [
        ("production", DAY - dt.timedelta(days=1)),
        ("production", DAY),
        ("staging", DAY + dt.timedelta(days=1)),
    ]


def test_replacing_a_day_writes_its_cells_and_clears_it() -> None:
    store = DuckDBStore(":memory:")
    store.write_rows([make_event(ts=BASE_MS + 10, session_id=f"s_{i}") for i in range(3)])
    assert store.replace_rollup_day("production", DAY, [_cell("production", DAY)], "plan1") == 1
    assert store.dirty_rollup_days() == []
    (state,) = store.rollup_days()
    assert (state.day, state.cells, state.plan_fingerprint, state.dirty) == (DAY, 1, "plan1", False)
    rows = store.query("SELECT sessions, events FROM rollups").rows
    assert rows == [(3, 3)]
    # Rebuilt: replaced, never added to.
    store.write_rows([make_event(ts=BASE_MS + 20, session_id="s_9")])
    assert store.dirty_rollup_days() == [("production", DAY)]
    store.replace_rollup_day("production", DAY, [_cell("production", DAY)], "plan2")
    assert store.query("SELECT sessions, events FROM rollups").rows == [(4, 4)]


def test_a_failing_statement_leaves_the_day_as_it_was() -> None:
    store = DuckDBStore(":memory:")
    store.write_rows([make_event(ts=BASE_MS + 10)])
    store.replace_rollup_day("production", DAY, [_cell("production", DAY)], "plan1")
    store.write_rows([make_event(ts=BASE_MS + 20)])
    broken = RollupStatement("SELECT 1 / 0 AS nope")
    with pytest.raises(Exception):  # noqa: B017, PT011 - any storage failure
        store.replace_rollup_day("production", DAY, [_cell("production", DAY), broken], "x")
    assert store.query("SELECT events FROM rollups").rows == [(1,)]
    assert store.dirty_rollup_days() == [("production", DAY)]


def test_a_sealed_day_is_never_rebuilt_from_what_retention_left() -> None:
    store = DuckDBStore(":memory:")
    store.write_rows(
        [
            make_event(ts=BASE_MS + 10, received_at=BASE_MS + 10, session_id=f"s_{i}")
            for i in range(3)
        ]
    )
    store.replace_rollup_day("production", DAY, [_cell("production", DAY)], "plan1")
    assert store.seal_rollup_days("production", BASE_MS + DAY_MS) == [DAY]
    store.delete_expired("production", BASE_MS + DAY_MS)
    store.write_rows([make_event(ts=BASE_MS + 30, received_at=BASE_MS + 2 * DAY_MS)])
    assert store.replace_rollup_day("production", DAY, [_cell("production", DAY)], "plan1") is None
    assert store.query("SELECT sessions FROM rollups").rows == [(3,)]
    assert store.dirty_rollup_days() == []
    (state,) = store.rollup_days()
    assert state.sealed


def test_old_cells_are_deleted_with_their_day_records() -> None:
    store = DuckDBStore(":memory:")
    store.write_rows([make_event(ts=BASE_MS + 10), make_event(ts=BASE_MS + DAY_MS + 10)])
    for day in (DAY, DAY + dt.timedelta(days=1)):
        store.replace_rollup_day("production", day, [_cell("production", day)], "p")
    assert store.delete_rollups_before(DAY + dt.timedelta(days=1)) == 1
    assert [state.day for state in store.rollup_days()] == [DAY + dt.timedelta(days=1)]
    assert store.delete_rollups_before(DAY + dt.timedelta(days=1)) == 0


def test_a_rollup_statement_must_be_a_select() -> None:
    store = DuckDBStore(":memory:")
    with pytest.raises(Exception, match="SELECT"):
        store.replace_rollup_day("production", DAY, [RollupStatement("DELETE FROM events")], "p")


# --- monthly cells ------------------------------------------------------------------------

MONTH = DAY.replace(day=1)
NEXT_MONTH = dt.date(2024, 7, 1)
SKETCH_CELL = (
    "SELECT 'production' AS environment, CAST(? AS DATE) AS day, 'timing' AS family, "
    "'' AS dim, NULL AS dim_value, 'save' AS k1, NULL AS k2, NULL AS k3, NULL AS k4, "
    "'duration' AS measure, ? AS sessions, ? AS events, ? AS weighted, NULL AS value_sum, "
    "CAST(? AS INTEGER[]) AS sketch_keys, CAST(? AS BIGINT[]) AS sketch_counts"
)


def _sketch_day(store: DuckDBStore, day: dt.date, sessions: int, keys: list[int]) -> None:
    statement = RollupStatement(
        SKETCH_CELL, (day, sessions, sessions, float(sessions), keys, [1] * len(keys))
    )
    store.replace_rollup_day("production", day, [statement], "plan1")


def _month_cells(store: DuckDBStore) -> list[tuple[object, ...]]:
    return store.query(
        "SELECT day, sessions, events, weighted, value_sum, sketch_keys, sketch_counts "
        "FROM rollup_months ORDER BY day"
    ).rows


def test_a_past_month_adds_up_its_days_cells() -> None:
    store = DuckDBStore(":memory:")
    _sketch_day(store, DAY, 2, [3, 5])
    _sketch_day(store, DAY + dt.timedelta(days=1), 3, [5, 9])
    assert store.rollup_months_due(NEXT_MONTH) == [("production", MONTH)]
    assert store.rollup_months_due(MONTH) == []  # the current month waits until it is over
    assert store.replace_rollup_month("production", MONTH) == 1
    assert _month_cells(store) == [(MONTH, 5, 5, 5.0, None, [3, 5, 9], [1, 2, 1])]
    assert store.rollup_months_due(NEXT_MONTH) == []


def test_a_month_is_due_again_when_a_day_of_it_changes_and_not_while_one_is_dirty() -> None:
    store = DuckDBStore(":memory:")
    _sketch_day(store, DAY, 2, [3])
    store.replace_rollup_month("production", MONTH)
    store.write_rows([make_event(ts=BASE_MS + 10)])  # a late event for DAY
    assert store.dirty_rollup_days() == [("production", DAY)]
    assert store.rollup_months_due(NEXT_MONTH) == []  # its day is rebuilt first
    _sketch_day(store, DAY, 4, [3])
    assert store.rollup_months_due(NEXT_MONTH) == [("production", MONTH)]
    store.replace_rollup_month("production", MONTH)
    assert _month_cells(store) == [(MONTH, 4, 4, 4.0, None, [3], [1])]


def test_deleting_old_rollups_drops_the_months_they_began_in() -> None:
    store = DuckDBStore(":memory:")
    _sketch_day(store, DAY, 2, [3])
    _sketch_day(store, DAY + dt.timedelta(days=20), 1, [4])
    store.replace_rollup_month("production", MONTH)
    store.delete_rollups_before(DAY + dt.timedelta(days=10))
    assert _month_cells(store) == []
    # What is left of the month is added up again.
    assert store.rollup_months_due(NEXT_MONTH) == [("production", MONTH)]
    store.replace_rollup_month("production", MONTH)
    assert _month_cells(store) == [(MONTH, 1, 1, 1.0, None, [4], [1])]


def test_a_memory_store_has_no_month_to_build() -> None:
    assert MemoryStore().rollup_months_due(NEXT_MONTH) == []


def test_clustering_puts_the_daily_cells_in_family_order_and_keeps_every_one() -> None:
    store = DuckDBStore(":memory:")
    for offset in range(3):
        day = DAY + dt.timedelta(days=offset)
        store.replace_rollup_day(
            "production", day, [_cell("production", day), _sketch_statement(day)], "plan1"
        )
    before = sorted(store.query("SELECT * FROM rollups").rows, key=repr)
    assert store.rollup_layout().clustered_at_ms is None
    assert store.rollup_layout().cells_since == store.rollup_layout().cells == 6
    store.cluster_rollups()
    layout = store.rollup_layout()
    assert layout.clustered_at_ms is not None
    assert (layout.cells_since, layout.cells) == (0, 6)
    ordered = store.query("SELECT family, day FROM rollups").rows
    assert ordered == sorted(ordered)
    assert sorted(store.query("SELECT * FROM rollups").rows, key=repr) == before
    # The table is the same table: days still replace their cells in it.
    store.replace_rollup_day("production", DAY, [_cell("production", DAY)], "plan2")
    assert store.query("SELECT count(*) FROM rollups WHERE day = ?", [DAY]).rows == [(1,)]


def _sketch_statement(day: dt.date) -> RollupStatement:
    return RollupStatement(SKETCH_CELL, (day, 1, 1, 1.0, [2], [1]))
