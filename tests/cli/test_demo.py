"""``stumble demo``: the dev key it ensures, the simulated history it adds once, the command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from tests.collector.conftest import free_port, wait_until_up

from stumble.access.keys import KeyRing
from stumble.app import CollectorServices
from stumble.cli.demo import _fill_once, demo_origins, ensure_demo_key, fill_history
from stumble.cli.main import main
from stumble.cli.serve import bootstrap_data_dir
from stumble.config import Settings


def stored(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(data_dir / "stumble.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- the write key ---------------------------------------------------------------------------


def test_a_fresh_data_directory_gets_a_dev_key_for_the_demo_origins(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), port=9123)
    token = ensure_demo_key(settings)
    assert (tmp_path / "dev-write-key.txt").read_text().strip() == token
    assert (tmp_path / "dev-write-key.txt").stat().st_mode & 0o777 == 0o600
    key = KeyRing(tmp_path).authenticate(token)
    assert key is not None
    assert key.environment == "dev"
    assert key.origins == ["http://127.0.0.1:9123", "http://localhost:9123"]


def test_the_bootstrap_key_is_kept_and_allowed_the_new_port(tmp_path: Path) -> None:
    first = Settings(data_dir=str(tmp_path), port=8710)
    bootstrapped = bootstrap_data_dir(first)
    assert bootstrapped is not None
    token = ensure_demo_key(Settings(data_dir=str(tmp_path), port=9000))
    assert token == bootstrapped
    key = KeyRing(tmp_path).authenticate(token)
    assert key is not None
    assert set(key.origins) == {
        "http://127.0.0.1:8710",
        "http://localhost:8710",
        "http://127.0.0.1:9000",
        "http://localhost:9000",
    }
    assert len(KeyRing(tmp_path).all()) == 1


def test_a_revoked_dev_key_is_replaced(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    old = ensure_demo_key(settings)
    ring = KeyRing(tmp_path)
    old_key = ring.authenticate(old)
    assert old_key is not None
    ring.revoke(old_key.key_id)
    new = ensure_demo_key(settings)
    assert new != old
    assert KeyRing(tmp_path).authenticate(new) is not None
    assert (tmp_path / "dev-write-key.txt").read_text().strip() == new


def test_a_named_bind_address_is_an_origin_too_and_a_wildcard_is_not(tmp_path: Path) -> None:
    named = Settings(data_dir=str(tmp_path), host="desk.local", port=8000)
    assert demo_origins(named)[-1] == "http://desk.local:8000"
    wildcard = Settings(data_dir=str(tmp_path), host="0.0.0.0", port=8000)
    assert demo_origins(wildcard) == ["http://127.0.0.1:8000", "http://localhost:8000"]


# --- simulated history ------------------------------------------------------------------------


def test_history_goes_through_ingest_and_is_stored_whole(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    token = ensure_demo_key(settings)
    services = CollectorServices(settings)
    services.open()
    before = time.time() * 1000
    report = fill_history(services, token, days=4, sessions=60)
    services.close()

    assert report.sessions == 60
    assert report.rejected == 0
    assert report.accepted == report.events > 60
    count, sessions, environments, versions, oldest, received = stored(
        tmp_path,
        "SELECT count(*), count(DISTINCT session_id), list(DISTINCT environment), "
        "list(DISTINCT ui_version ORDER BY ui_version), epoch_ms(min(ts)), epoch_ms(min(received_at)) "
        "FROM events",
    )[0]
    assert count == report.events
    assert sessions == 60
    assert environments == ["dev"]
    assert versions == ["1.4.2", "2.0.0"]  # the UI changes half-way, as in the seed's story
    assert oldest < before - 86_400_000  # the history is in the past...
    assert received >= before - 1000  # ...received now, so retention keeps it


def test_history_is_added_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=str(tmp_path))
    token = ensure_demo_key(settings)
    _fill_once(settings, token, days=2, sessions=20)
    first = stored(tmp_path, "SELECT count(*) FROM events")[0][0]
    _fill_once(settings, token, days=2, sessions=20)
    assert stored(tmp_path, "SELECT count(*) FROM events")[0][0] == first > 0
    out = capsys.readouterr().out
    assert f"history: {first} events of 20 sessions stored (0 rejected)" in out
    assert "history: the database already holds events; none added" in out


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--history-days", "30", "--history-days must be from 1 to 29"),
        ("--history-days", "0", "--history-days must be from 1 to 29"),
        ("--history-sessions", "0", "--history-sessions must be at least 1"),
    ],
)
def test_history_options_out_of_range_stop_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, problem: str
) -> None:
    assert main(["demo", "--data", str(tmp_path / "data"), option, value]) == 2
    assert capsys.readouterr().out.strip() == f"error: {problem}"
    assert not (tmp_path / "data").exists()


# --- the command, end to end -------------------------------------------------------------------


def start_demo(data_dir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "stumble.cli.main", "demo", "--data", str(data_dir)]
    with (data_dir.parent / f"demo-{port}.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    wait_until_up(process, f"http://127.0.0.1:{port}", data_dir.parent / f"demo-{port}.log", 60)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def test_stumble_demo_fills_history_once_and_serves_the_app(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_demo(data_dir, port, "--history-days", "3", "--history-sessions", "25")
    try:
        page = httpx.get(f"{base}/demo/requests/new")
        script = httpx.get(f"{base}/demo/config.js").text
        config = httpx.get(
            f"{base}/v1/config",
            params={"key": json.loads(script.split("=", 1)[1].rstrip(";\n"))["key"]},
            headers={"origin": base},
        )
    finally:
        stop(process)
    assert page.status_code == 200
    assert config.status_code == 200  # the page's key works from the page's origin
    assert config.json()["enabled"] is True
    first = stored(data_dir, "SELECT count(*) FROM events")[0][0]
    assert first > 25

    process = start_demo(data_dir, port, "--history-days", "3", "--history-sessions", "25")
    stop(process)
    assert stored(data_dir, "SELECT count(*) FROM events")[0][0] == first
    log = (tmp_path / f"demo-{port}.log").read_text()
    assert f"history: {first} events of 25 sessions stored (0 rejected)" in log
    assert "history: the database already holds events; none added" in log
    assert f"demo app:     {base}/demo/" in log
