"""Browser sign-in on a real server: token → cookie, CSRF on changes, sign-out, revocation
seen within a second, one-time links that work once."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from tests.web import serving

from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.app import create_app
from stumble.config import Settings


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Starlette, str, dict[str, str]]]:
    data_dir = tmp_path / "data"
    ring = TokenRing(data_dir)
    tokens = {role.value: ring.create(role, f"signin_{role}")[0] for role in Role}
    app = create_app(Settings(data_dir=str(data_dir)))
    with serving.served(app) as url:
        yield app, url, tokens


def sign_in(client: httpx.Client, token: str) -> str:
    answer = client.post("/api/v1/session", json={"token": token})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf: str = answer.json()["csrf_token"]
    return csrf


def test_a_token_becomes_a_session_and_changes_need_the_csrf_token(
    served: tuple[Starlette, str, dict[str, str]],
) -> None:
    _, url, tokens = served
    with httpx.Client(base_url=url) as client:
        csrf = sign_in(client, tokens["analyst"])
        assert client.get("/api/v1/reports").status_code == 200
        assert client.get("/metrics").status_code == 403  # an analyst reads aggregates only
        refused = client.delete("/api/v1/session")
        assert (refused.status_code, refused.json()["error"]) == (403, "access.csrf")
        wrong = client.delete("/api/v1/session", headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status_code == 403
        assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert client.get("/api/v1/reports").status_code == 401


def test_a_wrong_token_gets_one_generic_answer(
    served: tuple[Starlette, str, dict[str, str]],
) -> None:
    _, url, _ = served
    answer = httpx.post(url + "/api/v1/session", json={"token": "sta_nothing_here"})
    assert (answer.status_code, answer.json()["error"]) == (401, "access.unauthenticated")
    assert "set-cookie" not in answer.headers
    assert httpx.post(url + "/api/v1/session", content=b"{").status_code == 400


def test_revoking_a_token_ends_its_sessions_within_a_second_or_so(
    served: tuple[Starlette, str, dict[str, str]], tmp_path: Path
) -> None:
    _, url, tokens = served
    with httpx.Client(base_url=url) as client:
        sign_in(client, tokens["engineer"])
        assert client.get("/metrics").status_code == 200
        TokenRing(tmp_path / "data").revoke("signin_engineer")  # as `stumble tokens revoke`
        deadline = time.monotonic() + 3
        while client.get("/metrics").status_code == 200:
            assert time.monotonic() < deadline, "the revoked token's session still works"
            time.sleep(0.1)
        assert client.get("/metrics").status_code == 401
        bearer = {"Authorization": f"Bearer {tokens['engineer']}"}
        assert httpx.get(url + "/metrics", headers=bearer).status_code == 401


def test_a_one_time_link_signs_in_once(served: tuple[Starlette, str, dict[str, str]]) -> None:
    app, url, _ = served
    services = app.state.services
    now = dt.datetime.now(dt.UTC)
    token = next(t for t in services.tokens.list() if t.name == "signin_admin")
    code = services.sessions.create_one_time_link(token, dt.timedelta(minutes=5), now)
    with httpx.Client(base_url=url) as client:
        first = client.get(f"/signin/{code}")
        assert first.status_code == 303
        assert client.get("/api/v1/health").status_code == 200  # signed in as the admin
    again = httpx.get(f"{url}/signin/{code}")
    assert (again.status_code, again.json()["error"]) == (401, "signin.link_used_or_expired")


def test_sign_ins_are_audited_and_readable_by_an_auditor(
    served: tuple[Starlette, str, dict[str, str]],
) -> None:
    _, url, tokens = served
    httpx.post(url + "/api/v1/session", json={"token": tokens["analyst"]})
    httpx.post(url + "/api/v1/session", json={"token": "sta_aigerim_nurlanova_921029350851"})
    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    answer = httpx.get(url + "/api/v1/audit", headers=auditor)
    assert answer.status_code == 200
    records = answer.json()["records"]
    actions = [(r["action"], r["outcome"], r["actor"].get("name")) for r in records]
    assert ("signin.success", "ok", "signin_analyst") in actions
    assert ("signin.failure", "denied", None) in [(a, o, None) for a, o, _ in actions]
    assert "nurlanova" not in answer.text and "921029350851" not in answer.text
    analyst = {"Authorization": f"Bearer {tokens['analyst']}"}
    assert httpx.get(url + "/api/v1/audit", headers=analyst).status_code == 403


def test_no_audit_record_no_sign_in(
    served: tuple[Starlette, str, dict[str, str]], tmp_path: Path
) -> None:
    """Fail closed: with the audit log unwritable, signing in is refused, not silently done."""
    _, url, tokens = served
    log = tmp_path / "data" / "audit" / "audit.log"
    log.rename(log.with_name("moved-away.log"))
    log.mkdir()  # the log's path is now a directory: nothing can be appended
    answer = httpx.post(url + "/api/v1/session", json={"token": tokens["analyst"]})
    assert (answer.status_code, answer.json()["error"]) == (503, "audit.unavailable")
    assert "set-cookie" not in answer.headers
