"""Coarse device type and browser family from a User-Agent, which is itself never stored.

Substring rules, not a parser: stumble only needs "desktop/tablet/mobile" and a browser family
to compare experiences across groups. Order matters because every Chromium browser also says
"Chrome" and "Safari".
"""

from __future__ import annotations

import functools
from typing import Final

_BROWSERS: Final[tuple[tuple[str, str], ...]] = (
    ("YaBrowser", "yandex"),
    ("Edg/", "edge"),
    ("Edge/", "edge"),
    ("Firefox/", "firefox"),
    ("FxiOS", "firefox"),
    ("Chrome/", "chrome"),
    ("Chromium/", "chrome"),
    ("CriOS", "chrome"),
    ("Safari/", "safari"),
)


@functools.lru_cache(maxsize=1024)
def classify_user_agent(user_agent: str) -> tuple[str | None, str | None]:
    """(device_type, browser) or (None, None) for an empty User-Agent."""
    if not user_agent:
        return None, None
    return _device_type(user_agent), _browser(user_agent)


def _device_type(ua: str) -> str:
    if "iPad" in ua or "Tablet" in ua or ("Android" in ua and "Mobile" not in ua):
        return "tablet"
    if "Mobi" in ua or "iPhone" in ua or "Android" in ua:
        return "mobile"
    return "desktop"


def _browser(ua: str) -> str:
    return next((family for needle, family in _BROWSERS if needle in ua), "other")
