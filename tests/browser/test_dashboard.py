"""The dashboard end to end: Debian's Chromium signs in as each role through the real sign-in
page of a real ``stumble demo`` (with simulated history) and visits every page of the
navigation.

A page a role may open answers 200 and renders cleanly (no console error or warning, no page
error, no failed request, nothing from another host, every chart drawn) with the navigation the
role may follow; a page it may not open answers a 403 page and is not in its navigation. The
funnel and form-error tables show the JSON API's numbers for the same filters, CSV exports work
and are audited, and a signed-out visit comes back to the page asked for after signing in.

Every visited page is saved as a full-page screenshot at 1280 and 768 px in
``$STUMBLE_ARTIFACTS/screenshots`` (default ``test-artifacts/`` at the repository root).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from tests.browser.conftest import DemoServer

from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.analytics.rendering import format_value
from stumble.web.dashboard import BY_SLUG, NAVIGATION

pytestmark = pytest.mark.browser

HISTORY_SESSIONS = 800
HISTORY_DAYS = 21
WIDTHS = (1280, 768)
REPO = Path(__file__).resolve().parents[2]
SLUGS = {item.path: slug for slug, item in BY_SLUG.items()}
CHART_STATES = """() => [...document.querySelectorAll('[data-chart]')].map((f) => {
    const view = f.querySelector('.chart-view');
    const svg = view ? view.querySelector('svg') : null;
    return {id: f.id, rendered: f.dataset.rendered || null, error: f.dataset.chartError || null,
            svgs: view ? view.querySelectorAll('svg').length : 0,
            marks: svg ? svg.querySelectorAll('.role-mark > *').length : 0};
})"""
CHARTS_SETTLED = """() => [...document.querySelectorAll('[data-chart]')]
    .every((f) => f.dataset.rendered || f.dataset.chartError)"""
# From test_charts: every chart's resize observer has redrawn it to its container's width.
CHARTS_FIT = """() => [...document.querySelectorAll('[data-chart] .chart-view')].every((view) => {
    const svg = view.querySelector('svg');
    if (!svg) return true;
    const width = svg.getBoundingClientRect().width;
    return width <= view.clientWidth + 0.5 && width >= view.clientWidth - 2;
})"""
NO_SUCH_SESSION = "h_aaaaaaaaaaaaaaaa"


def screenshots_dir() -> Path:
    root = Path(os.environ.get("STUMBLE_ARTIFACTS") or REPO / "test-artifacts")
    folder = root / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def nav_for(role: Role) -> list[str]:
    return [item.path for item in NAVIGATION if item.access.granted_to(role)]


def fmt(value: object, kind: str) -> str:
    return format_value(value, kind)  # type: ignore[arg-type]  # the page's format names


# --- the server -----------------------------------------------------------------------------


@dataclass
class Site:
    server: DemoServer
    tokens: dict[Role, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET with the admin's API token; the JSON answer."""
        headers = {"Authorization": f"Bearer {self.tokens[Role.ADMIN]}"}
        answer = httpx.get(f"{self.url}{path}", params=params, headers=headers, timeout=30)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        return answer.json()

    def audit_mark(self) -> tuple[int, int]:
        """Where the audit log ends now: the last record's time and sequence number."""
        last = self.api("/api/v1/audit")["records"][-1]
        return last["at_ms"], last["seq"]

    def audit_records(self, action: str, after: tuple[int, int]) -> list[dict[str, Any]]:
        """Records of ``action`` written after ``after`` (an ``audit_mark``)."""
        since, seq = after
        records = self.api("/api/v1/audit", {"since": str(since)})["records"]
        return [r for r in records if r["seq"] > seq and r.get("action") == action]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    server = DemoServer(data_dir, history_sessions=HISTORY_SESSIONS, history_days=HISTORY_DAYS)
    ring = TokenRing(data_dir)
    tokens = {role: ring.create(role, f"browser_{role.value}")[0] for role in Role}
    server.start(timeout_s=120)
    yield Site(server, tokens)
    server.kill()


# --- the browser ----------------------------------------------------------------------------


