"""The review's calendar: its time zone and ISO weeks (``2026-W49``)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Final

_WEEK: Final = re.compile(r"(?P<year>[0-9]{4})-W(?P<week>[0-9]{2})")


class CalendarError(ValueError):
    """A week or date that cannot be used; the message names what was expected."""


def review_zone(name: str) -> dt.tzinfo:
    """The configured zone, or the server's local zone when ``name`` is empty."""
    if name:
        return zoneinfo.ZoneInfo(name)
    local = dt.datetime.now().astimezone().tzinfo
    return local if local is not None else dt.UTC


@dataclass(frozen=True, slots=True, order=True)
class Week:
    """An ISO week: Monday ``start`` to Sunday ``end``, both included."""

    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Week:
        match = _WEEK.fullmatch(text)
        if match is None:
            raise CalendarError("a week is written YYYY-Www, e.g. 2026-W49")
        year, number = int(match["year"]), int(match["week"])
        try:
            dt.date.fromisocalendar(year, number, 1)
        except ValueError:
            raise CalendarError(f"{year} has no week {number}") from None
        return cls(year, number)

    @classmethod
    def of(cls, day: dt.date) -> Week:
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def start(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.number, 1)

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=6)

    def previous(self) -> Week:
        return Week.of(self.start - dt.timedelta(days=7))

    def __str__(self) -> str:
        return f"{self.year}-W{self.number:02d}"
