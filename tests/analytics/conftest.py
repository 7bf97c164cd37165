"""Simulated traffic stored through the real path, with its ground truth, shared by the tests.

Events go through ``collector.offline.OfflineIngest`` (privacy guard, time rules, enrichment:
pseudonymous session ids, stored event ids, clock-skew correction) into an NDJSON segment that
a real on-disk ``DuckDBStore`` loads. Each session is received 40 ms after the simulation
sent it, so stored ``ts`` equals the simulated time plus that constant skew, which preserves
every duration the ground truth measured.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stumble.access.keys import WriteKey
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.admission import AdmissionRules, TimeRules
from stumble.analytics.queries import Dimension, Filters, Scope, StepSpec, TimeRange
from stumble.analytics.stats import quantile
from stumble.collector.enrich import Enricher
from stumble.collector.offline import OfflineIngest
from stumble.events import StoredEvent
from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.rollups import RollupMaintainer
from stumble.simulate import GroundTruth, Simulation, SimulationParams
from stumble.simulate.attempts import AttemptTracker
from stumble.storage import DuckDBStore

START = dt.date(2026, 3, 2)  # a Monday
DAYS = 14
WINDOW = TimeRange.days(START - dt.timedelta(days=1), START + dt.timedelta(days=DAYS + 1))
BEFORE, AFTER = "1.4.2", "2.0.0"
RECEIVE_DELAY_MS = 40
TIME_RULES = TimeRules(max_age_ms=10**13, max_future_ms=10**9)


@dataclass
class Dataset:
    store: DuckDBStore
    truth: GroundTruth
    plan: TrackingPlan

    def events(self, environment: str = "prod") -> list[StoredEvent]:
        return self.store.read_events(environment)


def write_key(environment: str = "prod", sample_rate: float = 1.0) -> WriteKey:
    return WriteKey(
        key_id=f"sim{environment}", environment=environment, key_sha256="-",
        sample_rate=sample_rate,
    )  # fmt: skip


def ingest_simulation(
    store: DuckDBStore,
    work: Path,
    params: SimulationParams,
    plan: TrackingPlan,
    key: WriteKey,
) -> GroundTruth:
    """Simulate and store through the collector's offline path; returns the ground truth."""
    secrets = work / "secrets"
    enricher = Enricher(SessionKeyRing(secrets), EventIdKey(secrets))
    simulation = Simulation(params, plan)
    ingest = OfflineIngest(
        rules=AdmissionRules(plan, TIME_RULES),
        max_events=500,
        key=key,
        enricher=enricher,
        store=store,
        work_dir=work / "segments",
    )
    for session in simulation.sessions():
        ingest.add(
            session.events,
            sent_at=session.sent_at,
            received_at_ms=session.sent_at + RECEIVE_DELAY_MS,
        )
    result = ingest.close()
    assert result.rejected == 0, result.reasons
    return simulation.ground_truth()


@pytest.fixture(scope="session")
def plan() -> TrackingPlan:
    return load_plan(default_plan_path())


@pytest.fixture(scope="session")
def seed_story(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Dataset]:
    """The seed's request form: 1.4.2 for a week, then 2.0.0 (the fix). Also a small sampled
    ``staging`` environment in the same database (half the sessions sent)."""
    work = tmp_path_factory.mktemp("seed-story")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    params = SimulationParams(
        sessions=12_000, days=DAYS, start_date=START, seed=7, ui_version_change_day=7
    )
    truth = ingest_simulation(store, work, params, plan, write_key())
    staging = SimulationParams(sessions=400, days=DAYS, start_date=START, seed=8)
    ingest_simulation(store, work, staging, plan, write_key("staging", sample_rate=0.5))
    yield Dataset(store, truth, plan)
    store.close()


@pytest.fixture(scope="session")
def aa_run(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Dataset]:
    """An A/A split: flag ``aa_split`` on a random half of the sessions, changing nothing."""
    work = tmp_path_factory.mktemp("aa-run")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    params = SimulationParams(
        sessions=6_000, days=DAYS, start_date=START, seed=11, aa_flag="aa_split"
    )
    truth = ingest_simulation(store, work, params, plan, write_key())
    yield Dataset(store, truth, plan)
    store.close()


@pytest.fixture(scope="session")
def rolled(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Dataset]:
    """A simulation with daily rollups built (its own store: rollups built into another
    store would change which source the other analytics tests read). Also a small sampled
    ``staging`` environment (half the sessions sent), so weights are compared too."""
    work = tmp_path_factory.mktemp("rollups")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    params = SimulationParams(
        sessions=4_000, days=DAYS, start_date=START, seed=21, ui_version_change_day=7
    )
    truth = ingest_simulation(store, work, params, plan, write_key())
    staging = SimulationParams(sessions=600, days=DAYS, start_date=START, seed=22)
    ingest_simulation(store, work, staging, plan, write_key("staging", sample_rate=0.5))
    report = RollupMaintainer(store, plan).refresh()
    assert report.days_built >= DAYS
    yield Dataset(store, truth, plan)
    store.close()


def whole(by: Dimension | None = None, **filters: Any) -> Scope:
    """The whole simulated window, optionally broken down and filtered."""
    return Scope(WINDOW, Filters(**filters), by)


# --- independent recomputations over stored rows ------------------------------------------


def matches(event: StoredEvent, step: StepSpec) -> bool:
    if event.event_name != step.event_name:
        return False
    return all(getattr(event, column) == value for column, value in step.where)


def by_session(events: Sequence[StoredEvent]) -> dict[str, list[StoredEvent]]:
    sessions: defaultdict[str, list[StoredEvent]] = defaultdict(list)
    for event in events:
        sessions[event.session_id].append(event)
    for rows in sessions.values():
        rows.sort(key=lambda e: (e.ts, e.event_id))
    return dict(sessions)


def attempts_chain(
    rows: Sequence[StoredEvent], steps: Sequence[StepSpec], window_ms: int
) -> list[int | None]:
    """The ts of each step a session reached, by the funnel's attempt rules, in plain Python:
    identical events at one instant are one, and an instant's events go in step order."""
    matched = {(e.ts, tuple(i for i, s in enumerate(steps) if matches(e, s))) for e in rows}
    tracker = AttemptTracker([s.optional for s in steps], window_ms)
    for ts, hits in sorted(m for m in matched if m[1]):
        tracker.event(ts, hits)
    return tracker.reached()


@dataclass
class PyFunnel:
    reached: list[int]
    gaps: list[list[float]]
    totals: list[float]

    def p(self, step: int, q: float) -> float:
        return quantile(self.gaps[step], q)


def py_funnel(events: Sequence[StoredEvent], steps: Sequence[StepSpec], window_ms: int) -> PyFunnel:
    reached = [0] * len(steps)
    gaps: list[list[float]] = [[] for _ in steps]
    totals: list[float] = []
    for rows in by_session(events).values():
        chain = attempts_chain(rows, steps, window_ms)
        done = [(i, ts) for i, ts in enumerate(chain) if ts is not None]
        for (_, before), (i, ts) in zip([(None, None), *done], done, strict=False):
            reached[i] += 1
            if before is not None:
                gaps[i].append(float(ts - before))
        if len(chain) == len(steps):
            totals.append(float(done[-1][1] - done[0][1]))
    return PyFunnel(reached, gaps, totals)
