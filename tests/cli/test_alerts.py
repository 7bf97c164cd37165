"""``stumble alerts``: list, test, silence and unsilence on a simulated data directory."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stumble.access.audit import AuditLog, audit_paths
from stumble.cli.main import main
from stumble.config import Settings
from stumble.plan.load import default_plan_path, load_plan
from stumble.review.alerts import AlertJob, active_silences, current_states
from stumble.review.delivery import Deliverer
from stumble.storage import DuckDBStore, database_path


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated data directory (the 8 days up to yesterday) whose rules the job evaluated
    once, as the server would."""
    data = tmp_path_factory.mktemp("alerts-cli") / "data"
    assert main(["simulate", "--sessions", "2000", "--days", "8", "--data", str(data)]) == 0
    settings = Settings(data_dir=str(data), alert_min_sessions=10)
    store = DuckDBStore(database_path(data), threads=1)
    audit = AuditLog.in_data_dir(data)
    try:
        AlertJob(
            store=store,
            plan=load_plan(default_plan_path()),
            settings=settings,
            notifier=Deliverer(settings, audit=audit),
            audit=audit,
        ).run(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    finally:
        store.close()
        audit.close()
    (data / "stumble.toml").write_text("alert_min_sessions = 10\n")
    return data


def one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_without_a_data_directory_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert main(["alerts", "list", "--data", str(missing)]) != 0
    one_line_error(capsys.readouterr().err, "no stumble data directory")
    assert not missing.exists()


def test_list_before_any_evaluation_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stumble.toml").write_text("")
    assert main(["alerts", "list", "--data", str(data)]) == 0
    assert "no alert rule has been evaluated yet" in capsys.readouterr().out
    assert sorted(p.name for p in data.iterdir()) == ["stumble.toml"]


def test_list_shows_every_rule_with_its_state_and_last_value(
    evaluated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "list", "--data", str(evaluated)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "state",
        "since",
        "rule",
        "owner",
        "last",
        "value",
        "against",
        "sessions",
    ]
    states = current_states(evaluated)
    assert len(out) == 1 + len(states)
    assert any("max_field_error:create_service_request:" in line for line in out)
    assert main(["alerts", "list", "--data", str(evaluated), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["rule"] for row in rows] == [s.rule for s in states]
    assert {row["state"] for row in rows} <= {"normal", "pending", "firing", "resolved"}


def test_test_evaluates_now_and_changes_nothing(
    evaluated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    review = evaluated / "review"
    before = {p.name: p.read_bytes() for p in review.iterdir()}
    audit_before = sorted(audit_paths(evaluated).log.parent.glob("*"))
    assert main(["alerts", "test", "--data", str(evaluated), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(row["evaluation"]["status"] in ("breaching", "ok", "no_data") for row in rows)
    rule = current_states(evaluated)[0].rule
    assert main(["alerts", "test", rule, "--data", str(evaluated)]) == 0
    assert capsys.readouterr().out.startswith(f"{rule}: ")
    assert {p.name: p.read_bytes() for p in review.iterdir()} == before
    assert sorted(audit_paths(evaluated).log.parent.glob("*")) == audit_before
    assert main(["alerts", "test", "max_nothing:x:y", "--data", str(evaluated)]) == 2
    one_line_error(capsys.readouterr().err, "no rule max_nothing:x:y")


def test_silence_and_unsilence_are_audited(
    evaluated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = current_states(evaluated)[0].rule
    assert main(["alerts", "silence", rule, "--for", "2h", "--data", str(evaluated)]) == 0
    assert f"silenced {rule} until" in capsys.readouterr().out
    silence = active_silences(evaluated, dt.datetime.now(dt.UTC))[rule]
    left = silence.until_ms - silence.created_ms
    assert left == 2 * 3600 * 1000
    assert main(["alerts", "list", "--data", str(evaluated)]) == 0
    assert any(
        rule in line and "(silenced)" in line for line in capsys.readouterr().out.splitlines()
    )
    assert main(["alerts", "unsilence", rule, "--data", str(evaluated)]) == 0
    assert "notifies again" in capsys.readouterr().out
    assert main(["alerts", "unsilence", rule, "--data", str(evaluated)]) == 0
    assert "is not silenced" in capsys.readouterr().out
    records = [json.loads(line) for line in audit_paths(evaluated).log.read_text().splitlines()]
    silences = [r for r in records if r["action"] == "alert.silence"]
    assert [(r["actor"]["kind"], r["detail"]["target"]) for r in silences] == [
        ("cli", rule),
        ("cli", rule),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--for", "2 hours"], "--for takes a duration"),
        (["--until", "2020-01-01"], "--until must be in the future"),
        (["--until", "soon"], "--until takes YYYY-MM-DD"),
        (["--for", "365d"], "at most 90 days"),
    ],
)
def test_bad_silences_are_refused_in_one_line(
    evaluated: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    rule = current_states(evaluated)[0].rule
    assert main(["alerts", "silence", rule, *args, "--data", str(evaluated)]) == 2
    one_line_error(capsys.readouterr().err, message)


def test_silencing_an_unknown_rule_is_refused(
    evaluated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "silence", "max_x:y:z", "--for", "1h", "--data", str(evaluated)]) == 2
    one_line_error(capsys.readouterr().err, "stumble alerts list")


@pytest.fixture
def held(evaluated: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the database, as a running server does."""
    code = (
        "import sys, time\n"
        "from stumble.storage import DuckDBStore\n"
        "store = DuckDBStore(sys.argv[1], threads=1)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(database_path(evaluated))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


def test_test_on_a_database_held_by_a_server_says_so_in_one_line(
    evaluated: Path, held: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "test", "--data", str(evaluated)]) == 1
    one_line_error(capsys.readouterr().err, "in use by a running server", f"PID {held.pid}")
    # list reads the state file only: it works while the server runs
    assert main(["alerts", "list", "--data", str(evaluated)]) == 0
