"""``stumble tokens`` as an admin meets it: the token shown once, lists without secrets,
revocation seen by a running server's ring, one-line refusals."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.cli.common import CommandError
from stumble.cli.main import main
from stumble.cli.tokens import parse_expiry

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def stumble(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stumble.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # tests assert on the return code themselves
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory as `stumble serve` leaves it (commands never create one)."""
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    (directory / "stumble.toml").write_text("")
    return directory


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_revoke_through_the_cli_is_seen_by_an_open_ring(data: Path) -> None:
    server_view = TokenRing(data)
    created = stumble("tokens", "create", "--data", str(data), "--role", "analyst",
                      "--name", "ux_team", "--expires", "90d", "--json")  # fmt: skip
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["token"].startswith("sta_") and issued["role"] == "analyst"
    assert "token_sha256" not in issued
    now = datetime.now(UTC)
    assert server_view.reload()
    assert server_view.authenticate(issued["token"], now) is not None

    revoked = stumble("tokens", "revoke", "--data", str(data), issued["token_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {issued['token_id']} (ux_team, analyst)" in revoked.stdout
    assert server_view.reload()
    assert server_view.authenticate(issued["token"], now) is None
    assert not server_view.reload()  # nothing changed since: no re-read


def test_create_prints_the_token_once_with_id_role_and_expiry(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    code, out, _ = run(capsys, "tokens", "create", "--data", str(data), "--role", "auditor",
                       "--name", "infosec", "--expires", day)  # fmt: skip
    assert code == 0
    (token,) = TokenRing(data).list()
    assert token.role is Role.AUDITOR
    assert token.token_id in out and "auditor" in out and f"expires {day} 00:00 UTC" in out
    assert out.count("sta_") == 1


def test_list_never_prints_a_token_or_its_hash(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, token = TokenRing(data).create(Role.ADMIN, "ops")
    TokenRing(data).create(Role.ENGINEER, "frontend", timedelta(days=1))
    TokenRing(data).revoke("frontend")
    for json_flag in ([], ["--json"]):
        code, out, _ = run(capsys, "tokens", "list", "--data", str(data), *json_flag)
        assert code == 0
        assert token.token_id in out and "frontend" in out
        assert text not in out and text.rsplit("_", 1)[1] not in out
        assert token.token_sha256 not in out and "sha256" not in out
    listed = json.loads(out)
    # Two tokens made in the same millisecond list in token-id order: compare by name.
    assert {row["name"]: row["state"] for row in listed} == {"ops": "active", "frontend": "revoked"}


def test_files_written_by_the_cli_are_private(data: Path) -> None:
    created = stumble("tokens", "create", "--data", str(data), "--role", "admin", "--name", "ops")
    assert created.returncode == 0, created.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "tokens.json").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--name", "ivan.petrov@example.kz"], "e-mail"),
        (["--name", "Aidos_Nurlanov"], "personal data"),
        (["--name", "ux_team", "--expires", "soon"], "--expires must be"),
        (["--name", "ux_team", "--expires=-5d"], "--expires must be"),
        (["--name", "ux_team", "--expires", "0d"], "in the future"),
        (["--name", "ux_team", "--expires", "2020-01-01"], "in the future"),
        (["--name", "ux_team", "--expires", "2026-02-30"], "calendar date"),
        (["--name", "ux_team", "--expires", "9999999d"], "at most 3650 days"),
    ],
)
def test_nonsense_is_refused_with_one_line(
    data: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    code, out, err = run(
        capsys, "tokens", "create", "--data", str(data), "--role", "analyst", *args
    )
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and says in err
    assert "ivan" not in err and "Aidos" not in err
    assert TokenRing(data).list() == ()


def test_revoking_an_unknown_token_and_a_missing_directory_are_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "tokens", "revoke", "--data", str(data), "nobody")
    assert code == 1 and err.count("\n") == 1 and "no API token" in err
    code, _, err = run(capsys, "tokens", "list", "--data", str(tmp_path / "typo"))
    assert code == 1 and "no stumble data directory" in err
    assert not (tmp_path / "typo").exists()


def test_parse_expiry() -> None:
    assert parse_expiry("90d", NOW) == timedelta(days=90)
    assert parse_expiry("12h", NOW) == timedelta(hours=12)
    assert parse_expiry("30m", NOW) == timedelta(minutes=30)
    assert parse_expiry("2026-03-02", NOW) == timedelta(hours=11, minutes=30)
    for nonsense in ["", "90", "d", "90 d", "1.5d", "90D", "90s", "٩٠d", "2026-3-2", "P90D"]:
        with pytest.raises(CommandError):
            parse_expiry(nonsense, NOW)


def test_a_damaged_token_file_is_one_line(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (data / "tokens.json").write_text("{not json")
    code, _, err = run(capsys, "tokens", "list", "--data", str(data))
    assert code == 1 and err.count("\n") == 1 and "damaged" in err
