"""``stumble rollups status|rebuild``: from the data directory, one line per environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stumble.cli.main import main
from stumble.storage import database_path

HOLD_THE_FILE = (
    "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
    "time.sleep(60)"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    assert main(["simulate", "--sessions", "300", "--days", "4", "--data", str(directory)]) == 0
    return directory


def test_status_then_rebuild_then_status(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollups", "status", "--data", str(data_dir)]) == 0
    before = capsys.readouterr().out
    assert "0 day(s) built" in before
    assert "waiting" in before

    assert main(["rollups", "rebuild", "--data", str(data_dir), "--dirty-only"]) == 0
    rebuilt = capsys.readouterr().out
    assert rebuilt.startswith("rebuilt ")
    assert "0 day(s)" not in rebuilt

    assert main(["rollups", "status", "--data", str(data_dir)]) == 0
    after = capsys.readouterr().out
    assert " 0 waiting" in after
    assert "0 built under an older plan" in after


def test_reports_read_the_rollups_once_built(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = [
        "report",
        "funnel",
        "--data",
        str(data_dir),
        "--scenario",
        "login",
        "--format",
        "json",
    ]
    assert main(report) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["source"] == "raw"
    assert main(["rollups", "rebuild", "--data", str(data_dir)]) == 0
    capsys.readouterr()
    assert main(report) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["source"] == "rollups"


def test_a_database_held_by_another_process_is_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_THE_FILE,
            str(database_path(data_dir)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ok"
        assert main(["rollups", "rebuild", "--data", str(data_dir)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: the database is in use")
        assert len(err.strip().splitlines()) == 1
    finally:
        holder.kill()
        holder.communicate()


def test_no_data_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollups", "status", "--data", str(tmp_path / "nothing")]) == 1
    assert "no stumble data directory" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_the_commands_build_the_cells_the_server_builds(tmp_path: Path) -> None:
    """Same plan, same settings (frustration thresholds): one fingerprint, so neither side
    keeps rebuilding the days the other built."""
    from stumble.app import CollectorServices
    from stumble.cli.common import rollup_maintainer
    from stumble.config import Settings
    from stumble.storage import DuckDBStore

    settings = Settings(data_dir=str(tmp_path / "data"), frustration_repeat_ms=2_500)
    services = CollectorServices(settings)
    server_side = services._rollups()
    assert server_side is not None
    with DuckDBStore(":memory:") as store:
        assert rollup_maintainer(store, settings).fingerprint == server_side.fingerprint
        default = rollup_maintainer(store, Settings(data_dir=str(tmp_path / "other")))
        assert default.fingerprint != server_side.fingerprint
