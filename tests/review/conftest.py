"""The review loop's tests read the dashboard tests' simulated dataset (the seed's request form:
UI 1.4.2 in week 2026-W10, 2.0.0 in W11, plus a sampled staging environment)."""

from tests.dashboard.conftest import plan, store

__all__ = ["plan", "store"]
