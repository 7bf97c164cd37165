"""Encryption at rest end to end: a real server, marker values sent in allowed identifier
fields, and every byte of the data directory scanned for them; key rotation; a wrong key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from tests.collector.conftest import Server, batch, event, make_server

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditLog, audit_paths, verify
from stumble.access.audit import read_key as read_audit_key
from stumble.cli.main import main
from stumble.encryption import (
    KEY_ENV_VAR,
    SPOOL,
    FrameOpener,
    generate_key_text,
    load_data_keys,
    write_key_file,
)
from stumble.storage.duckdb_encryption import httpfs_extension_path

pytestmark = pytest.mark.skipif(
    httpfs_extension_path() is None, reason="DuckDB cannot write encrypted files here"
)

# Allowed identifier fields (the guard lets them through as sent) carrying recognisable values.
MARKERS = ("op_mrkzq7xa", "mrk_module_zq7xb", "mrkfpzq7xc", "mrk_audit_zq7xd")


def marker_events() -> list[dict[str, object]]:
    return [
        event("operation_start", operation_id=MARKERS[0]),
        event("operation_end", operation_id=MARKERS[0]),
        event("error", module=MARKERS[1], fingerprint=MARKERS[2]),
    ] * 5


def send_and_kill(srv: Server) -> None:
    """Events acknowledged (so fsynced in the spool), then kill -9: nothing is tidied up."""
    srv.start()
    reply = srv.post(batch(*marker_events()))
    assert reply.status_code == 202 and reply.json()["accepted"] == 15, reply.text
    srv.kill()


def fill_data_dir(srv: Server) -> None:
    """Markers in the database (loaded on the second start), in the spool (acknowledged,
    never loaded: the loader waits an hour), in DuckDB's WAL, and in the audit log."""
    send_and_kill(srv)
    send_and_kill(srv)
    keys = load_data_keys(os.environ.get("STUMBLE_DATA_KEY_FILE", ""), srv.data_dir, srv.env)
    with AuditLog.in_data_dir(srv.data_dir, data_keys=keys) as log:
        log.record(Actor.cli(), AuditAction.EXPORT, detail=AuditDetail(target=MARKERS[3]))


def files_holding_markers(data_dir: Path) -> dict[str, list[str]]:
    """Every file under the data directory, every byte, searched for every marker."""
    found: dict[str, list[str]] = {}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            hits = [m for m in MARKERS if m.encode() in content]
            if hits:
                found[str(path.relative_to(data_dir))] = hits
    return found


def loose_modes(data_dir: Path) -> list[str]:
    """Files not 0600 and directories not 0700 (or stricter)."""
    loose = []
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        limit = 0o700 if path.is_dir() else 0o600
        if mode & ~limit:
            loose.append(f"{path.relative_to(data_dir)} {mode:04o}")
    return loose


def encrypted_server(tmp_path: Path, key: str) -> Server:
    return make_server(tmp_path, STUMBLE_DATA_KEY=key, STUMBLE_LOADER_INTERVAL_S="3600")


def test_with_encryption_no_marker_is_anywhere_in_the_data_directory(tmp_path: Path) -> None:
    srv = encrypted_server(tmp_path, generate_key_text())
    fill_data_dir(srv)
    assert (srv.data_dir / "stumble.duckdb").exists()
    assert list((srv.data_dir / "spool").glob("seg-*"))
    assert files_holding_markers(srv.data_dir) == {}
    assert loose_modes(srv.data_dir) == []


def test_without_encryption_the_same_scan_finds_the_markers(tmp_path: Path) -> None:
    """The control: the scan above would see the markers if they were there in plaintext."""
    srv = make_server(tmp_path, STUMBLE_LOADER_INTERVAL_S="3600")
    fill_data_dir(srv)
    found = files_holding_markers(srv.data_dir)
    assert any(name.startswith("spool/") for name in found), found
    assert any(name.startswith("stumble.duckdb") for name in found), found
    assert "audit/audit.log" in found, found


def serve_once(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``stumble serve`` expected to refuse at start-up."""
    return subprocess.run(
        [sys.executable, "-m", "stumble.cli.main", "serve", "--data", str(data_dir), "--port", "1"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_wrong_or_missing_key_is_one_clear_line(tmp_path: Path) -> None:
    srv = encrypted_server(tmp_path, generate_key_text())
    send_and_kill(srv)
    wrong = generate_key_text()
    for env, expected in (
        ({KEY_ENV_VAR: wrong}, "no configured data key opens the database"),
        ({KEY_ENV_VAR: ""}, "is encrypted: set data_key_file or STUMBLE_DATA_KEY"),
        ({KEY_ENV_VAR: "c2hvcnQ="}, "is 5 bytes, not 32"),
    ):
        result = serve_once(srv.data_dir, env)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: encryption at rest: "), lines
        assert expected in lines[0]
        assert wrong not in lines[0]


def test_rotation_re_encrypts_everything_and_retires_the_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "secrets-elsewhere" / "stumble.keys"
    key_file.parent.mkdir(mode=0o700)
    old = generate_key_text()
    write_key_file(key_file, [old])
    srv = make_server(
        tmp_path, STUMBLE_DATA_KEY_FILE=str(key_file), STUMBLE_LOADER_INTERVAL_S="3600"
    )
    monkeypatch.setenv("STUMBLE_DATA_KEY_FILE", str(key_file))
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    fill_data_dir(srv)
    before = {p: p.read_bytes() for p in srv.data_dir.rglob("*") if p.is_file()}

    assert main(["keys", "rotate-data-key", "--data", str(srv.data_dir)]) == 0

    keys = load_data_keys(str(key_file), srv.data_dir, environ={})
    assert keys is not None and len(keys.keys) == 1 and old not in key_file.read_text()
    changed = [p for p, content in before.items() if p.exists() and p.read_bytes() != content]
    names = {str(p.relative_to(srv.data_dir)) for p in changed}
    assert {"stumble.duckdb", "audit/audit.log", "audit/audit.head"} <= names
    segments = [p for p in (srv.data_dir / "spool").glob("seg-*") if p.stat().st_size]
    assert segments  # recovery sealed the segment the kill left open, then it was rewritten
    opener = FrameOpener(keys, SPOOL)
    assert all(b"\n" in opener.open_all(p.read_bytes(), p.name) for p in segments)
    assert files_holding_markers(srv.data_dir) == {}
    assert loose_modes(srv.data_dir) == []

    paths = audit_paths(srv.data_dir)
    assert verify(paths.log, read_audit_key(paths.key), data_keys=keys).ok

    # The old key alone no longer opens anything; the new one opens everything.
    result = serve_once(srv.data_dir, {"STUMBLE_DATA_KEY_FILE": "", KEY_ENV_VAR: old})
    assert result.returncode == 2 and "no configured data key" in result.stderr
    srv.start()  # loads the spool's re-encrypted segments on start
    health = srv.read("/api/v1/health").json()
    assert health["spool"]["sealed_segments"] == 0
    srv.stop()
    rows = main(["report", "timings", "--data", str(srv.data_dir), "--format", "json"])
    assert rows == 0


def test_rotation_refuses_while_the_server_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = generate_key_text()
    srv = encrypted_server(tmp_path, key)
    monkeypatch.setenv(KEY_ENV_VAR, key)
    srv.start()
    try:
        assert main(["keys", "rotate-data-key", "--data", str(srv.data_dir)]) == 1
    finally:
        srv.kill()
    assert "a stumble server is running" in capsys.readouterr().err
