"""``stumble retention run|status``: a dry run deletes nothing, a run deletes and audits as
``cli``, a second run finds nothing; a database held by a server is one line, not a trace."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.test_alerts import one_line_error

from stumble.access.audit import Actor, AuditAction, AuditRecord, audit_paths, read_records
from stumble.cli.main import main
from stumble.storage import DuckDBStore, database_path


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ten days of simulated prod traffic, and prod kept for three days only."""
    directory = tmp_path / "data"
    assert main(["simulate", "--sessions", "60", "--days", "10", "--data", str(directory)]) == 0
    monkeypatch.setenv("STUMBLE_RETENTION_RAW_DAYS", "{prod = 3}")
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def retention_records(data_dir: Path) -> list[AuditRecord]:
    log = audit_paths(data_dir).log
    records = read_records(log).records if log.exists() else ()
    return [r for r in records if r.action == AuditAction.RETENTION_RUN]


def events(data_dir: Path) -> int:
    with DuckDBStore(database_path(data_dir), migrate=False) as store:
        return store.count_events()


def test_a_dry_run_then_a_run_then_nothing_left(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = events(data_dir)
    code, out, _ = run(capsys, "retention", "run", "--dry-run", "--data", str(data_dir))
    (prod,) = [line for line in out if line.startswith("raw prod: would delete ")]
    would = int(prod.split()[4].replace(",", ""))
    assert code == 0 and 0 < would < stored and "(3 days kept)" in prod
    assert out[-1].startswith("database: ") and events(data_dir) == stored
    assert out[-2].startswith("audit: would delete 0 records in 0 archived logs ending before ")
    assert out[-2].endswith("(400 days kept)")
    assert retention_records(data_dir) == []

    code, out, _ = run(capsys, "retention", "run", "--data", str(data_dir))
    assert code == 0
    assert f"raw prod: deleted {would:,} events" in "\n".join(out)
    assert out[-1].startswith("database: ") and " → " in out[-1]
    assert events(data_dir) == stored - would
    (record,) = retention_records(data_dir)
    assert record.actor == Actor.cli() and record.detail is not None
    assert (record.detail.target, record.detail.environment, record.detail.rows) == (
        "raw",
        "prod",
        would,
    )

    code, out, _ = run(capsys, "retention", "run", "--data", str(data_dir))
    assert code == 0 and "raw prod: deleted 0 events" in "\n".join(out)
    assert len(retention_records(data_dir)) == 1  # nothing deleted, nothing recorded


def test_status_names_the_tiers_and_the_oldest_rows(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "retention", "status", "--data", str(data_dir))
    assert code == 0
    assert out[0].startswith("tiers: raw prod 3 days, any other environment 30 days; ")
    assert out[0].endswith("rollups 13 months; quarantine 90 days")
    (prod,) = [line for line in out if line.startswith("raw prod: ")]
    assert "oldest received " in prod and prod.endswith("(3 days kept)")
    assert any(line.startswith("rollups: ") for line in out)
    assert out[-2] == "audit: 0 archived logs (400 days kept; the live log is archived monthly)"
    assert out[-1].startswith("database: ") and out[-1].endswith(" MB")


@pytest.fixture
def held(data_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the database file, as a running server does."""
    code = (
        "import sys\n"
        "from stumble.storage import DuckDBStore\n"
        "store = DuckDBStore(sys.argv[1], threads=1)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(database_path(data_dir))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


@pytest.mark.parametrize("action", [["run"], ["run", "--dry-run"], ["status"]])
def test_a_database_held_by_a_server_is_one_line(
    data_dir: Path,
    held: subprocess.Popen[str],
    action: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "retention", *action, "--data", str(data_dir))
    assert code == 1
    one_line_error(err, "in use by a running server", f"PID {held.pid}", "runs retention itself")


def test_without_a_data_directory_it_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "retention", "run", "--data", str(tmp_path / "none"))
    assert code == 1
    one_line_error(err, "no stumble data directory")
    assert not (tmp_path / "none").exists()