class Watched:
    """A browser context's page with every console message, page error, failed request and
    request recorded (``reset()`` starts afresh for the next page)."""

    def __init__(self, browser: Any, site: Site) -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
        self.context.set_default_timeout(20_000)
        self.console: list[tuple[str, str, str]] = []
        self.page_errors: list[str] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.context.on(
            "requestfailed",
            lambda request: self.failed.append(
                f"{request.method} {request.url}: {request.failure}"
            ),
        )
        self.page = self.context.new_page()
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            where = (message.location or {}).get("url", "")
            self.console.append((message.type, message.text, where))

    def reset(self) -> None:
        self.console.clear()
        self.page_errors.clear()
        self.failed.clear()
        self.requests.clear()

    def troubles(self, forbidden_url: str | None = None) -> list[str]:
        """Console errors and warnings, page errors, failed and foreign requests. On a 403 page
        (``forbidden_url``) Chromium's own error about that document is expected."""
        found = []
        for kind, text, where in self.console:
            if forbidden_url and "status of 403" in text and where == forbidden_url:
                continue
            found.append(f"console {kind}: {text} ({where})")
        found += [f"page error: {error}" for error in self.page_errors]
        found += [f"request failed: {failed}" for failed in self.failed]
        found += [
            f"request to another host: {url}"
            for url in self.requests
            if not url.startswith(self.site.url + "/") and not url.startswith("data:")
        ]
        return found

    def sign_in(self, role: Role, landing: str) -> None:
        """Through the sign-in page: paste the token, submit, land on ``landing``."""
        self.page.goto(f"{self.site.url}/signin")
        self.page.fill("#token", self.site.tokens[role])
        self.page.click("#signin-form button[type=submit]")
        self.page.wait_for_url(self.site.url + landing)
        self.page.wait_for_load_state("load")

    def open(self, path: str) -> Any:
        response = self.page.goto(self.site.url + path)
        assert response is not None
        self.wait_for_charts()
        return response

    def wait_for_charts(self) -> None:
        self.page.wait_for_function(CHARTS_SETTLED)

    def nav(self) -> list[str]:
        found: list[str] = self.page.eval_on_selector_all(
            "nav.sidenav a", "links => links.map((a) => a.getAttribute('href'))"
        )
        return found

    def chart_troubles(self) -> list[str]:
        found = []
        for chart in self.page.evaluate(CHART_STATES):
            if chart["rendered"] != "true" or chart["error"] is not None:
                found.append(
                    f"chart #{chart['id']}: rendered={chart['rendered']} error={chart['error']}"
                )
            elif chart["svgs"] != 1 or chart["marks"] == 0:
                found.append(f"chart #{chart['id']}: {chart['svgs']} svg, {chart['marks']} marks")
        return found

    def screenshots(self, name: str) -> list[str]:
        """Full-page screenshots at every width (charts refitted first); back to the first."""
        folder = screenshots_dir()
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.wait_for_function(CHARTS_FIT)
            self.page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        self.page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        self.page.wait_for_function(CHARTS_FIT)
        return self.chart_troubles()  # still drawn after the resizes

    def table(self, selector: str) -> tuple[list[str], list[list[str]]]:
        """A table's header and body cells as the page shows them."""
        table = self.page.locator(selector)
        header: list[str] = table.locator("thead th").evaluate_all(
            "cells => cells.map((c) => c.textContent.trim())"
        )
        rows: list[list[str]] = table.locator("tbody tr").evaluate_all(
            "rows => rows.map((r) => [...r.cells].map((c) => c.textContent.trim()))"
        )
        if table.locator("tbody td.empty").count():  # "No rows for these filters."
            assert len(rows) == 1, selector
            return header, []
        return header, rows

    def filters(self) -> dict[str, str]:
        """The filters the page shows: the dates of the period and the chosen environment."""
        return {
            "from": self.page.input_value("#f-from"),
            "to": self.page.input_value("#f-to"),
            "env": self.page.input_value("#f-env"),
        }

    def choose(self, picker: str, value: str) -> None:
        """Pick a value in the filter form and apply it, as a person would."""
        self.page.select_option(f"#{picker}", value)
        with self.page.expect_navigation():
            self.page.click("form.filters button[type=submit]")
        self.wait_for_charts()

    def view_troubles(self) -> list[str]:
        """Chart and page troubles of the page shown, named by its URL; then a clean slate."""
        where = self.page.url.removeprefix(self.site.url)
        found = [f"{where}: {trouble}" for trouble in self.chart_troubles() + self.troubles()]
        self.reset()
        return found

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched_for(browser: Any, site: Site) -> Iterator[Any]:
    opened: list[Watched] = []

    def make() -> Watched:
        opened.append(Watched(browser, site))
        return opened[-1]

    yield make
    for watched in opened:
        watched.close()


