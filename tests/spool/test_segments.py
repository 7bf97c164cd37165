"""Segment naming, tail scanning and crash recovery on real files.

A torn tail is built the way a crash leaves it: whole lines the spool had committed, then
whatever a killed write or a power loss leaves behind (half a line, garbage, zero fill).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stumble.spool import Spool
from stumble.spool.segments import (
    cut_torn_tail,
    list_segments,
    parse_segment,
    recover_segments,
    segment_name,
    valid_prefix,
)


def write_open_segment(directory: Path, sequence: int, content: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / segment_name(sequence, sealed=False)
    path.write_bytes(content)
    return path


def half_line(kit) -> bytes:
    line, _ = kit.make_payload(1)
    return line[: len(line) // 2]


TORN_TAILS = {
    "cut_mid_line": (half_line, 1),
    "garbage": (lambda kit: b'\x17\x03garbage{not json\n{"event_id":', 2),
    "zero_fill": (lambda kit: b"\x00" * 4096, 1),
    "zero_fill_then_newline": (lambda kit: b"\x00" * 100 + b"\n", 1),
    "whole_object_without_newline": (lambda kit: kit.make_payload(1)[0][:-1], 1),
    "json_that_is_not_an_object": (lambda kit: b"[1, 2, 3]\n", 1),
    "bad_line_before_good_lines": (lambda kit: b"{oops\n" + kit.make_payload(2)[0], 3),
}


# --- naming -------------------------------------------------------------------------------


def test_names_round_trip_and_sort_by_sequence():
    assert segment_name(42, sealed=False) == "seg-000000000042.open"
    assert segment_name(42, sealed=True) == "seg-000000000042.ndjson"
    parsed = parse_segment(Path("/spool/seg-000000000042.ndjson"))
    assert parsed is not None
    assert (parsed.sequence, parsed.sealed) == (42, True)
    assert parse_segment(Path("/spool/spool.lock")) is None
    assert parse_segment(Path("/spool/seg-42.open")) is None
    with pytest.raises(ValueError, match="range"):
        segment_name(0, sealed=True)


def test_listing_ignores_strays_and_orders_numerically(tmp_path):
    for sequence in (10, 9, 100):
        (tmp_path / segment_name(sequence, sealed=True)).write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    assert [s.sequence for s in list_segments(tmp_path)] == [9, 10, 100]


# --- scanning -----------------------------------------------------------------------------


def test_valid_prefix_of_a_clean_file_is_the_whole_file(tmp_path, kit):
    content, _ = kit.make_payload(7)
    path = write_open_segment(tmp_path, 1, content)
    assert valid_prefix(path) == (len(content), 7)


@pytest.mark.parametrize("tail_kind", sorted(TORN_TAILS))
def test_cut_torn_tail_keeps_every_committed_line(tmp_path, kit, tail_kind):
    make_tail, dropped_lines = TORN_TAILS[tail_kind]
    committed, ids = kit.make_payload(5)
    tail = make_tail(kit)
    path = write_open_segment(tmp_path, 1, committed + tail)

    repair = cut_torn_tail(path)

    assert path.read_bytes() == committed
    assert (repair.lines_kept, repair.lines_dropped) == (5, dropped_lines)
    assert repair.bytes_dropped == len(tail)
    assert [e.event_id for e in kit.read_events(tmp_path)] == ids


# --- recovery through Spool.open ------------------------------------------------------------


@pytest.mark.parametrize("tail_kind", sorted(TORN_TAILS))
def test_open_recovers_a_torn_active_segment_and_seals_it(spool_dir, kit, tail_kind):
    make_tail, dropped_lines = TORN_TAILS[tail_kind]
    committed, ids = kit.make_payload(20)
    write_open_segment(spool_dir, 7, committed + make_tail(kit))

    spool = Spool(spool_dir)
    report = spool.open()
    payload, more_ids = kit.make_payload(1)
    spool.append_blocking(payload)
    spool.close()

    assert report.recovered_segments == ("seg-000000000007.open",)
    assert (report.lines_kept, report.lines_dropped) == (20, dropped_lines)
    assert report.next_sequence == 8
    assert (spool_dir / "seg-000000000007.ndjson").read_bytes() == committed
    assert [e.event_id for e in kit.read_events(spool_dir)] == ids + more_ids


def test_a_segment_holding_only_a_torn_write_disappears(spool_dir, kit):
    write_open_segment(spool_dir, 3, half_line(kit))

    spool = Spool(spool_dir)
    report = spool.open()
    spool.close()

    assert report.lines_kept == 0
    assert report.lines_dropped == 1
    assert [s.sealed for s in list_segments(spool_dir)] == [False]
    assert list_segments(spool_dir)[0].sequence == 4  # the sequence still moved on


def test_recovery_is_idempotent(spool_dir, kit):
    committed, _ = kit.make_payload(3)
    write_open_segment(spool_dir, 1, committed + half_line(kit))
    first = recover_segments(spool_dir)
    second = recover_segments(spool_dir)
    assert first.bytes_dropped > 0
    assert second.bytes_dropped == 0
    assert second.recovered_segments == ()
    assert (spool_dir / segment_name(1, sealed=True)).read_bytes() == committed


def test_sealed_segment_is_trusted_but_its_last_byte_is_checked(spool_dir, kit):
    good, _ = kit.make_payload(4)
    spool_dir.mkdir()
    trusted = spool_dir / segment_name(1, sealed=True)
    trusted.write_bytes(good)
    damaged = spool_dir / segment_name(2, sealed=True)
    damaged.write_bytes(good + half_line(kit))

    report = recover_segments(spool_dir)

    assert report.repaired_sealed == ("seg-000000000002.ndjson",)
    assert report.recovered_segments == ()
    assert trusted.read_bytes() == good
    assert damaged.read_bytes() == good
    assert report.next_sequence == 3


def test_several_leftover_open_segments_are_all_recovered(spool_dir, kit):
    first, first_ids = kit.make_payload(2)
    second, second_ids = kit.make_payload(3)
    write_open_segment(spool_dir, 5, first)
    write_open_segment(spool_dir, 6, second + b"\x00" * 512)
    write_open_segment(spool_dir, 4, b"")

    spool = Spool(spool_dir)
    report = spool.open()
    spool.close()

    assert report.lines_kept == 5
    assert report.next_sequence == 7
    assert [s.path.name for s in list_segments(spool_dir)] == [
        "seg-000000000005.ndjson",
        "seg-000000000006.ndjson",
        "seg-000000000007.open",
    ]
    assert [e.event_id for e in kit.read_events(spool_dir)] == first_ids + second_ids


def test_a_clean_restart_has_nothing_to_recover(spool_dir, kit):
    with Spool(spool_dir) as spool:
        spool.append_blocking(kit.make_payload(2)[0])

    spool = Spool(spool_dir)
    report = spool.open()
    spool.close()

    assert report.recovered_segments == ()
    assert (report.lines_kept, report.lines_dropped, report.bytes_dropped) == (0, 0, 0)
    assert report.repaired_sealed == ()
