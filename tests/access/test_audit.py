"""The audit log on real files: tampering is named, writing fails closed, nothing personal."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from stumble.access import audit
from stumble.access.audit import (
    Actor,
    AuditAction,
    AuditDetail,
    AuditLog,
    AuditRecord,
    AuditUnavailableError,
    BreakReason,
    Outcome,
    VerifyResult,
    audit_paths,
    read_key,
    read_records,
    verify,
)

START_S = 1_796_000_000.0  # 2026-11-30T00:53:20Z


class FakeClock:
    def __init__(self) -> None:
        self.now = START_S

    def __call__(self) -> float:
        return self.now


def fill(log: AuditLog, count: int) -> None:
    for n in range(count):
        detail = AuditDetail(route="/api/v1/raw/:kind", filters=("env", "from"), rows=n)
        log.record(Actor.token("grafana"), AuditAction.RAW_READ, Outcome.OK, detail)


def check(data_dir: Path) -> VerifyResult:
    paths = audit_paths(data_dir)
    return verify(paths.log, read_key(paths.key))


def log_lines(data_dir: Path) -> list[bytes]:
    return audit_paths(data_dir).log.read_bytes().splitlines(keepends=True)


def rewrite(data_dir: Path, lines: list[bytes]) -> None:
    audit_paths(data_dir).log.write_bytes(b"".join(lines))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A closed log: digest (line 1), records 2-6, digest 7, records 8-10, digest 11."""
    directory = tmp_path / "data"
    with AuditLog.in_data_dir(directory, clock=FakeClock()) as log:
        fill(log, 5)
        log.write_digest()
        fill(log, 3)
    return directory


