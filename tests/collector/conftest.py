"""A real ``stumble serve`` on loopback, started by the tests themselves, and event factories."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from stumble.access.keys import KeyRing
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing

ORIGIN = "https://app.example.kz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(
    process: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    timeout_s: float = 30.0,
    path: str = "/healthz",
) -> None:
    """Poll ``url + path`` until it answers 200; fail with the server's log if it exits or hangs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise RuntimeError(f"server exited: {log[-2000:]}")
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not answer {path} within {timeout_s} s")


def now_ms() -> int:
    return int(time.time() * 1000)


def event(kind: str = "action", **fields: Any) -> dict[str, Any]:
    """A valid event of the example plan; keyword arguments override or add fields."""
    base: dict[str, Any] = {
        "kind": kind,
        "event_id": str(uuid.uuid4()),
        "ts": now_ms() - 500,
        "session_id": "s_qwertyuiopasdfghjklz",
        "screen_id": "request_create",
        "schema_version": 3,
        "ui_version": "1.4.2",
        "context": {"role": "operator", "division": "hq"},
    }
    base.update(_KIND_DEFAULTS[kind])
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "action": {
        "event_name": "request_next_clicked",
        "action_id": "request_next_clicked",
        "target": "btn_next",
    },
    "screen_view": {"event_name": "screen_view", "route": "/requests/new"},
    "form_submit": {
        "event_name": "form_submit",
        "form_id": "service_request",
        "step": 1,
        "attempt": 1,
        "status": "success",
    },
    "field_error": {
        "event_name": "field_error",
        "form_id": "service_request",
        "field_id": "iin_bin",
        "error_type": "format",
        "attempt": 1,
        "step": 2,
    },
    "operation_start": {
        "event_name": "operation_start",
        "operation_id": "op_abcdefgh",
        "operation": "request_submit",
    },
    "operation_step": {
        "event_name": "operation_step",
        "operation_id": "op_abcdefgh",
        "operation": "request_submit",
        "step_name": "request_sent",
    },
    "operation_end": {
        "event_name": "operation_end",
        "operation_id": "op_abcdefgh",
        "operation": "request_submit",
        "status": "success",
        "duration_ms": 1200.0,
    },
    "error": {
        "event_name": "error",
        "error_kind": "js",
        "error_type": "TypeError",
        "fingerprint": "f3kd9x2a",
    },
    "vital": {"event_name": "vital", "metric": "LCP", "value": 1800.0, "rating": "good"},
    "navigation": {"event_name": "navigation", "nav": "back"},
    "custom": {"event_name": "report_exported", "params": {"report_format": "xlsx", "rows": 120}},
}


def batch(*events: dict[str, Any], sent_at: int | None = None) -> dict[str, Any]:
    return {"sent_at": sent_at if sent_at is not None else now_ms(), "events": list(events)}


@dataclass
class Server:
    data_dir: Path
    port: int
    keys: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        env = {**os.environ, **self.env, "STUMBLE_LOG_LEVEL": "INFO"}
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stumble.cli.main",
                    "serve",
                    "--data",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until_up(self.process, self.url, self.log_path, timeout_s)

    def stop(self) -> None:
        """A graceful stop: the spool is sealed and loaded before the process exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return (
            self.log_path.read_text(errors="replace")
            if self.log_path and self.log_path.exists()
            else ""
        )

    def post(
        self, body: Any, *, key: str = "prod", headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {self.keys[key]}", "Origin": ORIGIN}
        all_headers.update(headers or {})
        if isinstance(body, bytes):
            all_headers.setdefault("Content-Type", "application/json")
            return httpx.post(
                f"{self.url}/v1/batch", content=body, headers=all_headers, timeout=30, **kw
            )
        return httpx.post(f"{self.url}/v1/batch", json=body, headers=all_headers, timeout=30, **kw)

    def read(self, path: str, **kw: Any) -> httpx.Response:
        """GET a read route (metrics, health, reports) with the test admin's API token."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30, **kw)

    @property
    def admin_token(self) -> str:
        return self.keys["admin_token"]

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read the database directly; only valid while the server is stopped."""
        assert not self.alive(), "DuckDB allows one process: stop the server first"
        con = duckdb.connect(str(self.data_dir / "stumble.duckdb"), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def make_server(tmp_path: Path, **env: str) -> Server:
    data_dir = tmp_path / "data"
    ring = KeyRing(data_dir)
    keys = {
        "prod": ring.create("prod", [ORIGIN])[0],
        "test": ring.create("test", [ORIGIN, "http://localhost:3000"])[0],
    }
    revoked_token, revoked = ring.create("prod", [ORIGIN])
    ring.revoke(revoked.key_id)
    keys["revoked"] = revoked_token
    disabled_token, disabled = ring.create("prod", [ORIGIN])
    ring.update(disabled.key_id, enabled=False)
    keys["disabled"] = disabled_token
    keys["admin_token"], _ = TokenRing(data_dir).create(Role.ADMIN, "tests")
    return Server(data_dir=data_dir, port=free_port(), keys=keys, env=env)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path)
    srv.start()
    yield srv
    srv.kill()
