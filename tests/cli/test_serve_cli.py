"""The command line as a user meets it: first start, keys, offline load and health."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.collector.conftest import ORIGIN, batch, event, free_port, make_server, wait_until_up

from stumble.cli.main import main


def stumble(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stumble.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # tests assert on the return code themselves
    )


def start_serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """``stumble serve`` as a user runs it, its output in ``log``."""
    command = [sys.executable, "-m", "stumble.cli.main", "serve", "--data", str(data)]
    with log.open("w") as out:
        return subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )


def test_first_start_creates_config_and_a_dev_key_and_says_how_to_use_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "serve.log"
    process = start_serve(data, port, log)
    try:
        wait_until_up(process, f"http://127.0.0.1:{port}", log, path="/readyz")
        key = (data / "dev-write-key.txt").read_text().strip()
        assert (data / "stumble.toml").exists()
        assert key in log.read_text()
        assert "curl" in log.read_text()
        origin = f"http://127.0.0.1:{port}"
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/batch",
            json=batch(event()),
            headers={"Authorization": f"Bearer {key}", "Origin": origin},
        )
        assert response.status_code == 202
        assert httpx.get(f"http://127.0.0.1:{port}/sdk/stumble.js").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=60)
    # uvicorn re-raises the signal after a graceful shutdown, so -15 is a clean exit here
    assert process.returncode in {0, -15}
    assert "Application shutdown complete" in log.read_text()


def test_keys_create_list_revoke(tmp_path: Path, capsys: object) -> None:
    data = str(tmp_path)
    created = stumble(
        "keys", "create", "--data", data, "--env", "prod", "--origin", ORIGIN, "--json"
    )
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert record["key"].startswith("stk_") and "key_sha256" not in record
    listing = stumble("keys", "list", "--data", data)
    assert record["key_id"] in listing.stdout and record["key"] not in listing.stdout
    assert stumble("keys", "revoke", "--data", data, record["key_id"]).returncode == 0
    assert "revoked" in stumble("keys", "list", "--data", data).stdout
    bad = stumble("keys", "create", "--data", data, "--env", "prod", "--origin", "not a url")
    assert bad.returncode == 1 and "origin" in bad.stdout


def test_offline_load_and_health_after_a_crash(tmp_path: Path) -> None:
    server = make_server(tmp_path, STUMBLE_LOADER_INTERVAL_S="3600")
    server.start()
    events = [event() for _ in range(30)] + [event(kind="field_error", field_id="921029350851")]
    assert server.post(batch(*events)).json()["accepted"] == 30
    server.kill()  # the loader never ran: everything is still in the spool
    loaded = stumble("load", "--data", str(server.data_dir))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "loaded 30 rows" in loaded.stdout
    assert server.query("SELECT count(*) FROM events") == [(30,)]
    health = stumble("health", "--data", str(server.data_dir), "--json")
    assert health.returncode == 0, health.stderr
    report = json.loads(health.stdout)
    assert report["spool"]["sealed_segments"] == 0
    assert "921029350851" not in health.stdout


def test_no_command_prints_help(capsys: object) -> None:
    assert main([]) == 2


# --- expected failures: one line on stderr, a non-zero exit, nothing created --------------


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stumble.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,  # tests assert on the return code themselves
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_read_only_commands_without_a_data_directory_say_so_and_create_nothing(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("health", cwd=empty), "no stumble data directory")
    assert_one_line_error(run_cli("health", "--data", "missing", cwd=empty), "missing")
    assert_one_line_error(run_cli("load", "--data", "missing", cwd=empty), "missing")
    assert list(empty.iterdir()) == []


def test_commands_on_a_database_held_by_a_running_server_say_so_in_one_line(
    tmp_path: Path,
) -> None:
    server = make_server(tmp_path)
    server.start()
    try:
        assert server.process is not None
        holder = f"PID {server.process.pid}"
        data = str(server.data_dir)
        for args in (
            ("health", "--data", data),
            ("load", "--data", data),
            ("serve", "--data", data, "--port", str(free_port())),
        ):
            result = run_cli(*args)
            assert_one_line_error(result, "in use by another stumble process", holder)
            assert "--server URL" in result.stderr
        refused = run_cli("health", "--server", server.url, "--json")
        assert_one_line_error(refused, "STUMBLE_TOKEN")
        token = {"STUMBLE_TOKEN": server.admin_token}
        asked = run_cli("health", "--server", server.url, "--json", env=token)
        assert asked.returncode == 0, asked.stderr
        assert server.alive()
    finally:
        server.kill()


def test_health_from_a_server_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run_cli("health", "--server", url), "cannot reach")


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_burst_below_the_batch_limit_is_refused_at_start(tmp_path: Path, command: str) -> None:
    env = {"STUMBLE_RATE_LIMIT_EVENTS_PER_S": "50", "STUMBLE_RATE_LIMIT_BURST": "100"}
    data = tmp_path / "data"
    result = run_cli(command, "--data", str(data), "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert_one_line_error(result, "rate_limit_burst", "max_events_per_batch")
    assert not data.exists()


def test_first_start_makes_every_directory_0700_and_every_file_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "serve.log"
    process = start_serve(data, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(process, url, log, path="/readyz")
        key = (data / "dev-write-key.txt").read_text().strip()
        sent = httpx.post(
            f"{url}/v1/batch",
            json=batch(event()),
            headers={"Authorization": f"Bearer {key}", "Origin": url},
        )
        assert sent.status_code == 202
        # The loader's first cycle checkpoints (retention), so the WAL whose mode is checked
        # here is the one the event's load writes.
        wal = data / "stumble.duckdb.wal"
        deadline = time.monotonic() + 15
        while not wal.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        modes = {
            path.relative_to(tmp_path).as_posix(): stat.S_IMODE(path.stat().st_mode)
            for path in [data, *data.rglob("*")]
        }
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert {"data/secrets", "data/spool", "data/stumble.duckdb", "data/stumble.toml"} <= set(modes)
    assert "data/keys.json" in modes and any(name.endswith(".wal") for name in modes)
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (tmp_path / name).is_dir() else 0o600)
    }
    assert not wrong, wrong
