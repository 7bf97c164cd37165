"""Every route says who may call it: the application's own route table against every kind of
caller, on a real server. A route added without a declaration fails here (and at start-up)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from tests.web.serving import served

from stumble.access.keys import KeyRing
from stumble.access.roles import Permission, Role
from stumble.access.tokens import TokenRing
from stumble.app import create_app
from stumble.config import Settings
from stumble.web.access import (
    PUBLIC,
    WRITE_KEY,
    RouteAccess,
    access_of,
    requires,
    undeclared_routes,
)
from stumble.web.demo_routes import demo_routes

# Values for the path parameters of the route table, so every route can be called.
PATH_VALUES = {
    "{name}": "funnel",
    "{code}": "no_such_code",
    "{path:path}": "x",
    "{pseudonym}": "h_abcdefghijklmnop",
    "{page}": "funnel",
    "{table}": "funnel",
}
# Routes whose handler narrows the route's access per path value (a report's own permission).
NARROWED = {
    "/api/v1/reports/{name}": [
        ("/api/v1/reports/funnel", requires(Permission.READ_AGGREGATES)),
        ("/api/v1/reports/health", requires(Permission.READ_HEALTH)),
    ],
    "/export/{page}/{table}.csv": [
        ("/export/funnel/funnel.csv", requires(Permission.READ_AGGREGATES)),
        ("/export/health/volume.csv", requires(Permission.READ_HEALTH)),
    ],
}
EXPECTED_PUBLIC = {
    "/healthz",
    "/readyz",
    "/sdk/{name}",
    "/api/v1/session",
    "/signin/{code}",
    "/signin",  # the dashboard's sign-in page
    "/static/{name}",  # the dashboard's styles and scripts
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("access") / "data"


@pytest.fixture(scope="module")
def app(data_dir: Path, callers: dict[str, dict[str, str]]) -> Starlette:
    """Made after the callers' credentials, so the server's rings start with them."""
    return create_app(
        Settings(data_dir=str(data_dir)), extra_routes=lambda s: demo_routes(s, write_key="x")
    )


@pytest.fixture(scope="module")
def app_routes(app: Starlette) -> list[Route]:
    assert undeclared_routes(app) == []
    return [route for route in app.routes if isinstance(route, Route)]


@pytest.fixture(scope="module")
def callers(data_dir: Path) -> dict[str, dict[str, str]]:
    """Headers of every kind of caller: nobody, a write key, each role, expired and revoked."""
    ring = TokenRing(data_dir)
    write_key, _ = KeyRing(data_dir).create("prod", [])
    headers = {"anonymous": {}, "write_key": {"Authorization": f"Bearer {write_key}"}}
    for role in Role:
        token, _ = ring.create(role, f"matrix_{role}")
        headers[role.value] = {"Authorization": f"Bearer {token}"}
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    expired, _ = ring.create(Role.ADMIN, "matrix_expired", dt.timedelta(days=1), now=past)
    revoked, _ = ring.create(Role.ADMIN, "matrix_revoked")
    ring.revoke("matrix_revoked")
    headers["expired"] = {"Authorization": f"Bearer {expired}"}
    headers["revoked"] = {"Authorization": f"Bearer {revoked}"}
    return headers


@pytest.fixture(scope="module")
def base_url(app: Starlette, callers: dict[str, dict[str, str]]) -> Iterator[str]:
    with served(app) as url:
        yield url


def _path(route: Route) -> str:
    path = route.path
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


def test_every_route_declares_its_access(app_routes: list[Route]) -> None:
    declared = [(route.path, access_of(route)) for route in app_routes]
    assert all(isinstance(access, RouteAccess) for _, access in declared)
    public = {path for path, access in declared if access == PUBLIC}
    assert public - {p for p in public if p.startswith("/demo")} == EXPECTED_PUBLIC
    assert {p for p, a in declared if a == WRITE_KEY} == {"/v1/batch", "/v1/config"}


def test_the_route_table_against_every_caller(
    app_routes: list[Route], callers: dict[str, dict[str, str]], base_url: str
) -> None:
    """Permission routes: 401 without a valid token (a write key, an expired or revoked token
    included), 403 for a role without the permission, anything but 401/403 for one with it."""
    checked = 0
    for route in app_routes:
        access = access_of(route)
        assert access is not None
        if access.kind != "permission":
            continue
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            for path, narrowed in NARROWED.get(route.path, [(_path(route), access)]):
                for caller, headers in callers.items():
                    answer = httpx.request(method, base_url + path, headers=headers, timeout=30)
                    expected = _expected(narrowed, caller)
                    got = _as_api_status(answer)
                    assert (got in (401, 403) and got == expected) or (
                        expected == 200 and got not in (401, 403)
                    ), (path, method, caller, got)
                    checked += 1
    print(f"\nroute x caller checks: {checked}")
    assert checked >= 5 * len(callers)


def _as_api_status(answer: httpx.Response) -> int:
    """A dashboard page answers "not signed in" by sending the browser to sign in; that is
    its 401."""
    if answer.status_code == 303 and answer.headers["location"].startswith("/signin?next="):
        return 401
    return answer.status_code


def _expected(access: RouteAccess, caller: str) -> int:
    if caller in ("anonymous", "write_key", "expired", "revoked"):
        return 401
    return 200 if access.granted_to(Role(caller)) else 403


def test_a_write_key_reads_nothing(callers: dict[str, dict[str, str]], base_url: str) -> None:
    for path in ("/metrics", "/api/v1/health", "/api/v1/reports"):
        answer = httpx.get(base_url + path, headers=callers["write_key"])
        assert answer.status_code == 401


def test_a_foreign_host_is_refused_before_any_route(base_url: str) -> None:
    rebinding = httpx.get(base_url + "/healthz", headers={"Host": "evil.example:8710"})
    assert rebinding.status_code == 400
    assert httpx.get(base_url + "/healthz").status_code == 200


def test_security_headers_on_every_answer_and_no_cors_on_the_read_api(
    callers: dict[str, dict[str, str]], base_url: str
) -> None:
    origin = {"Origin": "https://evil.example"}
    for path, headers in (
        ("/healthz", {}),
        ("/api/v1/reports", {**callers["admin"], **origin}),
        ("/metrics", callers["anonymous"]),
    ):
        answer = httpx.get(base_url + path, headers=headers)
        assert "script-src 'self'" in answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "access-control-allow-origin" not in answer.headers
    ingest = httpx.post(base_url + "/v1/batch", content=b"[]", headers=callers["anonymous"])
    assert ingest.headers["x-content-type-options"] == "nosniff"
