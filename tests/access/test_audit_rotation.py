"""Audit log retention: the log is archived at a digest and a new one started whose first
digest anchors the archived chain; both verify; archives past retention are deleted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stumble.access.audit import (
    Actor,
    AuditAction,
    AuditDetail,
    AuditLog,
    archived_logs,
    audit_paths,
    read_key,
    read_records,
    verify,
)

START_S = 1_796_000_000.0  # 2026-11-30T00:53:20Z
DAY_S = 86_400.0


class FakeClock:
    def __init__(self) -> None:
        self.now = START_S

    def __call__(self) -> float:
        return self.now


def record(log: AuditLog, rows: int) -> None:
    log.record(Actor.system(), AuditAction.RETENTION_RUN, detail=AuditDetail(rows=rows))


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def test_a_rotated_log_and_its_archive_both_verify_and_are_anchored(tmp_path: Path) -> None:
    clock = FakeClock()
    log = AuditLog.in_data_dir(tmp_path, clock=clock)
    paths = audit_paths(tmp_path)
    record(log, 1)
    clock.now += 40 * DAY_S
    record(log, 2)

    archive = log.rotate(ms(clock.now), ms(clock.now - 30 * DAY_S))
    record(log, 3)
    log.close()

    assert archive is not None and archive.parent.name == "archive"
    key = read_key(paths.key)
    assert verify(paths.log, key).ok and verify(archive, key).ok
    archived = read_records(archive).records
    live = read_records(paths.log).records
    assert [r.detail.rows for r in archived if r.detail] == [1, 2]
    assert [r.detail.rows for r in live if r.detail] == [3]
    assert archived[-1].seal is not None and live[0].seal is not None
    assert live[0].seal.previous_signature == archived[-1].seal.signature  # the anchor
    (listed,) = archived_logs(paths.log)
    assert (listed.first_at_ms, listed.last_at_ms) == (archived[0].at_ms, archived[-1].at_ms)


def test_a_young_log_is_not_rotated(tmp_path: Path) -> None:
    clock = FakeClock()
    with AuditLog.in_data_dir(tmp_path, clock=clock) as log:
        record(log, 1)
        before = audit_paths(tmp_path).log.read_bytes()
        assert log.rotate(ms(clock.now), ms(clock.now - 30 * DAY_S)) is None
        assert audit_paths(tmp_path).log.read_bytes() == before
    assert archived_logs(audit_paths(tmp_path).log) == []


def test_a_rotation_that_stopped_after_linking_is_finished_by_the_next(tmp_path: Path) -> None:
    clock = FakeClock()
    log = AuditLog.in_data_dir(tmp_path, clock=clock)
    record(log, 1)
    clock.now += 40 * DAY_S
    log.write_digest()  # the log ends in a digest, so the next rotation picks the same name
    first = read_records(audit_paths(tmp_path).log).records
    name = f"audit-{_stamp(first[0].at_ms)}-{_stamp(first[-1].at_ms)}.log"
    (tmp_path / "audit" / "archive").mkdir()
    (tmp_path / "audit" / "archive" / name).hardlink_to(audit_paths(tmp_path).log)

    archive = log.rotate(ms(clock.now), ms(clock.now - 30 * DAY_S))
    log.close()

    assert archive is not None and archive.name == name
    key = read_key(audit_paths(tmp_path).key)
    assert verify(archive, key).ok and verify(audit_paths(tmp_path).log, key).ok


def test_another_writer_follows_the_rotation(tmp_path: Path) -> None:
    """Two logs on the same files (as the server and a CLI command are): the one that did not
    rotate writes its next record into the new log, not the archived one."""
    clock = FakeClock()
    rotating = AuditLog.in_data_dir(tmp_path, clock=clock)
    other = AuditLog.in_data_dir(tmp_path, clock=clock)
    record(other, 1)
    clock.now += 40 * DAY_S
    archive = rotating.rotate(ms(clock.now), ms(clock.now - 30 * DAY_S))
    record(other, 2)
    other.close()
    rotating.close()

    assert archive is not None
    assert [r.detail.rows for r in read_records(archive).records if r.detail] == [1]
    live = audit_paths(tmp_path).log
    assert [r.detail.rows for r in read_records(live).records if r.detail] == [2]
    assert verify(live, read_key(audit_paths(tmp_path).key)).ok


def test_archives_past_retention_are_deleted_with_their_record_count(tmp_path: Path) -> None:
    clock = FakeClock()
    log = AuditLog.in_data_dir(tmp_path, clock=clock)
    for month in range(3):
        record(log, month)
        clock.now += 31 * DAY_S
        assert log.rotate(ms(clock.now), ms(clock.now - 30 * DAY_S)) is not None
    archives = archived_logs(audit_paths(tmp_path).log)
    assert len(archives) == 3
    oldest_records = len(read_records(archives[0].path).records)

    deleted = log.delete_archives_before(archives[1].last_at_ms)
    log.close()

    assert (deleted.files, deleted.records) == (1, oldest_records)
    assert archived_logs(audit_paths(tmp_path).log) == archives[1:]
    assert not archives[0].path.with_suffix(".head").exists()
    assert verify(audit_paths(tmp_path).log, read_key(audit_paths(tmp_path).key)).ok


def _stamp(at_ms: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=at_ms)
    return moment.strftime("%Y%m%dT%H%M%SZ")
