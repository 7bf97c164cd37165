"""``stumble plan lint|schema|docs`` through argparse, and once as a real process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from stumble.cli import plan as plan_cli
from stumble.plan import default_plan_path, load_plan

BROKEN = textwrap.dedent("""
    schema_version: 1
    events:
      opened: {kind: screen_view, description: Opened.}
      sent: {kind: form_sent, owner: team_forms, description: Sent.}
    routes: [/form]
""")
WARNING_ONLY = textwrap.dedent("""
    schema_version: 1
    events:
      opened: {kind: screen_view, owner: team_forms}
    routes: [/form]
""")


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stumble")
    plan_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


@pytest.fixture
def broken_plan(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    return path


def test_lint_ok_counts_events_and_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    plan = load_plan(default_plan_path())
    assert run(["plan", "lint", str(default_plan_path())]) == 0
    expected = f"ok: {len(plan.events)} events, {len(plan.scenarios)} scenarios\n"
    assert capsys.readouterr().out == expected


def test_lint_prints_each_error_and_fails(broken_plan, capsys) -> None:
    assert run(["plan", "lint", str(broken_plan)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("error: events.opened.owner: missing owner")
    assert lines[1].startswith("error: events.sent.kind: unknown kind `form_sent`")
    assert lines[-1] == "failed: 2 errors, 0 warnings"


def test_lint_with_warnings_only_succeeds(tmp_path, capsys) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(WARNING_ONLY, encoding="utf-8")
    assert run(["plan", "lint", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("warning: events.opened.description:")
    assert out[-1] == "ok: 1 event, 0 scenarios, 1 warning"


def test_lint_reports_an_unreadable_file(tmp_path, capsys) -> None:
    assert run(["plan", "lint", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().out


def test_schema_prints_a_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "schema", str(default_plan_path())]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "event.report_exported" in schema["$defs"]


def test_schema_refuses_a_plan_with_errors(broken_plan, capsys) -> None:
    assert run(["plan", "schema", str(broken_plan)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error: events.opened.owner: missing owner" in captured.err


def test_docs_go_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "docs", str(default_plan_path())]) == 0
    assert capsys.readouterr().out.startswith("# Tracking plan\n")


def test_docs_write_to_a_file_with_o(tmp_path, capsys) -> None:
    out = tmp_path / "catalog.md"
    assert run(["plan", "docs", str(default_plan_path()), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("# Tracking plan\n")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(out) in captured.err


def test_docs_refuse_a_plan_with_errors(broken_plan, tmp_path, capsys) -> None:
    out = tmp_path / "catalog.md"
    assert run(["plan", "docs", str(broken_plan), "-o", str(out)]) == 1
    assert not out.exists()
    assert "stumble plan lint" in capsys.readouterr().err


def test_plan_without_a_subcommand_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        run(["plan"])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_the_installed_entry_point_runs_plan_lint(broken_plan: Path) -> None:
    command = [sys.executable, "-m", "stumble.cli.main", "plan", "lint"]
    ok = subprocess.run(
        [*command, str(default_plan_path())], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: ")
    failed = subprocess.run(
        [*command, str(broken_plan)], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert "error: events.opened.owner:" in failed.stdout
