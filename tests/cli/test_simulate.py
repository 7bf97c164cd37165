"""``stumble simulate``: stored through the collector's path, or sent to a running server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.web.test_api import serving

from stumble.access.keys import KeyRing
from stumble.cli.main import main
from stumble.storage import DuckDBStore, database_path


def test_storing_into_a_data_directory_reports_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["simulate", "--sessions", "120", "--days", "3", "--data", str(data)]) == 0
    err = capsys.readouterr().err
    progress = [line for line in err.splitlines() if line.startswith("simulate [")]
    assert progress[-1].startswith("simulate [##############################] 120/120 sessions")
    assert "stored:" in err and "0 rejected" in err
    (key,) = KeyRing(data).all()
    assert (key.environment, key.label) == ("prod", "stumble simulate")
    with DuckDBStore(database_path(data)) as store:
        stored = store.count_events("prod")
        assert stored > 120 * 10
        assert store.query("SELECT count(DISTINCT session_id) FROM events").rows == [(120,)]
    # A second run with another seed reuses the simulator's key and adds its sessions.
    args = ["simulate", "--sessions", "50", "--days", "3", "--seed", "9", "--data", str(data)]
    assert main(args) == 0
    assert len(KeyRing(data).all()) == 1
    with DuckDBStore(database_path(data)) as store:
        assert store.count_events("prod") > stored


def test_sending_to_a_running_collector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    token, _ = KeyRing(data).create("staging", [])
    with serving(data) as http:
        args = ["simulate", "--sessions", "40", "--days", "2", "--send", str(http.base_url)]
        assert main([*args, "--key", token]) == 0
        assert "0 rejected, 0 dropped" in capsys.readouterr().err
        # Acknowledged means durable in the spool; the loader stores it within a few seconds.
        deadline = time.monotonic() + 30
        # Until staging's first rows are stored, env=staging is unknown: a 400 naming prod.
        while True:
            answer = http.get("/api/v1/reports/usage", params={"env": "staging"})
            usage = answer.json() if answer.status_code == 200 else {"data": {}}
            if usage["data"].get("active_sessions") == 40 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert usage["data"]["active_sessions"] == 40


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "x", "--send", "http://127.0.0.1:1"], "choose one"),
        ([], "say where"),
        (["--send", "http://127.0.0.1:1"], "--send needs --key"),
        (["--sessions", "0", "--data", "x"], "at least 1"),
    ],
)
def test_impossible_requests_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *args]) == 2
    assert message in capsys.readouterr().err
