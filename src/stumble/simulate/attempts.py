"""The ordered funnel's rules in plain Python, one event at a time: the ground truth's engine.

``AttemptTracker`` is PostHog's state machine, written independently of the SQL in
``analytics/funnels.py`` so each checks the other: ``entered[k]`` is the attempt that most
recently reached step k (its step times); a step-k event extends the most recent attempt that
reached step k-1 (or, past optional steps, an earlier step) if it is no later than that
attempt's start plus the window. A session's result is the first attempt that reached the
furthest step. An event matching several steps is applied from the last step back, so it
never fills two steps of one attempt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Chain = list[int | None]


class AttemptTracker:
    def __init__(self, optional: Sequence[bool], window_ms: int) -> None:
        self.optional = tuple(optional)
        self.window_ms = window_ms
        self._entered: list[tuple[tuple[int, int], Chain] | None] = [None] * len(optional)
        self._events = 0
        self.best: Chain = []
        """Step times of the counted attempt (None for a skipped optional step)."""

    def event(self, ts: int, steps: Iterable[int]) -> None:
        """One event (events in time order, those of one instant in step order)."""
        self._events += 1
        for step in sorted(set(steps), reverse=True):
            self._step(ts, step)

    def _step(self, ts: int, step: int) -> None:
        if step == 0:
            chain: Chain = [ts] + [None] * (len(self.optional) - 1)
        else:
            previous = self._latest_before(step)
            start = None if previous is None else previous[0]
            if previous is None or start is None or ts - start > self.window_ms:
                return
            chain = [*previous]
            chain[step] = ts
        self._entered[step] = ((self._events, step), chain)
        if step >= len(self.best) or (self.best[step] is None and _furthest(self.best) < step):
            self.best = chain

    def _latest_before(self, step: int) -> Chain | None:
        candidates = [step - 1]
        while self.optional[candidates[-1]]:
            candidates.append(candidates[-1] - 1)
        entries = [e for e in (self._entered[j] for j in candidates) if e is not None]
        return max(entries, key=lambda e: e[0])[1] if entries else None

    def reached(self) -> Chain:
        """The counted attempt's step times up to its furthest step."""
        return self.best[: _furthest(self.best) + 1]


def _furthest(chain: Chain) -> int:
    return max((i for i, ts in enumerate(chain) if ts is not None), default=-1)
