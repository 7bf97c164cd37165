"""Keeping daily rollups current: the dirty days rebuilt from raw rows, on the loader's thread.

A load marks the (environment, UTC day) pairs it touched (``rollup_dirty``, same transaction).
``RollupMaintainer.refresh`` rebuilds each such day from the day's raw rows — every cell of the
day in one transaction (``EventStore.replace_rollup_day``), so a crash leaves the day either
as it was or fully rebuilt, and still dirty in the first case. Rebuilding a whole day rather
than adding the new rows is what keeps the funnel exact: a session's step 3 arriving in a later
segment moves that session from one cell to another.

The loader calls ``refresh_if_due`` after loading, at most every ``interval_s``, and never
more often than keeps rollups under ``UPKEEP_SHARE`` of its time (a day's rebuild costs
seconds: ~0.5 s per 100k events of the day, so after every half-second load it would cost the
loader most of its time); while it is catching up (segments still waiting after a pass), at
most every ``CATCHING_UP_INTERVAL_S``. Rollups are thus about a minute behind the raw rows,
longer on a day of millions of events or during a catch-up. Days built under another version
of the plan's definitions are rebuilt too, a few per refresh and newest first
(``OUTDATED_DAYS_PER_REFRESH``), as long as their raw rows are all there: a *sealed* day
(retention began deleting its rows) keeps the rollups it has. ``rebuild`` (``stumble rollups
rebuild``) rebuilds every unsealed day at once.

Each past month is then added up once from its days (``EventStore.replace_rollup_month``), so a
read of a year sums twelve months of cells and a few days rather than 365 days of them. A month
is built again whenever one of its days is (a late event, a plan change) or is deleted;
readers use a month only while it matches its days, and the days otherwise.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stumble.analytics.frustration import FrustrationThresholds
from stumble.analytics.rollup_build import RollupPlan, day_statements
from stumble.analytics.sql import dialect_for
from stumble.plan.model import TrackingPlan
from stumble.storage.base import EventStore, RollupStatement, month_start, utc_day

log = logging.getLogger("stumble.rollups")
DEFAULT_INTERVAL_S = 60.0
OUTDATED_DAYS_PER_REFRESH = 4
"""After an upgrade or a plan change every stored day is outdated: a few per refresh (newest
first, what dashboards ask about) keep the loader loading meanwhile; reports read raw rows
for a day until it is rebuilt."""
MONTHS_PER_REFRESH = 2
"""A month takes about as long as a big day: the first start after an upgrade spreads a year
of them over several refreshes instead of holding the loader for all of them at once."""
UNORDERED_SHARE = 0.25
"""The daily cells are put in order again when more than this share was appended since."""
UPKEEP_SHARE = 0.1
"""At most this share of the loader's time goes to rollups: a refresh that took 16 s (a day
of 2.5M events) waits 160 s before the next, whatever the interval says."""
CATCHING_UP_INTERVAL_S = 600.0
"""While sealed segments are still waiting after a loading pass, a refresh waits this long:
each one rebuilds whole days, which the rows still waiting make stale again at once, so
refreshing during a catch-up mostly repeats work. Rollups then lag up to ten minutes, and are
back to the interval as soon as the spool is drained."""


@dataclass
class RefreshReport:
    """What one refresh did."""

    days_built: int = 0
    days_sealed_skipped: int = 0
    months_built: int = 0
    clustered: bool = False
    cells: int = 0
    seconds: float = 0.0
    built: list[tuple[str, dt.date]] = field(default_factory=list)


class RollupMaintainer:
    """Builds the rollups of the days that need it, for one store and one tracking plan."""

    def __init__(
        self,
        store: EventStore,
        plan: TrackingPlan,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        frustration: FrustrationThresholds | None = None,
    ) -> None:
        self.store = store
        self.definitions = RollupPlan.from_plan(plan, frustration)
        self.fingerprint = self.definitions.fingerprint
        self.interval_s = interval_s
        self.clock = clock
        self.now = now
        self._last_refresh: float | None = None
        self._wait_s = interval_s
        self._outdated_checked = False
        self._layout_checked = False
        self._months_left = True  # looked for on the first refresh, then after rebuilt days

    def refresh_if_due(self, *, catching_up: bool = False) -> RefreshReport | None:
        """Refresh unless one built something less than ``interval_s`` ago, or less than
        ``CATCHING_UP_INTERVAL_S`` ago while the loader is ``catching_up`` (a refresh that
        found nothing to do costs two small queries and does not start the interval)."""
        now = self.clock()
        wait_s = max(self._wait_s, CATCHING_UP_INTERVAL_S) if catching_up else self._wait_s
        if self._last_refresh is not None and now - self._last_refresh < wait_s:
            return None
        report = self.refresh()
        if report.days_built or report.days_sealed_skipped or report.months_built:
            self._last_refresh = now
            self._wait_s = max(self.interval_s, report.seconds / UPKEEP_SHARE)
        return report

    def refresh(
        self,
        *,
        max_outdated: int | None = OUTDATED_DAYS_PER_REFRESH,
        max_months: int | None = MONTHS_PER_REFRESH,
    ) -> RefreshReport:
        """Rebuild the dirty days and up to ``max_outdated`` unsealed days built under another
        definition, newest first, then up to ``max_months`` past months whose cells no longer
        match their days (None: all of them)."""
        report = self._build(self._days_due(max_outdated))
        # Loads go on every half second; months and the cells' order change only with a
        # rebuilt day (or what is left from the last look), so an idle refresh skips both.
        if report.days_built or self._months_left:
            self._build_months(report, max_months)
        if report.days_built or report.months_built or not self._layout_checked:
            self._cluster_daily(report)
        return report

    def rebuild(self, environment: str | None = None) -> RefreshReport:
        """Rebuild every unsealed day known to the rollups (after a plan change)."""
        days = [
            (state.environment, state.day)
            for state in self.store.rollup_days(environment)
            if not state.sealed
        ]
        report = self._build(days)
        self._build_months(report, max_months=None)
        self._cluster_daily(report)
        return report

    def _cluster_daily(self, report: RefreshReport) -> None:
        """The daily cells put back in the order reads filter by, once a UTC day and whenever
        more than ``UNORDERED_SHARE`` of them were appended since (a plan change rebuilds
        every day): what rebuilds append sits at the end, unordered, until then."""
        layout = self.store.rollup_layout()
        self._layout_checked = True
        now = self.now()
        if not layout.cells_since:
            return
        if (
            layout.clustered_at_ms is not None
            and utc_day(layout.clustered_at_ms) >= now.date()
            and layout.cells_since <= UNORDERED_SHARE * layout.cells
        ):
            return
        started = time.perf_counter()
        self.store.cluster_rollups()
        seconds = time.perf_counter() - started
        report.seconds += seconds
        report.clustered = True
        log.info("ordered the daily rollups in %.2f s", seconds)

    def _build_months(self, report: RefreshReport, max_months: int | None) -> None:
        started = time.perf_counter()
        due = self.store.rollup_months_due(month_start(self.now().date()))
        self._months_left = max_months is not None and len(due) > max_months
        for environment, month in due[:max_months]:
            self.store.replace_rollup_month(environment, month)
            report.months_built += 1
        if report.months_built:
            seconds = time.perf_counter() - started
            report.seconds += seconds
            log.info("added up %d month(s) in %.2f s", report.months_built, seconds)

    def _days_due(self, max_outdated: int | None) -> list[tuple[str, dt.date]]:
        """The dirty days, and the newest ``max_outdated`` of the days an older definition
        built (looked for until none is left: the plan and the builders do not change while
        the process runs, so no day becomes outdated later)."""
        due = set(self.store.dirty_rollup_days())
        if not self._outdated_checked:
            outdated = sorted(
                (
                    (state.environment, state.day)
                    for state in self.store.rollup_days()
                    if state.plan_fingerprint not in (None, self.fingerprint) and not state.sealed
                ),
                key=lambda key: (key[1], key[0]),
                reverse=True,
            )
            due.update(outdated[:max_outdated])
            self._outdated_checked = max_outdated is None or len(outdated) <= max_outdated
        return sorted(due)

    def _build(self, days: list[tuple[str, dt.date]]) -> RefreshReport:
        report = RefreshReport()
        started = time.perf_counter()
        dialect = dialect_for(self.store.dialect)
        for environment, day in days:
            statements = [
                RollupStatement(s.text, s.params)
                for s in day_statements(self.definitions, environment, day, dialect)
            ]
            cells = self.store.replace_rollup_day(environment, day, statements, self.fingerprint)
            if cells is None:
                report.days_sealed_skipped += 1
                continue
            report.days_built += 1
            report.cells += cells
            report.built.append((environment, day))
        report.seconds = time.perf_counter() - started
        if report.days_built:
            log.info(
                "rolled up %d day(s), %d cells, in %.2f s",
                report.days_built,
                report.cells,
                report.seconds,
            )
        return report
