"""Generate sessions of wire events, each with the facts the ground truth is built from.

One ``random.Random`` drives everything, so a seed (and a start date) fixes every byte.
Sessions start within working hours of the users' time zone, spread over the simulated days
(weekends quieter), and come out in chronological order of their start.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Final
from zoneinfo import ZoneInfo

from stumble.events import CONTEXT_FIELDS
from stumble.plan.model import TrackingPlan
from stumble.simulate.params import SimulationParams
from stumble.simulate.scenarios import simulate_one
from stumble.simulate.session import FUNNEL_STEPS, SimulatedSession, WeightedChoice, World


def _start_of_days(params: SimulationParams, start: dt.date) -> list[int]:
    zone = ZoneInfo(params.timezone)
    return [
        int(dt.datetime.combine(start + dt.timedelta(days=i), dt.time(), zone).timestamp() * 1000)
        for i in range(params.days)
    ]


def resolve_start_date(params: SimulationParams, today: dt.date | None = None) -> dt.date:
    """The first simulated day: ``params.start_date``, or the ``days`` days ending yesterday."""
    if params.start_date is not None:
        return params.start_date
    today = today or dt.datetime.now(ZoneInfo(params.timezone)).date()
    return today - dt.timedelta(days=params.days)


def _session_starts(
    params: SimulationParams, start: dt.date, rng: random.Random
) -> list[tuple[int, int]]:
    """(start ms, day index) for every session, sorted, within working hours."""
    day_starts = _start_of_days(params, start)
    weights = {
        str(i): params.weekend_weight if (start + dt.timedelta(days=i)).weekday() >= 5 else 1.0
        for i in range(params.days)
    }
    pick_day = WeightedChoice(weights)
    low_hour, high_hour = params.working_hours
    window_ms = (high_hour - low_hour) * 3_600_000
    starts = []
    for _ in range(params.sessions):
        day = int(pick_day(rng))
        starts.append((day_starts[day] + low_hour * 3_600_000 + int(rng.random() * window_ms), day))
    starts.sort()
    return starts


EVENT_NAMES: Final = frozenset(
    {
        "screen_view",
        "form_submit",
        "field_error",
        "operation_start",
        "operation_step",
        "operation_end",
        "navigation",
        "error",
        "vital",
        "request_next_clicked",
        "request_back_clicked",
        "request_submit_clicked",
        "filter_applied",
        "search_result_opened",
        "approval_opened",
        "export_started",
        "report_exported",
    }
)
"""Every event name the generator emits."""


def check_plan_compatibility(params: SimulationParams, plan: TrackingPlan) -> None:
    """Raise ``ValueError`` unless the plan declares what this generator emits: the funnels,
    the event names, the context values and the field ids of the params."""
    for scenario, labels in FUNNEL_STEPS.items():
        declared = plan.scenarios.get(scenario)
        if declared is None:
            raise ValueError(f"the plan has no scenario {scenario!r}")
        if tuple(step.label for step in declared.steps) != labels:
            raise ValueError(f"the plan's {scenario!r} steps differ from the simulator's {labels}")
    missing = sorted(EVENT_NAMES - set(plan.events))
    if missing:
        raise ValueError(f"the plan does not declare the events {missing}")
    for dimension in CONTEXT_FIELDS:
        allowed = plan.context.get(dimension)
        extra = set(getattr(params.context, dimension)) - set(allowed or ())
        if allowed is not None and extra:
            raise ValueError(f"context {dimension} values {sorted(extra)} are not in the plan")
    allowed_fields = plan.events["field_error"].values.get("field_id")
    rules = [rule for form in params.request_form.versions.values() for rule in form.field_errors]
    unknown = {rule.field_id for rule in rules} - set(allowed_fields or ())
    if allowed_fields is not None and unknown:
        raise ValueError(f"field ids {sorted(unknown)} are not in the plan")


def simulate_sessions(
    params: SimulationParams, plan: TrackingPlan, *, today: dt.date | None = None
) -> Iterator[SimulatedSession]:
    """Sessions in chronological order, deterministic for ``params.seed`` and the start date.

    ``today`` only matters when ``params.start_date`` is None (see ``resolve_start_date``).
    """
    params = params.checked()
    check_plan_compatibility(params, plan)
    world = World(params, plan)
    rng = random.Random(params.seed)  # noqa: S311 -- reproducible traffic, not secrets
    for start_ms, day in _session_starts(params, resolve_start_date(params, today), rng):
        yield simulate_one(world, rng, start_ms, day)
