"""Header sign-on from a trusted proxy only, TLS served directly, and the settings that refuse
an unsafe combination."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from tests.web.serving import served

from stumble.app import create_app
from stumble.config import Settings, SettingsError

SSO_GROUPS = {"ux": "analyst", "ops": "admin"}


def serving(settings: Settings, **tls: str) -> contextlib.AbstractContextManager[str]:
    return served(create_app(settings), **tls)


def sso_settings(data_dir: Path, trusted: list[str]) -> Settings:
    return Settings(
        data_dir=str(data_dir),
        sso_user_header="X-Forwarded-User",
        sso_group_roles=SSO_GROUPS,
        trusted_proxies=trusted,
    )


def test_sign_on_headers_are_believed_from_a_trusted_proxy(tmp_path: Path) -> None:
    with serving(sso_settings(tmp_path / "data", ["127.0.0.1/32"])) as url:
        analyst = {"X-Forwarded-User": "aset_k", "X-Forwarded-Groups": "staff, ux"}
        assert httpx.get(url + "/api/v1/reports", headers=analyst).status_code == 200
        assert httpx.get(url + "/metrics", headers=analyst).status_code == 403
        admin = {"X-Forwarded-User": "ops_lead", "X-Forwarded-Groups": "ux,ops"}
        assert httpx.get(url + "/metrics", headers=admin).status_code == 200
        nobody = {"X-Forwarded-User": "guest", "X-Forwarded-Groups": "visitors"}
        assert httpx.get(url + "/api/v1/reports", headers=nobody).status_code == 401


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    with serving(sso_settings(tmp_path / "data", ["10.0.0.0/8"])) as url:
        spoofed = {"X-Forwarded-User": "ops_lead", "X-Forwarded-Groups": "ops"}
        answer = httpx.get(url + "/metrics", headers=spoofed)
        assert (answer.status_code, answer.json()["error"]) == (401, "access.unauthenticated")


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"sso_user_header": "X-Forwarded-User"}, "trusted_proxies"),
        ({"sso_user_header": "X-Forwarded-User", "trusted_proxies": ["not-a-net"]}, "CIDR"),
        ({"sso_group_roles": {"ux": "superuser"}}, "sso_group_roles"),
        ({"tls_cert": "cert.pem"}, "tls_key"),
    ],
)
def test_unsafe_or_broken_combinations_are_refused(changes: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings(**changes).validate()  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_served_directly_with_secure_session_cookies(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    settings = Settings(data_dir=str(tmp_path / "data"), tls_cert=str(cert), tls_key=str(key))
    from stumble.access.roles import Role
    from stumble.access.tokens import TokenRing

    token, _ = TokenRing(tmp_path / "data").create(Role.ANALYST, "tls_tests")
    with serving(settings, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        trusting = ssl.create_default_context(cafile=str(cert))
        answer = httpx.post(url + "/api/v1/session", json={"token": token}, verify=trusting)
        assert answer.status_code == 200
        assert "secure" in answer.headers["set-cookie"].lower()
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url.replace("https", "http") + "/healthz")
