"""Headless Debian Chromium (driven by Playwright) against a real ``stumble demo`` server.

Every test gets its own server (a fresh data directory with its own dev key) and its own
browser context (fresh storage and HTTP cache). What was stored is read from DuckDB after a
graceful stop, since the server holds the database while it runs. Stored event ids and session
ids are keyed pseudonyms, so tests compare counts and fields, never ids.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from tests.collector.conftest import free_port, wait_until_up

from stumble.access.keys import KeyRing, parse_key_id
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing

CHROMIUM = Path("/usr/bin/chromium")
# As root in a container Chromium needs --no-sandbox; the network flags keep it from calling
# Google's hosts, which this machine's closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@dataclass
class DemoServer:
    """``stumble demo`` in a subprocess, on a loopback port of its own: ``--no-history``
    unless ``history_sessions`` asks for simulated history (over ``history_days`` days)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    history_sessions: int | None = None
    history_days: int = 21

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"demo-{self.port}.log"

    @property
    def token(self) -> str:
        return (self.data_dir / "dev-write-key.txt").read_text(encoding="utf-8").strip()

    @property
    def key_id(self) -> str:
        key_id = parse_key_id(self.token)
        assert key_id is not None
        return key_id

    @property
    def reader_token(self) -> str:
        """An engineer's API token for /metrics, made before the server starts."""
        path = self.data_dir.parent / f"reader-{self.port}.token"
        if not path.exists():
            text, _ = TokenRing(self.data_dir).create(Role.ENGINEER, f"browser_tests_{self.port}")
            path.write_text(text, encoding="utf-8")
        return path.read_text(encoding="utf-8")

    def start(self, timeout_s: float = 30.0) -> None:
        assert self.reader_token
        command = [sys.executable, "-m", "stumble.cli.main", "demo"]
        if self.history_sessions is None:
            command.append("--no-history")
        else:
            command += ["--history-days", str(self.history_days)]
            command += ["--history-sessions", str(self.history_sessions)]
        command += ["--data", str(self.data_dir), "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            env = {**os.environ, "STUMBLE_LOG_LEVEL": "INFO"}
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_until_up(self.process, self.url, self.log_path, timeout_s)

    def stop(self) -> None:
        """SIGTERM: the server seals its spool and loads it before it exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def update_key(self, **changes: object) -> None:
        """Change the dev key as ``stumble keys`` would, and wait until the server serves it."""
        KeyRing(self.data_dir).update(self.key_id, **changes)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            config = httpx.get(f"{self.url}/v1/config", params={"key": self.token}, timeout=5)
            served = config.json() if config.status_code == 200 else {}
            if all(served.get(name) == value for name, value in changes.items()):
                return
            time.sleep(0.2)
        raise AssertionError(f"the server did not pick up the key change {sorted(changes)}")

    def events(self, sql: str = "SELECT * FROM events") -> list[dict[str, Any]]:
        """Rows as dicts; stops the server first (DuckDB allows one process)."""
        self.stop()
        con = duckdb.connect(str(self.data_dir / "stumble.duckdb"), read_only=True)
        try:
            cursor = con.execute(sql)
            names = [column[0] for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()


@dataclass
class SeenRequest:
    url: str
    method: str
    resource_type: str
    body: str

    @property
    def is_batch(self) -> bool:
        return "/v1/batch" in self.url

    def batch_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = json.loads(self.body)["events"]
        return events


class RequestLog:
    """Every request the pages of a browser context make, beacons included, with its body."""

    def __init__(self) -> None:
        self.seen: list[SeenRequest] = []
        self.failed: list[SeenRequest] = []
        self.accepted: list[SeenRequest] = []
        """Batch requests the collector answered with 202."""

    def attach(self, context: Any) -> None:
        context.on("request", lambda request: self.seen.append(_seen(request)))
        context.on("requestfailed", lambda request: self.failed.append(_seen(request)))
        context.on("response", self._on_response)

    def _on_response(self, response: Any) -> None:
        request = _seen(response.request)
        if request.is_batch and response.status == 202:
            self.accepted.append(request)

    def batches(self) -> list[SeenRequest]:
        return [request for request in self.seen if request.is_batch]

    def batch_event_ids(self) -> set[str]:
        """Every event the SDK tried to send, whatever became of the request."""
        return {event["event_id"] for batch in self.batches() for event in batch.batch_events()}

    def accepted_event_ids(self) -> set[str]:
        return {event["event_id"] for batch in self.accepted for event in batch.batch_events()}


def _seen(request: Any) -> SeenRequest:
    body = request.post_data_buffer
    text = body.decode("utf-8", errors="replace") if body else ""
    return SeenRequest(request.url, request.method, request.resource_type, text)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an asyncio
    loop running in this thread while it lives, which makes asyncio.run() in later tests fail."""
    if not CHROMIUM.exists():
        pytest.skip(
            "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoServer]:
    server = DemoServer(tmp_path / "data")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def requests_seen() -> RequestLog:
    return RequestLog()


@pytest.fixture
def context(browser: Any, requests_seen: RequestLog) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    requests_seen.attach(context)
    yield context
    context.close()


def accepted_events(server: DemoServer) -> int:
    """Events the running server has made durable, from its /metrics."""
    headers = {"Authorization": f"Bearer {server.reader_token}"}
    text = httpx.get(f"{server.url}/metrics", headers=headers, timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("stumble_events_accepted_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def wait_until(check: Any, timeout_s: float = 15.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class DemoApp:
    """Drives the demo page the way a person would: clicks, typing, choices."""

    def __init__(self, page: Any, server: DemoServer) -> None:
        self.page = page
        self.server = server

    def open(self, path: str = "/demo/", ui: int = 1) -> None:
        self.page.goto(f"{self.server.url}{path}?ui={ui}")
        self.page.wait_for_function("() => window.stumble && window.stumble.stats")

    def visible(self, screen: str) -> Any:
        return self.page.locator(f"#screen-{screen}")

    def wait_for_screen(self, screen: str) -> None:
        self.visible(screen).wait_for(state="visible")

    def sign_in(self, username: str = "operator", password: str = "correct-horse") -> None:
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#login-form button[type=submit]")
        self.wait_for_screen("home")

    def go(self, link_text: str, screen: str) -> None:
        self.page.click(f"#nav >> text={link_text}")
        self.wait_for_screen(screen)

    def fill_step_1(self, subject: str = "") -> None:
        self.page.select_option("#request-step-1 [name=request_type]", "access")
        self.page.select_option("#request-step-1 [name=category]", "new")
        if subject:
            self.page.fill("#request-step-1 [name=subject]", subject)
        self.next_on_step(1)
        self.page.locator("#request-step-2").wait_for(state="visible")

    def next_on_step(self, step: int) -> None:
        self.page.click(f"#request-step-{step} button[type=submit]")

    def message(self, name: str) -> Any:
        return self.page.locator(f".message[data-for={name}]")

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.page.evaluate("stumble.stats()")
        return stats

    def flush(self) -> dict[str, int]:
        """Sends what is queued (skipping any backoff wait) and returns the SDK's counters."""
        stats: dict[str, int] = self.page.evaluate("stumble.flush().then(() => stumble.stats())")
        return stats

    def settle(self) -> dict[str, int]:
        """Flushes, then cuts the page off from the collector, so that what was stored can be
        compared with what the SDK counted as sent: nothing sent later can blur it."""
        self.flush()
        self.page.route("**/v1/batch*", lambda route: route.abort())
        return self.flush()  # waits for a send still in flight; later ones fail

    def hide(self) -> None:
        """What a browser does when the tab goes to the background."""
        self.page.evaluate(
            "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
            "document.dispatchEvent(new Event('visibilitychange'))"
        )
