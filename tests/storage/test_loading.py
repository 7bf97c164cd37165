"""The DuckDB loader against the rules ``MemoryStore`` spells out in plain Python: which copy of
an event is kept, the counts a load reports, the days it marks dirty, and that a failed load
leaves nothing behind."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from tests.storage.conftest import BASE_MS, DAY_MS, make_event, session_rows, write_segment

from stumble.events import StoredEvent
from stumble.storage import (
    DuckDBStore,
    EventStore,
    LoadResult,
    MemoryStore,
    SegmentError,
    StorageError,
)

WINDOW_MS = 60_000  # small, so that copies outside the window occur too


class _Traffic:
    """Segments of new events mixed with every kind of copy the loader must sort out."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now_ms = BASE_MS
        self.sent: list[StoredEvent] = []
        self.lines = 0

    def _line(self, row: StoredEvent, **changes: object) -> StoredEvent:
        self.lines += 1  # skew_ms names the line, so a test sees which copy was kept
        return msgspec.structs.replace(row, skew_ms=self.lines, **changes)

    def segment(self, size: int) -> list[StoredEvent]:
        rng, rows = self.rng, []
        for _ in range(size):
            self.now_ms += rng.choice((0, 1, 1, 2, 500))
            roll = rng.random()
            if roll < 0.08 and rows:  # the same event again in the same millisecond
                rows.append(self._line(rng.choice(rows), received_at=rows[-1].received_at))
            elif roll < 0.16 and self.sent:  # a retry, inside the window or (rarely) after it
                later = self.now_ms + rng.choice((0, 10, 3 * WINDOW_MS))
                rows.append(self._line(rng.choice(self.sent[-400:]), received_at=later))
            elif roll < 0.2 and rows:  # a copy received earlier than a line before it
                rows.append(self._line(rng.choice(rows), received_at=rows[0].received_at - 1))
            else:
                ts = self.now_ms - 40
                row = make_event("action", received_at=self.now_ms, ts=ts, session_id="s_r")
                rows.append(self._line(row))
        self.sent.extend(rows)
        return rows


def _load_both(tmp_path: Path, segments: list[list[StoredEvent]]) -> None:
    stores: list[EventStore] = [
        DuckDBStore(tmp_path / "stumble.duckdb", dedupe_window_ms=WINDOW_MS),
        MemoryStore(dedupe_window_ms=WINDOW_MS),
    ]
    try:
        for number, rows in enumerate(segments):
            segment = write_segment(tmp_path / f"seg-{number}.ndjson", rows)
            duckdb_result, expected = (store.load_segment(segment) for store in stores)
            assert duckdb_result == expected, f"segment {number}"
            assert expected.inserted + expected.duplicates == len(rows)
        stored = [sorted(s.read_events(), key=lambda r: (r.ts, r.skew_ms)) for s in stores]
        assert stored[0] == stored[1]
        assert stores[0].dirty_rollup_days() == stores[1].dirty_rollup_days()
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("seed", range(6))
def test_random_batches_keep_the_copies_the_rules_keep(tmp_path: Path, seed: int) -> None:
    traffic = _Traffic(seed)
    segments = [traffic.segment(300) for _ in range(4)]
    segments.append(segments[1])  # a replay: every line a duplicate
    segments.append([*segments[2][:50], *traffic.segment(30)])  # partly replayed
    _load_both(tmp_path, segments)


def test_a_partly_replayed_segment_keeps_only_its_new_lines(tmp_path: Path) -> None:
    first = session_rows(5_000, session_id="s_a")
    fresh = session_rows(40, session_id="s_b", start_ms=BASE_MS + 10_000)
    twin = msgspec.structs.replace(fresh[7], skew_ms=99)  # same millisecond: the first line wins
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        store.load_segment(write_segment(tmp_path / "seg-1.ndjson", first))
        replay = write_segment(tmp_path / "seg-2.ndjson", [*first, *fresh, twin])

        assert store.load_segment(replay) == LoadResult(inserted=40, duplicates=5_001)
        assert store.count_events() == 5_040
        assert [r.skew_ms for r in store.read_events(session_id="s_b")] == [
            r.skew_ms for r in fresh
        ]


def test_copies_in_one_millisecond_keep_the_first_line_and_every_row_keeps_file_order(
    tmp_path: Path,
) -> None:
    rows = session_rows(20, session_id="s_a")
    twins = [msgspec.structs.replace(rows[5], skew_ms=n) for n in (71, 72)]
    later = msgspec.structs.replace(rows[2], received_at=rows[19].received_at + 1, skew_ms=73)
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        segment = write_segment(tmp_path / "seg-1.ndjson", [*rows[:10], *twins, *rows[10:], later])
        assert store.load_segment(segment) == LoadResult(inserted=20, duplicates=3)
        physical = store.query("SELECT skew_ms FROM events ORDER BY rowid").rows

    assert [skew for (skew,) in physical] == [row.skew_ms for row in rows]


