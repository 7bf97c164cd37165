"""The fixes API and page on a real app: record a fix as the UX team, read it back, see it on
the dashboard; who may do what; refusals that name the field."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.web.serving import served

from stumble.access.audit import AuditAction, audit_paths, read_records
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.app import create_app
from stumble.cli.serve import bootstrap_data_dir
from stumble.config import Settings

FIX = {
    "title": "Mask and hint on the IIN/BIN field",
    "problem": "field_error: iin_bin (format) on service_request step 2",
    "scenario": "create_service_request",
    "hypothesis": "A mask and a concrete message will halve format errors.",
    "change": {"ui_version": "2.0.0", "shipped_on": "2026-03-09"},
    "owner": "team_service_desk",
    "expectations": ["field_error_share:service_request step 2 iin_bin format=-20%"],
    "verify_on": "2026-03-16",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[Role, str], Path]]:
    data_dir = tmp_path_factory.mktemp("review") / "data"
    bootstrap_data_dir(Settings(data_dir=str(data_dir)))
    tokens = {
        role: TokenRing(data_dir).create(role, f"review_{role}_{uuid.uuid4().hex[:6]}")[0]
        for role in Role
    }
    with served(create_app(Settings(data_dir=str(data_dir)))) as url:
        yield url, tokens, data_dir


def call(site: tuple[str, dict[Role, str], Path], method: str, path: str, role: Role,
         **kwargs: object) -> httpx.Response:  # fmt: skip
    url, tokens, _ = site
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_the_ux_team_records_a_fix_and_everyone_with_reports_reads_it(
    site: tuple[str, dict[Role, str], Path],
) -> None:
    created = call(site, "POST", "/api/v1/fixes", Role.ANALYST, json={**FIX, "created_by": "x"})
    assert created.status_code == 201, created.text
    fix = created.json()
    assert fix["fix_id"].startswith("fix-") and fix["verdict"] is None
    assert fix["created_by"].startswith("review_analyst_"), "the server says who"
    assert fix["expectations"][0] == {
        "metric": "field_error_share",
        "subject": "service_request step 2 iin_bin format",
        "direction": "decrease",
        "target": -0.2,
    }
    listed = call(site, "GET", "/api/v1/fixes", Role.ENGINEER).json()["fixes"]
    assert fix["fix_id"] in [f["fix_id"] for f in listed]
    assert call(site, "GET", f"/api/v1/fixes/{fix['fix_id']}", Role.ANALYST).status_code == 200
    assert call(site, "GET", "/api/v1/fixes/fix-9999", Role.ANALYST).status_code == 404
    page = call(site, "GET", "/fixes", Role.ANALYST)
    assert page.status_code == 200 and fix["fix_id"] in page.text
    assert "waiting" in page.text or "overdue" in page.text
    records = read_records(audit_paths(site[2]).log).records
    assert any(
        r.action == AuditAction.FIX_CREATE and r.detail and r.detail.target == fix["fix_id"]
        for r in records
    )


def test_auditors_neither_record_nor_read_fixes(site: tuple[str, dict[Role, str], Path]) -> None:
    assert call(site, "POST", "/api/v1/fixes", Role.AUDITOR, json=FIX).status_code == 403
    assert call(site, "GET", "/api/v1/fixes", Role.AUDITOR).status_code == 403


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"owner": "Team Service Desk!"}, "$.owner"),
        ({"verify_on": "2026-03-01"}, "after the day"),
        ({"hypothesis": "ask +7 701 234 5678"}, "personal data"),
        ({"expectations": ["fewer errors"]}, "METRIC:SUBJECT"),
        ({"change": {"shipped_on": "2026-03-09"}}, "one of the two"),
    ],
)
def test_a_bad_fix_is_a_400_that_names_the_field(
    site: tuple[str, dict[Role, str], Path], change: dict[str, object], named: str
) -> None:
    answer = call(site, "POST", "/api/v1/fixes", Role.ANALYST, json={**FIX, **change})
    assert answer.status_code == 400
    assert answer.json()["error"] == "fix.invalid"
    assert named in answer.json()["message"]
    assert "701" not in answer.text and "Team Service Desk" not in answer.text


def test_the_overview_shows_the_loops_own_health(site: tuple[str, dict[Role, str], Path]) -> None:
    page = call(site, "GET", "/", Role.ANALYST)
    assert page.status_code == 200
    assert "The review loop" in page.text and "Fixes verified per week" in page.text


def test_the_fixes_page_exports_and_offers_the_environments_with_data(
    site: tuple[str, dict[Role, str], Path],
) -> None:
    call(site, "POST", "/api/v1/fixes", Role.ANALYST, json=FIX)
    export = call(site, "GET", "/export/fixes/open-fixes.csv", Role.ANALYST)
    assert export.status_code == 200 and "fix-" in export.text
    page = call(site, "GET", "/fixes?problem=slow_step%3A+time+to+x&env=staging", Role.ENGINEER)
    assert 'id="fix-form"' in page.text and 'value="slow_step: time to x"' in page.text
    first_env = page.text.split('id="fix-environment"', 1)[1].split("</option>", 1)[0]
    assert first_env.endswith(">staging")
