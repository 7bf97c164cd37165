"""``stumble events`` and ``stumble session``: from the data directory (audited as ``cli``) or
from a server (audited there as the token), one line for every failure, nothing shown when
the audit record cannot be written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.web.test_raw import serving_raw

from stumble.access.audit import Actor, AuditAction, AuditRecord, audit_paths, read_records
from stumble.access.roles import Role
from stumble.cli.main import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("raw_cli") / "data"
    assert main(["simulate", "--sessions", "200", "--days", "10", "--data", str(directory)]) == 0
    return directory


def audit_records(data_dir: Path) -> tuple[AuditRecord, ...]:
    log = audit_paths(data_dir).log
    if not log.exists():
        return ()
    return tuple(r for r in read_records(log).records if r.action == AuditAction.RAW_READ)


def audit_text(data_dir: Path) -> bytes:
    log = audit_paths(data_dir).log
    return log.read_bytes() if log.exists() else b""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_events_print_a_table_and_are_audited_as_the_cli(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "events", "--data", str(data_dir), "--limit", "5")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "5 events, newest first"
    assert lines[1].split() == [
        "time",
        "(UTC)",
        "env",
        "session",
        "screen",
        "event",
        "kind",
        "details",
    ]
    assert len(lines) == 3 + 5
    assert err.startswith("more rows: add --after ")
    record = audit_records(data_dir)[-1]
    assert record.actor == Actor.cli()
    assert record.detail is not None
    assert (record.detail.route, record.detail.filters, record.detail.rows) == (
        "/api/v1/events",
        ("limit",),
        5,
    )


def test_json_pages_follow_one_another(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "events", "--data", str(data_dir), "--limit", "30", "--json")
    first = json.loads(out)
    _, out, _ = run(
        capsys,
        "events",
        "--data",
        str(data_dir),
        "--limit",
        "30",
        "--json",
        "--after",
        first["next"],
    )
    second = json.loads(out)
    both = [(e["ts"], e["event_id"]) for e in first["events"] + second["events"]]

    assert len(both) == 60 and both == sorted(both, reverse=True)
    assert len(set(both)) == 60


def test_a_session_prints_as_a_timeline(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "events", "--data", str(data_dir), "--limit", "1", "--json")
    pseudonym = json.loads(out)["events"][0]["session_id"]

    code, out, _ = run(capsys, "session", pseudonym, "--data", str(data_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"session {pseudonym} (prod), ")
    assert lines[2].split()[:2] == ["+time", "screen"]
    assert lines[4].startswith("+0 ms ")

    code, out, _ = run(capsys, "session", pseudonym, "--data", str(data_dir), "--json")
    timeline = json.loads(out)
    offsets = [entry["since_start_ms"] for entry in timeline["events"]]
    assert code == 0 and offsets[0] == 0 and offsets == sorted(offsets)
    record = audit_records(data_dir)[-1]
    assert record.detail is not None
    assert (record.detail.route, record.detail.rows) == (
        "/api/v1/sessions/:pseudonym",
        len(offsets),
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["events", "--from", "2020-01-01"], "error: from must be within the raw window"),
        (["events", "--screen", "870412300129"], "error: screen looks like personal data"),
        (["events", "--event", "aigerim@example.kz"], "error: event must be an identifier"),
        (["events", "--limit", "5000"], "error: limit must be a whole number"),
        (["session", "870412300129"], "error: session must be a stored session pseudonym"),
        (["session", "h_qqqqqqqqqqqqqqqq"], "error: no such session in the raw window"),
    ],
)
def test_refusals_are_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = audit_text(data_dir)

    code, out, err = run(capsys, *argv, "--data", str(data_dir))

    assert code != 0 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    logged = audit_text(data_dir)[len(before) :]
    assert b"870412300129" not in logged and b"aigerim" not in logged


def test_no_audit_record_means_nothing_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    assert main(["simulate", "--sessions", "10", "--days", "2", "--data", str(data_dir)]) == 0
    capsys.readouterr()
    (data_dir / "audit").write_text("a file where the audit directory should be")

    code, out, err = run(capsys, "events", "--data", str(data_dir))

    assert code == 1 and out == ""
    assert err.startswith("error: the audit log cannot be written") and err.count("\n") == 1
    assert "nothing is shown" in err


def test_without_a_data_directory_it_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "events")
    assert code == 1 and out == ""
    assert err.startswith("error: no stumble data directory") and err.count("\n") == 1


def test_a_server_answers_with_the_token_and_audits_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving_raw(data_dir) as server:
        url = str(server.http.base_url)
        monkeypatch.setenv("STUMBLE_TOKEN", server.tokens[Role.ENGINEER])
        code, out, _ = run(capsys, "events", "--server", url, "--limit", "3", "--json")
        page = json.loads(out)
        session = page["events"][0]["session_id"]
        timeline_code, timeline_out, _ = run(capsys, "session", session, "--server", url)
        bad = run(capsys, "events", "--server", url, "--from", "2020-01-01")
        missing = run(capsys, "session", "h_qqqqqqqqqqqqqqqq", "--server", url)
        monkeypatch.setenv("STUMBLE_TOKEN", server.tokens[Role.ANALYST])
        refused = run(capsys, "events", "--server", url)

    assert code == 0 and len(page["events"]) == 3 and page["next"]
    assert timeline_code == 0 and timeline_out.startswith(f"session {session} (prod)")
    reads = audit_records(data_dir)[-3:]
    assert [r.actor for r in reads] == [Actor.token(server.names[Role.ENGINEER])] * 3
    assert bad[0] == 2 and bad[2].startswith("error: the server answered 400: from must be")
    assert missing[0] == 2 and missing[2] == (
        "error: the server answered 404: no such session in the raw window\n"
    )
    assert refused[0] == 2 and refused[1] == ""
    assert refused[2] == "error: the server answered 403: this token's role may not read it\n"
