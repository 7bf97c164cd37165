"""The demo's pages, config script and stand-in back end, served by the real collector app."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from starlette.applications import Starlette

from stumble.app import create_app
from stumble.config import Settings
from stumble.web.demo_routes import CONTENT_SECURITY_POLICY, DemoBackend, demo_routes

KEY = "stk_demokeyab_secretsecretsecretsecretsecret00"


class Client:
    """A blocking client for an ASGI app whose lifespan runs in a background event loop
    (what starlette's Client does; its httpx binding is deprecated)."""

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            functools.partial(self._client.get, path, **kwargs)
        )
        return response

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            functools.partial(self._client.post, path, **kwargs)
        )
        return response


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[Client]:
    transport = httpx.ASGITransport(app=app)
    with contextlib.ExitStack() as stack:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
        stack.enter_context(portal.wrap_async_context_manager(app.router.lifespan_context(app)))
        client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8710")
        try:
            yield Client(portal, client)
        finally:
            portal.call(client.aclose)


def demo_app(
    tmp_path: Path, backend: DemoBackend | None = None, key: str | None = KEY
) -> Starlette:
    return create_app(
        Settings(data_dir=str(tmp_path / "data")),
        extra_routes=lambda services: demo_routes(
            services, write_key=key, backend=backend or DemoBackend(seed=1, latency=0.0)
        ),
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with serving(demo_app(tmp_path)) as test_client:
        yield test_client


def config_of(script: str) -> dict[str, object]:
    prefix = "window.stumbleDemo = "
    assert script.startswith(prefix)
    value: dict[str, object] = json.loads(script[len(prefix) :].strip().rstrip(";"))
    return value


def test_config_script_names_this_origin_the_key_and_the_plans_schema_version(
    client: Client,
) -> None:
    answer = client.get("/demo/config.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "no-store"
    assert config_of(answer.text) == {"endpoint": "", "key": KEY, "schemaVersion": 3}


def test_without_a_key_the_dev_key_file_is_read_per_request(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with serving(demo_app(tmp_path, key=None)) as client:
        assert config_of(client.get("/demo/config.js").text)["key"] == ""
        (data_dir / "dev-write-key.txt").write_text(KEY + "\n", encoding="utf-8")
        assert config_of(client.get("/demo/config.js").text)["key"] == KEY


@pytest.mark.parametrize(
    "path", ["/demo/", "/demo/login", "/demo/requests/new", "/demo/requests/RQ-1001"]
)
def test_every_page_path_gets_the_app_with_a_same_origin_policy(client: Client, path: str) -> None:
    answer = client.get(path, params={"ui": "2"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert 'data-stumble-screen="request_create"' in answer.text
    assert '<script src="/sdk/stumble.js"></script>' in answer.text


def test_assets_are_served_and_missing_ones_are_404(client: Client) -> None:
    assert client.get("/demo/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/demo/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/demo/missing.js").status_code == 404
    assert client.get("/demo/api/nothing").status_code == 404
    assert client.get("/demo").headers["location"] == "/demo/"


def test_the_sdk_bundles_the_page_loads_exist(client: Client) -> None:
    for name in ("stumble.js", "stumble-errors.js", "stumble-vitals.js"):
        assert client.get(f"/sdk/{name}").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/demo/api/auth/login", {"username": "someone@example.kz"}),
        ("/demo/api/requests/check", {"step": 2, "iin_bin_check_digit_ok": True, "iin_bin": "x"}),
        (
            "/demo/api/requests",
            {"request_type": "access", "category": "new", "priority": "low", "subject": "x"},
        ),
        ("/demo/api/requests", {"request_type": "free text", "category": "new", "priority": "low"}),
        (
            "/demo/api/reports/export",
            {"report_format": "xlsx", "days": 3, "period_from": "2026-01-01"},
        ),
    ],
)
def test_the_back_end_refuses_any_field_beyond_its_closed_shapes(
    client: Client, path: str, body: dict[str, object]
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "body.invalid"


def test_an_oversized_body_is_refused(client: Client) -> None:
    answer = client.post("/demo/api/auth/login", content=b"{" + b" " * 5000 + b"}")
    assert answer.status_code == 413


def test_sign_in_takes_no_credentials(client: Client) -> None:
    assert client.post("/demo/api/auth/login", json={}).json() == {"signed_in": True}


def test_the_step_2_check_answers_422_for_a_wrong_check_digit(client: Client) -> None:
    refused = client.post(
        "/demo/api/requests/check", json={"step": 2, "iin_bin_check_digit_ok": False}
    )
    assert refused.status_code == 422
    assert refused.json() == {"field_errors": ["iin_bin"]}
    passed = client.post(
        "/demo/api/requests/check", json={"step": 2, "iin_bin_check_digit_ok": True}
    )
    assert passed.status_code == 200


def test_a_created_request_can_be_read_back_and_is_found_first(client: Client) -> None:
    created = client.post(
        "/demo/api/requests",
        json={"request_type": "hardware", "category": "incident", "priority": "high"},
    )
    assert created.status_code == 201
    record = created.json()
    assert record["id"] == "RQ-2001"
    assert client.get(f"/demo/api/requests/{record['id']}").json() == record
    found = client.get("/demo/api/search", params={"type": "hardware"}).json()["results"]
    assert found[0] == record
    assert {result["request_type"] for result in found} == {"hardware"}
    assert client.get("/demo/api/requests/RQ-9999").status_code == 404


def test_search_without_a_type_lists_everything_and_refuses_unknown_types(
    client: Client,
) -> None:
    everything = client.get("/demo/api/search").json()["results"]
    assert len(everything) == 24
    assert client.get("/demo/api/search", params={"type": "jewels"}).status_code == 400


def test_an_export_runs_then_its_file_has_the_rows_it_announced(tmp_path: Path) -> None:
    backend = DemoBackend(seed=3, latency=0.05)  # about 0.1 s of pretend work
    with serving(demo_app(tmp_path, backend)) as client:
        started = client.post("/demo/api/reports/export", json={"report_format": "csv", "days": 2})
        assert started.status_code == 202
        job = started.json()
        assert job["status"] == "running"
        assert client.get(f"/demo/api/reports/export/{job['id']}/file").status_code == 404
        deadline = time.monotonic() + 5
        state = job
        while state["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            state = client.get(f"/demo/api/reports/export/{job['id']}").json()
        assert state["status"] == "ready"
        file = client.get(f"/demo/api/reports/export/{job['id']}/file")
    assert file.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(file.text)))
    assert rows[0] == ["request", "type", "priority", "status"]
    assert len(rows) - 1 == state["rows"]
    assert 2 * 20 <= state["rows"] <= 2 * 60
    assert len(file.content) == state["file_size"]


def test_unknown_export_jobs_are_404(client: Client) -> None:
    assert client.get("/demo/api/reports/export/EX-1").status_code == 404