def test_a_closed_log_verifies_and_its_files_are_private(data_dir: Path) -> None:
    assert check(data_dir) == VerifyResult(
        records=8, digests=3, unsigned=0, head_checked=True, broken=None
    )
    paths = audit_paths(data_dir)
    for path in (paths.log, paths.head, paths.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (data_dir, paths.log.parent, paths.key.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert len(read_key(paths.key)) == 32
    record = read_records(paths.log).records[1]
    assert record.at == "2026-11-30T00:53:20.000Z" and record.at_ms == START_S * 1000
    assert str(record.actor) == "token:grafana" and record.action == "raw.read"


def test_any_edited_byte_of_a_middle_record_is_named(data_dir: Path) -> None:
    lines = log_lines(data_dir)
    middle = lines[3]
    for position in range(len(middle) - 1):
        edited = bytearray(middle)
        edited[position] ^= 1
        rewrite(data_dir, [*lines[:3], bytes(edited), *lines[4:]])
        broken = check(data_dir).broken
        assert broken is not None and broken.line == 4, position
        assert broken.reason in {BreakReason.EDITED, BreakReason.MALFORMED}
    rewrite(data_dir, [*lines[:3], middle.replace(b'"rows":2', b'"rows":7'), *lines[4:]])
    broken = check(data_dir).broken
    assert broken is not None and (broken.line, broken.reason) == (4, BreakReason.EDITED)


def test_a_deleted_record_is_named(data_dir: Path) -> None:
    lines = log_lines(data_dir)
    rewrite(data_dir, [*lines[:3], *lines[4:]])
    broken = check(data_dir).broken
    assert broken is not None
    assert (broken.line, broken.reason) == (4, BreakReason.DELETED_OR_REORDERED)
    rewrite(data_dir, lines[1:])
    broken = check(data_dir).broken
    assert broken is not None
    assert (broken.line, broken.reason) == (1, BreakReason.DELETED_OR_REORDERED)


def test_swapped_records_are_named(data_dir: Path) -> None:
    lines = log_lines(data_dir)
    rewrite(data_dir, [*lines[:3], lines[4], lines[3], *lines[5:]])
    broken = check(data_dir).broken
    assert broken is not None
    assert (broken.line, broken.reason) == (4, BreakReason.DELETED_OR_REORDERED)


def test_a_file_cut_mid_line_is_truncated_at_that_line(data_dir: Path) -> None:
    lines = log_lines(data_dir)
    rewrite(data_dir, [*lines[:8], lines[8][:40]])
    result = check(data_dir)
    assert result.broken is not None
    assert (result.broken.line, result.broken.reason) == (9, BreakReason.TRUNCATED)
    assert result.records == 6  # counted up to the break


def test_records_cut_at_a_boundary_back_past_a_digest_are_caught_by_the_head_file(
    data_dir: Path,
) -> None:
    lines = log_lines(data_dir)
    for keep in (10, 8, 6, 0):
        rewrite(data_dir, lines[:keep])
        broken = check(data_dir).broken
        assert broken is not None, keep
        assert (broken.line, broken.reason) == (keep + 1, BreakReason.TRUNCATED)
        assert "line 11" in broken.explanation


def test_what_verify_cannot_detect_is_pinned(tmp_path: Path) -> None:
    """The documented limits: unsigned records cut at a boundary, and a cut that takes the
    head file with it."""
    data_dir = tmp_path / "data"
    log = AuditLog.in_data_dir(data_dir, clock=FakeClock())
    fill(log, 2)
    log.write_digest()
    fill(log, 3)  # a running server: three records after the latest digest
    lines = log_lines(data_dir)
    rewrite(data_dir, lines[:-2])
    assert check(data_dir) == VerifyResult(
        records=3, digests=2, unsigned=1, head_checked=True, broken=None
    )
    log.close()
    audit_paths(data_dir).head.unlink()
    rewrite(data_dir, lines[:4])
    assert check(data_dir) == VerifyResult(
        records=2, digests=2, unsigned=0, head_checked=False, broken=None
    )


def forge(lines: list[bytes], index: int, change: Callable[[AuditRecord], AuditRecord]) -> None:
    """Change one record and recompute every hash after it, as anyone without the key can."""
    records = [msgspec.json.decode(line, type=AuditRecord) for line in lines]
    records[index] = change(records[index])
    for n in range(index, len(records)):
        record = records[n]
        if n:
            record = msgspec.structs.replace(record, prev_sha256=records[n - 1].sha256)
            if record.seal is not None:
                seal = msgspec.structs.replace(record.seal, head=record.prev_sha256)
                record = msgspec.structs.replace(record, seal=seal)
        body = msgspec.json.encode(msgspec.structs.replace(record, sha256=""))
        records[n] = msgspec.structs.replace(record, sha256=hashlib.sha256(body).hexdigest())
    lines[:] = [msgspec.json.encode(r) + b"\n" for r in records]


def test_a_forged_record_with_its_chain_recomputed_fails_at_the_next_digest(
    data_dir: Path,
) -> None:
    lines = log_lines(data_dir)
    forge(lines, 3, lambda r: msgspec.structs.replace(r, outcome=Outcome.DENIED))
    rewrite(data_dir, lines)
    broken = check(data_dir).broken
    assert broken is not None and (broken.line, broken.reason) == (7, BreakReason.BAD_DIGEST)
    assert "signature" in broken.explanation


def test_a_wrong_key_fails_at_the_first_digest(data_dir: Path) -> None:
    result = verify(audit_paths(data_dir).log, os.urandom(32))
    assert result.broken is not None
    assert (result.broken.line, result.broken.reason) == (1, BreakReason.BAD_DIGEST)


def test_a_log_replaced_by_a_directory_refuses_the_record(data_dir: Path, tmp_path: Path) -> None:
    paths = audit_paths(data_dir)
    log = AuditLog.in_data_dir(data_dir, clock=FakeClock())
    fill(log, 1)
    before = paths.log.read_bytes()
    moved = tmp_path / "moved.log"
    paths.log.rename(moved)
    paths.log.mkdir()
    with pytest.raises(AuditUnavailableError, match=r"audit\.log"):
        fill(log, 1)
    assert moved.read_bytes() == before  # not appended to the file nobody will read
    assert paths.log.is_dir() and not any(paths.log.iterdir())
    with pytest.raises(AuditUnavailableError):
        AuditLog.in_data_dir(data_dir).open()


def test_a_log_whose_directory_became_a_file_refuses_the_record(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "audit").write_bytes(b"")
    with pytest.raises(AuditUnavailableError):
        fill(AuditLog.in_data_dir(data_dir), 1)
    assert (data_dir / "audit").read_bytes() == b""


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_an_unreadable_directory_refuses_the_record_and_recovers(data_dir: Path) -> None:
    log = AuditLog.in_data_dir(data_dir, clock=FakeClock())
    fill(log, 1)
    directory = audit_paths(data_dir).log.parent
    directory.chmod(0)
    try:
        with pytest.raises(AuditUnavailableError):
            fill(log, 1)
    finally:
        directory.chmod(0o700)
    before = log_lines(data_dir)
    fill(log, 1)
    assert len(log_lines(data_dir)) == len(before) + 1
    assert check(data_dir).ok


def test_a_failed_fsync_or_short_write_leaves_nothing_behind(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog.in_data_dir(data_dir, clock=FakeClock())
    log.open()
    before = audit_paths(data_dir).log.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    real_write = os.write
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(AuditUnavailableError, match="Input/output error"):
            fill(log, 1)
    assert audit_paths(data_dir).log.read_bytes() == before
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", lambda fd, data: real_write(fd, data[:30]))
        with pytest.raises(AuditUnavailableError, match="short write"):
            fill(log, 1)
    assert audit_paths(data_dir).log.read_bytes() == before
    fill(log, 1)
    log.close()
    assert check(data_dir).ok


def test_a_torn_tail_is_reported_then_cut_on_reopen_and_the_chain_continues(
    data_dir: Path,
) -> None:
    paths = audit_paths(data_dir)
    torn = b'{"seq":12,"at_ms":1796000000000,"at":"2026-'
    with paths.log.open("ab") as file:
        file.write(torn)
    broken = check(data_dir).broken
    assert broken is not None and (broken.line, broken.reason) == (12, BreakReason.TRUNCATED)
    with AuditLog.in_data_dir(data_dir, clock=FakeClock()) as log:
        fill(log, 1)
    records = read_records(paths.log).records
    cut = records[11]
    assert (cut.seq, cut.action, cut.actor) == (12, AuditAction.AUDIT_TAIL_CUT, Actor.system())
    assert cut.detail == AuditDetail(size_bytes=len(torn))
    assert records[12].action == AuditAction.RAW_READ
    assert check(data_dir).ok


def test_a_write_torn_when_the_cut_back_also_fails_is_cut_by_the_next_record(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = AuditLog.in_data_dir(data_dir, clock=FakeClock())
    real_write = os.write

    def refuse(*_: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", lambda fd, data: real_write(fd, data[:30]))
        patch.setattr(os, "ftruncate", refuse)
        with pytest.raises(AuditUnavailableError):
            fill(log, 1)
    assert check(data_dir).broken is not None
    fill(log, 1)
    actions = [r.action for r in read_records(audit_paths(data_dir).log).records]
    assert actions[-2:] == [AuditAction.AUDIT_TAIL_CUT, AuditAction.RAW_READ]
    assert check(data_dir).ok


def test_threads_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = AuditLog.in_data_dir(data_dir)
    threads = [threading.Thread(target=fill, args=(log, 25)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    result = check(data_dir)
    assert result.ok and result.records == 200 and result.digests == 2


def test_verify_while_a_writer_appends_never_sees_a_torn_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = AuditLog.in_data_dir(data_dir)
    log.open()
    writer = threading.Thread(target=fill, args=(log, 300))
    writer.start()
    seen: list[VerifyResult] = []
    while writer.is_alive():
        seen.append(check(data_dir))
    writer.join()
    assert all(result.ok for result in seen)
    assert check(data_dir).records == 300


WRITER = """
import sys
from pathlib import Path
from stumble.access.audit import Actor, AuditAction, AuditLog
log = AuditLog.in_data_dir(Path(sys.argv[1]))
for _ in range(40):
    log.record(Actor.cli(), AuditAction.WRITE_KEY_UPDATE)
"""


def test_processes_writing_at_once_keep_one_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = AuditLog.in_data_dir(data_dir)
    server.open()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir)]) for _ in range(3)]
    fill(server, 40)
    assert all(writer.wait(timeout=60) == 0 for writer in writers)
    fill(server, 1)  # the server's view catches up with the others' records first
    server.close()
    result = check(data_dir)
    assert result.ok and result.records == 161


def test_a_deleted_log_with_its_head_left_refuses_to_start_a_new_chain(data_dir: Path) -> None:
    paths = audit_paths(data_dir)
    paths.log.unlink()
    with pytest.raises(AuditUnavailableError, match="missing"):
        fill(AuditLog.in_data_dir(data_dir), 1)
    assert not paths.log.exists()
    broken = check(data_dir).broken
    assert broken is not None and (broken.line, broken.reason) == (1, BreakReason.TRUNCATED)


def test_a_log_cut_while_open_is_noted_in_the_log(data_dir: Path) -> None:
    log = AuditLog.in_data_dir(data_dir, clock=FakeClock())
    fill(log, 3)
    lines = log_lines(data_dir)
    rewrite(data_dir, lines[:-2])  # cut the two newest, unsigned records behind its back
    fill(log, 1)
    records = read_records(audit_paths(data_dir).log).records
    shrank = records[-2]
    assert shrank.action == AuditAction.AUDIT_LOG_SHRANK
    assert shrank.detail == AuditDetail(size_bytes=len(lines[-1]) + len(lines[-2]))
    log.close()
    assert check(data_dir).ok


def test_digests_come_hourly_when_something_happened_and_at_close(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    clock = FakeClock()
    log = AuditLog.in_data_dir(data_dir, clock=clock)
    log.open()  # the opening digest
    assert log.maybe_write_digest() is None  # nothing to sign
    fill(log, 1)
    clock.now += 3599
    assert log.maybe_write_digest() is None
    clock.now += 1
    digest = log.maybe_write_digest()
    assert digest is not None and digest.seal is not None and digest.seal.count == 2
    clock.now += 7200
    assert log.maybe_write_digest() is None  # no record since the last digest
    fill(log, 1)
    assert log.maybe_write_digest(int(clock.now * 1000)) is not None
    fill(log, 1)
    log.close()
    log.close()  # twice is harmless
    records = read_records(audit_paths(data_dir).log).records
    assert [r.seq for r in records if r.seal] == [1, 3, 5, 7]
    assert check(data_dir) == VerifyResult(3, 4, 0, head_checked=True)


PLANTED = (
    "aidos.nurlanov@example.kz",
    "921029350851",
    "iin_921029350851",
    "+77011234567",
    "87011234567",
    "8-701-123-45-67",
    "Aidos Nurlanov",
)
WAYS_IN: tuple[Callable[[str], object], ...] = (
    lambda value: AuditDetail(route=value),
    lambda value: AuditDetail(target=value),
    lambda value: AuditDetail(environment=value),
    lambda value: AuditDetail(reason=value),
    lambda value: AuditDetail(filters=("env", value)),
    lambda value: AuditDetail(settings=(value,)),
    Actor.token,
    Actor.sso,
    lambda value: Actor(kind=audit.ActorKind.CLI, name=value),
)
REFUSED = "must be an identifier|looks like personal data|has no name"


@pytest.mark.parametrize("value", PLANTED)
def test_no_planted_personal_value_can_be_written(value: str, tmp_path: Path) -> None:
    for way_in in WAYS_IN:
        with pytest.raises(ValueError, match=REFUSED) as refused:
            way_in(value)
        assert value not in str(refused.value)  # not even in the error, which may be logged
    data_dir = tmp_path / "data"
    with AuditLog.in_data_dir(data_dir) as log:
        detail = AuditDetail(target="qwerty", rows=5)
        log.record(Actor.sso("a.nurlanov"), AuditAction.SIGNIN_SUCCESS, detail=detail)
    text = audit_paths(data_dir).log.read_text()
    assert not any(fragment in text for fragment in ("@", "921029350851", "7011234567"))


@pytest.mark.parametrize("number", [921029350851, 87011234567, -1, True, 1.5, "12"])
def test_counts_are_small_whole_numbers(number: object) -> None:
    with pytest.raises(ValueError, match="whole number"):
        AuditDetail(rows=number)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="whole number"):
        AuditDetail(size_bytes=number)  # type: ignore[arg-type]


def test_a_planted_value_written_into_the_file_by_hand_is_not_a_record(data_dir: Path) -> None:
    lines = log_lines(data_dir)
    planted = lines[3].replace(b'"route":"/api/v1/raw/:kind"', b'"route":"921029350851"')
    rewrite(data_dir, [*lines[:3], planted, *lines[4:]])
    broken = check(data_dir).broken
    assert broken is not None and (broken.line, broken.reason) == (4, BreakReason.MALFORMED)
    assert read_records(audit_paths(data_dir).log).unreadable_lines == (4,)


def test_actions_are_our_own_closed_set(tmp_path: Path) -> None:
    assert [a.value for a in AuditAction] == [
        "signin.success",
        "signin.failure",
        "token.create",
        "token.revoke",
        "write_key.create",
        "write_key.revoke",
        "write_key.update",
        "settings.change",
        "raw.read",
        "export",
        "retention.run",
        "session_key.destroy",
        "digest.send",
        "alert.notify",
        "alert.silence",
        "fix.create",
        "fix.verify",
        "audit.read",
        "audit.digest",
        "audit.tail_cut",
        "audit.log_shrank",
    ]
    log = AuditLog.in_data_dir(tmp_path / "data")
    with pytest.raises(ValueError, match="not a valid AuditAction"):
        log.record(Actor.cli(), "user.delete")  # type: ignore[arg-type]
    for own in audit.LOG_OWN_ACTIONS:
        with pytest.raises(ValueError, match="written by the audit log itself"):
            log.record(Actor.system(), own)
    with pytest.raises(TypeError):
        log.record("cli", AuditAction.EXPORT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be an identifier"):
        Actor.token("")
    with pytest.raises(ValueError, match="not a valid ActorKind"):
        Actor(kind="root", name="x")  # type: ignore[arg-type]
    assert not (tmp_path / "data").exists()  # refused before anything was opened