def test_copies_are_the_same_event_id_with_the_same_client_time(tmp_path: Path) -> None:
    # Two events that share an id but not the client's own time are not a resend: both stay.
    original = make_event("action", received_at=BASE_MS)
    other_time = msgspec.structs.replace(
        original, client_ts=original.client_ts + 1, received_at=BASE_MS + 10, skew_ms=1
    )
    resend = msgspec.structs.replace(original, received_at=BASE_MS + 20, skew_ms=2)
    segments = [[original], [other_time, resend]]
    _load_both(tmp_path, segments)
    with DuckDBStore(tmp_path / "stumble.duckdb", dedupe_window_ms=WINDOW_MS) as store:
        assert sorted(row.skew_ms for row in store.read_events()) == sorted([original.skew_ms, 1])


def test_a_stored_event_retried_twice_in_one_batch_is_two_duplicates(tmp_path: Path) -> None:
    # Counting a line that is both stored and a later copy twice once made this batch look
    # all duplicates, and the new event in it was dropped.
    original = make_event("action")
    retries = [msgspec.structs.replace(original, received_at=BASE_MS + n) for n in (10, 20)]
    other = make_event("action", received_at=BASE_MS + 15)
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        store.write_rows([original])
        segment = write_segment(tmp_path / "seg-1.ndjson", [*retries, other])

        assert store.load_segment(segment) == LoadResult(inserted=1, duplicates=2)
        assert {row.event_id for row in store.read_events()} == {
            original.event_id,
            other.event_id,
        }


@pytest.mark.parametrize("bad", ["a new line", "a copy"])
def test_a_load_that_fails_midway_leaves_nothing_and_spoils_no_later_load(
    tmp_path: Path, bad: str
) -> None:
    first = session_rows(30, session_id="s_a")
    second = session_rows(30, session_id="s_b", start_ms=BASE_MS + 1_000)
    retry = msgspec.structs.replace(first[4], received_at=BASE_MS + 1_500)
    twin = msgspec.structs.replace(second[9], skew_ms=5)
    broken = msgspec.structs.replace(
        second[20] if bad == "a new line" else twin, params="{not json"
    )
    lines = [*second, retry, twin]
    lines[lines.index(second[20] if bad == "a new line" else twin)] = broken
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        store.load_segment(write_segment(tmp_path / "seg-1.ndjson", first))
        dirty = store.dirty_rollup_days()
        with pytest.raises(SegmentError):
            store.load_segment(write_segment(tmp_path / "seg-2.ndjson", lines))

        assert store.count_events() == 30
        assert not store.is_loaded("seg-2.ndjson")
        assert store.dirty_rollup_days() == dirty
        assert store.query("SELECT count(*) FROM duckdb_tables() WHERE temporary").rows == [(0,)]
        # The same events, well formed, in a segment of their own: none is a duplicate of
        # anything the failed load left behind.
        fixed = write_segment(tmp_path / "seg-3.ndjson", [*second, retry, twin])
        assert store.load_segment(fixed) == LoadResult(inserted=30, duplicates=2)
        assert store.count_events() == 60


@pytest.mark.parametrize("reopen", [False, True], ids=["same process", "checkpointed"])
def test_rows_appended_after_the_table_end_was_deleted_follow_every_stored_row(
    tmp_path: Path, reopen: bool
) -> None:
    # The loader marks the days of the rows with a higher row id than before the load dirty:
    # that must hold when the table's last rows are gone, whole row groups of them.
    kept = session_rows(17_000, session_id="s_a")
    tail = session_rows(17_000, session_id="s_b", start_ms=BASE_MS + 20_000, environment="dev")
    next_day = session_rows(10, session_id="s_c", start_ms=BASE_MS + DAY_MS)
    database = tmp_path / "stumble.duckdb"
    store = DuckDBStore(database)
    try:
        store.load_segment(write_segment(tmp_path / "seg-1.ndjson", [*kept, *tail]))
        assert store.delete_expired("dev", BASE_MS + 10 * DAY_MS) == 17_000
        if reopen:
            store.reclaim_space(compact_above=1.0)
            store.close()
            store = DuckDBStore(database)
        for environment, day in store.dirty_rollup_days():
            store.replace_rollup_day(environment, day, [], "test")
        (before,) = store.query("SELECT max(rowid) FROM events").rows[0]

        assert store.load_segment(write_segment(tmp_path / "seg-2.ndjson", next_day)).inserted == 10
        (first_new,) = store.query("SELECT min(rowid) FROM events WHERE session_id = 's_c'").rows[0]
        dirty = store.dirty_rollup_days()
    finally:
        store.close()
    assert first_new > before
    day = datetime.fromtimestamp(next_day[0].ts / 1000, UTC).date()
    assert dirty == [("production", day)]


