"""Faults the spool must survive, caused for real: kill -9, a full disk, a file-size limit.

The guarantee in each case: every payload acknowledged is on disk exactly once after
recovery, no partial line is left behind, and the spool accepts appends again once the
cause is gone.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stumble.spool import Spool, SpoolConfig, SpoolUnavailable
from stumble.spool.segments import list_segments


def committed_ids_printed(output: Path) -> list[str]:
    """Ids the child printed after ``append`` returned; a line cut by the kill is ignored."""
    text = output.read_text()
    lines = text.split("\n")[:-1]  # the last element is "" or an unfinished line
    return [event_id for line in lines if line != "ready" for event_id in line.split()]


def wait_for_commits(output: Path, child: subprocess.Popen[bytes], minimum: int) -> None:
    deadline = time.monotonic() + 30
    while len(committed_ids_printed(output)) < minimum:
        assert child.poll() is None, "the child exited early"
        assert time.monotonic() < deadline, "the child committed nothing"
        time.sleep(0.01)


# --- kill -9 ------------------------------------------------------------------------------


def run_child_until_killed(kit, spool_dir: Path, output: Path, delay_s: float) -> list[str]:
    """Start an appending child, kill -9 it ``delay_s`` after its first commit; its acks."""
    with output.open("wb") as sink:
        child = subprocess.Popen(
            kit.child_command("append-forever", str(spool_dir), "32"), stdout=sink
        )
    try:
        wait_for_commits(output, child, minimum=1)
        time.sleep(delay_s)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    return committed_ids_printed(output)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_every_acknowledged_event_survives_kill_9(spool_dir, kit, tmp_path, seed):
    # Two children in turn: the second recovers what the first left, then dies the same way.
    delays = random.Random(seed)
    acknowledged: list[str] = []
    for round_number in range(2):
        output = tmp_path / f"committed-{round_number}.txt"
        acknowledged += run_child_until_killed(kit, spool_dir, output, delays.uniform(0.05, 0.8))

    spool = Spool(spool_dir)
    report = spool.open()
    spool.close()
    counts = kit.id_counts(spool_dir)  # decodes every line as a StoredEvent

    missing = [event_id for event_id in acknowledged if counts[event_id] != 1]
    print(
        f"\nseed {seed}: {len(acknowledged)} acknowledged, {counts.total()} on disk, "
        f"{len(list_segments(spool_dir))} segments, torn tail: {report.lines_dropped} lines "
        f"/ {report.bytes_dropped} bytes"
    )
    assert missing == []
    assert max(counts.values()) == 1
    assert len(acknowledged) > 0


# --- a file-size limit (EFBIG) ------------------------------------------------------------


def test_file_size_limit_fails_cleanly_and_recovers(spool_dir, kit):
    limit = 64 * 1024
    result = subprocess.run(
        kit.child_command("file-limit", str(spool_dir), str(limit)),
        capture_output=True,
        check=False,
        timeout=60,
        # Under the 64 KiB limit, a lazily imported module's bytecode could not be written.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    report = json.loads(result.stdout)

    # The first failure hits mid-payload (a short write, then EFBIG): nothing of it stays.
    failures = report["failures"]
    assert [reason for reason, *_ in failures] == ["file_too_large"] * 3
    for _, size_before, size_after, _ in failures:
        assert size_after == size_before
    assert failures[0][1] + failures[0][3] > limit
    # EFBIG is per file, so the spool moved on to a fresh segment and the next append worked;
    # a payload over the limit failed until the limit was raised.
    assert report["after_roll"] == [True]
    assert report["big_under_limit"] == [False, False]
    assert report["big_after_raise"] == [True]

    reopened = Spool(spool_dir)
    assert reopened.open().bytes_dropped == 0
    reopened.close()
    counts = kit.id_counts(spool_dir)
    assert all(counts[event_id] == 1 for event_id in report["committed_ids"])
    assert not any(event_id in counts for event_id in report["rejected_ids"])


# --- a full disk (ENOSPC) -----------------------------------------------------------------


def fill_file_system(filler: Path) -> None:
    """Write until the kernel says ENOSPC."""
    chunk = b"\xff" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012 - ends by raising
            while True:
                os.write(fd, chunk)
    finally:
        os.close(fd)
    assert full.value.errno == errno.ENOSPC


def test_disk_full_fails_cleanly_and_recovers_when_space_returns(small_tmpfs, kit):
    spool_dir = small_tmpfs / "spool"
    spool = Spool(spool_dir, SpoolConfig(max_segment_age_s=60.0))
    spool.open()
    committed: list[str] = []
    for _ in range(10):
        payload, ids = kit.make_payload(5)
        spool.append_blocking(payload)
        committed += ids
    filler = small_tmpfs / "filler"
    fill_file_system(filler)
    os.truncate(filler, filler.stat().st_size - 8192)  # room for part of the next payload

    big, big_ids = kit.make_payload(60)  # ~22 KB: a short write, then ENOSPC
    active = max(small_tmpfs.glob("spool/*.open"))
    size_before = active.stat().st_size
    with pytest.raises(SpoolUnavailable) as rejected:
        spool.append_blocking(big)

    async def append_several() -> list[BaseException | None]:
        return await asyncio.gather(*(spool.append(big) for _ in range(3)), return_exceptions=True)

    async_results = asyncio.run(append_several())

    assert rejected.value.reason == "disk_full"
    assert all(isinstance(r, SpoolUnavailable) and r.reason == "disk_full" for r in async_results)
    assert active.stat().st_size == size_before  # the partial write was cut back off
    assert spool.stats().rejected_total == {"disk_full": 4}

    filler.unlink()  # space returns: the very next append succeeds, nothing to reset
    spool.append_blocking(big)
    committed += big_ids
    spool.close()

    reopened = Spool(spool_dir)
    assert reopened.open().bytes_dropped == 0
    reopened.close()
    counts = kit.id_counts(spool_dir)
    assert [counts[event_id] for event_id in committed] == [1] * len(committed)
    assert counts.total() == len(committed)


# --- a failing fsync (EIO), injected through the constructor's seam ------------------------


def test_failed_fsync_cuts_the_group_back_and_the_next_append_works(spool_dir, kit):
    calls = 0

    def fdatasync_failing_once(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.EIO, "injected I/O error")
        os.fdatasync(fd)

    spool = Spool(spool_dir, fdatasync=fdatasync_failing_once)
    spool.open()
    first, first_ids = kit.make_payload(3)
    lost, lost_ids = kit.make_payload(3)
    third, third_ids = kit.make_payload(3)
    spool.append_blocking(first)
    with pytest.raises(SpoolUnavailable) as rejected:
        spool.append_blocking(lost)
    assert rejected.value.reason == "io_error"
    assert max(spool_dir.glob("*.open")).read_bytes() == first
    spool.append_blocking(third)
    spool.close()

    ids = [e.event_id for e in kit.read_events(spool_dir)]
    assert ids == first_ids + third_ids
    assert not set(lost_ids) & set(ids)


# --- a bug in the writer thread -----------------------------------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_no_waiter_hangs_when_the_writer_thread_dies(spool_dir, kit):
    def write_with_a_bug(fd: int, data: memoryview) -> int:
        raise ZeroDivisionError  # anything but OSError: a bug, not a storage fault

    spool = Spool(spool_dir, write=write_with_a_bug)
    spool.open()
    payload, _ = kit.make_payload(1)

    async def append_several() -> list[BaseException | None]:
        return await asyncio.gather(
            *(spool.append(payload) for _ in range(5)), return_exceptions=True
        )

    results = asyncio.run(asyncio.wait_for(append_several(), timeout=10))
    assert all(isinstance(r, SpoolUnavailable) and r.reason == "writer_failed" for r in results)
    with pytest.raises(SpoolUnavailable, match="writer_failed"):
        spool.append_blocking(payload)
    spool.close()
    assert kit.read_events(spool_dir) == []
