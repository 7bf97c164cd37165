"""One simulation run: resolved params, the sessions, and the ground truth they add up to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import msgspec

from stumble.plan.model import TrackingPlan
from stumble.simulate.generator import resolve_start_date, simulate_sessions
from stumble.simulate.params import SimulationParams
from stumble.simulate.session import SimulatedSession
from stumble.simulate.truth import GroundTruth, GroundTruthBuilder


class Simulation:
    """``params`` is the effective configuration (bounds checked, start date resolved), so a
    ground truth built here records exactly what produced it.

    >>> simulation = Simulation(SimulationParams(sessions=100), plan)   # doctest: +SKIP
    >>> for session in simulation.sessions(): client.track_many(session.events)  # doctest: +SKIP
    >>> truth = simulation.ground_truth()   # doctest: +SKIP
    """

    def __init__(
        self, params: SimulationParams, plan: TrackingPlan, *, today: dt.date | None = None
    ) -> None:
        resolved = msgspec.structs.replace(params, start_date=resolve_start_date(params, today))
        self.params = resolved.checked()
        self.plan = plan
        self._builder = GroundTruthBuilder(self.params)

    def sessions(self) -> Iterator[SimulatedSession]:
        """Generate the sessions; each one is added to the ground truth as it is yielded."""
        for session in simulate_sessions(self.params, self.plan):
            self._builder.add(session)
            yield session

    def run(self) -> tuple[list[SimulatedSession], GroundTruth]:
        """Every session in memory, and the truth: convenient for tests and small runs."""
        sessions = list(self.sessions())
        return sessions, self.ground_truth()

    def ground_truth(self) -> GroundTruth:
        """The truth of the sessions yielded so far."""
        return self._builder.build()