# --- every page for every role --------------------------------------------------------------


def check_allowed(watched: Watched, role: Role, path: str, current: str, shot: str) -> list[str]:
    problems = []
    response = watched.open(path)
    if response.status != 200:
        return [f"{path}: HTTP {response.status}, expected 200"]
    problems += watched.chart_troubles()
    if watched.nav() != nav_for(role):
        problems.append(f"navigation {watched.nav()}, expected {nav_for(role)}")
    marked = watched.page.locator("nav.sidenav a[aria-current=page]")
    if marked.count() != 1 or marked.get_attribute("href") != current:
        problems.append(f"the navigation does not mark {current} as the current page")
    problems += watched.screenshots(shot)
    problems += watched.troubles()
    return [f"{path}: {problem}" for problem in dict.fromkeys(problems)]


def check_forbidden(watched: Watched, role: Role, path: str, shot: str) -> list[str]:
    problems = []
    response = watched.open(path)
    if response.status != 403:
        problems.append(f"{path}: HTTP {response.status}, expected 403")
    if not response.headers.get("content-type", "").startswith("text/html"):
        problems.append(f"{path}: the 403 answer is {response.headers.get('content-type')}")
    if watched.page.locator("h1").inner_text() != "Not available to your role":
        problems.append(f"{path}: the 403 page says {watched.page.locator('h1').inner_text()!r}")
    if path in watched.nav() or watched.nav() != nav_for(role):
        problems.append(f"{path}: navigation on the 403 page {watched.nav()}")
    problems += [f"{path}: {p}" for p in watched.screenshots(shot)]
    problems += [f"{path}: {p}" for p in watched.troubles(forbidden_url=watched.site.url + path)]
    return problems


def check_landing(watched: Watched, landing: str) -> list[str]:
    """``/`` sends a role without reports to its first page instead of refusing it."""
    problems = []
    response = watched.open("/")
    redirect = response.request.redirected_from
    if redirect is None or redirect.url != watched.site.url + "/":
        problems.append("/: not redirected")
    if watched.page.url != watched.site.url + landing or response.status != 200:
        problems.append(f"/: ended at {watched.page.url} with HTTP {response.status}")
    problems += [f"/: {p}" for p in watched.troubles()]
    return problems


def session_pseudonym(watched: Watched) -> tuple[str, bool]:
    """A session on the raw page: its link if the page offers one, else the table's cell."""
    link = watched.page.locator("main a[href^='/raw/session/']").first
    if link.count():
        href = link.get_attribute("href") or ""
        return href.removeprefix("/raw/session/").split("?")[0], True
    header, rows = watched.table("main table")
    column = header.index("session")
    return rows[0][column], False


@pytest.mark.parametrize("role", list(Role), ids=[role.value for role in Role])
def test_every_page_for_every_role(watched_for: Any, site: Site, role: Role) -> None:
    watched = watched_for()
    allowed = nav_for(role)
    landing = "/" if "/" in allowed else allowed[0]
    watched.sign_in(role, landing)
    assert watched.page.locator(".role-badge").inner_text() == role.value
    problems = [f"signing in: {p}" for p in watched.troubles()]
    for item in NAVIGATION:
        watched.reset()
        shot = f"{role.value}-{SLUGS[item.path]}"
        if item.path in allowed:
            problems += check_allowed(watched, role, item.path, item.path, shot)
        elif item.path == "/":
            problems += check_landing(watched, landing)
        else:
            problems += check_forbidden(watched, role, item.path, shot)

    # One session's timeline, from the raw page.
    watched.reset()
    if "/raw" in allowed:
        watched.open("/raw")
        pseudonym, linked = session_pseudonym(watched)
        assert re.fullmatch(r"h_[a-z]+", pseudonym), pseudonym
        if linked:
            watched.page.click(f"main a[href^='/raw/session/{pseudonym}']")
        path = f"/raw/session/{pseudonym}"
        problems += check_allowed(watched, role, path, "/raw", f"{role.value}-raw-session")
        if watched.page.locator("main table tbody tr").count() == 0:
            problems.append(f"{path}: the timeline shows no events")
    else:
        path = f"/raw/session/{NO_SUCH_SESSION}"
        problems += check_forbidden(watched, role, path, f"{role.value}-raw-session")

    assert problems == [], "\n".join(problems)


