"""``stumble fixes``: recording a fix from the command line, listing and showing it; refusals
are one line and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from stumble.access.audit import AuditAction, audit_paths, read_records
from stumble.cli.main import main
from stumble.cli.serve import bootstrap_data_dir
from stumble.config import Settings
from stumble.review.fixes import FixBook

ADD = [
    "fixes", "add", "--title", "Mask and hint on IIN",
    "--problem", "field_error: iin_bin (format) on service_request step 2",
    "--scenario", "create_service_request",
    "--hypothesis", "A mask and a concrete message halve format errors",
    "--ui-version", "2.0.0", "--shipped", "2026-03-09", "--owner", "team_service_desk",
    "--expect", "field_error_share:service_request step 2 iin_bin format=-20%",
    "--verify-on", "2026-03-16",
]  # fmt: skip


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory as the server's first start leaves it."""
    directory = tmp_path / "data"
    bootstrap_data_dir(Settings(data_dir=str(directory)))
    return directory


def test_a_fix_is_recorded_audited_listed_and_shown(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ADD, "--data", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "recorded fix-0001" in out and "2026-03-09..2026-03-15" in out
    [fix] = FixBook(data_dir).all()
    assert fix.expectations[0].target == pytest.approx(-0.2)
    records = read_records(audit_paths(data_dir).log).records
    created = [r for r in records if r.action == AuditAction.FIX_CREATE]
    assert [r.detail.target for r in created if r.detail] == ["fix-0001"]
    assert main(["fixes", "list", "--data", str(data_dir)]) == 0
    assert "fix-0001  team_service_desk" in capsys.readouterr().out
    assert main(["fixes", "show", "fix-0001", "--data", str(data_dir)]) == 0
    assert "not yet (on 2026-03-16)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (["--hypothesis", "Ask aigerim.nurlanovna@example.kz"], "personal data"),
        (["--expect", "fewer errors"], "METRIC:SUBJECT"),
        (["--verify-on", "2026-03-01"], "after the day"),
        (["--shipped", "tomorrow"], "--shipped must be a date"),
    ],
)
def test_a_refusal_is_one_line_and_writes_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], change: list[str], says: str
) -> None:
    args = list(ADD)
    for option, value in zip(change[::2], change[1::2], strict=True):
        index = max(i for i, a in enumerate(args) if a == option)
        args[index + 1] = value
    assert main([*args, "--data", str(data_dir)]) != 0
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines
    assert "aigerim" not in lines[0]
    assert FixBook(data_dir).all() == []
