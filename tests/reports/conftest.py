"""Datasets for the report tests: the seed's broken form alone, and a release that regressed."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from tests.analytics.conftest import START, Dataset, ingest_simulation, write_key

from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.simulate import SimulationParams
from stumble.simulate.params import LogNormal, RequestFormParams
from stumble.storage import DuckDBStore


@pytest.fixture(scope="session")
def plan() -> TrackingPlan:
    return load_plan(default_plan_path())


@pytest.fixture(scope="session")
def broken_form(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Dataset]:
    """Two weeks of 1.4.2 only: the IIN/BIN field is broken the whole time."""
    work = tmp_path_factory.mktemp("broken-form")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    params = SimulationParams(
        sessions=5_000, days=14, start_date=START, seed=21, ui_version_change_day=None
    )
    truth = ingest_simulation(store, work, params, plan, write_key())
    yield Dataset(store, truth, plan)
    store.close()


@pytest.fixture(scope="session")
def fixed_form(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Dataset]:
    """Two weeks of 2.0.0 only: the fixed form."""
    work = tmp_path_factory.mktemp("fixed-form")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    params = SimulationParams(
        sessions=5_000, days=14, start_date=START, seed=23, ui_version_change_day=0
    )
    truth = ingest_simulation(store, work, params, plan, write_key())
    yield Dataset(store, truth, plan)
    store.close()


@pytest.fixture(scope="session")
def slow_release(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Dataset]:
    """Release 2.0.0 fixes nothing and makes the last step of the form three times slower."""
    work = tmp_path_factory.mktemp("slow-release")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    defaults = SimulationParams()
    before = defaults.request_form.versions["1.4.2"]
    slower = msgspec.structs.replace(
        before, fill={**before.fill, 3: LogNormal(median=36_000, p95=120_000)}
    )
    params = SimulationParams(
        sessions=5_000,
        days=14,
        start_date=START,
        seed=22,
        ui_version_change_day=7,
        request_form=RequestFormParams(versions={"1.4.2": before, "2.0.0": slower}),
    )
    truth = ingest_simulation(store, work, params, plan, write_key())
    yield Dataset(store, truth, plan)
    store.close()
