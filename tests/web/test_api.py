"""The read API on a real collector app: data simulated into the data directory by the CLI, the
app served by uvicorn in a thread with its lifespan (spool, store, loader thread), reports
fetched over HTTP as typed JSON."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from tests.web.serving import served

from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.analytics.funnels import FunnelResult
from stumble.analytics.results import Report
from stumble.app import create_app
from stumble.cli.main import main
from stumble.config import Settings
from stumble.reports.catalog import REPORTS

SCENARIO = "create_service_request"
EXTRA: dict[str, dict[str, str]] = {
    "funnel": {"scenario": SCENARIO},
    "compare": {"scenario": SCENARIO, "a.ui_version": "1.4.2", "b.ui_version": "2.0.0"},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("api") / "data"
    assert main(["simulate", "--sessions", "1500", "--days", "10", "--data", str(directory)]) == 0
    return directory


@contextlib.contextmanager
def serving(
    data_dir: Path, role: Role = Role.ANALYST, **settings_overrides: Any
) -> Iterator[httpx.Client]:
    """The whole app served by uvicorn on a loopback port; the client carries an API token of
    ``role`` (made for it before the server starts) and ``client.tokens`` has one per role."""
    tokens = {
        each: TokenRing(data_dir).create(each, f"api_tests_{each}_{uuid.uuid4().hex[:8]}")[0]
        for each in Role
    }
    settings = Settings(data_dir=str(data_dir), loader_interval_s=0.2, **settings_overrides)
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    with (
        served(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=60, headers=headers) as http,
    ):
        http.tokens = tokens  # type: ignore[attr-defined]
        yield http


def as_role(client: httpx.Client, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.tokens[role]}"}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[httpx.Client]:
    with serving(data_dir) as http:
        yield http


def test_the_index_lists_every_report(client: httpx.Client) -> None:
    admin = client.get("/api/v1/reports", headers=as_role(client, Role.ADMIN))
    assert [r["name"] for r in admin.json()["reports"]] == list(REPORTS)
    analyst = client.get("/api/v1/reports")  # aggregates only: data health is not theirs
    assert [r["name"] for r in analyst.json()["reports"]] == [n for n in REPORTS if n != "health"]


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_report_answers_typed_json(client: httpx.Client, name: str) -> None:
    admin = as_role(client, Role.ADMIN)
    response = client.get(f"/api/v1/reports/{name}", params=EXTRA.get(name, {}), headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    report = msgspec.json.decode(response.content, type=Report[REPORTS[name].result_type])  # type: ignore[valid-type]
    assert report.meta.report == name
    assert report.meta.min_group_size == 5


def test_a_funnel_by_version_shows_the_fix(client: httpx.Client) -> None:
    response = client.get(
        "/api/v1/reports/funnel", params={"scenario": SCENARIO, "by": "ui_version"}
    )
    report = msgspec.json.decode(response.content, type=Report[FunnelResult])
    groups = {g.group: g for g in report.data.groups}
    assert set(groups) == {None, "1.4.2", "2.0.0"}
    assert groups["2.0.0"].conversion.value > groups["1.4.2"].conversion.value  # type: ignore[operator]
    assert report.meta.by == "ui_version" and report.meta.environment == "prod"


def test_repeated_parameters_combine_and_filters_apply(client: httpx.Client) -> None:
    params = [("scenario", SCENARIO), ("role", "operator"), ("role", "manager")]
    response = client.get("/api/v1/reports/funnel", params=params)
    report = msgspec.json.decode(response.content, type=Report[FunnelResult])
    assert report.meta.filters == {"role": "operator,manager"}


def test_bad_requests_get_a_reason_code(client: httpx.Client) -> None:
    unknown = client.get("/api/v1/reports/no-such-report")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "report.unknown")
    bad = client.get("/api/v1/reports/funnel", params={"scenario": SCENARIO, "by": "session_id"})
    assert (bad.status_code, bad.json()["error"]) == (400, "report.bad_param")
    assert "by must be one of" in bad.json()["message"]
    extra = client.get("/api/v1/reports/loops", params={"scenario": SCENARIO})
    assert extra.status_code == 400 and "1 unknown parameter(s)" in extra.json()["message"]


def test_roles_decide_who_reads_what_and_k_can_only_go_up(client: httpx.Client) -> None:
    funnel = {"scenario": SCENARIO}
    nobody = client.get("/api/v1/reports/funnel", params=funnel, headers={"Authorization": ""})
    assert (nobody.status_code, nobody.json()["error"]) == (401, "access.unauthenticated")
    auditor = as_role(client, Role.AUDITOR)
    denied = client.get("/api/v1/reports/funnel", params=funnel, headers=auditor)
    assert (denied.status_code, denied.json()["error"]) == (403, "access.forbidden")
    assert client.get("/api/v1/reports/health", headers=auditor).status_code == 200
    listed = client.get("/api/v1/reports", headers=auditor).json()["reports"]
    assert [r["name"] for r in listed] == ["health"]
    strict = client.get("/api/v1/reports/funnel", params={**funnel, "k": "1000"})
    report = msgspec.json.decode(strict.content, type=Report[FunnelResult])
    assert report.meta.min_group_size == 1000
    assert all(step.hidden for step in report.data.total().steps)
    lower = client.get("/api/v1/reports/funnel", params={**funnel, "k": "1"})
    assert (lower.status_code, lower.json()["error"]) == (400, "report.bad_param")


def test_error_messages_never_echo_what_the_caller_sent(client: httpx.Client) -> None:
    planted = "aigerim.nurlanova@example.kz"
    for params in (
        {"scenario": SCENARIO, "from": planted},
        {"scenario": SCENARIO, planted: "1"},
        {"scenario": planted},
        {"scenario": SCENARIO, "by": planted},
    ):
        answer = client.get("/api/v1/reports/funnel", params=params)
        assert answer.status_code == 400
        assert "nurlanova" not in answer.text


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("usage", {"to": "9999-12-31"}, "to"),
        ("usage", {"from": "0001-01-01T00:00:00+05:00"}, "from"),
        ("compare", {**EXTRA["compare"], "b.to": "9999-12-31"}, "b.to"),
        ("top-problems", {"limit": "²"}, "limit"),
    ],
)
def test_values_off_the_calendar_or_the_digits_are_a_bad_param_not_a_500(
    client: httpx.Client, name: str, params: dict[str, str], named: str
) -> None:
    answer = client.get(f"/api/v1/reports/{name}", params=params)
    assert (answer.status_code, answer.json()["error"]) == (400, "report.bad_param")
    assert answer.json()["message"].startswith(f"{named} must be")
    assert params[named] not in answer.text


def test_the_frustration_thresholds_come_from_the_settings(tmp_path: Path) -> None:
    # A data directory of its own: the module's server holds the shared one's database.
    settings = {"frustration_repeat_ms": 2_500, "frustration_dead_ms": 4_000}
    with serving(tmp_path / "data", **settings) as http:
        configured = http.get("/api/v1/reports/frustration").json()["data"]["thresholds"]
        asked = http.get("/api/v1/reports/frustration", params={"repeat_ms": "700"}).json()
    assert configured == {"repeat_ms": 2_500, "quick_back_ms": 5_000, "dead_ms": 4_000}
    assert asked["data"]["thresholds"]["repeat_ms"] == 700


def test_raw_rows_can_be_asked_for_and_nonsense_is_refused(client: httpx.Client) -> None:
    params = {"scenario": "login", "source": "raw"}
    report = client.get("/api/v1/reports/funnel", params=params).json()
    assert report["meta"]["source"] == "raw"
    assert any("raw rows asked for" in note for note in report["meta"]["notes"])
    refused = client.get("/api/v1/reports/funnel", params={**params, "source": "fast"})
    assert refused.status_code == 400
    assert "source must be auto or raw" in refused.text
