"""Retention's deletions give disk space back: a checkpoint frees the blocks of deleted row
groups, and a file mostly free is compacted into a new one (encrypted if it was)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tests.storage.conftest import BASE_MS, DAY_MS, make_data_keys, make_event

from stumble.encryption import DataKeyRing
from stumble.storage import DuckDBStore, IngestCount, MemoryStore, SpaceReclaimed
from stumble.storage.duckdb_encryption import is_encrypted_database

DAYS = 8
ROWS_PER_DAY = 20_000


def _filled(path: Path, data_keys: DataKeyRing | None = None) -> DuckDBStore:
    store = DuckDBStore(path, data_keys=data_keys)
    for day in range(DAYS):
        start = BASE_MS + day * DAY_MS
        store.write_rows(
            [
                make_event(received_at=start + i, ts=start + i, session_id=f"s_{day}_{i % 97}")
                for i in range(ROWS_PER_DAY)
            ]
        )
    return store


def _delete_all_but_the_last_day(store: DuckDBStore) -> int:
    return store.delete_expired("production", BASE_MS + (DAYS - 1) * DAY_MS)


def test_a_mostly_free_file_is_compacted_and_keeps_every_kept_row(tmp_path: Path) -> None:
    path = tmp_path / "stumble.duckdb"
    store = _filled(path)
    store.reclaim_space(compact_above=1.0)
    before = store.storage_bytes()
    assert _delete_all_but_the_last_day(store) == (DAYS - 1) * ROWS_PER_DAY
    kept = store.read_events()

    reclaimed = store.reclaim_space(compact_above=0.3)

    assert reclaimed.compacted and reclaimed.free_share > 0.5
    after = store.storage_bytes()
    assert before is not None and after is not None and after < before / 2
    assert store.read_events() == kept  # same rows, same order, through the new connection
    store.write_rows([make_event(received_at=BASE_MS + DAYS * DAY_MS)])  # still writable
    assert store.count_events() == ROWS_PER_DAY + 1
    counter = IngestCount(date(2024, 6, 1), "production", "action", "rejected", "too_long")
    store.add_ingest_counts([counter])
    store.add_ingest_counts([counter])  # an upsert: the copy kept the primary key
    assert [c.count for c in store.ingest_counts(date(2024, 6, 1), date(2024, 6, 1))] == [2]
    store.close()
    assert not path.with_name(path.name + ".compact").exists()
    with DuckDBStore(path) as reopened:
        assert reopened.count_events() == ROWS_PER_DAY + 1


def test_below_the_threshold_only_a_checkpoint_runs(tmp_path: Path) -> None:
    store = _filled(tmp_path / "stumble.duckdb")
    store.reclaim_space(compact_above=1.0)
    size = store.storage_bytes()
    store.delete_expired("production", BASE_MS + DAY_MS)  # one day of eight

    reclaimed = store.reclaim_space(compact_above=0.9)

    assert reclaimed.checkpointed and not reclaimed.compacted
    assert 0 < reclaimed.free_share < 0.9
    assert store.storage_bytes() == size  # freed blocks are reused, the file is not truncated
    store.close()


def test_compaction_keeps_the_file_encrypted(tmp_path: Path) -> None:
    keys = make_data_keys()
    path = tmp_path / "stumble.duckdb"
    store = _filled(path, keys)
    _delete_all_but_the_last_day(store)

    assert store.reclaim_space(compact_above=0.3).compacted
    store.close()
    assert is_encrypted_database(path) is True
    with DuckDBStore(path, data_keys=keys) as reopened:
        assert reopened.count_events() == ROWS_PER_DAY


def test_stores_without_a_file_have_nothing_to_give_back() -> None:
    assert MemoryStore().reclaim_space(0.3) == SpaceReclaimed()
    assert MemoryStore().storage_bytes() is None
    memory = DuckDBStore(":memory:")
    assert memory.storage_bytes() is None
    assert not memory.reclaim_space(0.0).compacted


def test_a_copy_left_by_an_unfinished_compaction_is_removed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "stumble.duckdb"
    DuckDBStore(path).close()
    leftover = path.with_name(path.name + ".compact")
    leftover.write_bytes(b"half a copy")
    with DuckDBStore(path):
        assert not leftover.exists()
