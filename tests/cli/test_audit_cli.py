"""``stumble audit verify|show``: one line per verdict, and nothing created by reading."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditLog, Outcome, audit_paths
from stumble.cli.main import main

DAY_S = 86_400


class SteppedClock:
    """A clock the test moves: records dated days ago, relative to the real now."""

    def __init__(self, days_ago: float) -> None:
        self.now = time.time() - days_ago * DAY_S

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Ten days ago a key was revoked; yesterday raw events were read twice."""
    directory = tmp_path / "data"
    clock = SteppedClock(days_ago=10)
    with AuditLog.in_data_dir(directory, clock=clock) as log:
        log.record(Actor.cli(), AuditAction.WRITE_KEY_REVOKE, detail=AuditDetail(target="qwerty"))
        clock.now += 9 * DAY_S
        for rows in (12, 0):
            detail = AuditDetail(route="/api/v1/raw/:kind", filters=("env", "from"), rows=rows)
            log.record(Actor.token("grafana"), AuditAction.RAW_READ, Outcome.OK, detail)
    return directory


def test_verify_says_ok_with_the_counts(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "verify", "--data", str(data_dir)]) == 0
    assert capsys.readouterr().out == "ok: 3 records, 2 digests\n"


def test_verify_names_the_first_broken_record_in_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = audit_paths(data_dir).log
    lines = log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"qwerty"', b'"qwertz"')
    log.write_bytes(b"".join(lines))
    assert main(["audit", "verify", "--data", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("broken: line 2: edited: ") and out.count("\n") == 1


def test_verify_mentions_unsigned_records_and_a_missing_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    log = AuditLog.in_data_dir(data_dir)
    log.record(Actor.system(), AuditAction.RETENTION_RUN, detail=AuditDetail(rows=40))
    audit_paths(data_dir).head.unlink()
    assert main(["audit", "verify", "--data", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 1 records, 1 digests; the last 1 are after the latest digest")
    assert "no head file" in out and out.count("\n") == 1


def test_show_prints_records_oldest_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "show", "--data", str(data_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[3] for line in lines] == [
        "audit.digest",
        "write_key.revoke",
        "raw.read",
        "raw.read",
        "audit.digest",
    ]
    assert lines[2].endswith(
        "#3  token:grafana  raw.read  ok  route=/api/v1/raw/:kind filters=env,from rows=12"
    )
    assert lines[1].endswith("cli  write_key.revoke  ok  target=qwerty")


def test_show_since_an_age_or_a_date_and_as_json(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "show", "--data", str(data_dir), "--since", "7d", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["action"] for r in records] == ["raw.read", "raw.read", "audit.digest"]
    assert records[0]["actor"] == {"kind": "token", "name": "grafana"}
    assert records[0]["detail"]["filters"] == ["env", "from"]
    assert main(["audit", "show", "--data", str(data_dir), "--since", "2000-01-01"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["audit", "show", "--data", str(data_dir), "--since", "1h"]) == 0
    assert capsys.readouterr().out == ""


def test_a_bad_since_is_one_line_naming_the_option(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "show", "--data", str(data_dir), "--since", "last week"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --since must be") and err.count("\n") == 1


@pytest.mark.parametrize("command", ["verify", "show"])
def test_reading_creates_nothing_where_there_is_no_log(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert main(["audit", command, "--data", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no stumble data directory") and err.count("\n") == 1
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["audit", command, "--data", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no audit log at") and err.count("\n") == 1
    assert list(empty.iterdir()) == []


def test_verify_without_the_key_is_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_paths(data_dir).key.unlink()
    assert main(["audit", "verify", "--data", str(data_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no audit key at") and err.count("\n") == 1
    assert not audit_paths(data_dir).key.exists()


def test_verify_checks_each_archive_and_the_anchors_between_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "data"
    clock = SteppedClock(days_ago=100)
    log = AuditLog.in_data_dir(directory, clock=clock)
    for _ in range(3):
        log.record(Actor.cli(), AuditAction.SETTINGS_CHANGE, detail=AuditDetail(rows=1))
        clock.now += 31 * DAY_S
        log.rotate(int(clock.now * 1000), int((clock.now - 30 * DAY_S) * 1000))
    log.close()

    assert main(["audit", "verify", "--data", str(directory)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("ok: ")
    assert all(line.startswith("archive audit-") and ": ok: " in line for line in lines[1:])

    middle = sorted((directory / "audit" / "archive").glob("*.log"))[1]
    middle.unlink()  # taken out: the archive before it no longer continues into the next
    assert main(["audit", "verify", "--data", str(directory)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("the log after it does not continue its chain")
    assert not lines[2].endswith("does not continue its chain")
