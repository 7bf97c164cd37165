"""The dashboard over HTTP on a real app: simulated data in a data directory, uvicorn on
loopback, API tokens per role. What a browser sees without running script: status codes,
redirects, navigation per role, headers, escaping, exports and their audit records."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.web.serving import served

from stumble.access.audit import AuditAction, audit_paths, read_records
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.app import CollectorServices, create_app
from stumble.cli.main import main
from stumble.config import Settings
from stumble.web.dashboard import NAVIGATION, _csv_cell

PAGES = [item.path for item in NAVIGATION]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dashboard") / "data"
    # The simulator's history ends today: the dashboard's default "last 7 days" holds data.
    assert main(["simulate", "--sessions", "600", "--days", "10", "--data", str(directory)]) == 0
    return directory


class Site:
    def __init__(self, url: str, tokens: dict[Role, str], services: CollectorServices) -> None:
        self.url = url
        self.tokens = tokens
        self.services = services

    def get(self, path: str, role: Role | None = None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.get(
            self.url + path, headers=headers, timeout=60, follow_redirects=False, **kwargs
        )


@pytest.fixture(scope="module")
def site(data_dir: Path) -> Iterator[Site]:
    tokens = {
        role: TokenRing(data_dir).create(role, f"dash_{role}_{uuid.uuid4().hex[:6]}")[0]
        for role in Role
    }
    settings = Settings(data_dir=str(data_dir), loader_interval_s=0.2)
    app = create_app(settings)
    with served(app) as url:
        yield Site(url, tokens, app.state.services)


def nav_links(html: str) -> list[str]:
    nav = html.split('<nav class="sidenav"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_exactly_the_pages_it_may_open(site: Site, role: Role) -> None:
    allowed = [item.path for item in NAVIGATION if item.access.granted_to(role)]
    for path in PAGES:
        response = site.get(path, role)
        if path == "/" and "/" not in allowed:
            # A role without reports is sent on to its first page rather than refused.
            assert response.status_code == 303
            assert response.headers["location"] == allowed[0]
            continue
        expected = 200 if path in allowed else 403
        assert response.status_code == expected, (role, path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert nav_links(response.text) == allowed, (role, path)


def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(site: Site) -> None:
    response = site.get("/forms?range=28d")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fforms%3Frange%3D28d"
    page = site.get("/signin?next=%2Fforms%3Frange%3D28d")
    assert page.status_code == 200
    assert 'data-next="/forms?range=28d"' in page.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil"])
def test_sign_in_never_sends_a_browser_to_another_site(site: Site, target: str) -> None:
    page = site.get("/signin", params={"next": target})
    assert 'data-next="/"' in page.text


def test_a_one_time_link_lands_on_the_overview(site: Site) -> None:
    now = dt.datetime.now(dt.UTC)
    _, token = site.services.tokens.create(Role.ANALYST, f"link_{uuid.uuid4().hex[:6]}", now=now)
    code = site.services.sessions.create_one_time_link(token, dt.timedelta(minutes=5), now)
    redeemed = httpx.get(f"{site.url}/signin/{code}", follow_redirects=False, timeout=30)
    assert redeemed.status_code == 303
    assert redeemed.headers["location"] == "/"
    overview = httpx.get(f"{site.url}/", cookies=redeemed.cookies, timeout=60)
    assert overview.status_code == 200
    assert "What needs attention this week?" in overview.text
    assert '<meta name="csrf-token"' in overview.text
    assert 'id="sign-out"' in overview.text


def test_pages_run_no_inline_script_and_load_nothing_from_elsewhere(site: Site) -> None:
    for path in ("/", "/funnel", "/failures"):
        response = site.get(path, Role.ADMIN)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe" not in policy
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
        for attributes, body in scripts:
            # Either a file of ours, or data: a chart spec that no browser runs.
            assert 'src="/static/' in attributes or 'type="application/json"' in attributes
            if body:
                assert "<" not in body, "a spec must not be able to close its element"
        assert not re.search(r'(?:src|href)="(?:https?:)?//', response.text)
        assert " style=" not in response.text


def test_every_chart_carries_a_spec_and_a_table_view(site: Site) -> None:
    html = site.get("/funnel?by=role", Role.ANALYST).text
    figures = re.findall(r'<figure class="chart[^"]*" data-chart id="chart-([\w-]+)">', html)
    assert figures == ["funnel", "step-times", "last-actions", "by-group"]
    assert html.count('class="chart-spec"') == 4
    assert html.count("Table view") == 4
    assert html.count("Download CSV") == 4


def test_the_funnel_page_shows_the_numbers_the_api_answers(site: Site) -> None:
    page = site.get("/funnel?scenario=create_service_request&range=28d", Role.ANALYST).text
    start = re.search(r'name="from" value="([0-9-]+)"', page)
    end = re.search(r'name="to" value="([0-9-]+)"', page)
    assert start and end
    params = {"scenario": "create_service_request", "from": start[1], "to": end[1], "env": "prod"}
    report = site.get("/api/v1/reports/funnel", Role.ANALYST, params=params).json()
    total = next(g for g in report["data"]["groups"] if g["group"] is None)
    table = page.split('id="chart-funnel"', 1)[1].split("</table>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    for step in total["steps"]:
        assert step["label"] in cells
        assert f"{step['sessions']:,}" in cells
        assert f"{step['conversion']['value']:.1%}" in cells


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("range=fortnight", "range"),
        ("range=custom&from=2026-02-30&to=2026-03-01", "from"),
        ("range=custom&from=2026-03-05&to=2026-03-01", "to"),
        ("scenario=no_such_scenario", "scenario"),
        ("by=person", "by"),
        ("role=%3Cscript%3E", "role"),
    ],
)
def test_a_bad_filter_is_a_400_page_that_names_the_parameter(
    site: Site, query: str, named: str
) -> None:
    response = site.get(f"/funnel?{query}", Role.ANALYST)
    assert response.status_code == 400
    assert named in response.text
    assert "<script>" not in response.text and "no_such_scenario" not in response.text


def test_an_export_is_csv_and_is_audited_without_values(site: Site, data_dir: Path) -> None:
    response = site.get("/export/forms/field-errors.csv?range=28d&role=operator", Role.ANALYST)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:4] == ["form", "step", "field", "error"]
    records = read_records(audit_paths(data_dir).log).records
    export = [r for r in records if r.action == AuditAction.EXPORT][-1]
    assert export.detail is not None
    assert export.detail.target == "forms.field-errors"
    assert export.detail.filters == ("range", "role")
    assert export.detail.rows == len(rows) - 1
    assert "operator" not in str(export)


def test_exports_follow_the_page_permissions(site: Site) -> None:
    assert site.get("/export/funnel/funnel.csv", Role.AUDITOR).status_code == 403
    assert site.get("/export/health/volume.csv", Role.AUDITOR).status_code == 200
    assert site.get("/export/funnel/nothing.csv", Role.ANALYST).status_code == 404
    assert site.get("/export/admin/keys.csv", Role.ADMIN).status_code == 404


@pytest.mark.parametrize("text", ["=HYPERLINK(1)", "+1", "-cmd", "@SUM(1)"])
def test_csv_cells_never_start_a_formula(text: str) -> None:
    assert str(_csv_cell(text)).startswith("'")
    assert _csv_cell(-3) == -3


def test_static_files_are_compressed_and_versioned(site: Site) -> None:
    html = site.get("/", Role.ANALYST).text
    link = re.search(r'src="(/static/charts\.js\?v=[0-9a-f]{12})"', html)
    assert link, "the chart bundle is linked with its content hash"
    plain = httpx.get(site.url + link[1], headers={"accept-encoding": "identity"}, timeout=30)
    packed = httpx.get(site.url + link[1], headers={"accept-encoding": "gzip"}, timeout=30)
    assert plain.status_code == packed.status_code == 200
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx decodes it back
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert httpx.get(site.url + "/static/secrets.txt", timeout=30).status_code == 404
    assert gzip  # the module is imported for readers: the server uses it


def test_the_audit_page_records_its_own_reading(site: Site, data_dir: Path) -> None:
    before = len(read_records(audit_paths(data_dir).log).records)
    page = site.get("/audit", Role.AUDITOR)
    assert page.status_code == 200
    assert "Intact:" in page.text
    records = read_records(audit_paths(data_dir).log).records
    assert len(records) > before
    assert any(r.action == AuditAction.AUDIT_READ for r in records[before:])


def test_raw_reads_from_the_page_are_audited(site: Site, data_dir: Path) -> None:
    page = site.get("/raw", Role.ENGINEER)
    assert page.status_code == 200
    session = re.search(r'<td><a href="/raw/session/(h_[a-z]{16})">', page.text)
    assert session, "the raw page links each session to its timeline"
    timeline = site.get(f"/raw/session/{session[1]}", Role.ENGINEER)
    assert timeline.status_code == 200
    routes = [
        r.detail.route
        for r in read_records(audit_paths(data_dir).log).records
        if r.action == AuditAction.RAW_READ and r.detail is not None
    ]
    assert routes[-2:] == ["/raw", "/raw/session/:id"]


def test_a_long_table_shows_its_first_rows_and_sends_the_rest_to_the_csv() -> None:
    from stumble.analytics.results import Column, Table
    from stumble.dashboard.model import Page, Section, TableBlock
    from stumble.web.dashboard import MAX_TABLE_ROWS, Renderer

    rows = [(f"route_{i}", i) for i in range(MAX_TABLE_ROWS + 50)]
    table = Table("Errors by route", (Column("route"), Column("events", "int")), rows)
    page = Page("failures", "What breaks?", "team", [Section("s", [TableBlock("t", table)])])
    html = (
        Renderer()
        .templates.get_template("page.html")
        .render(assets={}, page=page, nav=[], current="", principal=None, bar=None, export_query="")
    )
    assert html.count("<tr>") == MAX_TABLE_ROWS + 1  # the header row, then the first rows
    assert f"The first {MAX_TABLE_ROWS} of {len(rows)} rows" in html


def test_the_data_health_page_shows_the_pipeline_now(site: Site) -> None:
    page = site.get("/health", Role.ENGINEER)
    assert page.status_code == 200
    assert "Pipeline now" in page.text and "running" in page.text
    assert "Pipeline now" not in site.get("/failures", Role.ENGINEER).text


def test_the_alerts_page_lists_rule_states_for_report_readers(site: Site) -> None:
    page = site.get("/alerts", Role.ANALYST)
    assert page.status_code == 200 and "What is breaking now" in page.text
    assert site.get("/alerts", Role.AUDITOR).status_code == 200  # data health readers too
