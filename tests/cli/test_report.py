"""``stumble report``: from the data directory, or from a running server's read API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.web.test_api import serving

from stumble.access.roles import Role
from stumble.cli.main import main


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report-cli") / "data"
    assert main(["simulate", "--sessions", "800", "--days", "8", "--data", str(directory)]) == 0
    return directory


def test_a_funnel_table_from_the_data_directory(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["report", "funnel", "--data", str(data_dir), "--scenario", "create_service_request"]
    assert main([*args, "--by", "ui_version"]) == 0
    out = capsys.readouterr().out
    assert "Funnel create_service_request (ordered, window 60 min)" in out
    assert "by ui_version" in out
    assert any(line.startswith("1.4.2") and "step_2_done" in line for line in out.splitlines())


def test_json_and_markdown_and_filters(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["report", "field-errors", "--data", str(data_dir)]
    assert (
        main([*base, "--format", "json", "-f", "role=operator", "-p", "form=service_request"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["meta"]["filters"] == {"role": "operator"}
    assert {row["form_id"] for row in report["data"]["errors"]} == {"service_request"}
    assert main([*base, "--format", "md"]) == 0
    assert "### Field errors" in capsys.readouterr().out


def test_mistakes_are_explained(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "funnel", "--data", str(data_dir)]) == 2
    assert "scenario is required" in capsys.readouterr().err
    assert main(["report", "loops", "--data", str(data_dir), "-p", "nonsense"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["report", "loops", "--data", str(tmp_path / "empty")]) == 1
    assert "no database" in capsys.readouterr().err


def test_a_date_off_the_calendar_is_one_line_naming_the_option(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "usage", "--data", str(data_dir), "--to", "9999-12-31"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: to must be") and err.count("\n") == 1
    assert "9999" not in err


def test_from_a_server_and_not_from_its_locked_file(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(data_dir) as http:
        url = str(http.base_url)
        args = ["report", "top-problems", "--server", url]
        monkeypatch.delenv("STUMBLE_TOKEN", raising=False)
        assert main(args) == 2
        assert "set STUMBLE_TOKEN" in capsys.readouterr().err
        monkeypatch.setenv("STUMBLE_TOKEN", http.tokens[Role.ANALYST])  # type: ignore[attr-defined]
        assert main(args) == 0
        assert "Top problems" in capsys.readouterr().out
        assert (
            main(["report", "funnel", "--server", url, "--by", "nonsense", "--scenario", "login"])
            == 2
        )
        assert "400" in capsys.readouterr().err
        assert main(["report", "loops", "--data", str(data_dir)]) == 1
        assert "use --server" in capsys.readouterr().err