# --- the numbers equal the API's ------------------------------------------------------------


def funnel_rows(group: dict[str, Any]) -> list[list[str]]:
    return [
        [
            step["label"],
            "hidden" if step["hidden"] else fmt(step["sessions"], "int"),
            fmt(step["conversion"]["value"], "share"),
            fmt(step["conversion"]["low"], "share"),
            fmt(step["conversion"]["high"], "share"),
            fmt(step["step_conversion"]["value"], "share"),
            fmt(step["drop_off"], "int"),
            fmt(step["drop_off_share"], "share"),
        ]
        for step in group["steps"]
    ]


def step_time_rows(group: dict[str, Any]) -> list[list[str]]:
    return [
        [
            step["label"],
            fmt(step["time_from_previous"]["n"] or None, "int"),
            fmt(step["time_from_previous"]["p50"], "ms"),
            fmt(step["time_from_previous"]["p95"], "ms"),
            fmt(step["slower_than_limit"], "int"),
        ]
        for step in group["steps"][1:]
    ]


def test_funnel_numbers_equal_the_api(watched_for: Any, site: Site) -> None:
    watched = watched_for()
    watched.sign_in(Role.ANALYST, "/")
    watched.open("/funnel")
    scenarios = watched.page.eval_on_selector_all(
        "#f-scenario option", "options => options.map((o) => o.value)"
    )
    assert len(scenarios) >= 2
    compared = 0
    troubles = watched.view_troubles()
    for scenario in scenarios:
        watched.choose("f-scenario", scenario)
        assert watched.page.input_value("#f-scenario") == scenario
        assert f"scenario={scenario}" in watched.page.url
        filters = watched.filters()
        assert filters["env"] == "dev"  # the demo's history, picked by default
        api = site.api("/api/v1/reports/funnel", {"scenario": scenario, **filters})
        assert api["meta"]["environment"] == "dev"
        assert api["meta"]["time_from"].startswith(filters["from"])
        (total,) = [group for group in api["data"]["groups"] if group["group"] is None]

        header, rows = watched.table("#chart-funnel table")
        assert header == [
            "step",
            "sessions",
            "conversion",
            "95% low",
            "95% high",
            "from previous",
            "dropped",
            "dropped share",
        ]
        assert rows == funnel_rows(total), scenario
        assert len(rows) == len(api["data"]["steps"])
        header, rows = watched.table("#chart-step-times table")
        assert header == ["step", "sessions", "p50", "p95", "slower than limit"]
        assert rows == step_time_rows(total), scenario
        compared += sum(1 for step in total["steps"] if not step["hidden"] and step["sessions"])
        troubles += watched.view_troubles()
    assert compared > 0, "no funnel had a shown step: the history is too thin to compare"
    assert troubles == [], "\n".join(troubles)


def time_lost(error: dict[str, Any]) -> float | None:
    with_error, without = error["time_with_error"]["p50"], error["time_without_error"]["p50"]
    if with_error is None or without is None:
        return None
    return max(0.0, with_error - without)


def impact(error: dict[str, Any]) -> float:
    return round((error["sessions"] or 0) * (time_lost(error) or 0) / 60_000, 1)


def field_error_row(error: dict[str, Any]) -> list[str]:
    return [
        error["form_id"],
        fmt(error["step"], "int"),
        error["field_id"],
        error["error_type"],
        fmt(error["sessions"], "int"),
        fmt(error["share"]["value"], "share"),
        fmt(error["attempts_median"], "number"),
        fmt(error["time_with_error"]["p50"], "ms"),
        fmt(error["time_without_error"]["p50"], "ms"),
        fmt(time_lost(error), "ms"),
        fmt(impact(error), "number"),
    ]


