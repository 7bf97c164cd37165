"""The Spool on real files with a real writer thread and real fsync."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stumble.spool import Spool, SpoolConfig, SpoolUnavailable
from stumble.spool.segments import list_segments


def open_spool(directory: Path, **settings: Any) -> Spool:
    spool = Spool(directory, SpoolConfig(**settings))
    spool.open()
    return spool


# --- append and commit --------------------------------------------------------------------


def test_appended_events_read_back_exactly(spool_dir, kit):
    spool = open_spool(spool_dir)
    committed: list[str] = []
    for count in (1, 5, 100):
        payload, ids = kit.make_payload(count)
        spool.append_blocking(payload)
        committed += ids
    spool.close()

    assert [event.event_id for event in kit.read_events(spool_dir)] == committed
    assert [s.path.name for s in list_segments(spool_dir) if s.sealed] == [
        "seg-000000000001.ndjson"
    ]


def test_append_returns_only_after_bytes_are_on_disk(spool_dir, kit):
    spool = open_spool(spool_dir)
    payload, ids = kit.make_payload(3)

    asyncio.run(spool.append(payload))

    # Read by another path than the spool's own descriptor: the bytes are in the file.
    assert [event.event_id for event in kit.read_events(spool_dir)] == ids
    assert spool.stats().fsync_count == 1
    spool.close()


def test_async_and_blocking_appends_mix(spool_dir, kit):
    spool = open_spool(spool_dir)
    payloads = [kit.make_payload(2) for _ in range(40)]

    async def append_half() -> None:
        await asyncio.gather(*(spool.append(p) for p, _ in payloads[:20]))

    worker = threading.Thread(target=lambda: [spool.append_blocking(p) for p, _ in payloads[20:]])
    worker.start()
    asyncio.run(append_half())
    worker.join()
    spool.close()

    expected = sorted(i for _, ids in payloads for i in ids)
    assert sorted(kit.id_counts(spool_dir).elements()) == expected


def test_payload_must_be_whole_lines(spool_dir):
    spool = open_spool(spool_dir)
    with pytest.raises(ValueError, match="newline"):
        spool.append_blocking(b'{"event_id": "x"}')
    with pytest.raises(ValueError, match="newline"):
        spool.append_blocking(b"")
    spool.close()


# --- group commit -------------------------------------------------------------------------


def test_concurrent_async_appends_share_fsyncs(spool_dir, kit):
    spool = open_spool(spool_dir)
    payloads = [kit.make_payload(1) for _ in range(200)]

    async def append_all() -> None:
        await asyncio.gather(*(spool.append(payload) for payload, _ in payloads))

    asyncio.run(append_all())
    stats = spool.stats()
    spool.close()

    print(
        f"\n200 concurrent appends: {stats.fsync_count} fsyncs, "
        f"{200 / stats.fsync_count:.1f} appends per fsync"
    )
    assert stats.appends_total == 200
    assert stats.fsync_count < 200 / 4  # at least four appends share each fsync on average
    assert stats.group_count == stats.fsync_count
    assert stats.group_size_sum == 200
    assert len(kit.id_counts(spool_dir)) == 200


def test_concurrent_threads_share_fsyncs(spool_dir, kit):
    spool = open_spool(spool_dir)
    per_thread = 50

    def append_some() -> None:
        for _ in range(per_thread):
            spool.append_blocking(kit.make_payload(1)[0])

    threads = [threading.Thread(target=append_some) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = spool.stats()
    spool.close()

    print(f"\n8 threads x {per_thread} appends: {stats.fsync_count} fsyncs")
    assert stats.appends_total == 8 * per_thread
    assert stats.fsync_count < 8 * per_thread


def test_cancelled_waiter_does_not_disturb_the_writer(spool_dir, kit):
    gate, in_fsync = threading.Event(), threading.Event()

    def slow_fdatasync(fd: int) -> None:
        in_fsync.set()
        gate.wait(10)
        os.fdatasync(fd)

    spool = Spool(spool_dir, fdatasync=slow_fdatasync)
    spool.open()
    first, first_ids = kit.make_payload(1)
    second, second_ids = kit.make_payload(1)

    async def cancel_one_then_append() -> None:
        task = asyncio.create_task(spool.append(first))
        await asyncio.to_thread(in_fsync.wait, 10)
        task.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await spool.append(second)

    asyncio.run(cancel_one_then_append())
    spool.close()
    # The cancelled request got no answer, but its bytes were written: a client retry is
    # deduplicated by event_id downstream.
    assert sorted(kit.id_counts(spool_dir)) == sorted(first_ids + second_ids)


# --- rolling ------------------------------------------------------------------------------


def test_segments_roll_by_size_and_never_split_a_payload(spool_dir, kit):
    limit = 4000
    spool = open_spool(spool_dir, max_segment_bytes=limit, max_segment_age_s=60.0)
    payloads = [kit.make_payload(1 + n % 4)[0] for n in range(60)]

    async def append_all() -> None:
        await asyncio.gather(*(spool.append(payload) for payload in payloads))

    asyncio.run(append_all())
    spool.close()

    contents = [s.path.read_bytes() for s in list_segments(spool_dir) if s.sealed]
    assert len(contents) > 5
    assert all(len(content) <= limit for content in contents)
    for payload in payloads:
        assert sum(payload in content for content in contents) == 1


def test_an_oversized_payload_gets_a_segment_of_its_own(spool_dir, kit):
    spool = open_spool(spool_dir, max_segment_bytes=2000, max_segment_age_s=60.0)
    small, _ = kit.make_payload(1)
    big, big_ids = kit.make_payload(20)
    for payload in (small, big, small):
        spool.append_blocking(payload)
    spool.close()

    sealed = [s.path.read_bytes() for s in list_segments(spool_dir) if s.sealed]
    assert sealed == [small, big, small]
    assert len(big) > 2000
    assert [e.event_id for e in kit.read_events(spool_dir)][1:21] == big_ids


def test_segment_rolls_by_age_only_when_non_empty(spool_dir, kit):
    age = 0.5
    spool = open_spool(spool_dir, max_segment_age_s=age)
    time.sleep(age * 2)
    assert spool.sealed_segments() == []  # an empty segment never rolls

    started = time.monotonic()
    spool.append_blocking(kit.make_payload(1)[0])
    assert spool.sealed_segments() == []
    while not spool.sealed_segments():
        assert time.monotonic() - started < 5, "segment was not sealed by age"
        time.sleep(0.01)
    waited = time.monotonic() - started
    spool.close()

    print(f"\nsealed by age after {waited:.3f}s (max_segment_age_s={age})")
    assert waited >= age


def test_segments_also_roll_by_age_under_continuous_load(spool_dir, kit):
    spool = open_spool(spool_dir, max_segment_age_s=0.1)
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        spool.append_blocking(kit.make_payload(1)[0])
    sealed_while_busy = len(spool.sealed_segments())
    spool.close()
    assert sealed_while_busy >= 3


def test_seal_now(spool_dir, kit):
    spool = open_spool(spool_dir, max_segment_age_s=60.0)
    assert spool.seal_now() is None
    payload, _ = kit.make_payload(2)
    spool.append_blocking(payload)

    sealed = spool.seal_now()

    assert sealed is not None
    assert spool.sealed_segments() == [sealed]
    assert sealed.read_bytes() == payload
    assert spool.seal_now() is None
    spool.close()


# --- sequence numbers ---------------------------------------------------------------------


def test_sequence_continues_after_restart_even_when_everything_was_loaded(spool_dir, kit):
    names_seen: list[str] = []
    for _ in range(3):
        spool = open_spool(spool_dir)
        spool.append_blocking(kit.make_payload(1)[0])
        spool.seal_now()
        for path in spool.sealed_segments():
            names_seen.append(path.name)
            spool.remove(path)  # the loader took it: nothing sealed is left on disk
        spool.close()

    assert names_seen == sorted(names_seen)
    assert len(set(names_seen)) == 3
    assert all(s.sequence > int(names_seen[-1][4:16]) for s in list_segments(spool_dir))


def test_sealed_segments_are_listed_oldest_first(spool_dir, kit):
    spool = open_spool(spool_dir)
    for _ in range(12):
        spool.append_blocking(kit.make_payload(1)[0])
        spool.seal_now()
    sealed = spool.sealed_segments()
    spool.close()
    assert len(sealed) == 12
    assert [p.name for p in sealed] == sorted(p.name for p in sealed)


# --- bounds and backpressure ------------------------------------------------------------


def test_unloaded_bytes_bound_rejects_before_writing(spool_dir, kit):
    payload, _ = kit.make_payload(1)
    spool = open_spool(spool_dir, max_unloaded_bytes=5 * len(payload))
    for _ in range(5):
        spool.append_blocking(payload)
    disk_before = spool.stats().disk_bytes

    with pytest.raises(SpoolUnavailable) as rejected:
        spool.append_blocking(payload)
    with pytest.raises(SpoolUnavailable):
        asyncio.run(spool.append(payload))

    assert rejected.value.reason == "spool_full"
    assert rejected.value.retry_after_s > 0
    assert spool.stats().disk_bytes == disk_before
    assert spool.stats().rejected_total == {"spool_full": 2}

    # The loader catches up: the bound frees and appends are accepted again.
    spool.seal_now()
    for path in spool.sealed_segments():
        spool.remove(path)
    spool.append_blocking(payload)
    assert spool.stats().unloaded_bytes == len(payload)
    spool.close()


def test_unloaded_bytes_count_what_an_earlier_process_left(spool_dir, kit):
    payload, _ = kit.make_payload(1)
    spool = open_spool(spool_dir)
    for _ in range(4):
        spool.append_blocking(payload)
    spool.close()

    spool = open_spool(spool_dir, max_unloaded_bytes=5 * len(payload))
    assert spool.stats().unloaded_bytes == 4 * len(payload)
    spool.append_blocking(payload)
    with pytest.raises(SpoolUnavailable, match="spool_full"):
        spool.append_blocking(payload)
    spool.close()


def test_writer_backlog_is_bounded(spool_dir, kit):
    gate, in_fsync = threading.Event(), threading.Event()

    def stalled_fdatasync(fd: int) -> None:  # a slow disk: the fsync takes until released
        in_fsync.set()
        gate.wait(10)
        os.fdatasync(fd)

    payload, _ = kit.make_payload(1)
    config = SpoolConfig(max_pending_bytes=4 * len(payload))
    spool = Spool(spool_dir, config, fdatasync=stalled_fdatasync)
    spool.open()

    async def overfill() -> list[BaseException | None]:
        first = asyncio.create_task(spool.append(payload))
        await asyncio.to_thread(in_fsync.wait, 10)
        queued = [asyncio.create_task(spool.append(payload)) for _ in range(3)]
        await asyncio.sleep(0)  # let the three queue their payloads
        with pytest.raises(SpoolUnavailable) as rejected:
            await spool.append(payload)
        assert rejected.value.reason == "writer_backlog"
        assert spool.stats().pending_bytes == 4 * len(payload)
        gate.set()
        return await asyncio.gather(first, *queued, return_exceptions=True)

    results = asyncio.run(overfill())
    stats = spool.stats()
    spool.close()
    assert results == [None] * 4
    assert stats.pending_bytes == 0
    assert stats.appends_total == 4


# --- lifecycle ----------------------------------------------------------------------------


def test_closed_spool_rejects_appends(spool_dir, kit):
    payload, _ = kit.make_payload(1)
    spool = Spool(spool_dir)
    with pytest.raises(SpoolUnavailable, match="spool_closed"):
        spool.append_blocking(payload)  # not opened yet
    spool.open()
    spool.append_blocking(payload)
    spool.close()
    spool.close()  # idempotent

    with pytest.raises(SpoolUnavailable, match="spool_closed"):
        spool.append_blocking(payload)
    with pytest.raises(SpoolUnavailable, match="spool_closed"):
        asyncio.run(spool.append(payload))
    with pytest.raises(SpoolUnavailable, match="spool_closed"):
        spool.seal_now()
    with pytest.raises(RuntimeError):
        spool.open()


def test_close_commits_everything_already_queued(spool_dir, kit):
    spool = open_spool(spool_dir)
    payloads = [kit.make_payload(2) for _ in range(100)]
    results: list[BaseException | None] = []

    async def append_then_close() -> None:
        tasks = [asyncio.create_task(spool.append(p)) for p, _ in payloads]
        await asyncio.sleep(0)  # every task has queued its payload
        await asyncio.to_thread(spool.close)
        results.extend(await asyncio.gather(*tasks, return_exceptions=True))

    asyncio.run(append_then_close())
    assert results == [None] * 100
    assert len(kit.id_counts(spool_dir)) == 200
    assert all(s.sealed or s.path.stat().st_size == 0 for s in list_segments(spool_dir))


def test_only_one_process_may_own_a_spool(spool_dir):
    first = open_spool(spool_dir)
    with pytest.raises(SpoolUnavailable, match="spool_locked"):
        Spool(spool_dir).open()
    first.close()
    second = open_spool(spool_dir)
    second.close()


def test_remove_refuses_anything_but_a_sealed_segment(spool_dir, kit, tmp_path):
    spool = open_spool(spool_dir)
    spool.append_blocking(kit.make_payload(1)[0])
    (active,) = (s.path for s in list_segments(spool_dir) if not s.sealed)
    stranger = tmp_path / "seg-000000000001.ndjson"
    stranger.write_bytes(b"{}\n")

    with pytest.raises(ValueError, match="sealed"):
        spool.remove(active)
    with pytest.raises(ValueError, match="not in this spool"):
        spool.remove(stranger)
    assert active.exists()
    assert stranger.exists()
    spool.close()


def test_context_manager_opens_and_closes(spool_dir, kit):
    payload, ids = kit.make_payload(1)
    with Spool(spool_dir) as spool:
        spool.append_blocking(payload)
    assert [e.event_id for e in kit.read_events(spool_dir)] == ids
    assert len(spool.sealed_segments()) == 1


# --- stats --------------------------------------------------------------------------------


def test_stats_describe_disk_and_writer(spool_dir, kit):
    spool = open_spool(spool_dir, max_segment_age_s=60.0)
    payload, _ = kit.make_payload(3)
    for _ in range(4):
        spool.append_blocking(payload)
    spool.seal_now()
    spool.append_blocking(payload)
    time.sleep(0.05)

    stats = spool.stats()

    assert stats.appends_total == 5
    assert stats.appended_bytes_total == 5 * len(payload)
    assert stats.unloaded_bytes == 5 * len(payload)
    assert stats.disk_bytes == 5 * len(payload)
    assert stats.open_segment_bytes == len(payload)
    assert stats.sealed_segments == 1
    assert stats.segments_sealed_total == 1
    assert stats.oldest_sealed_age_s >= 0.05
    assert stats.fsync_count == 5
    assert stats.fsync_seconds_buckets[-1] == (float("inf"), 5)
    assert stats.fsync_seconds_sum > 0
    counts = [count for _, count in stats.fsync_seconds_buckets]
    assert counts == sorted(counts)  # cumulative, as Prometheus expects
    assert stats.group_size_buckets[0] == (1.0, 5)

    (sealed,) = spool.sealed_segments()
    spool.remove(sealed)
    after = spool.stats()
    assert after.unloaded_bytes == len(payload)
    assert after.sealed_segments == 0
    assert after.oldest_sealed_age_s == 0.0
    spool.close()


def test_fsync_off_counts_no_fsyncs(spool_dir, kit):
    spool = open_spool(spool_dir, fsync=False)
    spool.append_blocking(kit.make_payload(1)[0])
    stats = spool.stats()
    spool.close()
    assert stats.fsync_count == 0
    assert stats.group_count == 1


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="positive"):
        SpoolConfig(max_segment_bytes=0)
    with pytest.raises(ValueError, match="positive"):
        SpoolConfig(max_segment_age_s=0)