@pytest.mark.parametrize("missing", ["event_id", "received_at", "client_ts"])
def test_a_line_without_its_key_fails_the_load_even_among_duplicates(
    tmp_path: Path, missing: str
) -> None:
    # A NULL key would slip past the search for copies (NULL never equals NULL).
    rows = session_rows(10, session_id="s_a")
    later = msgspec.structs.replace(rows[2], received_at=rows[2].received_at + 50)
    keyless = [msgspec.to_builtins(row) for row in (rows[3], rows[3])]
    for line in keyless:
        del line[missing]
    segment = tmp_path / "seg-1.ndjson"
    segment.write_bytes(
        msgspec.json.Encoder().encode_lines([*rows, later])
        + msgspec.json.Encoder().encode_lines(keyless)
    )
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        with pytest.raises(SegmentError, match="malformed"):
            store.load_segment(segment)
        assert store.count_events() == 0
        assert not store.is_loaded(segment.name)


@pytest.mark.parametrize("reopen", ["migrating", "without migrating", "after compaction"])
def test_copies_a_load_named_before_a_crash_are_deleted_when_the_database_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reopen: str
) -> None:
    # A load commits its rows and the keys of its copies, then deletes the copies in a second
    # transaction. A process that stops between the two leaves both; the next open finishes
    # it, by key, even after a compaction renumbered every row.
    traffic = _Traffic(11)
    segments = [traffic.segment(300) for _ in range(3)]
    expected = MemoryStore(dedupe_window_ms=WINDOW_MS)
    for number, rows in enumerate(segments):
        expected.load_segment(write_segment(tmp_path / f"expected-{number}.ndjson", rows))
    database = tmp_path / "stumble.duckdb"
    store = DuckDBStore(database, dedupe_window_ms=WINDOW_MS)
    for number, rows in enumerate(segments[:-1]):
        store.load_segment(write_segment(tmp_path / f"seg-{number}.ndjson", rows))
    monkeypatch.setattr(DuckDBStore, "_delete_pending_duplicates", lambda self: None)
    store.load_segment(write_segment(tmp_path / "seg-last.ndjson", segments[-1]))
    (pending,) = store.query("SELECT sum(copies) FROM pending_duplicates").rows[0]
    assert pending > 0
    assert store.count_events() == expected.count_events() + pending  # the crash's state
    if reopen == "after compaction":
        store.reclaim_space(compact_above=0.0)
    store.close()
    monkeypatch.undo()

    with DuckDBStore(
        database, dedupe_window_ms=WINDOW_MS, migrate=reopen != "without migrating"
    ) as reopened:
        stored = sorted(reopened.read_events(), key=lambda r: r.skew_ms)
        assert reopened.query("SELECT count(*) FROM pending_duplicates").rows == [(0,)]
    assert stored == sorted(expected.read_events(), key=lambda r: r.skew_ms)


def test_copies_left_by_a_failed_second_transaction_go_before_the_next_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = _Traffic(5)
    segments = [traffic.segment(300) for _ in range(3)]
    expected = MemoryStore(dedupe_window_ms=WINDOW_MS)
    with DuckDBStore(tmp_path / "stumble.duckdb", dedupe_window_ms=WINDOW_MS) as store:
        store.load_segment(write_segment(tmp_path / "seg-0.ndjson", segments[0]))
        original = DuckDBStore._delete_pending_duplicates
        failures = iter([True])

        def fails_once(self: DuckDBStore) -> None:
            if self._copies_pending and next(failures, False):
                raise StorageError("disk full")
            original(self)

        monkeypatch.setattr(DuckDBStore, "_delete_pending_duplicates", fails_once)
        with pytest.raises(StorageError):
            store.load_segment(write_segment(tmp_path / "seg-1.ndjson", segments[1]))
        assert store.is_loaded("seg-1.ndjson")  # its rows are committed; the copies wait
        store.load_segment(write_segment(tmp_path / "seg-2.ndjson", segments[2]))
        stored = sorted(store.read_events(), key=lambda r: r.skew_ms)
    for number, rows in enumerate(segments):
        expected.load_segment(write_segment(tmp_path / f"expected-{number}.ndjson", rows))
    assert stored == sorted(expected.read_events(), key=lambda r: r.skew_ms)
