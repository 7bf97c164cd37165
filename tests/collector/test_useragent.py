from __future__ import annotations

import pytest

from stumble.collector.useragent import classify_user_agent

CHROME_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
EDGE = CHROME_WIN + " Edg/130.0"
YANDEX = (
    "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/124.0 YaBrowser/24.4 Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1"
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 14; SM-X200) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME_WIN, ("desktop", "chrome")),
        (EDGE, ("desktop", "edge")),
        (YANDEX, ("desktop", "yandex")),
        (IPHONE, ("mobile", "safari")),
        (IPAD, ("tablet", "safari")),
        (ANDROID_TABLET, ("tablet", "chrome")),
        (FIREFOX, ("desktop", "firefox")),
        ("curl/8.0", ("desktop", "other")),
        ("", (None, None)),
    ],
)
def test_coarse_classes(ua: str, expected: tuple[str | None, str | None]) -> None:
    assert classify_user_agent(ua) == expected
