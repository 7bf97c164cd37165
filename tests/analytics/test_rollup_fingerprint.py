"""The rollup fingerprint: which days are outdated. It must follow any change in what the
builders write, and nothing else (the same code and plan give it in every process)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from stumble.analytics import paths
from stumble.analytics.frustration import FrustrationThresholds
from stumble.analytics.rollup_build import RollupPlan
from stumble.plan.model import TrackingPlan

PRINT_FINGERPRINT = (
    "from stumble.analytics.rollup_build import RollupPlan;"
    "from stumble.plan.load import default_plan_path, load_plan;"
    "print(RollupPlan.from_plan(load_plan(default_plan_path())).fingerprint)"
)


def test_a_change_in_a_familys_sql_changes_the_fingerprint(
    plan: TrackingPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = RollupPlan.from_plan(plan).fingerprint
    monkeypatch.setattr(paths, "PATHS_KEPT_PER_PAIR", paths.PATHS_KEPT_PER_PAIR + 1)
    assert RollupPlan.from_plan(plan).fingerprint != before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("scenarios", lambda p: p.scenarios[:-1]),
        ("forms", lambda p: p.forms[:-1]),
        ("closed", lambda p: p.closed[:-1]),
        ("aliases", lambda p: (("old_button", "new_button"),)),
        ("frustration", lambda p: FrustrationThresholds(repeat_ms=2_500)),
    ],
)
def test_each_definition_of_the_plan_changes_the_fingerprint(
    plan: TrackingPlan, field: str, value: Callable[[RollupPlan], object]
) -> None:
    rollups = RollupPlan.from_plan(plan)
    changed = dataclasses.replace(rollups, **{field: value(rollups)})
    assert changed.fingerprint != rollups.fingerprint


def test_every_process_computes_the_same_fingerprint(plan: TrackingPlan) -> None:
    """String hashing is salted per process: a fingerprint built from a set's order would
    make every restart rebuild every day."""
    printed = {
        subprocess.run(
            [sys.executable, "-c", PRINT_FINGERPRINT],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert printed == {RollupPlan.from_plan(plan).fingerprint}