def form_step_row(step: dict[str, Any]) -> list[str]:
    return [
        step["form_id"],
        fmt(step["step"], "int"),
        "hidden" if step["hidden"] else fmt(step["entered"], "int"),
        fmt(step["completion"]["value"], "share"),
        fmt(step["with_any_error"]["value"], "share"),
        fmt(step["time_on_step"]["p50"], "ms"),
        fmt(step["input_time"]["p50"], "ms"),
        fmt(step["error_fixing_time"]["p50"], "ms"),
    ]


FIELD_ERROR_HEADER = [
    "form",
    "step",
    "field",
    "error",
    "sessions",
    "share of sessions",
    "attempts (median)",
    "time on step with",
    "without",
    "time lost",
    "impact (session-minutes)",
]


def test_form_error_numbers_equal_the_api(watched_for: Any, site: Site) -> None:
    watched = watched_for()
    watched.sign_in(Role.ANALYST, "/")
    watched.open("/forms")
    forms = watched.page.eval_on_selector_all(
        "#f-form option", "options => options.map((o) => o.value)"
    )
    assert forms[0] == "" and len(forms) >= 2  # all forms, then each form of the plan
    shown_rows = 0
    troubles: list[str] = []
    for form in forms:
        if form:
            watched.choose("f-form", form)
            assert f"form={form}" in watched.page.url
        filters = watched.filters()
        assert filters["env"] == "dev"
        api = site.api("/api/v1/reports/field-errors", filters | ({"form": form} if form else {}))
        errors = [
            e
            for e in api["data"]["errors"]
            if e["group"] is None and not e["hidden"] and e["sessions"]
        ]

        header, rows = watched.table("#chart-field-errors table")
        assert header == FIELD_ERROR_HEADER
        # Every shown error, once, with the API's numbers; ranked by impact.
        assert sorted(rows) == sorted(field_error_row(e) for e in errors), form
        by_row = {tuple(field_error_row(e)): e for e in errors}
        impacts = [impact(by_row[tuple(row)]) for row in rows]
        assert impacts == sorted(impacts, reverse=True), form
        shown_rows += len(rows)

        steps = [s for s in api["data"]["steps"] if s["group"] is None]
        header, rows = watched.table("#chart-form-steps table")
        assert header[:3] == ["form", "step", "entered"]
        assert rows == [form_step_row(s) for s in steps], form
        troubles += watched.view_troubles()
    assert shown_rows > 0, "no field error was shown: the history is too thin to compare"
    assert troubles == [], "\n".join(troubles)


# --- exports --------------------------------------------------------------------------------


def csv_links(watched: Watched) -> list[str]:
    links: list[str] = watched.page.eval_on_selector_all(
        "a.csv-link", "links => links.map((a) => a.getAttribute('href'))"
    )
    return links


def fetch_csv(watched: Watched, href: str) -> list[list[str]]:
    """The export as the signed-in browser gets it (the context's session cookie)."""
    answer = watched.page.request.get(watched.site.url + href)
    assert answer.status == 200, (href, answer.status)
    assert answer.headers["content-type"].startswith("text/csv"), href
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text())))
    assert rows and rows[0], href
    return rows


def test_csv_exports_work_and_are_audited(watched_for: Any, site: Site) -> None:
    analyst = watched_for()
    analyst.sign_in(Role.ANALYST, "/")
    analyst.open("/funnel?scenario=login")
    links = csv_links(analyst)
    assert links and all(href.startswith("/export/funnel/") for href in links)
    before = site.audit_mark()

    # Clicked, the link downloads the file.
    link = analyst.page.locator("#chart-funnel a.csv-link")
    with analyst.page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.startswith("stumble-funnel-funnel-")
    downloaded = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert downloaded[0][:2] == ["step", "sessions"]
    _, rows = analyst.table("#chart-funnel table")
    assert [row[0] for row in downloaded[1:]] == [row[0] for row in rows]

    for href in links:
        fetch_csv(analyst, href)
    records = site.audit_records("export", before)
    expected = ["funnel." + href.split("/")[3].split(".csv")[0] for href in links]
    assert [record["detail"]["target"] for record in records] == ["funnel.funnel", *expected]
    for record in records:
        assert record["actor"]["name"] == "browser_analyst"
        assert record["outcome"] == "ok"
        assert "scenario" in record["detail"]["filters"]

    # The auditor may export what its pages show; the analyst may not export those.
    auditor = watched_for()
    auditor.sign_in(Role.AUDITOR, "/health")
    health_links = csv_links(auditor)
    assert health_links
    before = site.audit_mark()
    for href in health_links:
        fetch_csv(auditor, href)
    records = site.audit_records("export", before)
    assert [r["actor"]["name"] for r in records] == ["browser_auditor"] * len(health_links)
    refused = analyst.page.request.get(site.url + health_links[0])
    assert refused.status == 403
    refused = auditor.page.request.get(site.url + links[0])
    assert refused.status == 403
    assert len(site.audit_records("export", before)) == len(health_links)


