"""The dashboard's chart bundle (``web/static/charts.js``) in Debian's Chromium, under the CSP the
dashboard sends: every chart renders, nothing is blocked or logged, nothing leaves the origin.

The page is served by a small Starlette app with the committed bundle and stylesheet, so what is
tested is what a Python install serves.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from tests.web.serving import served

import stumble.web

pytestmark = pytest.mark.browser

STATIC = Path(stumble.web.__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DAYS = [f"2025-03-{day:02d}" for day in range(1, 15)]

FUNNEL = {
    "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
    "title": "Checkout funnel",  # dropped in the browser: the figcaption is the title
    "description": "Sessions reaching each step of the checkout",
    "height": {"step": 28},
    "data": {
        "values": [
            {"step": "1. Cart", "sessions": 1840},
            {"step": "2. Address", "sessions": 1322},
            {"step": "3. Payment", "sessions": 977},
            {"step": "4. Confirmation, a long label for the axis", "sessions": 804},
        ]
    },
    "mark": "bar",
    "encoding": {
        "y": {"field": "step", "type": "nominal", "sort": None, "title": None},
        "x": {"field": "sessions", "type": "quantitative", "title": "Sessions"},
        "tooltip": [
            {"field": "step", "type": "nominal"},
            {"field": "sessions", "type": "quantitative", "format": ","},
        ],
    },
}
TREND = {
    "height": 220,
    "data": {
        "values": [
            {"day": day, "rate": round(0.02 + 0.004 * (i % 5), 4)} for i, day in enumerate(DAYS)
        ]
    },
    "mark": {"type": "line", "point": True},
    "encoding": {
        "x": {"field": "day", "type": "temporal", "timeUnit": "utcyearmonthdate", "title": None},
        "y": {"field": "rate", "type": "quantitative", "axis": {"format": ".1%"}, "title": "Rate"},
    },
}
STACKED = {
    "height": 220,
    "data": {
        "values": [
            {"day": day, "outcome": outcome, "sessions": 40 + 7 * i + 11 * j}
            for i, day in enumerate(DAYS[:7])
            for j, outcome in enumerate(["completed", "abandoned", "errored"])
        ]
    },
    "mark": "bar",
    "encoding": {
        "x": {"field": "day", "type": "ordinal", "timeUnit": "utcmonthdate", "title": None},
        "y": {"field": "sessions", "type": "quantitative", "stack": "zero", "title": "Sessions"},
        "color": {"field": "outcome", "type": "nominal", "title": "Outcome"},
    },
}
VARIANT = {"field": "variant", "type": "nominal", "title": None}
INTERVAL = {
    "height": 200,
    "data": {
        "values": [
            {"variant": "A", "rate": 0.41, "lo": 0.37, "hi": 0.45},
            {"variant": "B", "rate": 0.47, "lo": 0.43, "hi": 0.51},
            {"variant": "C", "rate": 0.39, "lo": 0.33, "hi": 0.46},
        ]
    },
    "layer": [
        {
            "mark": "bar",
            "encoding": {
                "x": VARIANT,
                "y": {"field": "rate", "type": "quantitative", "axis": {"format": ".0%"}},
            },
        },
        {
            "mark": {"type": "errorbar", "ticks": True},
            "encoding": {
                "x": VARIANT,
                "y": {"field": "lo", "type": "quantitative", "title": "Completion rate"},
                "y2": {"field": "hi"},
            },
        },
        # The baseline across the whole chart.
        {"mark": {"type": "rule", "strokeDash": [4, 3]}, "encoding": {"y": {"datum": 0.42}}},
    ],
}
GOOD = {"funnel": FUNNEL, "trend": TREND, "stacked": STACKED, "interval": INTERVAL}
BROKEN = {
    "bad-json": '{"mark": "bar", "data": {"values": [1, 2,',
    "bad-spec": json.dumps({"mark": "no-such-mark", "data": {"values": [{"a": 1}]}}),
    # Data from elsewhere is refused by the bundle's loader: no request, not even a blocked one.
    "bad-url": json.dumps(
        {
            "data": {"url": "https://charts.example/data.json"},
            "mark": "bar",
            "encoding": {"x": {"field": "a", "type": "quantitative"}},
        }
    ),
}


def figure(name: str, spec_json: str) -> str:
    # The lead's template escapes "</" inside the JSON the same way (a spec cannot end the script).
    spec_json = spec_json.replace("</", "<\\/")
    return f"""
    <figure class="chart" data-chart id="chart-{name}">
      <figcaption>{html.escape(name)}</figcaption>
      <script type="application/json" class="chart-spec">{spec_json}</script>
      <div class="chart-view" role="img" aria-label="{html.escape(name)} chart"></div>
    </figure>"""


def page(figures: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>charts</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/charts.css">
<link rel="stylesheet" href="/layout.css">
<script src="/static/charts.js" defer></script>
</head><body><main>{figures}</main></body></html>"""


