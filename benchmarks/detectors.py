"""Cost of the privacy detectors per call, on clean identifiers and on hostile strings, and
of the body screen per 100-event batch of simulated traffic.

Run: ``.venv/bin/python benchmarks/detectors.py``. Prints nanoseconds per call (best of
several rounds, so a noisy neighbour inflates nothing); never fails on a timing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The corpus is test data; run from anywhere, import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
from tests.privacy.corpus import HOSTILE, LEGIT

from stumble.plan.load import default_plan_path, load_plan
from stumble.privacy import screen
from stumble.privacy.detectors import detect, detect_all, is_sensitive_key
from stumble.privacy.normalize import normalize
from stumble.privacy.screen import screen_hits, screen_is_clean
from stumble.privacy.urls import template_route
from stumble.simulate import SimulationParams, simulate_sessions

ROUNDS = 5
TARGET_CALLS = 50_000

CLEAN_IDENTIFIERS = [
    "invoice_create_clicked",
    "btn_save",
    "request_create",
    "server_response_received",
    "operator",
    "requestCreateStepSubmitClicked",
]
# A digit sends a string through every detector (each with its own cheap guard).
IDENTIFIERS_WITH_DIGITS = ["step_2", "2.3.1", "report_2026_q3", "v2.3.10_build_20261122"]
ROUTES = [
    "/requests/:id/edit",
    "/requests/123/edit",
    "https://user:pw@app.example.kz/requests/3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f?iin=921029350851",
    "/search/john.doe@mail.kz",
]
KEYS = ["event_name", "userEmail", "binary", "phone_number", "tokenizer_mode"]
# Inputs built to make a backtracking regex go quadratic; every scan must stay linear.
PATHOLOGICAL_SIZE = 100_000
PATHOLOGICAL = {
    "digits": "1" * PATHOLOGICAL_SIZE,
    "digit, space": "1 " * (PATHOLOGICAL_SIZE // 2),
    "digit groups, _": "123_" * (PATHOLOGICAL_SIZE // 4),
    "digit pairs, x": "12x" * (PATHOLOGICAL_SIZE // 3),
    "surname endings": "Petrov" * (PATHOLOGICAL_SIZE // 6),
    "eyJ repeated": "eyJ" * (PATHOLOGICAL_SIZE // 3),
    "long local part, @": "a" * PATHOLOGICAL_SIZE + "@",
    "labels, bad TLD": "a@" + "b." * (PATHOLOGICAL_SIZE // 2) + "1",
    "hex and two colons": "a" * PATHOLOGICAL_SIZE + ":" + "b" * PATHOLOGICAL_SIZE + ":",
    "IBAN prefixes": "KZ12" * (PATHOLOGICAL_SIZE // 4),
    "key=": "a=" * (PATHOLOGICAL_SIZE // 2),
    "fullwidth digits": "\uff11" * PATHOLOGICAL_SIZE,
    "route segments": "/a1" * (PATHOLOGICAL_SIZE // 3),
    "query params": "/x?" + "a=1&" * (PATHOLOGICAL_SIZE // 4),
}


def per_call_ns(
    function: Callable[[Any], object], inputs: Sequence[Any], calls: int = TARGET_CALLS
) -> float:
    """Best-of-rounds mean nanoseconds per call, cycling through ``inputs``."""
    repeats = max(1, calls // len(inputs))
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        for _ in range(repeats):
            for text in inputs:
                function(text)
        best = min(best, (time.perf_counter_ns() - start) / (repeats * len(inputs)))
    return best


BATCH = 100
SCREEN_EVENTS = 20_000


def simulated_batches(events: int = SCREEN_EVENTS) -> list[bytes]:
    """Simulated traffic as 100-event request bodies, as the SDK sends them."""
    plan = load_plan(default_plan_path())
    found: list[object] = []
    for session in simulate_sessions(SimulationParams(sessions=events // 20, days=7, seed=7), plan):
        found.extend(session.events)
        if len(found) >= events:
            break
    return [
        msgspec.json.encode({"sent_at": 1_763_812_800_000, "events": found[i : i + BATCH]})
        for i in range(0, min(events, len(found)), BATCH)
    ]


def screen_costs() -> None:
    """The screen per batch: ``screen_is_clean`` on the whole body, and ``screen_hits`` alone
    on the body's strings already joined (the part that judges them)."""
    bodies = simulated_batches()
    # What screen_is_clean hands to screen_hits (exempt fields cut, strings joined).
    exempt = screen._EXEMPT_FROM_SCREEN
    joined = [b"\n".join(exempt.sub(b"", body).split(b'"')[1::2]) for body in bodies]
    flagged = sum(not screen_is_clean(body) for body in bodies)
    print(f"screen, {len(bodies)} simulated {BATCH}-event batches ({flagged} flagged):")
    for label, function, inputs in (
        ("screen_is_clean(body)", screen_is_clean, bodies),
        ("screen_hits(strings)", screen_hits, joined),
    ):
        us = per_call_ns(function, inputs, calls=len(inputs) * 5) / 1e3
        print(f"  {label:<24} {us:>8,.1f} us per batch")


def main() -> None:
    hostile = [text for _, text in HOSTILE]
    rows = [
        ("normalize, clean identifiers", normalize, CLEAN_IDENTIFIERS),
        ("normalize, hostile strings", normalize, hostile),
        ("detect, clean identifiers", detect, CLEAN_IDENTIFIERS),
        ("detect, identifiers with digits", detect, IDENTIFIERS_WITH_DIGITS),
        ("detect, legit corpus (digits, versions, dates)", detect, LEGIT),
        ("detect, hostile strings", detect, hostile),
        ("detect_all, hostile strings", detect_all, hostile),
        ("is_sensitive_key", is_sensitive_key, KEYS),
        ("template_route", template_route, ROUTES),
    ]
    print(f"{'case':<48} {'ns/call':>10}  inputs")
    for label, function, inputs in rows:
        print(f"{label:<48} {per_call_ns(function, inputs):>10,.0f}  {len(inputs)}")
    print(f"pathological inputs of ~{PATHOLOGICAL_SIZE:,} characters (ms per call):")
    for label, text in PATHOLOGICAL.items():
        detect_ms = per_call_ns(detect_all, [text], calls=1) / 1e6
        route_ms = per_call_ns(template_route, [text], calls=1) / 1e6
        print(f"  {label:<24} detect_all {detect_ms:8.1f}   template_route {route_ms:8.1f}")
    timings = sorted(((per_call_ns(detect, [text], 2_000), cat) for cat, text in HOSTILE))
    print("slowest hostile categories for detect:")
    for ns, category in timings[-3:]:
        print(f"  {category:<46} {ns:>10,.0f}")
    screen_costs()


if __name__ == "__main__":
    main()
