"""Simulated traffic with known ground truth: the service desk of the specification.

``simulate_sessions(params, plan)`` yields sessions of wire events (``stumble.events``) that a
client can send to the collector; ``Simulation`` also accumulates the ``GroundTruth`` (funnel
counts, error shares, step-time quantiles...) that the analytics tests compare reports with.
Everything is driven by ``SimulationParams`` and one seed.
"""

from stumble.simulate.generator import (
    check_plan_compatibility,
    resolve_start_date,
    simulate_sessions,
)
from stumble.simulate.params import SimulationParams
from stumble.simulate.session import FUNNEL_STEPS, SessionFacts, SimulatedSession
from stumble.simulate.simulation import Simulation
from stumble.simulate.truth import (
    FieldErrorTruth,
    FunnelTruth,
    GroundTruth,
    GroundTruthBuilder,
    OperationTruth,
    SegmentTruth,
    Summary,
    collect_ground_truth,
)

__all__ = [
    "FUNNEL_STEPS",
    "FieldErrorTruth",
    "FunnelTruth",
    "GroundTruth",
    "GroundTruthBuilder",
    "OperationTruth",
    "SegmentTruth",
    "SessionFacts",
    "SimulatedSession",
    "Simulation",
    "SimulationParams",
    "Summary",
    "check_plan_compatibility",
    "collect_ground_truth",
    "resolve_start_date",
    "simulate_sessions",
]