# --- signed out -----------------------------------------------------------------------------


def test_a_signed_out_visit_signs_in_and_comes_back(watched_for: Any, site: Site) -> None:
    watched = watched_for()
    wanted = "/forms?" + urlencode({"form": "service_request", "range": "28d"})
    watched.page.goto(site.url + wanted)
    assert watched.page.url == f"{site.url}/signin?next={quote(wanted, safe='')}"
    assert watched.page.locator("#signin-form").is_visible()
    assert watched.nav() == []

    watched.page.fill("#token", site.tokens[Role.ANALYST])
    watched.page.click("#signin-form button[type=submit]")
    watched.page.wait_for_url(site.url + wanted)
    watched.wait_for_charts()
    assert watched.page.input_value("#f-form") == "service_request"
    assert watched.page.input_value("#f-range") == "28d"
    assert watched.chart_troubles() == []
    assert watched.troubles() == [], "\n".join(watched.troubles())


# --- the review loop: a fix recorded from a problem ------------------------------------------


def test_a_fix_is_recorded_from_a_problem_card(watched_for: Any, site: Site) -> None:
    watched = watched_for()
    watched.sign_in(Role.ANALYST, "/")
    watched.open("/?range=28d")  # the whole history: more problems than one week's
    # A problem whose fix has a compare metric to move (field errors, slow steps, drop-offs).
    card = watched.page.locator(".problem", has=watched.page.locator("a[href*='expect=']")).first
    problem = card.locator("h3").inner_text()
    card.locator("a", has_text="Record a fix").click()
    watched.page.wait_for_url(re.compile(r".*/fixes\?.*#record$"))
    form = watched.page.locator("#fix-form")
    assert form.is_visible()
    assert watched.page.input_value("#fix-problem").split(": ", 1)[1] in problem
    assert watched.page.input_value("#fix-expect"), "the metric to move is suggested"
    watched.page.fill("#fix-title", "Clearer message on the failing field")
    watched.page.fill("#fix-hypothesis", "A concrete message tells people what to change.")
    watched.page.fill("#fix-change", "2.1.0")
    watched.page.click("#fix-form button[type=submit]")
    watched.page.wait_for_url(re.compile(r".*/fixes#open$"))
    assert "Clearer message on the failing field" in watched.page.locator("#open").inner_text()
    assert watched.troubles() == [], "\n".join(watched.troubles())
    [fix] = site.api("/api/v1/fixes")["fixes"]
    assert fix["created_by"] == "browser_analyst" and fix["change"]["ui_version"] == "2.1.0"
    watched.screenshots("analyst-fixes-recorded")


def test_roles_that_do_not_record_fixes_get_no_form(watched_for: Any, site: Site) -> None:
    watched = watched_for()
    watched.sign_in(Role.AUDITOR, "/health")
    assert watched.open("/fixes").status == 403


def test_an_admin_turns_a_write_key_off_from_the_admin_page(watched_for: Any, site: Site) -> None:
    watched = watched_for()
    watched.sign_in(Role.ADMIN, "/")
    watched.open("/admin")
    watched.page.on("dialog", lambda dialog: dialog.accept())
    watched.page.locator("button.row-action", has_text="Turn off").first.click()
    watched.page.wait_for_load_state("load")
    watched.page.locator("button.row-action", has_text="Turn on").first.wait_for()
    assert watched.troubles() == [], "\n".join(watched.troubles())
    watched.page.locator("button.row-action", has_text="Turn on").first.click()
    watched.page.locator("button.row-action", has_text="Turn off").first.wait_for()
    # Reading the log is itself recorded: the two changes come just before that read.
    actions = [r["action"] for r in site.api("/api/v1/audit")["records"][-3:]]
    assert actions == ["write_key.update", "write_key.update", "audit.read"]
