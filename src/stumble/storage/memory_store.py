"""A pure-Python ``EventStore`` double for unit tests of the collector and the loader.

It keeps rows in memory with the same semantics as the SQL backends — segment names recorded
with their rows, deduplication of copies (same ``event_id`` and ``client_ts``) over the same
receive-time window (first copy by ``received_at`` wins, ties to the earlier line), UUID
canonicalisation, the same range and JSON checks as the column types, retention by server
receive time, additive ingest counters — and the same contract suite runs against it. It has
no SQL engine, so ``query()`` refuses.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Final

import msgspec

from stumble.events import StoredEvent
from stumble.storage.base import (
    DEFAULT_DEDUPE_WINDOW_MS,
    EventStore,
    IngestCount,
    LoadResult,
    QueryResult,
    RawEventQuery,
    RollupDay,
    RollupStatement,
    SegmentError,
    StorageError,
    sum_ingest_counts,
    utc_day,
)
from stumble.storage.dialect import EVENT_COLUMNS, ColumnType
from stumble.storage.migrations import LATEST_VERSION

# The integer ranges the SQL column types enforce (SMALLINT, INTEGER).
_INTEGER_BOUNDS: Final = {
    ColumnType.INT16: (-(2**15), 2**15 - 1),
    ColumnType.INT32: (-(2**31), 2**31 - 1),
}
_BOUNDED_FIELDS: Final = tuple(
    (column.name, _INTEGER_BOUNDS[column.type])
    for column in EVENT_COLUMNS
    if column.type in _INTEGER_BOUNDS
)

_row_decoder: Final = msgspec.json.Decoder(StoredEvent)


@dataclass(frozen=True, slots=True)
class _LoadedSegment:
    loaded_at_ms: int
    rows: int
    duplicates: int


class MemoryStore(EventStore):
    """``EventStore`` held in Python lists and dicts; thread-safe behind one lock."""

    dialect = "memory"

    def __init__(self, *, dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS) -> None:
        self.dedupe_window_ms = dedupe_window_ms
        self._lock = threading.Lock()
        self._rows: list[StoredEvent] = []
        self._received_by_key: dict[tuple[str, int], list[int]] = {}
        self._segments: dict[str, _LoadedSegment] = {}
        self._counts: dict[tuple[date, str, str, str, str, str], IngestCount] = {}
        self._dirty: set[tuple[str, date]] = set()
        self._sealed: set[tuple[str, date]] = set()
        self._closed = False

    def migrate(self) -> int:
        self._require_open()
        return LATEST_VERSION

    # --- loading ------------------------------------------------------------------------------

    def load_segment(self, path: Path) -> LoadResult:
        name = path.name
        with self._lock:
            self._require_open()
            if name in self._segments:
                return LoadResult(already_loaded=True)
            rows = _decode_segment(path)
            result = self._insert(rows)
            self._segments[name] = _LoadedSegment(
                loaded_at_ms=_now_ms(), rows=result.inserted, duplicates=result.duplicates
            )
            return result

    def write_rows(self, rows: Sequence[StoredEvent]) -> LoadResult:
        checked = [
            _checked_row(row, "write_rows batch", index) for index, row in enumerate(rows, 1)
        ]
        with self._lock:
            self._require_open()
            return self._insert(checked)

    def is_loaded(self, segment_name: str) -> bool:
        with self._lock:
            self._require_open()
            return segment_name in self._segments

    def _insert(self, rows: Sequence[StoredEvent]) -> LoadResult:
        if not rows:
            return LoadResult()
        window_start = min(row.received_at for row in rows) - self.dedupe_window_ms
        fresh = [
            row
            for row in _first_copies(rows)
            if not any(r >= window_start for r in self._received_by_key.get(_copy_key(row), ()))
        ]
        self._rows.extend(fresh)
        self._dirty.update((row.environment, utc_day(row.ts)) for row in fresh)
        for row in fresh:
            self._received_by_key.setdefault(_copy_key(row), []).append(row.received_at)
        return LoadResult(inserted=len(fresh), duplicates=len(rows) - len(fresh))

    # --- reading ------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        raise NotImplementedError("analytics needs a SQL backend; use DuckDBStore(':memory:')")

    def read_events(
        self, environment: str | None = None, session_id: str | None = None
    ) -> list[StoredEvent]:
        with self._lock:
            self._require_open()
            selected = [
                msgspec.structs.replace(row)
                for row in self._rows
                if environment in (None, row.environment) and session_id in (None, row.session_id)
            ]
        return sorted(selected, key=lambda row: (row.ts, row.event_id))

    def read_raw(self, query: RawEventQuery) -> list[StoredEvent]:
        with self._lock:
            self._require_open()
            selected = [msgspec.structs.replace(row) for row in self._rows if _matches(row, query)]
        selected.sort(key=_position, reverse=query.newest_first)
        return selected[: query.limit]

    def environments(self) -> list[str]:
        with self._lock:
            self._require_open()
            return sorted({row.environment for row in self._rows})

    def count_events(self, environment: str | None = None) -> int:
        with self._lock:
            self._require_open()
            return sum(1 for row in self._rows if environment in (None, row.environment))

    # --- retention and quarantine counters ----------------------------------------------------

    def delete_expired(self, environment: str, received_before_ms: int) -> int:
        with self._lock:
            self._require_open()
            kept = [
                row
                for row in self._rows
                if row.environment != environment or row.received_at >= received_before_ms
            ]
            deleted = len(self._rows) - len(kept)
            self._rows = kept
            self._received_by_key = {}
            for row in kept:
                self._received_by_key.setdefault(_copy_key(row), []).append(row.received_at)
            return deleted

    # --- rollups: days are tracked; building them needs SQL, which this double lacks ----------

    def dirty_rollup_days(self) -> list[tuple[str, date]]:
        with self._lock:
            self._require_open()
            return sorted(self._dirty)

    def replace_rollup_day(
        self,
        environment: str,
        day: date,
        statements: Sequence[RollupStatement],
        plan_fingerprint: str,
    ) -> int | None:
        raise NotImplementedError("rollups need a SQL backend; use DuckDBStore(':memory:')")

    def seal_rollup_days(self, environment: str, received_before_ms: int) -> list[date]:
        with self._lock:
            self._require_open()
            days = {
                utc_day(row.ts)
                for row in self._rows
                if row.environment == environment and row.received_at < received_before_ms
            }
            self._sealed.update((environment, day) for day in days)
            return sorted(days)

    def rollup_months_due(self, current_month: date) -> list[tuple[str, date]]:
        return []  # no daily cells here, so no month is ever built from them

    def replace_rollup_month(self, environment: str, month: date) -> int:
        raise NotImplementedError("rollups need a SQL backend; use DuckDBStore(':memory:')")

    def delete_rollups_before(self, day: date) -> int:
        with self._lock:
            self._require_open()
            self._dirty = {key for key in self._dirty if key[1] >= day}
            self._sealed = {key for key in self._sealed if key[1] >= day}
            return 0

    def rollup_days(self, environment: str | None = None) -> list[RollupDay]:
        with self._lock:
            self._require_open()
            keys = sorted(
                key for key in self._dirty | self._sealed if environment in (None, key[0])
            )
            return [
                RollupDay(
                    environment=env,
                    day=day,
                    built_at_ms=None,
                    plan_fingerprint=None,
                    cells=0,
                    sealed=(env, day) in self._sealed,
                    dirty=(env, day) in self._dirty,
                )
                for env, day in keys
            ]

    def add_ingest_counts(self, rows: Sequence[IngestCount]) -> None:
        merged = sum_ingest_counts(rows)
        with self._lock:
            self._require_open()
            for row in merged:
                previous = self._counts.get(row.key)
                self._counts[row.key] = (
                    row if previous is None else replace(row, count=previous.count + row.count)
                )

    def delete_ingest_counts_before(self, day: date) -> int:
        with self._lock:
            self._require_open()
            expired = [key for key, row in self._counts.items() if row.day < day]
            for key in expired:
                del self._counts[key]
            return len(expired)

    def ingest_counts(
        self, since_day: date, until_day: date, environment: str | None = None
    ) -> list[IngestCount]:
        with self._lock:
            self._require_open()
            selected = [
                row
                for row in self._counts.values()
                if since_day <= row.day <= until_day and environment in (None, row.environment)
            ]
        return sorted(selected, key=lambda row: row.key)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._rows = []
            self._received_by_key = {}

    def _require_open(self) -> None:
        if self._closed:
            raise StorageError("store is closed")


# --- helpers ----------------------------------------------------------------------------------


def _decode_segment(path: Path) -> list[StoredEvent]:
    rows = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = _row_decoder.decode(line)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise SegmentError(
                f"{path.name} is malformed near line {number} ({type(exc).__name__})"
            ) from None
        rows.append(_checked_row(row, path.name, number))
    return rows


def _checked_row(row: StoredEvent, label: str, number: int) -> StoredEvent:
    """Apply what the SQL column types enforce: canonical UUIDs, integer ranges, valid JSON."""
    try:
        event_id = str(uuid.UUID(row.event_id))
        if row.params is not None:
            msgspec.json.decode(row.params)
    except (ValueError, msgspec.DecodeError) as exc:
        raise SegmentError(
            f"{label} is malformed near line {number} ({type(exc).__name__})"
        ) from None
    if not _integers_in_range(row):
        raise SegmentError(f"{label} is malformed near line {number} (integer out of range)")
    return msgspec.structs.replace(row, event_id=event_id)


def _integers_in_range(row: StoredEvent) -> bool:
    for name, (low, high) in _BOUNDED_FIELDS:
        value = getattr(row, name)
        if value is not None and not low <= value <= high:
            return False
    return True


def _matches(row: StoredEvent, query: RawEventQuery) -> bool:
    wanted = (
        (query.environment, row.environment),
        (query.event_name, row.event_name),
        (query.screen_id, row.screen_id),
        (query.session_id, row.session_id),
    )
    return (
        row.ts >= query.since_ms
        and row.received_at >= query.received_since_ms
        and (query.until_ms is None or row.ts < query.until_ms)
        and all(value in (None, actual) for value, actual in wanted)
        and _beyond_cursor(row, query)
    )


def _beyond_cursor(row: StoredEvent, query: RawEventQuery) -> bool:
    """Whether the row comes after ``query.after`` in the query's order."""
    if query.after is None:
        return True
    after = (query.after.ts, query.after.event_id)
    return _position(row) < after if query.newest_first else _position(row) > after


def _position(row: StoredEvent) -> tuple[int, str]:
    return row.ts, row.event_id


def _copy_key(row: StoredEvent) -> tuple[str, int]:
    """What copies of one event share: the client's resend keeps its id and its own time."""
    return row.event_id, row.client_ts


def _first_copies(rows: Iterable[StoredEvent]) -> list[StoredEvent]:
    """One row per copy key: the earliest received, ties to the earlier line."""
    first: dict[tuple[str, int], StoredEvent] = {}
    for row in rows:
        kept = first.get(_copy_key(row))
        if kept is None or row.received_at < kept.received_at:
            first[_copy_key(row)] = row
    return list(first.values())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
