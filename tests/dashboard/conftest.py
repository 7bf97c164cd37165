"""A small simulated dataset stored through the real offline path: the seed's request form,
UI 1.4.2 for a week and 2.0.0 the next, plus a sampled ``staging`` environment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from tests.analytics.conftest import ingest_simulation, write_key

from stumble.dashboard.cache import ResultCache
from stumble.dashboard.context import PageContext
from stumble.dashboard.filters import ViewFilters
from stumble.dashboard.inventory import take_inventory
from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.simulate import SimulationParams
from stumble.storage import DuckDBStore

START = dt.date(2026, 3, 2)  # a Monday
DAYS = 14
END = START + dt.timedelta(days=DAYS - 1)


@pytest.fixture(scope="session")
def plan() -> TrackingPlan:
    return load_plan(default_plan_path())


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[DuckDBStore]:
    work = tmp_path_factory.mktemp("dashboard-data")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    params = SimulationParams(
        sessions=3000, days=DAYS, start_date=START, seed=3, ui_version_change_day=7
    )
    ingest_simulation(store, work, params, plan, write_key())
    staging = SimulationParams(sessions=200, days=DAYS, start_date=START, seed=4)
    ingest_simulation(store, work, staging, plan, write_key("staging"))
    yield store
    store.close()


def filters_for(start: dt.date = START, end: dt.date = END, **given: str) -> ViewFilters:
    query = {"range": "custom", "from": start.isoformat(), "to": end.isoformat(), **given}
    return ViewFilters.parse(query, END)


def context(
    store: DuckDBStore,
    plan: TrackingPlan,
    filters: ViewFilters | None = None,
    cache: ResultCache | None = None,
    **query: str,
) -> PageContext:
    filters = filters or filters_for()
    inventory = take_inventory(store, filters.start, filters.end, filters.env)
    return PageContext(
        store=store,
        plan=plan,
        filters=filters.with_environment(filters.env or inventory.default_environment()),
        inventory=inventory,
        query=query,
        min_group_size=5,
        cache=cache or ResultCache(),
    )
