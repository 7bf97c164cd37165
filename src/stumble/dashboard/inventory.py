"""What the stored data holds: the choices of the filter bar's pickers.

The environment picker shows every environment with events in the range and how many, so a
person sees at once where the data is (the demo stores its history under ``dev``); versions
and flags are offered as they occur. These are identifiers the collector admitted (the privacy
guard checked them), never free text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from stumble.analytics.common import dialect_of
from stumble.analytics.queries import DEFAULT_ENVIRONMENT
from stumble.analytics.rollup_read import volume_covers
from stumble.storage.base import EventStore

MAX_CHOICES: Final = 50


@dataclass(frozen=True, slots=True)
class EnvironmentCount:
    name: str
    events: int


@dataclass(frozen=True, slots=True)
class Inventory:
    environments: tuple[EnvironmentCount, ...]
    """Environments with events in the range, most events first."""
    ui_versions: tuple[str, ...]
    flags: tuple[str, ...]

    def default_environment(self) -> str:
        """``prod`` when it holds data, else the environment with the most events."""
        names = [env.name for env in self.environments]
        if DEFAULT_ENVIRONMENT in names or not names:
            return DEFAULT_ENVIRONMENT
        return names[0]


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Naive UTC datetimes (what the ``ts`` column compares with); ``end`` is included."""
    return (
        dt.datetime.combine(start, dt.time()),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
    )


def take_inventory(
    store: EventStore, start: dt.date, end: dt.date, environment: str | None
) -> Inventory:
    low, high = _bounds(start, end)
    dialect = dialect_of(store)
    rolled = volume_covers(store, None, start, end)
    environments = store.query(*_environment_counts(rolled, start, end, low, high)).rows
    counts = tuple(EnvironmentCount(str(name), int(n)) for name, n in environments)
    env = environment or Inventory(counts, (), ()).default_environment()
    versions = store.query(*_recent_versions(rolled, env, start, end, low, high)).rows
    # The only text put into the statement is a dialect expression; every value is bound.
    flags_sql = (
        f"SELECT DISTINCT flag FROM (SELECT {dialect.elements('feature_flags')} AS flag "  # noqa: S608
        "FROM events WHERE environment = ? AND ts >= ? AND ts < ? "
        "AND len(feature_flags) > 0) ORDER BY flag LIMIT ?"
    )
    flags = store.query(flags_sql, (env, low, high, MAX_CHOICES)).rows
    return Inventory(
        environments=counts,
        ui_versions=tuple(str(row[0]) for row in versions),
        flags=tuple(str(row[0]) for row in flags),
    )


Statement = tuple[str, tuple[object, ...]]


def _environment_counts(
    rolled: bool, start: dt.date, end: dt.date, low: dt.datetime, high: dt.datetime
) -> Statement:
    """Events per environment: from the daily volume rollups when they cover the range."""
    if rolled:
        return (
            (
                "SELECT environment, CAST(sum(value_sum) AS BIGINT) AS n FROM rollups "
                "WHERE family = 'volume' AND dim = '' AND day BETWEEN ? AND ? "
                "GROUP BY environment ORDER BY n DESC, environment"
            ),
            (start, end),
        )
    return (
        (
            "SELECT environment, count(*) FROM events WHERE ts >= ? AND ts < ? "
            "GROUP BY environment ORDER BY count(*) DESC, environment"
        ),
        (low, high),
    )


def _recent_versions(  # noqa: PLR0917 - both sources' bounds
    rolled: bool, env: str, start: dt.date, end: dt.date, low: dt.datetime, high: dt.datetime
) -> Statement:
    """ui_versions, last seen first (by day when from rollups, then by name)."""
    if rolled:
        return (
            (
                "SELECT dim_value FROM rollups WHERE family = 'volume' AND environment = ? "
                "AND dim = 'ui_version' AND dim_value IS NOT NULL AND day BETWEEN ? AND ? "
                "GROUP BY dim_value ORDER BY max(day) DESC, dim_value DESC LIMIT ?"
            ),
            (env, start, end, MAX_CHOICES),
        )
    return (
        (
            "SELECT ui_version FROM events WHERE environment = ? AND ts >= ? AND ts < ? "
            "AND ui_version IS NOT NULL GROUP BY ui_version ORDER BY max(ts) DESC LIMIT ?"
        ),
        (env, low, high, MAX_CHOICES),
    )
