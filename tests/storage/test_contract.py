"""The ``EventStore`` contract, written once and run against every backend (see ``store``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import msgspec
import pytest
from tests.storage.conftest import (
    BASE_MS,
    DAY_MS,
    KINDS,
    every_field_event,
    make_event,
    new_event_id,
    session_rows,
    write_segment,
)

from stumble.events import StoredEvent
from stumble.storage import (
    DEFAULT_DEDUPE_WINDOW_MS,
    LATEST_VERSION,
    EventPosition,
    EventStore,
    IngestCount,
    LoadResult,
    RawEventQuery,
    SegmentError,
    StorageError,
)

# --- loading segments exactly once ------------------------------------------------------------


def test_load_segment_inserts_rows_and_records_its_name(store: EventStore, tmp_path: Path) -> None:
    segment = write_segment(tmp_path / "seg-000001.ndjson", session_rows(25, session_id="s_a"))
    assert not store.is_loaded("seg-000001.ndjson")

    assert store.load_segment(segment) == LoadResult(inserted=25, duplicates=0)

    assert store.is_loaded("seg-000001.ndjson")
    assert store.count_events() == 25


def test_reloading_a_segment_is_skipped(store: EventStore, tmp_path: Path) -> None:
    segment = write_segment(tmp_path / "seg-000001.ndjson", session_rows(10, session_id="s_a"))
    store.load_segment(segment)
    # Even new content under the same name is not loaded: the name is the unit of exactly-once.
    write_segment(segment, session_rows(7, session_id="s_b"))

    assert store.load_segment(segment) == LoadResult(already_loaded=True)
    assert store.count_events() == 10


def test_same_event_id_in_two_segments_is_stored_once(store: EventStore, tmp_path: Path) -> None:
    first = session_rows(5, session_id="s_a")
    retry = msgspec.structs.replace(first[2], received_at=BASE_MS + 60_000, skew_ms=1)
    second = [retry, *session_rows(3, session_id="s_b", start_ms=BASE_MS + 60_000)]
    store.load_segment(write_segment(tmp_path / "seg-1.ndjson", first))

    assert store.load_segment(write_segment(tmp_path / "seg-2.ndjson", second)) == LoadResult(
        inserted=3, duplicates=1
    )
    assert store.count_events() == 8
    [kept] = [row for row in store.read_events() if row.event_id == first[2].event_id]
    assert kept.received_at == first[2].received_at


def test_duplicates_within_a_segment_keep_the_first_received(
    store: EventStore, tmp_path: Path
) -> None:
    event_id = new_event_id()
    later = make_event("action", event_id=event_id, received_at=BASE_MS + 900, skew_ms=9)
    earlier = make_event("action", event_id=event_id, received_at=BASE_MS + 100, skew_ms=1)
    other = make_event("action")
    segment = write_segment(tmp_path / "seg-1.ndjson", [later, other, earlier, later])

    assert store.load_segment(segment) == LoadResult(inserted=2, duplicates=2)
    [kept] = [row for row in store.read_events() if row.event_id == event_id]
    assert (kept.received_at, kept.skew_ms) == (BASE_MS + 100, 1)


def test_duplicates_received_together_keep_the_earlier_line(
    store: EventStore, tmp_path: Path
) -> None:
    event_id = new_event_id()
    copies = [make_event("action", event_id=event_id, skew_ms=skew) for skew in (11, 22, 33)]

    assert store.load_segment(write_segment(tmp_path / "seg-1.ndjson", copies)).duplicates == 2
    assert [row.skew_ms for row in store.read_events()] == [11]


def test_event_ids_are_compared_as_uuids(store: EventStore) -> None:
    event_id = new_event_id()
    upper = make_event("action", event_id=event_id.upper(), received_at=BASE_MS + 5)
    store.write_rows([make_event("action", event_id=event_id)])

    assert store.write_rows([upper]) == LoadResult(inserted=0, duplicates=1)
    assert [row.event_id for row in store.read_events()] == [event_id]


def test_a_copy_older_than_the_dedupe_window_is_not_a_duplicate(store: EventStore) -> None:
    # The documented bound of window deduplication: retries stop long before it.
    first = make_event("action")
    much_later = msgspec.structs.replace(
        first, received_at=first.received_at + DEFAULT_DEDUPE_WINDOW_MS + 1
    )
    store.write_rows([first])

    assert store.write_rows([much_later]) == LoadResult(inserted=1, duplicates=0)
    assert store.write_rows([much_later]) == LoadResult(inserted=0, duplicates=1)


def test_write_rows_deduplicates_like_segments(store: EventStore) -> None:
    rows = session_rows(4, session_id="s_a")

    assert store.write_rows([*rows, rows[0]]) == LoadResult(inserted=4, duplicates=1)
    assert store.write_rows(rows[1:]) == LoadResult(inserted=0, duplicates=3)
    assert store.write_rows([]) == LoadResult()
    assert store.count_events() == 4


def test_an_empty_segment_is_recorded(store: EventStore, tmp_path: Path) -> None:
    segment = write_segment(tmp_path / "seg-empty.ndjson", [])

    assert store.load_segment(segment) == LoadResult()
    assert store.is_loaded("seg-empty.ndjson")


def test_a_malformed_segment_loads_nothing_and_is_not_recorded(
    store: EventStore, tmp_path: Path
) -> None:
    segment = tmp_path / "seg-1.ndjson"
    good = msgspec.json.Encoder().encode_lines(session_rows(3, session_id="s_a"))
    segment.write_bytes(good + b'{"event_id": "')  # a torn last line

    with pytest.raises(SegmentError, match=r"seg-1\.ndjson"):
        store.load_segment(segment)
    assert store.count_events() == 0
    assert not store.is_loaded("seg-1.ndjson")

    segment.write_bytes(good)  # repaired, e.g. by spool recovery
    assert store.load_segment(segment).inserted == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("step", "secret_value_42"),
        ("event_id", "secret_value_42"),
        ("params", "{secret_value_42"),
        ("http_status", 70000),
    ],
)
def test_segment_errors_never_quote_the_value(
    store: EventStore, tmp_path: Path, field: str, value: object
) -> None:
    line = msgspec.json.encode({**msgspec.to_builtins(make_event("error")), field: value})
    segment = tmp_path / "seg-bad.ndjson"
    segment.write_bytes(line + b"\n")

    with pytest.raises(SegmentError) as raised:
        store.load_segment(segment)
    assert "secret_value" not in str(raised.value)
    assert "70000" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert store.count_events() == 0


def test_a_row_missing_a_required_field_is_rejected(store: EventStore, tmp_path: Path) -> None:
    row = msgspec.to_builtins(make_event("action"))
    del row["session_id"]
    segment = tmp_path / "seg-1.ndjson"
    segment.write_bytes(msgspec.json.encode(row) + b"\n")

    with pytest.raises(SegmentError):
        store.load_segment(segment)


def test_a_missing_segment_file_raises(store: EventStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.load_segment(tmp_path / "seg-gone.ndjson")


# --- what is stored ----------------------------------------------------------------------------


def test_rows_round_trip_every_field(store: EventStore) -> None:
    rows = [
        make_event(kind, received_at=BASE_MS + i, ts=BASE_MS + i * 10, session_id="s_trip")
        for i, kind in enumerate(KINDS)
    ]
    rows.append(every_field_event())

    store.write_rows(rows)

    assert store.read_events() == sorted(rows, key=lambda row: (row.ts, row.event_id))


def test_read_events_filters_by_environment_and_session_in_time_order(
    store: EventStore,
) -> None:
    late = make_event("action", session_id="s_a", ts=BASE_MS + 500)
    early = make_event("screen_view", session_id="s_a", ts=BASE_MS + 100)
    other_session = make_event("action", session_id="s_b")
    staging = make_event("action", session_id="s_a", environment="staging")
    store.write_rows([late, other_session, early, staging])

    assert store.read_events("production", "s_a") == [early, late]
    assert store.read_events(environment="staging") == [staging]
    assert len(store.read_events(session_id="s_a")) == 3


def test_environments_are_those_with_stored_events(store: EventStore) -> None:
    assert store.environments() == []
    store.write_rows([make_event(environment="staging"), make_event(), make_event()])
    assert store.environments() == ["production", "staging"]


def test_count_events_per_environment(store: EventStore) -> None:
    store.write_rows(
        session_rows(3, session_id="s_a") + session_rows(2, session_id="s_b", environment="staging")
    )

    assert (store.count_events(), store.count_events("production")) == (5, 3)
    assert (store.count_events("staging"), store.count_events("nowhere")) == (2, 0)


# --- raw reads: one page at a time ---------------------------------------------------------------


def _everything(**fields: object) -> RawEventQuery:
    return RawEventQuery(since_ms=0, received_since_ms=0, **fields)  # type: ignore[arg-type]


def _time_order(rows: list[StoredEvent]) -> list[StoredEvent]:
    return sorted(rows, key=lambda row: (row.ts, row.event_id))


def test_read_raw_is_newest_first_unless_asked_otherwise(store: EventStore) -> None:
    rows = [
        make_event(kind, ts=BASE_MS + i * 10, received_at=BASE_MS) for i, kind in enumerate(KINDS)
    ]
    rows.append(every_field_event())
    store.write_rows(rows)

    assert store.read_raw(_everything(limit=100)) == _time_order(rows)[::-1]
    assert store.read_raw(_everything(newest_first=False)) == _time_order(rows)
    assert store.read_raw(_everything(limit=3)) == _time_order(rows)[::-1][:3]


def test_read_raw_filters_by_environment_name_screen_and_session(store: EventStore) -> None:
    wanted = make_event("action", session_id="s_a", screen_id="search", event_name="go")
    store.write_rows(
        [
            wanted,
            make_event("action", session_id="s_a", screen_id="search", event_name="other"),
            make_event("action", session_id="s_a", screen_id="home", event_name="go"),
            make_event("action", session_id="s_b", screen_id="search", event_name="go"),
            make_event(
                "action", session_id="s_a", screen_id="search", event_name="go", environment="dev"
            ),
        ]
    )
    query = _everything(
        environment="production", event_name="go", screen_id="search", session_id="s_a"
    )

    assert store.read_raw(query) == [wanted]
    assert len(store.read_raw(_everything(session_id="s_a"))) == 4
    assert store.read_raw(_everything(session_id="s_nobody")) == []


def test_read_raw_bounds_event_time_and_receive_time(store: EventStore) -> None:
    since = BASE_MS + DAY_MS
    inside = make_event("action", ts=since, received_at=since)
    # The client's clock says "recent", but the server received it before the window: out.
    received_early = make_event("action", ts=since + 5, received_at=since - 1)
    # Received recently, dated before the window: out too.
    dated_early = make_event("action", ts=since - 1, received_at=since + 5)
    at_the_end = make_event("action", ts=since + 100, received_at=since + 100)
    store.write_rows([inside, received_early, dated_early, at_the_end])

    query = RawEventQuery(since_ms=since, received_since_ms=since, until_ms=since + 100)
    assert store.read_raw(query) == [inside]  # until is exclusive
    open_ended = RawEventQuery(since_ms=since, received_since_ms=since)
    assert store.read_raw(open_ended) == [at_the_end, inside]


@pytest.mark.parametrize("newest_first", [True, False])
def test_read_raw_pages_return_every_row_once(store: EventStore, newest_first: bool) -> None:
    # Ties on ts are the hard part: the cursor must break them by event_id.
    rows = [make_event("action", ts=BASE_MS + i // 3) for i in range(23)]
    store.write_rows(rows)
    seen: list[StoredEvent] = []
    after: EventPosition | None = None
    while True:
        page = store.read_raw(_everything(limit=4, after=after, newest_first=newest_first))
        seen.extend(page)
        if len(page) < 4:
            break
        after = EventPosition(page[-1].ts, page[-1].event_id)

    expected = _time_order(rows)
    assert seen == (expected[::-1] if newest_first else expected)


def test_read_raw_refuses_an_empty_page() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        _everything(limit=0)


# --- retention -----------------------------------------------------------------------------------


def test_retention_deletes_by_receive_time_in_one_environment(store: EventStore) -> None:
    cutoff = BASE_MS + 10 * DAY_MS
    old = make_event("action", received_at=cutoff - 1)
    # The client clock said "long ago", the server received it after the cut-off: kept.
    skewed = make_event("action", received_at=cutoff, ts=BASE_MS, client_ts=BASE_MS)
    recent = make_event("action", received_at=cutoff + DAY_MS)
    old_staging = make_event("action", received_at=cutoff - DAY_MS, environment="staging")
    store.write_rows([old, skewed, recent, old_staging])

    assert store.delete_expired("production", cutoff) == 1

    remaining = {row.event_id for row in store.read_events()}
    assert remaining == {skewed.event_id, recent.event_id, old_staging.event_id}
    assert store.delete_expired("production", cutoff) == 0


# --- quarantine counters ---------------------------------------------------------------------------


def _count(day: int, reason: str, count: int, **fields: str) -> IngestCount:
    values = {"environment": "production", "event_name": "form_submit", "field_path": ""}
    values.update(fields)
    return IngestCount(
        day=date(2024, 6, day),
        environment=values["environment"],
        event_name=values["event_name"],
        outcome="redacted" if reason.startswith("pii") else "rejected",
        reason=reason,
        field_path=values["field_path"],
        count=count,
    )


def test_ingest_counts_add_up(store: EventStore) -> None:
    store.add_ingest_counts(
        [
            _count(1, "pii_iin", 2, field_path="form_id"),
            _count(1, "pii_iin", 3, field_path="form_id"),
            _count(1, "unknown_event", 1, event_name=""),
        ]
    )
    store.add_ingest_counts([_count(1, "pii_iin", 5, field_path="form_id")])

    assert store.ingest_counts(date(2024, 6, 1), date(2024, 6, 1)) == [
        _count(1, "unknown_event", 1, event_name=""),  # sorted by key: "" first
        _count(1, "pii_iin", 10, field_path="form_id"),
    ]


def test_ingest_counts_filter_by_inclusive_days_and_environment(store: EventStore) -> None:
    rows = [
        _count(1, "too_long", 1),
        _count(2, "too_long", 2),
        _count(3, "too_long", 3),
        _count(2, "too_long", 4, environment="staging"),
    ]
    store.add_ingest_counts(rows)

    assert store.ingest_counts(date(2024, 6, 2), date(2024, 6, 3)) == [rows[1], rows[3], rows[2]]
    assert store.ingest_counts(date(2024, 6, 1), date(2024, 6, 30), "staging") == [rows[3]]
    assert store.ingest_counts(date(2024, 7, 1), date(2024, 7, 31)) == []


def test_ingest_counts_before_a_day_are_deleted_and_counted(store: EventStore) -> None:
    rows = [_count(1, "too_long", 1), _count(2, "too_long", 2), _count(2, "pii_iin", 3)]
    store.add_ingest_counts([*rows, _count(3, "too_long", 4, environment="staging")])

    assert store.delete_ingest_counts_before(date(2024, 6, 3)) == 3
    assert store.delete_ingest_counts_before(date(2024, 6, 3)) == 0
    assert store.ingest_counts(date(2024, 6, 1), date(2024, 6, 30)) == [
        _count(3, "too_long", 4, environment="staging")
    ]


def test_ingest_counts_refuse_bad_rows(store: EventStore) -> None:
    with pytest.raises(ValueError, match="grow"):
        store.add_ingest_counts([_count(1, "too_long", -1)])
    bogus = IngestCount(date(2024, 6, 1), "production", "x", "kept", "r")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outcome"):
        store.add_ingest_counts([bogus])
    assert store.ingest_counts(date(2024, 6, 1), date(2024, 6, 30)) == []


# --- lifecycle -------------------------------------------------------------------------------------


def test_migrate_is_idempotent(store: EventStore) -> None:
    store.write_rows([make_event("action")])

    assert store.migrate() == LATEST_VERSION
    assert store.migrate() == LATEST_VERSION
    assert store.count_events() == 1


def test_a_closed_store_refuses_work(store: EventStore) -> None:
    store.close()

    with pytest.raises(StorageError):
        store.count_events()
    with pytest.raises(StorageError):
        store.write_rows([make_event("action")])
    store.close()  # closing twice is harmless
