"""Changes made from the command line are in the audit log, and are refused without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stumble.access.audit import audit_paths, read_key, read_records, verify
from stumble.access.tokens import TokenRing
from stumble.cli.main import main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    (directory / "stumble.toml").write_text("")  # as `stumble serve` leaves it
    assert main(["keys", "create", "--env", "prod", "--data", str(directory)]) == 0
    return directory


def actions(data: Path) -> list[tuple[str, str, str | None]]:
    records = read_records(audit_paths(data).log).records
    return [
        (r.action, r.actor.kind, r.detail.target if r.detail else None)
        for r in records
        if r.action != "audit.digest"
    ]


def test_token_and_key_changes_are_recorded_and_the_chain_verifies(data: Path) -> None:
    assert (
        main(["tokens", "create", "--role", "analyst", "--name", "ux_team", "--data", str(data)])
        == 0
    )
    assert main(["tokens", "revoke", "ux_team", "--data", str(data)]) == 0
    recorded = actions(data)
    assert ("write_key.create", "cli", None) in recorded
    assert ("token.create", "cli", "ux_team") in recorded
    assert any(action == "token.revoke" for action, _, _ in recorded)
    paths = audit_paths(data)
    assert verify(paths.log, read_key(paths.key)).ok


def test_without_an_audit_log_a_token_is_not_created(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = audit_paths(data).log
    log.unlink()
    log.mkdir()  # the log's path is a directory now: nothing can be appended
    args = ["tokens", "create", "--role", "admin", "--name", "ops", "--data", str(data)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nothing was changed" in err and err.count("\n") == 1
    assert [t.name for t in TokenRing(data).list()] == []


def test_a_personal_token_name_never_reaches_the_audit_log(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tokens", "create", "--role", "admin", "--name", "aidos.nurlanov", "--data", str(data)]
    assert main(args) != 0
    assert "nurlanov" not in audit_paths(data).log.read_text()
    capsys.readouterr()
