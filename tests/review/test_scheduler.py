"""The server's review jobs: due ones run, a failing one is logged by its type and does not stop
the others."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from stumble.review.scheduler import run_due_jobs

NOW = dt.datetime(2026, 3, 16, 9, 0, tzinfo=dt.UTC)


class Job:
    def __init__(self, name: str, *, due: bool = True, fails: bool = False) -> None:
        self.name = name
        self.is_due = due
        self.fails = fails
        self.ran: list[dt.datetime] = []

    def due(self, now: dt.datetime) -> bool:
        return self.is_due

    def run(self, now: dt.datetime) -> None:
        self.ran.append(now)
        if self.fails:
            raise RuntimeError("smtp said: rejected aigerim@example.kz")


def test_due_jobs_run_and_one_failure_stops_nothing(caplog: pytest.LogCaptureFixture) -> None:
    broken, waiting, fine = Job("digest", fails=True), Job("alerts", due=False), Job("fixes")
    with caplog.at_level(logging.WARNING, logger="stumble.review"):
        asyncio.run(run_due_jobs([broken, waiting, fine], NOW))
    assert (broken.ran, waiting.ran, fine.ran) == ([NOW], [], [NOW])
    assert "review job digest failed: RuntimeError" in caplog.text
    assert "aigerim" not in caplog.text, "an exception's message may quote data: never logged"
