"""Privacy guard throughput on one core: decode + schema + plan + detectors, per event.

Typical traffic comes from the simulator (every kind, realistic routes and context), cut into
100-event batches exactly as an SDK would send them. Three mixes are measured:

- ``clean``: simulated traffic as is;
- ``one_pii_per_batch``: one event per batch carries an IIN in an optional field, so the
  batch screen flags it and that event takes the slow path;
- ``hostile``: every event carries a hostile value (worst case).

Prints events/s (best of several runs, garbage collector on, as in the server).

    .venv/bin/python benchmarks/guard.py [--events 200000]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import msgspec

from stumble.admission import AdmissionRules, Arrival, TimeRules, admit, decode_body
from stumble.events import Event
from stumble.plan.load import default_plan_path, load_plan
from stumble.simulate import SimulationParams, simulate_sessions

BATCH = 100


def simulated_events(count: int) -> list[Event]:
    plan = load_plan(default_plan_path())
    events: list[Event] = []
    for session in simulate_sessions(
        SimulationParams(sessions=count // 20 + 10, days=7, seed=7), plan
    ):
        events.extend(session.events)
        if len(events) >= count:
            break
    return events[:count]


def bodies(events: list[Event], poison: Callable[[Event, int], Event]) -> list[bytes]:
    out = []
    for start in range(0, len(events), BATCH):
        chunk = [poison(e, start + i) for i, e in enumerate(events[start : start + BATCH])]
        out.append(msgspec.json.encode({"sent_at": int(time.time() * 1000), "events": chunk}))
    return out


def with_iin(event: Event, index: int, every: int) -> Event:
    if index % every:
        return event
    return msgspec.structs.replace(event, experiment="iin_921029350851")


def measure(label: str, batch_bodies: list[bytes], events: int, repeats: int = 3) -> None:
    plan = load_plan(default_plan_path())
    # Time is not what this measures: every simulated time passes.
    rules = AdmissionRules(plan, TimeRules(max_age_ms=10**14, max_future_ms=10**14))
    arrival = Arrival.at(int(time.time() * 1000), None)
    best = float("inf")
    outcomes: dict[str, int] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        for body in batch_bodies:
            admission = admit(decode_body(body, 10_000), rules, arrival)
            for verdict in admission.verdicts():
                outcomes[verdict.outcome] = outcomes.get(verdict.outcome, 0) + 1
        best = min(best, time.perf_counter() - started)
    share = {k: round(v / sum(outcomes.values()), 3) for k, v in outcomes.items()}
    print(f"{label:<20} {events / best:>12,.0f} events/s   outcomes {share}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # "per core": pin to one CPU
    events = simulated_events(args.events)
    print(f"{len(events):,} simulated events in {BATCH}-event batches, one core, decode included")
    measure("clean", bodies(events, lambda e, i: e), len(events))
    measure("one_pii_per_batch", bodies(events, lambda e, i: with_iin(e, i, BATCH)), len(events))
    measure("hostile", bodies(events, lambda e, i: with_iin(e, i, 1)), len(events))


if __name__ == "__main__":
    main()
