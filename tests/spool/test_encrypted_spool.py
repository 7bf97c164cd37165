"""The spool with encryption at rest: one frame per payload, group commit, torn-tail recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import msgspec
import pytest

from stumble.encryption import (
    KEY_ENV_VAR,
    SPOOL,
    DataKeyError,
    DataKeyRing,
    FrameOpener,
    frame_bounds,
    generate_key_text,
    parse_keys,
)
from stumble.spool import Spool, SpoolConfig
from stumble.spool.segments import list_segments

MARKER = b"request_create_clicked"


@pytest.fixture
def keys() -> DataKeyRing:
    return parse_keys(generate_key_text(), "test")


def decrypted_payloads(directory: Path, keys: DataKeyRing) -> list[bytes]:
    """Every frame of every segment, decrypted, in file order."""
    opener = FrameOpener(keys, SPOOL)
    payloads: list[bytes] = []
    for segment in list_segments(directory):
        data = segment.path.read_bytes()
        view = memoryview(data)
        payloads += [opener.open(view[start:end]) for start, end in frame_bounds(view)]
    return payloads


def test_segments_hold_frames_that_decrypt_to_the_payloads(spool_dir, kit, keys):
    payloads = [kit.make_payload(n)[0] for n in (1, 5, 20)]
    with Spool(spool_dir, data_keys=keys) as spool:
        for payload in payloads:
            spool.append_blocking(payload)
    for segment in list_segments(spool_dir):
        assert MARKER not in segment.path.read_bytes()
        assert segment.path.stat().st_mode & 0o777 == 0o600
    assert decrypted_payloads(spool_dir, keys) == payloads
    assert spool_dir.stat().st_mode & 0o777 == 0o700


def test_a_group_is_still_one_write_and_one_fsync(spool_dir, kit, keys):
    release = threading.Event()
    writes: list[int] = []
    fsyncs: list[int] = []

    def counting_write(fd: int, data: memoryview) -> int:
        writes.append(len(data))
        return os.write(fd, data)

    def first_fsync_waits(fd: int) -> None:
        fsyncs.append(fd)
        if len(fsyncs) == 1:
            release.wait(10)  # the next group gathers meanwhile
        os.fdatasync(fd)

    spool = Spool(spool_dir, write=counting_write, fdatasync=first_fsync_waits, data_keys=keys)
    spool.open()
    try:
        first = threading.Thread(target=spool.append_blocking, args=(kit.make_payload(1)[0],))
        first.start()
        while not fsyncs:
            time.sleep(0.001)
        payloads = [kit.make_payload(3)[0] for _ in range(20)]
        threads = [threading.Thread(target=spool.append_blocking, args=(p,)) for p in payloads]
        for thread in threads:
            thread.start()
        while spool.stats().pending_bytes < sum(len(p) for p in payloads):
            time.sleep(0.001)
        release.set()
        for thread in (first, *threads):
            thread.join(10)
        assert len(writes) == 2 and len(fsyncs) == 2  # 1 + 20 payloads: two groups
        assert spool.stats().appends_total == 21
    finally:
        spool.close()
    assert sorted(decrypted_payloads(spool_dir, keys)[1:]) == sorted(payloads)


@pytest.mark.parametrize("tail_kind", ["torn_frame", "zero_fill", "garbage", "bad_tag"])
def test_recovery_cuts_a_torn_frame_and_keeps_every_whole_one(spool_dir, kit, keys, tail_kind):
    payloads = [kit.make_payload(2)[0] for _ in range(5)]
    with Spool(spool_dir, data_keys=keys) as spool:
        for payload in payloads:
            spool.append_blocking(payload)
    (sealed,) = [s.path for s in list_segments(spool_dir) if s.sealed]
    whole = sealed.read_bytes()
    # What a crash leaves: the segment still open, with a tail that never got acknowledged.
    torn = {
        "torn_frame": whole[: len(whole) // 5 * 4],  # the 5th frame cut part-way
        "zero_fill": whole + b"\0" * 300,
        "garbage": whole + os.urandom(100),
        "bad_tag": whole[:-1] + bytes([whole[-1] ^ 1]),
    }[tail_kind]
    opened = sealed.with_suffix(".open")
    sealed.rename(opened)
    opened.write_bytes(torn)

    with Spool(spool_dir, data_keys=keys):
        pass
    kept = decrypted_payloads(spool_dir, keys)
    expected = payloads[:4] if tail_kind in ("torn_frame", "bad_tag") else payloads
    assert kept == expected


def test_recovery_reports_what_it_cut(spool_dir, kit, keys):
    with Spool(spool_dir, data_keys=keys) as spool:
        spool.append_blocking(kit.make_payload(3)[0])
    (sealed,) = [s.path for s in list_segments(spool_dir) if s.sealed]
    opened = sealed.with_suffix(".open")
    sealed.rename(opened)
    opened.write_bytes(opened.read_bytes() + b"\xa7SE1" + b"\0" * 20)
    spool = Spool(spool_dir, data_keys=keys)
    report = spool.open()
    spool.close()
    assert report.lines_kept == 3
    assert report.lines_dropped == 1
    assert report.bytes_dropped == 24


def test_a_frame_under_an_unknown_key_stops_recovery_and_cuts_nothing(spool_dir, kit, keys):
    with Spool(spool_dir, data_keys=keys) as spool:
        spool.append_blocking(kit.make_payload(2)[0])
    (sealed,) = [s.path for s in list_segments(spool_dir) if s.sealed]
    opened = sealed.with_suffix(".open")
    sealed.rename(opened)
    before = opened.read_bytes()
    other = parse_keys(generate_key_text(), "other keys")
    with pytest.raises(DataKeyError, match="not hold"):
        Spool(spool_dir, data_keys=other).open()
    with pytest.raises(DataKeyError, match="no data key"):
        Spool(spool_dir).open()
    assert opened.read_bytes() == before


def test_plaintext_segments_from_before_encryption_stay_readable(spool_dir, kit, keys):
    plain = kit.make_payload(2)[0]
    with Spool(spool_dir) as spool:
        spool.append_blocking(plain)
    with Spool(spool_dir, data_keys=keys) as spool:
        spool.append_blocking(kit.make_payload(2)[0])
    segments = [s.path for s in list_segments(spool_dir) if s.sealed]
    assert [s.read_bytes()[:1] for s in segments] == [b"{", b"\xa7"]


def test_every_acknowledged_payload_survives_kill_9(spool_dir, kit, tmp_path):
    """The crash test of the plaintext spool, with encryption on (spool_child reads the key)."""
    key_text = generate_key_text()
    keys = parse_keys(key_text, "test")
    out = tmp_path / "acked.txt"
    with out.open("wb") as stdout:
        child = subprocess.Popen(
            kit.child_command("append-forever", str(spool_dir), "4"),
            stdout=stdout,
            env={**os.environ, KEY_ENV_VAR: key_text},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and out.stat().st_size < 40_000:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    lines = out.read_text().splitlines()[1:-1]  # "ready", then ids; the last may be cut
    acknowledged = {event_id for line in lines for event_id in line.split()}
    assert acknowledged
    with Spool(spool_dir, data_keys=keys):
        pass
    stored = {
        msgspec.json.decode(line)["event_id"]
        for payload in decrypted_payloads(spool_dir, keys)
        for line in payload.splitlines()
    }
    assert acknowledged <= stored


def test_config_is_unchanged_by_encryption(spool_dir, keys):
    # Segment size limits count frame bytes, so a full segment still rolls at the limit.
    config = SpoolConfig(max_segment_bytes=4096)
    with Spool(spool_dir, config, data_keys=keys) as spool:
        for _ in range(20):
            spool.append_blocking(b'{"a":"' + b"x" * 900 + b'"}\n')
    sizes = [s.path.stat().st_size for s in list_segments(spool_dir) if s.sealed]
    assert len(sizes) > 3 and max(sizes) <= 4096
