"""Shared fixtures: the example plan and one 20k-session run reused by the slower checks."""

from __future__ import annotations

import datetime as dt

import pytest

from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.simulate import GroundTruth, SimulatedSession, Simulation, SimulationParams

START = dt.date(2026, 3, 2)  # a Monday: days 0-6 and 7-13 hold the same weekdays


@pytest.fixture(scope="session")
def plan() -> TrackingPlan:
    return load_plan(default_plan_path())


@pytest.fixture(scope="session")
def big_run(plan: TrackingPlan) -> tuple[list[SimulatedSession], GroundTruth]:
    """20k sessions over two weeks, ui_version 2.0.0 from day 7: the seed's before/after."""
    return Simulation(SimulationParams(sessions=20_000, start_date=START, seed=42), plan).run()
