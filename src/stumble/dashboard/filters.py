"""The filter bar: time range, environment, role, device, ui_version and flag, held in the URL
so that a link reproduces the view.

``ViewFilters.parse`` reads a page's query string (raising ``FilterError`` with a message that
names the parameter, never its value) and ``report_params`` turns the filters into the
parameters of ``stumble.reports.catalog`` — the same ones the JSON API takes, so a page and
``/api/v1/reports/...`` with the same filters show the same numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal
from urllib.parse import urlencode

from stumble.events import IDENTIFIER_PATTERN

RangeName = Literal["7d", "28d", "custom"]
RANGE_DAYS: Final[Mapping[str, int]] = {"7d": 7, "28d": 28}
RANGE_LABELS: Final[Mapping[str, str]] = {
    "7d": "Last 7 days",
    "28d": "Last 28 days",
    "custom": "Custom range",
}
DEFAULT_RANGE: Final = "7d"
MAX_CUSTOM_DAYS: Final = 400
FILTER_NAMES: Final = ("range", "from", "to", "env", "role", "device_type", "ui_version", "flag")
_IDENTIFIER: Final = re.compile(IDENTIFIER_PATTERN)


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the parameter, not the value."""


@dataclass(frozen=True, slots=True)
class ViewFilters:
    """What the filter bar holds. ``start`` and ``end`` are whole UTC days, both included."""

    range: RangeName
    start: dt.date
    end: dt.date
    env: str | None
    """None until the page picks the environment that holds data (``with_environment``)."""
    role: str | None = None
    device_type: str | None = None
    ui_version: str | None = None
    flag: str | None = None
    """A flag name (on) or ``!name`` (off)."""

    @classmethod
    def parse(cls, query: Mapping[str, str], today: dt.date) -> ViewFilters:
        range_name = query.get("range") or DEFAULT_RANGE
        if range_name == "custom":
            start = _date(query.get("from"), "from")
            end = _date(query.get("to"), "to")
            if end < start:
                raise FilterError("to must not be before from")
            if (end - start).days >= MAX_CUSTOM_DAYS:
                raise FilterError(f"a custom range may span at most {MAX_CUSTOM_DAYS} days")
        elif range_name in RANGE_DAYS:
            end = today
            start = today - dt.timedelta(days=RANGE_DAYS[range_name] - 1)
        else:
            raise FilterError("range must be 7d, 28d or custom")
        return cls(
            range=range_name,  # type: ignore[arg-type]  # checked just above
            start=start,
            end=end,
            env=_identifier(query.get("env"), "env"),
            role=_identifier(query.get("role"), "role"),
            device_type=_identifier(query.get("device_type"), "device_type"),
            ui_version=_identifier(query.get("ui_version"), "ui_version"),
            flag=_flag(query.get("flag")),
        )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def environment(self) -> str:
        assert self.env is not None, "the page picks an environment before it runs reports"
        return self.env

    def with_environment(self, env: str) -> ViewFilters:
        return replace(self, env=env)

    def shifted(self, days: int) -> ViewFilters:
        """The same filters over a window moved by ``days`` (negative: earlier)."""
        delta = dt.timedelta(days=days)
        return self.spanning(self.start + delta, self.end + delta)

    def spanning(self, start: dt.date, end: dt.date) -> ViewFilters:
        """The same filters over the days ``start`` to ``end``."""
        return replace(self, range="custom", start=start, end=end)

    def describe_range(self) -> str:
        if self.range != "custom":
            return f"{RANGE_LABELS[self.range]} ({self.start:%d %b} – {self.end:%d %b %Y})"
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"

    def report_params(self) -> dict[str, str]:
        """The catalog's parameters for these filters (what the JSON API takes)."""
        params = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        params["env"] = self.environment
        for name in ("role", "device_type", "ui_version", "flag"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params

    def query_items(self) -> list[tuple[str, str]]:
        """The filters as URL parameters (defaults left out, so links stay short)."""
        items: list[tuple[str, str]] = []
        if self.range != DEFAULT_RANGE:
            items.append(("range", self.range))
        if self.range == "custom":
            items += [("from", self.start.isoformat()), ("to", self.end.isoformat())]
        for name in ("env", "role", "device_type", "ui_version", "flag"):
            value = getattr(self, name)
            if value is not None:
                items.append((name, value))
        return items

    def link(self, path: str, **extra: str | None) -> str:
        """``path`` with these filters and ``extra`` page parameters (None drops one)."""
        items = self.query_items() + [(k, v) for k, v in extra.items() if v is not None]
        return f"{path}?{urlencode(items)}" if items else path


def _date(text: str | None, name: str) -> dt.date:
    if not text:
        raise FilterError(f"a custom range needs {name} (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FilterError(f"{name} must be a date (YYYY-MM-DD)") from None


def _identifier(text: str | None, name: str) -> str | None:
    """A filter value is an identifier as the plan and the SDK know them (or absent)."""
    if not text:
        return None
    if not _IDENTIFIER.fullmatch(text):
        raise FilterError(f"{name} must be an identifier ({IDENTIFIER_PATTERN})")
    return text


def _flag(text: str | None) -> str | None:
    if not text:
        return None
    name = text.removeprefix("!")
    _identifier(name, "flag")
    return text
