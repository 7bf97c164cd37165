"""DuckDB-only behaviour: durability across close and SIGKILL, concurrent readers, SQL, layout."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from tests.storage.conftest import BASE_MS, make_event, session_rows, write_segment

from stumble.events import StoredEvent
from stumble.storage import (
    DATABASE_FILENAME,
    DatabaseInUseError,
    DuckDBStore,
    LoadResult,
    ReadOnlyQueryError,
    SegmentError,
    StorageError,
)
from stumble.storage.duckdb_store import ROW_GROUP_SIZE


def _segment_of_sessions(path: Path, sessions: int, per_session: int, start_ms: int) -> Path:
    rows = []
    for i in range(per_session):  # interleaved, as they arrive
        for s in range(sessions):
            at = start_ms + i * sessions + s
            rows.append(make_event("action", session_id=f"s_{s:05d}", received_at=at, ts=at - 7))
    return write_segment(path, rows)


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    segment = write_segment(tmp_path / "seg-1.ndjson", session_rows(40, session_id="s_a"))
    with DuckDBStore.in_data_dir(tmp_path / "data") as store:
        store.load_segment(segment)
        expected = store.read_events()

    assert (tmp_path / "data" / DATABASE_FILENAME).is_file()
    with DuckDBStore.in_data_dir(tmp_path / "data") as reopened:
        assert reopened.read_events() == expected
        assert reopened.load_segment(segment) == LoadResult(already_loaded=True)


_LOAD_THEN_DIE = """
import os, signal, sys
from pathlib import Path
from stumble.storage import DuckDBStore
store = DuckDBStore(sys.argv[1])
result = store.load_segment(Path(sys.argv[2]))
print(result.inserted, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before close, checkpoint or unlink
"""


def test_sigkill_right_after_a_load_commits_never_loads_twice(tmp_path: Path) -> None:
    database = tmp_path / "stumble.duckdb"
    segment = _segment_of_sessions(tmp_path / "seg-000042.ndjson", 50, 40, BASE_MS)

    child = subprocess.run(
        [sys.executable, "-c", _LOAD_THEN_DIE, str(database), str(segment)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["2000"]
    with DuckDBStore(database) as store:
        assert store.is_loaded(segment.name)
        assert store.load_segment(segment) == LoadResult(already_loaded=True)
        assert store.count_events() == 2000


_LOAD_FOREVER = """
import sys
from pathlib import Path
from stumble.storage import DuckDBStore
store = DuckDBStore(sys.argv[1])
print("ready", flush=True)
store.load_segment(Path(sys.argv[2]))
print("committed", flush=True)
"""


def test_sigkill_during_a_load_leaves_all_or_nothing(tmp_path: Path) -> None:
    database = tmp_path / "stumble.duckdb"
    segment = _segment_of_sessions(tmp_path / "seg-000043.ndjson", 500, 120, BASE_MS)
    child = subprocess.Popen(
        [sys.executable, "-c", _LOAD_FOREVER, str(database), str(segment)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.05)  # inside the load transaction: parsing, deduplicating or appending
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    child.stdout.close()

    with DuckDBStore(database) as store:
        loaded = store.is_loaded(segment.name)
        assert store.count_events() == (60_000 if loaded else 0)
        store.load_segment(segment)
        assert store.count_events() == 60_000


def test_readers_run_while_segments_load(tmp_path: Path) -> None:
    segments = [
        _segment_of_sessions(tmp_path / f"seg-{n}.ndjson", 200, 25, BASE_MS + n * 10_000)
        for n in range(8)
    ]
    errors: list[Exception] = []
    observed: list[list[int]] = [[] for _ in range(3)]
    done = threading.Event()

    with DuckDBStore(tmp_path / "stumble.duckdb", threads=2) as store:

        def read(seen: list[int]) -> None:
            try:
                while not done.is_set():
                    (count,) = store.query("SELECT count(*) FROM events").rows[0]
                    seen.append(count)
                    store.read_events(session_id="s_00007")
            except Exception as exc:  # noqa: BLE001 - handed to the main thread, which fails
                errors.append(exc)

        readers = [threading.Thread(target=read, args=(seen,)) for seen in observed]
        for reader in readers:
            reader.start()
        for segment in segments:
            store.load_segment(segment)
        done.set()
        for reader in readers:
            reader.join(timeout=30)

        assert errors == []
        assert store.count_events() == 8 * 5000
    for seen in observed:
        assert seen, "every reader ran at least one query"
        assert seen == sorted(seen), "counts never go backwards"
        assert all(count % 5000 == 0 for count in seen), "a segment is visible whole or not at all"


def test_a_file_held_by_another_process_is_in_use_naming_that_process(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILENAME
    command = [sys.executable, "-c", HOLD_DATABASE, str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
            with pytest.raises(DatabaseInUseError) as refused:
                DuckDBStore(path)
        finally:
            holder.kill()
    assert refused.value.holder == f"PID {holder.pid}"
    assert refused.value.path == str(path)


HOLD_DATABASE = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""


def test_query_returns_columns_and_rows() -> None:
    with DuckDBStore(":memory:") as store:
        store.write_rows(session_rows(3, session_id="s_a"))
        result = store.query(
            "SELECT session_id, count(*) AS n FROM events WHERE environment = ? GROUP BY ALL",
            ["production"],
        )

    assert result.columns == ("session_id", "n")
    assert result.as_dicts() == [{"session_id": "s_a", "n": 3}]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM events",
        "DROP TABLE events",
        "SELECT 1; DELETE FROM events",
        "INSERT INTO loaded_segments VALUES ('x', now(), 0, 0)",
        "SELEC nonsense",
    ],
)
def test_query_refuses_anything_but_one_select(sql: str) -> None:
    with DuckDBStore(":memory:") as store:
        store.write_rows([make_event("action")])
        with pytest.raises(ReadOnlyQueryError):
            store.query(sql)
        assert store.count_events() == 1


def test_query_errors_are_storage_errors() -> None:
    with DuckDBStore(":memory:") as store, pytest.raises(StorageError):
        store.query("SELECT no_such_column FROM events")


def test_each_batch_is_stored_in_file_order(tmp_path: Path) -> None:
    # No sort on load (see the module doc): rows land as they arrived, batch after batch.
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        for n in range(2):
            segment = _segment_of_sessions(
                tmp_path / f"seg-{n}.ndjson", 300, 20, BASE_MS + n * 9000
            )
            store.load_segment(segment)
        physical = store.query("SELECT epoch_ms(received_at) FROM events ORDER BY rowid").rows

    assert [at for (at,) in physical] == [
        BASE_MS + n * 9000 + i for n in range(2) for i in range(6000)
    ]


def test_a_session_read_returns_its_rows_in_time_order(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        for n in range(3):
            store.load_segment(
                _segment_of_sessions(tmp_path / f"seg-{n}.ndjson", 200, 30, BASE_MS + n * 9000)
            )
        rows = store.read_events(session_id="s_00042")

    assert len(rows) == 90
    assert {row.session_id for row in rows} == {"s_00042"}
    assert [row.ts for row in rows] == sorted(row.ts for row in rows)
    assert rows[0].received_at == BASE_MS + 42


def _batch_with_duplicates(tmp_path: Path) -> tuple[list[Path], list[StoredEvent]]:
    first = session_rows(50, session_id="s_a")
    later = [
        msgspec.structs.replace(row, received_at=row.received_at + 60_000, skew_ms=5)
        for row in first[::5]
    ]
    mixed = session_rows(40, session_id="s_b", start_ms=BASE_MS + 30_000)
    in_batch = msgspec.structs.replace(mixed[3], received_at=mixed[3].received_at + 9, skew_ms=7)
    second = [*later[:4], mixed[0], in_batch, *mixed[1:], *later[4:]]
    return [write_segment(tmp_path / "seg-1.ndjson", first)], second


def test_stored_copies_and_later_copies_in_the_batch_are_dropped(tmp_path: Path) -> None:
    [first], second = _batch_with_duplicates(tmp_path)
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        store.load_segment(first)
        result = store.load_segment(write_segment(tmp_path / "seg-2.ndjson", second))
        stored = store.read_events()
        dirty = store.dirty_rollup_days()

    assert result == LoadResult(inserted=40, duplicates=11)
    assert len(stored) == 90
    assert len({row.event_id for row in stored}) == 90
    assert {row.skew_ms for row in stored} == {second[4].skew_ms}, "first copies kept"
    days = {datetime.fromtimestamp(row.ts / 1000, UTC).date() for row in stored}
    assert dirty == [("production", day) for day in sorted(days)]


def test_a_replayed_segment_is_all_duplicates(tmp_path: Path) -> None:
    rows = session_rows(300, session_id="s_a")
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        store.load_segment(write_segment(tmp_path / "seg-1.ndjson", rows))
        replay = write_segment(tmp_path / "seg-1-replay.ndjson", rows)

        assert store.load_segment(replay) == LoadResult(inserted=0, duplicates=300)
        assert store.count_events() == 300


def test_the_file_keeps_its_small_row_groups_after_reopening(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        segment = _segment_of_sessions(tmp_path / "seg-1.ndjson", 1000, 66, BASE_MS)
        store.load_segment(segment)
        store.close()
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:  # reopened: checkpointed on disk
        (row_groups, largest) = store.query(
            "SELECT count(*), max(count) FROM (SELECT row_group_id, max(count) AS count "
            "FROM pragma_storage_info('events') GROUP BY row_group_id)"
        ).rows[0]

    assert largest <= ROW_GROUP_SIZE
    assert row_groups == -(-66_000 // ROW_GROUP_SIZE)


def test_write_rows_leaves_no_scratch_files(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "stumble.duckdb") as store:
        store.write_rows(session_rows(10, session_id="s_a"))
        with pytest.raises(SegmentError):
            store.write_rows([make_event("action", event_id="not-a-uuid")])
        assert store.count_events() == 10

    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".ndjson"] == []


def test_write_rows_encodes_what_the_spool_would_write(tmp_path: Path) -> None:
    rows = session_rows(5, session_id="s_a")
    with DuckDBStore(":memory:") as via_rows, DuckDBStore(":memory:") as via_segment:
        via_rows.write_rows(rows)
        via_segment.load_segment(write_segment(tmp_path / "seg-1.ndjson", rows))

        assert via_rows.read_events() == via_segment.read_events()
        assert msgspec.json.encode(via_rows.read_events()) == msgspec.json.encode(
            sorted(rows, key=lambda row: (row.ts, row.event_id))
        )


def test_a_second_process_cannot_open_the_file_for_writing(tmp_path: Path) -> None:
    database = tmp_path / "stumble.duckdb"
    with DuckDBStore(database):
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import sys; from stumble.storage import DuckDBStore, StorageError\n"
                    "try:\n    DuckDBStore(sys.argv[1])\nexcept StorageError:\n    sys.exit(3)\n"
                ),
                str(database),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )

    assert child.returncode == 3, child.stderr
