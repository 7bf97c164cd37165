"""``stumble rollups status|rebuild``: the daily rollups reports read for long ranges.

The server keeps them current by itself (the loader rebuilds the days a load touched, about
once a minute). ``rebuild`` is for after a change to the tracking plan's scenarios or forms:
it rebuilds every day whose raw rows are all still there (a *sealed* day, one that retention
has begun to delete, keeps the rollups it has). Both open the database file directly, so
they run while no server holds it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stumble.cli.common import (
    add_data_options,
    open_database,
    rollup_maintainer,
    settings_from,
)

if TYPE_CHECKING:
    import datetime as dt

    from stumble.storage import RollupDay


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rollups", help="daily rollups: their state, and rebuilding them")
    actions = parser.add_subparsers(dest="rollups_command", metavar="ACTION", required=True)

    status = actions.add_parser("status", help="days built, waiting and sealed per environment")
    add_data_options(status)
    status.add_argument("--env", help="one environment only")
    status.set_defaults(func=_status)

    rebuild = actions.add_parser(
        "rebuild", help="rebuild the rollups of every unsealed day (after a plan change)"
    )
    add_data_options(rebuild)
    rebuild.add_argument("--env", help="one environment only")
    rebuild.add_argument(
        "--dirty-only",
        action="store_true",
        help="only the days a load touched or an older plan built (what the server does)",
    )
    rebuild.set_defaults(func=_rebuild)


@dataclass
class _Summary:
    built: int = 0
    waiting: int = 0
    sealed: int = 0
    outdated: int = 0
    cells: int = 0
    first: dt.date | None = None
    last: dt.date | None = None

    def add(self, state: RollupDay, fingerprint: str) -> None:
        self.built += state.built_at_ms is not None
        self.waiting += state.dirty
        self.sealed += state.sealed
        self.outdated += state.plan_fingerprint not in (None, fingerprint)
        self.cells += state.cells
        self.first = state.day if self.first is None else min(self.first, state.day)
        self.last = state.day if self.last is None else max(self.last, state.day)


_MONTHS = "SELECT environment, count(*) FROM rollup_month_days GROUP BY environment"


def _status(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_database(settings) as store:
        fingerprint = rollup_maintainer(store, settings).fingerprint
        summaries: dict[str, _Summary] = defaultdict(_Summary)
        for state in store.rollup_days(args.env):
            summaries[state.environment].add(state, fingerprint)
        months = dict(store.query(_MONTHS).rows) if store.dialect == "duckdb" else {}
    if not summaries:
        print("no rollups yet: nothing has been loaded" + (f" into {args.env}" if args.env else ""))
        return 0
    for environment, s in sorted(summaries.items()):
        print(
            f"{environment}: {s.first} to {s.last}: {s.built} day(s) built, {s.waiting} waiting, "
            f"{s.sealed} sealed, {s.outdated} built under an older plan, {s.cells} cells; "
            f"{months.get(environment, 0)} past month(s) added up"
        )
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with open_database(settings) as store:
        maintainer = rollup_maintainer(store, settings)
        report = maintainer.refresh() if args.dirty_only else maintainer.rebuild(args.env)
    print(
        f"rebuilt {report.days_built} day(s), {report.cells} cells, and added up "
        f"{report.months_built} month(s), in {report.seconds:.1f} s"
        + (
            f"; {report.days_sealed_skipped} sealed day(s) kept"
            if report.days_sealed_skipped
            else ""
        )
    )
    return 0