# A dashboard-like layout: two columns from 1000 px on, each a grid item that must let its
# chart shrink (min-width: 0 comes from charts.css).
LAYOUT = """
body { margin: 0; font-family: system-ui, sans-serif; }
main { display: grid; gap: 24px; padding: 16px; grid-template-columns: 1fr; }
@media (min-width: 1000px) { main { grid-template-columns: 1fr 1fr; } }
figure { margin: 0; }
"""


def app() -> Any:
    good = "".join(figure(name, json.dumps(spec)) for name, spec in GOOD.items())
    broken = "".join(figure(name, text) for name, text in BROKEN.items())

    async def charts(request: Request) -> HTMLResponse:
        return HTMLResponse(page(good))

    async def with_broken(request: Request) -> HTMLResponse:
        return HTMLResponse(page(figure("ok", json.dumps(TREND)) + broken))

    async def layout(request: Request) -> HTMLResponse:
        return HTMLResponse(LAYOUT, media_type="text/css")

    async def headers(scope: Any, receive: Any, send: Any) -> None:
        async def send_with_csp(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await inner(scope, receive, send_with_csp)

    inner = Starlette(
        routes=[
            Route("/", charts),
            Route("/broken", with_broken),
            Route("/layout.css", layout),
            Mount("/static", StaticFiles(directory=STATIC)),
        ]
    )
    return headers


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with served(app()) as url:
        yield url


class Watched:
    """A page with every console message, page error, CSP violation and request recorded."""

    def __init__(self, context: Any, url: str) -> None:
        self.console: list[str] = []
        self.requests: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        # CSP violations also reach the console, but the event says which directive refused.
        context.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', (e) =>"
            " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        self.page = context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.url = url

    def open(self, path: str = "/") -> Any:
        self.page.goto(self.url + path)
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('[data-chart]')]"
            ".every((f) => f.dataset.rendered || f.dataset.chartError)"
        )
        return self.page

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations")
        return found

    def foreign_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.url + "/")]


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context
    context.close()


def marks(page: Any, name: str) -> int:
    count: int = page.locator(
        f"#chart-{name} .chart-view svg .mark-rect path, "
        f"#chart-{name} .chart-view svg .mark-line path, "
        f"#chart-{name} .chart-view svg .mark-symbol path, "
        f"#chart-{name} .chart-view svg .mark-rule line"
    ).count()
    return count


def test_every_chart_renders_under_the_csp_without_a_console_message(
    context: Any, base_url: str
) -> None:
    watched = Watched(context, base_url)
    page = watched.open()

    for name in GOOD:
        chart = page.locator(f"#chart-{name}")
        assert chart.get_attribute("data-rendered") == "true", name
        assert chart.get_attribute("data-chart-error") is None, name
        assert page.locator(f"#chart-{name} .chart-view svg.marks").count() == 1, name
        assert marks(page, name) > 0, name
        # The spec's title is not drawn: the figcaption is the title.
        assert page.locator(f"#chart-{name} .chart-view svg .role-title").count() == 0, name
    assert marks(page, "funnel") >= 4  # one bar per step
    assert page.locator("#chart-trend svg .mark-symbol path").count() == len(DAYS)
    assert page.locator("#chart-stacked svg .mark-rect path").count() == 7 * 3
    assert page.locator("#chart-stacked svg .role-legend").count() == 1
    assert page.locator("#chart-interval svg .mark-rule line").count() >= 3  # bars' errorbars
    # Text in the system font, in the theme's sizes.
    label = page.locator("#chart-funnel svg .role-axis-label text").first
    assert "system-ui" in (label.get_attribute("font-family") or "")
    assert label.get_attribute("font-size") == "12px"

    assert watched.console == []
    assert watched.violations() == []
    assert watched.foreign_requests() == []
    # No inline style element was added (it would have been refused).
    assert page.locator("style").count() == 0


