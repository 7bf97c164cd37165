"""The embedded database encrypted at rest: DuckDB's ENCRYPTION_KEY, segments from memory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import msgspec
import pytest
from tests.storage.conftest import make_data_keys, make_event, write_segment

from stumble.encryption import SPOOL, DataKeyRing, FrameSealer, generate_key_text, parse_keys
from stumble.rekey import rekey_database
from stumble.storage import DuckDBStore, IngestCount, LoadResult, SegmentError, duckdb_encryption
from stumble.storage.duckdb_encryption import DatabaseKeyError, is_encrypted_database

MARKER = "mrk_target_zq7x"


def marker_rows(count: int) -> list:  # type: ignore[type-arg]
    return [
        make_event("action", target=MARKER, received_at=1_717_200_000_000 + i) for i in range(count)
    ]


def encrypted_segment(path: Path, keys: DataKeyRing, count: int, rows: list | None = None) -> Path:  # type: ignore[type-arg]
    """``count`` marker rows, or ``rows``, sealed as the spool seals them."""
    plain = path.with_suffix(".plain")
    write_segment(plain, marker_rows(count) if rows is None else rows)
    sealer = FrameSealer(keys, SPOOL)
    lines = plain.read_bytes().splitlines(keepends=True)
    path.write_bytes(
        b"".join(sealer.seal(b"".join(lines[i : i + 7])) for i in range(0, len(lines), 7))
    )
    plain.unlink()
    return path


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


@pytest.fixture
def keys() -> DataKeyRing:
    return make_data_keys()


def test_encrypted_segments_load_and_nothing_readable_reaches_the_disk(tmp_path, keys):
    data = tmp_path / "data"
    data.mkdir()
    segment = encrypted_segment(tmp_path / "seg-000000000001.ndjson", keys, 50)
    assert MARKER.encode() not in segment.read_bytes()
    with DuckDBStore.in_data_dir(data, data_keys=keys) as store:
        assert store.load_segment(segment).inserted == 50
        assert store.write_rows(marker_rows(3)).duplicates == 0
        assert store.count_events() == 53
        assert {e.target for e in store.read_events()} == {MARKER}
        assert list(data.iterdir()) != []
        assert MARKER.encode() not in all_bytes(data)  # the WAL included, while open
    assert MARKER.encode() not in all_bytes(data)
    assert is_encrypted_database(data / "stumble.duckdb") is True
    assert sorted(p.name for p in data.iterdir()) == ["stumble.duckdb"]


def test_encrypted_segments_with_copies_load_from_memory(tmp_path, keys):
    # Copies of stored rows, and two lines received in one millisecond: the segment is read
    # three times (keys, rows, the first of the copies), each time from memory.
    data = tmp_path / "data"
    rows = marker_rows(40)
    retry = msgspec.structs.replace(rows[3], received_at=rows[-1].received_at + 1)
    twin = msgspec.structs.replace(rows[25], skew_ms=7)
    with DuckDBStore.in_data_dir(data, data_keys=keys) as store:
        store.load_segment(encrypted_segment(tmp_path / "seg-1.ndjson", keys, 0, rows[:20]))
        second = [*rows[20:26], twin, *rows[26:], retry, rows[5]]
        result = store.load_segment(encrypted_segment(tmp_path / "seg-2.ndjson", keys, 0, second))

        assert result == LoadResult(inserted=20, duplicates=3)
        assert [e.skew_ms for e in store.read_events() if e.event_id == twin.event_id] == [
            rows[25].skew_ms
        ]
        assert MARKER.encode() not in all_bytes(data)
    assert MARKER.encode() not in all_bytes(data)


def test_the_same_rows_without_a_key_are_readable_on_disk(tmp_path):
    """The control for the test above: the marker is findable in a plaintext database."""
    data = tmp_path / "data"
    data.mkdir()
    with DuckDBStore.in_data_dir(data) as store:
        store.write_rows(marker_rows(50))
    assert MARKER.encode() in all_bytes(data)


def test_a_damaged_frame_is_a_segment_error_and_loads_nothing(tmp_path, keys):
    segment = encrypted_segment(tmp_path / "seg-000000000001.ndjson", keys, 20)
    content = bytearray(segment.read_bytes())
    content[60] ^= 1
    segment.write_bytes(bytes(content))
    with DuckDBStore(tmp_path / "db", data_keys=keys) as store:
        with pytest.raises(SegmentError, match="does not authenticate"):
            store.load_segment(segment)
        assert store.count_events() == 0
        assert not store.is_loaded(segment.name)


def test_a_wrong_key_is_one_clear_line_that_names_ids_not_keys(tmp_path, keys):
    path = tmp_path / "stumble.duckdb"
    DuckDBStore(path, data_keys=keys).close()
    wrong_text = generate_key_text()
    wrong = parse_keys(wrong_text, "/etc/stumble/keys")
    with pytest.raises(DatabaseKeyError) as caught:
        DuckDBStore(path, data_keys=wrong)
    message = str(caught.value)
    assert "\n" not in message and wrong_text not in message
    assert wrong.current.hex_id in message and "/etc/stumble/keys" in message
    with pytest.raises(DatabaseKeyError, match="is encrypted"):
        DuckDBStore(path)


def test_an_old_key_behind_the_current_one_still_opens(tmp_path, keys):
    path = tmp_path / "stumble.duckdb"
    with DuckDBStore(path, data_keys=keys) as store:
        store.write_rows(marker_rows(4))
    both = parse_keys(f"{generate_key_text()}\n{_text(keys)}", "keys")
    with DuckDBStore(path, data_keys=both) as store:
        assert store.count_events() == 4


def test_a_plaintext_database_with_a_key_says_how_to_encrypt_it(tmp_path, keys):
    path = tmp_path / "stumble.duckdb"
    DuckDBStore(path).close()
    with pytest.raises(DatabaseKeyError, match="rotate-data-key"):
        DuckDBStore(path, data_keys=keys)


@pytest.mark.parametrize("start", ["plaintext", "encrypted"])
def test_rekey_copies_everything_under_the_current_key(tmp_path, keys, start):
    path = tmp_path / "stumble.duckdb"
    first = keys if start == "encrypted" else None
    segment = write_segment(tmp_path / "seg-000000000007.ndjson", marker_rows(30))
    day = dt.date(2024, 6, 1)
    count = IngestCount(day, "production", "x", "rejected", "r", "$.a", 2)
    with DuckDBStore(path, data_keys=first) as store:
        store.load_segment(segment)
        store.add_ingest_counts([count])
    new = parse_keys(f"{generate_key_text()}\n{_text(keys)}", "keys")
    assert rekey_database(path, new) is True
    assert rekey_database(path, new) is False  # already under the current key
    only_new = DataKeyRing((new.current,), "new key only")
    with DuckDBStore(path, data_keys=only_new) as store:
        assert store.count_events() == 30
        assert store.load_segment(segment).already_loaded  # loaded_segments came along
        store.add_ingest_counts([count])  # the upsert needs the primary key to have survived
        assert [c.count for c in store.ingest_counts(day, day)] == [4]
    with pytest.raises(DatabaseKeyError):
        DuckDBStore(
            path, data_keys=keys if start == "encrypted" else parse_keys(generate_key_text(), "k")
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "seg-000000000007.ndjson",
        "stumble.duckdb",
    ]


def test_without_httpfs_an_encrypted_store_refuses_to_open(tmp_path, keys, monkeypatch):
    monkeypatch.setattr(duckdb_encryption, "httpfs_extension_path", lambda version=None: None)
    probe = duckdb.connect()
    try:
        probe.execute("LOAD httpfs")
    except duckdb.Error:
        pass
    else:
        pytest.skip("httpfs is installed in DuckDB's own extension directory here")
    finally:
        probe.close()
    with pytest.raises(DatabaseKeyError, match="httpfs"):
        DuckDBStore(tmp_path / "stumble.duckdb", data_keys=keys)
    assert not (tmp_path / "stumble.duckdb").exists()


def _text(keys: DataKeyRing) -> str:
    import base64

    return base64.b64encode(keys.current.secret).decode()
