"""Administration from the dashboard over HTTP: revoking a token and the write-key kill switch,
who may, and what the audit log keeps."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.web.serving import served

from stumble.access.audit import AuditAction, audit_paths, read_records
from stumble.access.keys import KeyRing
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.app import create_app
from stumble.cli.serve import bootstrap_data_dir
from stumble.config import Settings


@dataclass
class Site:
    url: str
    data_dir: Path
    tokens: dict[Role, str]

    def call(self, method: str, path: str, role: Role | str, **kwargs: object) -> httpx.Response:
        token = self.tokens[role] if isinstance(role, Role) else role
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def audited(self, action: AuditAction) -> list[str | None]:
        records = read_records(audit_paths(self.data_dir).log).records
        return [r.detail.target if r.detail else None for r in records if r.action == action]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    data_dir = tmp_path / "data"
    bootstrap_data_dir(Settings(data_dir=str(data_dir)))
    ring = TokenRing(data_dir)
    tokens = {role: ring.create(role, f"admin_{role}_{uuid.uuid4().hex[:6]}")[0] for role in Role}
    with served(create_app(Settings(data_dir=str(data_dir)))) as url:
        yield Site(url, data_dir, tokens)


def test_an_admin_revokes_a_token_and_it_stops_working(site: Site) -> None:
    victim_text, victim = TokenRing(site.data_dir).create(Role.ANALYST, "leaving_team")
    deadline = time.monotonic() + 10  # the server reloads tokens.json within a second
    while site.call("GET", "/api/v1/reports", victim_text).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    revoked = site.call("POST", f"/api/v1/tokens/{victim.token_id}/revoke", Role.ADMIN)
    assert revoked.status_code == 200 and revoked.json() == {"revoked": [victim.token_id]}
    assert site.call("GET", "/api/v1/reports", victim_text).status_code == 401
    assert site.audited(AuditAction.TOKEN_REVOKE) == [victim.token_id]
    admin_page = site.call("GET", "/admin", Role.ADMIN).text
    assert f"/api/v1/tokens/{victim.token_id}/revoke" not in admin_page, "nothing left to revoke"


def test_the_kill_switch_turns_a_write_key_off_and_on(site: Site) -> None:
    [key] = KeyRing(site.data_dir).all()  # the dev key of the first start
    page = site.call("GET", "/admin", Role.ADMIN).text
    assert f'data-action="/api/v1/keys/{key.key_id}"' in page and ">Turn off<" in page
    off = site.call("POST", f"/api/v1/keys/{key.key_id}", Role.ADMIN, json={"enabled": False})
    assert off.status_code == 200 and off.json() == {"key_id": key.key_id, "enabled": False}
    assert not KeyRing(site.data_dir).all()[0].enabled
    assert ">Turn on<" in site.call("GET", "/admin", Role.ADMIN).text
    on = site.call("POST", f"/api/v1/keys/{key.key_id}", Role.ADMIN, json={"enabled": True})
    assert on.json()["enabled"] is True
    assert site.audited(AuditAction.WRITE_KEY_UPDATE) == [key.key_id, key.key_id]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.ENGINEER, Role.AUDITOR])
def test_only_admins_change_keys_and_tokens(site: Site, role: Role) -> None:
    [key] = KeyRing(site.data_dir).all()
    token_id = TokenRing(site.data_dir).list()[0].token_id
    assert (
        site.call("POST", f"/api/v1/keys/{key.key_id}", role, json={"enabled": False}).status_code
        == 403
    )
    assert site.call("POST", f"/api/v1/tokens/{token_id}/revoke", role).status_code == 403
    assert KeyRing(site.data_dir).all()[0].enabled


def test_bad_requests_are_named_and_unknown_ids_are_404(site: Site) -> None:
    [key] = KeyRing(site.data_dir).all()
    bad = site.call("POST", f"/api/v1/keys/{key.key_id}", Role.ADMIN, json={"enabled": "yes"})
    assert bad.status_code == 400 and "$.enabled" in bad.json()["message"]
    extra = site.call("POST", f"/api/v1/keys/{key.key_id}", Role.ADMIN, json={"sample_rate": 0})
    assert extra.status_code == 400
    assert (
        site.call("POST", "/api/v1/keys/nosuchkey", Role.ADMIN, json={"enabled": False}).status_code
        == 404
    )
    assert site.call("POST", "/api/v1/tokens/nosuch/revoke", Role.ADMIN).status_code == 404