def test_a_tooltip_shows_with_the_stylesheet_rules(context: Any, base_url: str) -> None:
    watched = Watched(context, base_url)
    page = watched.open()
    bar = page.locator("#chart-funnel svg .mark-rect path").first
    bar.hover()
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible")
    assert "1,840" in tooltip.inner_text()
    style = page.evaluate(
        "() => { const s = getComputedStyle(document.getElementById('vg-tooltip-element'));"
        " return [s.position, s.visibility]; }"
    )
    assert style == ["fixed", "visible"]  # charts.css applies; the inline defaults are off
    page.mouse.move(1, 1)
    tooltip.wait_for(state="hidden")
    assert watched.console == []
    assert watched.violations() == []


def test_a_broken_spec_is_marked_and_reported_without_its_contents(
    context: Any, base_url: str
) -> None:
    watched = Watched(context, base_url)
    page = watched.open("/broken")

    assert page.locator("#chart-ok").get_attribute("data-rendered") == "true"
    assert page.locator("#chart-bad-json").get_attribute("data-chart-error") == "json"
    assert page.locator("#chart-bad-spec").get_attribute("data-chart-error") == "render"
    assert page.locator("#chart-bad-url").get_attribute("data-chart-error") == "load"
    for name in BROKEN:
        chart = page.locator(f"#chart-{name}")
        assert chart.get_attribute("data-rendered") is None
        assert chart.locator(".chart-view .chart-error").inner_text()
        assert chart.locator(".chart-view svg").count() == 0
    # One short line per broken chart, naming the figure, the code and the error's type only.
    assert sorted(watched.console) == [
        "error: stumble charts: #chart-bad-json: json (SyntaxError)",
        "error: stumble charts: #chart-bad-spec: render (TypeError)",
        "error: stumble charts: #chart-bad-url: load",
    ]
    assert watched.foreign_requests() == []
    assert watched.violations() == []


def chart_widths(page: Any) -> list[dict[str, float]]:
    found: list[dict[str, float]] = page.evaluate(
        """() => [...document.querySelectorAll('[data-chart]')].map((f) => {
            const view = f.querySelector('.chart-view');
            return {id: f.id, container: view.clientWidth,
                    svg: view.querySelector('svg').getBoundingClientRect().width};
        })"""
    )
    return found


def assert_fit(page: Any) -> None:
    for chart in chart_widths(page):
        assert chart["svg"] <= chart["container"] + 0.5, chart
        assert chart["svg"] >= chart["container"] - 2, chart  # and fills it


@pytest.mark.parametrize("width", [768, 1280])
def test_charts_fit_their_container(context: Any, base_url: str, width: int) -> None:
    watched = Watched(context, base_url)
    watched.page.set_viewport_size({"width": width, "height": 900})
    page = watched.open()
    assert_fit(page)
    # Two columns at 1280 px, one at 768: the charts are about half as wide or the full width.
    widest = max(chart["container"] for chart in chart_widths(page))
    if width >= 1000:
        assert widest < width / 2
    else:
        assert widest > width * 0.9
    assert watched.console == []


FITTED = """() => [...document.querySelectorAll('[data-chart] .chart-view')].every((view) => {
    const width = view.querySelector('svg').getBoundingClientRect().width;
    return width <= view.clientWidth + 0.5 && width >= view.clientWidth - 2;
})"""


def test_charts_follow_a_resize(context: Any, base_url: str) -> None:
    watched = Watched(context, base_url)
    page = watched.open()
    before = chart_widths(page)
    for width in (768, 600, 1280):  # one column (wider charts), narrower, two columns again
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(FITTED)  # every chart's resize observer has redrawn it
        assert_fit(page)
    assert chart_widths(page) == before
    assert watched.console == []
