"""The audit log with encryption at rest: one encrypted frame per line, same chain and checks."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from stumble.access.audit import (
    Actor,
    AuditAction,
    AuditDetail,
    AuditLog,
    BreakReason,
    Outcome,
    VerifyResult,
    audit_paths,
    read_key,
    read_records,
    rekey_log,
    verify,
)
from stumble.encryption import DataKeyError, DataKeyRing, generate_key_text, parse_keys

START_S = 1_796_000_000.0
MARKER = "mrk_audit_target_q7"


def ring(*texts: str) -> DataKeyRing:
    return parse_keys("\n".join(texts), "test keys")


def fill(log: AuditLog, count: int) -> None:
    for n in range(count):
        detail = AuditDetail(route="/api/v1/raw/:kind", target=MARKER, rows=n)
        log.record(Actor.token("grafana"), AuditAction.RAW_READ, Outcome.OK, detail)


def check(data_dir: Path, keys: DataKeyRing | None) -> VerifyResult:
    paths = audit_paths(data_dir)
    return verify(paths.log, read_key(paths.key), data_keys=keys)


@pytest.fixture
def key_text() -> str:
    return generate_key_text()


@pytest.fixture
def data_dir(tmp_path: Path, key_text: str) -> Path:
    directory = tmp_path / "data"
    with AuditLog.in_data_dir(directory, clock=lambda: START_S, data_keys=ring(key_text)) as log:
        fill(log, 5)
        log.write_digest()
        fill(log, 3)
    return directory


def test_lines_are_encrypted_and_the_chain_verifies(data_dir: Path, key_text: str) -> None:
    paths = audit_paths(data_dir)
    for path in (paths.log, paths.head):
        content = path.read_bytes()
        assert MARKER.encode() not in content and b"raw.read" not in content
        assert path.stat().st_mode & 0o777 == 0o600
    assert len(paths.log.read_bytes().splitlines()) == 11
    assert check(data_dir, ring(key_text)) == VerifyResult(
        records=8, digests=3, unsigned=0, head_checked=True, broken=None
    )
    reading = read_records(paths.log, data_keys=ring(key_text))
    assert [r.detail.target for r in reading.records if r.detail and r.detail.target] == [
        MARKER
    ] * 8


def test_without_the_key_reading_fails_in_one_line(data_dir: Path) -> None:
    with pytest.raises(DataKeyError, match="encrypted"):
        check(data_dir, None)
    with pytest.raises(DataKeyError, match="not hold"):
        check(data_dir, ring(generate_key_text()))


def test_a_changed_byte_is_named_as_an_edit(data_dir: Path, key_text: str) -> None:
    log = audit_paths(data_dir).log
    lines = log.read_bytes().splitlines(keepends=True)
    frame = bytearray(base64.b64decode(lines[3][:-1]))
    frame[-20] ^= 0x01
    lines[3] = base64.b64encode(bytes(frame)) + b"\n"
    log.write_bytes(b"".join(lines))
    result = check(data_dir, ring(key_text))
    assert result.broken is not None
    assert (result.broken.line, result.broken.reason) == (4, BreakReason.EDITED)


def test_a_torn_line_is_cut_on_open_and_says_so(data_dir: Path, key_text: str) -> None:
    log = audit_paths(data_dir).log
    log.write_bytes(log.read_bytes() + b"p1NFAAAA")  # a crash mid-append
    with AuditLog.in_data_dir(data_dir, clock=lambda: START_S, data_keys=ring(key_text)) as audit:
        audit.open()
    records = read_records(log, data_keys=ring(key_text)).records
    assert AuditAction.AUDIT_TAIL_CUT in [r.action for r in records]
    assert check(data_dir, ring(key_text)).ok


def test_rotation_re_encrypts_every_line_and_keeps_the_signatures(
    data_dir: Path, key_text: str
) -> None:
    paths = audit_paths(data_dir)
    before = paths.log.read_bytes()
    new = generate_key_text()
    assert rekey_log(paths, ring(new, key_text)) == 11
    assert paths.log.read_bytes() != before
    assert check(data_dir, ring(new)).ok  # the old key is no longer needed
    with pytest.raises(DataKeyError):
        check(data_dir, ring(key_text))
    # and the log goes on under the new key
    with AuditLog.in_data_dir(data_dir, clock=lambda: START_S, data_keys=ring(new)) as log:
        fill(log, 2)
    assert check(data_dir, ring(new)) == VerifyResult(
        records=10, digests=4, unsigned=0, head_checked=True, broken=None
    )


def test_a_plaintext_log_goes_on_encrypted_and_a_rotation_encrypts_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with AuditLog.in_data_dir(data_dir, clock=lambda: START_S) as log:
        fill(log, 2)
    keys = ring(generate_key_text())
    with AuditLog.in_data_dir(data_dir, clock=lambda: START_S, data_keys=keys) as log:
        fill(log, 2)
    paths = audit_paths(data_dir)
    assert MARKER.encode() in paths.log.read_bytes()  # the lines from before
    assert check(data_dir, keys).ok
    rekey_log(paths, keys)
    assert MARKER.encode() not in paths.log.read_bytes()
    assert check(data_dir, keys) == VerifyResult(
        records=4, digests=3, unsigned=0, head_checked=True, broken=None
    )


def test_a_key_rotation_re_encrypts_the_archived_logs_too(data_dir: Path, key_text: str) -> None:
    clock = [START_S]
    with AuditLog.in_data_dir(data_dir, clock=lambda: clock[0], data_keys=ring(key_text)) as log:
        clock[0] += 40 * 86_400
        archive = log.rotate(int(clock[0] * 1000), int((clock[0] - 30 * 86_400) * 1000))
    assert archive is not None
    paths = audit_paths(data_dir)
    new = generate_key_text()

    rekey_log(paths, ring(new, key_text))

    key = read_key(paths.key)
    assert verify(archive, key, data_keys=ring(new)).ok  # the old key is no longer needed
    assert check(data_dir, ring(new)).ok
    with pytest.raises(DataKeyError):
        verify(archive, key, data_keys=ring(key_text))
