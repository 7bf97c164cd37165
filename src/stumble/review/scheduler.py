"""The review loop's jobs, run by the server on their schedule.

A job says when it is due and runs on a worker thread; each is idempotent (a digest week is
sent once, an alert transition notified once, a fix verified once), so running a job twice or
restarting the server in the middle of one loses nothing and repeats nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Final, Protocol

log = logging.getLogger("stumble.review")
TICK_S: Final = 30.0
FIRST_TICK_S: Final = 2.0
"""Soon after start: work that fell due while the server was down is not kept waiting."""


class Job(Protocol):
    name: str

    def due(self, now: dt.datetime) -> bool:
        """Whether the job has work at ``now`` (UTC, aware)."""
        ...

    def run(self, now: dt.datetime) -> None:
        """Do the work; blocking (it runs on a worker thread); idempotent."""
        ...


async def run_jobs_forever(
    jobs: Sequence[Job], tick_s: float = TICK_S, first_tick_s: float = FIRST_TICK_S
) -> None:
    """Every ``tick_s`` seconds (the first time ``first_tick_s`` after start), run each due job
    in turn. A failing job is logged by its exception's type (never its message, which may
    quote data) and tried again next tick."""
    await asyncio.sleep(first_tick_s)
    while True:
        await run_due_jobs(jobs, dt.datetime.now(dt.UTC))
        await asyncio.sleep(tick_s)


async def run_due_jobs(jobs: Sequence[Job], now: dt.datetime) -> None:
    for job in jobs:
        try:
            if job.due(now):
                await asyncio.to_thread(job.run, now)
        except Exception as error:  # noqa: BLE001 - one job's failure must not stop the others
            log.warning("review job %s failed: %s", job.name, type(error).__name__)
