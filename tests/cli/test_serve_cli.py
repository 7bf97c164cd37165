"""The command line as a user meets it: first start, keys, offline load and health."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
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


def test_first_start_creates_config_and_a_dev_key_and_says_how_to_use_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stumble.cli.main",
                "serve",
                "--data",
                str(data),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
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
