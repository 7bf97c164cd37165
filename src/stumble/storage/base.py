"""The ``EventStore`` contract every backend implements, its value types and its errors.

Errors, all raised by store methods (nothing else escapes except ``OSError`` for a missing file)::

    StorageError             base class: catch this to handle any storage failure
     ├── SegmentError        a segment could not be read or converted; nothing of it was loaded
     ├── SchemaDriftError    the database does not match this version of stumble
     └── ReadOnlyQueryError  ``query()`` was given a statement other than a SELECT

Messages name segments, columns and reason codes only, never a stored value.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

from stumble.events import StoredEvent

DEFAULT_DEDUPE_WINDOW_MS: Final = 7 * 24 * 3600 * 1000
"""How far back (by receive time) a stored ``event_id`` still makes a new copy a duplicate."""

IngestOutcome = Literal["rejected", "redacted"]
INGEST_OUTCOMES: tuple[IngestOutcome, ...] = ("rejected", "redacted")


class StorageError(Exception):
    """Any failure of a storage backend."""


class DatabaseInUseError(StorageError):
    """Another process holds the database file (an embedded database allows one process).

    ``holder`` names that process when the backend says (``"PID 1234"``)."""

    def __init__(self, path: str, holder: str | None) -> None:
        super().__init__(f"the database {path} is locked by {holder or 'another process'}")
        self.path = path
        self.holder = holder


class SegmentError(StorageError):
    """A segment file is malformed (a torn or mistyped line); the load was rolled back."""


class SchemaDriftError(StorageError):
    """The stored schema differs from the one this code expects (a missing or newer migration)."""


class ReadOnlyQueryError(StorageError):
    """``EventStore.query`` only runs SELECT statements."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load did: rows inserted, rows dropped as duplicates, or nothing (already loaded)."""

    inserted: int = 0
    duplicates: int = 0
    already_loaded: bool = False


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names and rows of a read-only query."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True, slots=True)
class EventPosition:
    """A row's place in time order: (``ts``, ``event_id``), unique per stored row, so a page of
    raw events can resume exactly after its last row (keyset pagination)."""

    ts: int
    event_id: str


@dataclass(frozen=True, slots=True)
class RawEventQuery:
    """Which stored rows ``read_raw`` returns, in time order, one page at a time.

    ``since_ms``/``until_ms`` bound the skew-corrected event time ``ts`` (``[since, until)``);
    ``received_since_ms`` bounds the server's receive time. The caller (``stumble.raw_events``)
    sets both lower bounds to the raw window, so an event whose client clock claims "recent"
    but that arrived long ago stays out, and so does one that arrived recently dated long ago.
    ``None`` filters mean any value. ``after`` continues from a previous page's last row.
    """

    since_ms: int
    received_since_ms: int
    until_ms: int | None = None
    environment: str | None = None
    event_name: str | None = None
    screen_id: str | None = None
    session_id: str | None = None
    after: EventPosition | None = None
    limit: int = 100
    newest_first: bool = True

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a raw event query returns at least one row per page")


@dataclass(frozen=True, slots=True)
class IngestCount:
    """One quarantine counter: how many events (or fields) were rejected or redacted, and why.

    Only reason codes and field paths are kept, never the payload: the payload is exactly what
    may hold personal data. ``field_path`` is ``""`` when the reason concerns the whole event,
    and ``event_name`` is ``""`` when the event could not be decoded far enough to know it.
    """

    day: date
    environment: str
    event_name: str
    outcome: IngestOutcome
    reason: str
    field_path: str = ""
    count: int = 1

    @property
    def key(self) -> tuple[date, str, str, str, str, str]:
        """The identity under which counts add up."""
        return (
            self.day,
            self.environment,
            self.event_name,
            self.outcome,
            self.reason,
            self.field_path,
        )


@dataclass(frozen=True, slots=True)
class RollupDay:
    """The rollup state of one (environment, UTC day): built (when, under which plan, how
    many cells), sealed (raw rows of the day were deleted by retention, so it is never
    rebuilt from what is left) and dirty (a load touched the day since it was built)."""

    environment: str
    day: date
    built_at_ms: int | None
    plan_fingerprint: str | None
    cells: int
    sealed: bool
    dirty: bool


@dataclass(frozen=True, slots=True)
class SpaceReclaimed:
    """What ``EventStore.reclaim_space`` did: checkpointed (freed blocks of deleted rows),
    compacted (copied into a new file, which is the only way the file shrinks after retention),
    and the share of the file that was free before compacting."""

    checkpointed: bool = False
    compacted: bool = False
    free_share: float = 0.0


@dataclass(frozen=True, slots=True)
class RollupStatement:
    """One SELECT yielding ``rollups`` rows (every column, in table order) and its params."""

    text: str
    params: tuple[object, ...] = ()


class EventStore(abc.ABC):
    """Where guarded events live. One writer thread, any number of reader threads.

    Loading is exactly-once: a segment's name is recorded in the same transaction as its rows,
    so reloading it (after a crash between commit and deleting the file) is a no-op; and a
    client's retry that reaches storage twice is stored once: a copy is a row with the same
    ``event_id`` and ``client_ts`` (the SDK resends a queued event as it was made) received
    within ``dedupe_window_ms`` of a stored one (within a segment, the copy received first is
    kept, ties to the earlier line).
    """

    dialect: str
    """The SQL dialect ``query()`` speaks, for the analytics compiler (``"duckdb"``, …)."""
    write_count: int = 0
    """Grows with every committed write: what a reader may cache keys on (rollup coverage)."""

    @abc.abstractmethod
    def migrate(self) -> int:
        """Apply pending migrations in order; idempotent. Returns the schema version."""

    @abc.abstractmethod
    def load_segment(self, path: Path) -> LoadResult:
        """Load an NDJSON segment of ``StoredEvent`` lines, once per segment file name."""

    @abc.abstractmethod
    def write_rows(self, rows: Sequence[StoredEvent]) -> LoadResult:
        """Insert rows directly (simulator bulk mode, tests), with the same deduplication."""

    @abc.abstractmethod
    def is_loaded(self, segment_name: str) -> bool:
        """Whether a segment with this file name has been loaded."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        """Run one read-only SELECT in this store's dialect."""

    @abc.abstractmethod
    def read_events(
        self, environment: str | None = None, session_id: str | None = None
    ) -> list[StoredEvent]:
        """Stored rows back as ``StoredEvent``, in time order (raw-event views and tests)."""

    @abc.abstractmethod
    def read_raw(self, query: RawEventQuery) -> list[StoredEvent]:
        """One page of stored rows matching ``query``, ordered by (``ts``, ``event_id``),
        newest first unless ``query.newest_first`` is false, strictly after ``query.after``
        in that order, at most ``query.limit`` rows."""

    @abc.abstractmethod
    def add_ingest_counts(self, rows: Sequence[IngestCount]) -> None:
        """Add counts to the quarantine counters, creating the ones that do not exist."""

    @abc.abstractmethod
    def ingest_counts(
        self, since_day: date, until_day: date, environment: str | None = None
    ) -> list[IngestCount]:
        """Counters with ``since_day <= day <= until_day``, sorted by their key."""

    @abc.abstractmethod
    def delete_expired(self, environment: str, received_before_ms: int) -> int:
        """Delete one environment's events received (server time) before the cut-off."""

    @abc.abstractmethod
    def delete_ingest_counts_before(self, day: date) -> int:
        """Delete the quarantine counters of days before ``day``; returns how many."""

    def storage_bytes(self) -> int | None:
        """Bytes the store takes on disk (file and write-ahead log); None when not a file."""
        return None

    def reclaim_space(self, compact_above: float, min_free_bytes: int = 0) -> SpaceReclaimed:
        """Make the space of deleted rows reusable and, when more than ``compact_above`` (a
        share, 0 to 1) of the file and at least ``min_free_bytes`` are free, give it back to
        the file system. A backend with nothing to reclaim does nothing."""
        del compact_above, min_free_bytes
        return SpaceReclaimed()

    # --- rollups (``stumble.rollups`` builds them; retention seals and deletes) ----------

    @abc.abstractmethod
    def dirty_rollup_days(self) -> list[tuple[str, date]]:
        """(environment, day) pairs a load touched since their rollups were last built."""

    @abc.abstractmethod
    def replace_rollup_day(
        self,
        environment: str,
        day: date,
        statements: Sequence[RollupStatement],
        plan_fingerprint: str,
    ) -> int | None:
        """In one transaction: drop the day's cells, insert what ``statements`` select, record
        the day as built and no longer dirty. Returns the cells written, or None (nothing
        done) when the day is sealed."""

    @abc.abstractmethod
    def seal_rollup_days(self, environment: str, received_before_ms: int) -> list[date]:
        """Mark sealed every day that holds an event of ``environment`` received before the
        cut-off (the rows retention is about to delete); returns those days."""

    @abc.abstractmethod
    def delete_rollups_before(self, day: date) -> int:
        """Delete every rollup cell (and day record) of days before ``day``; returns cells."""

    @abc.abstractmethod
    def rollup_months_due(self, current_month: date) -> list[tuple[str, date]]:
        """(environment, first day) of the months before ``current_month`` whose monthly cells
        are missing or no longer match their days, none of which is dirty."""

    @abc.abstractmethod
    def replace_rollup_month(self, environment: str, month: date) -> int:
        """In one transaction: the month's cells replaced by the sum of its daily cells, and
        the state of its days they were built from recorded. Returns the cells written."""

    def rollup_layout(self) -> RollupLayout:
        """How much of the daily cells is out of the order reads filter by."""
        return RollupLayout()

    def cluster_rollups(self) -> None:
        """Put the daily cells in the order reads filter by, and record when (by the clock
        that records when days are built). A backend whose reads gain nothing does nothing."""
        return

    @abc.abstractmethod
    def rollup_days(self, environment: str | None = None) -> list[RollupDay]:
        """The state of every day known to the rollups (built or dirty), by environment, day."""

    @abc.abstractmethod
    def environments(self) -> list[str]:
        """The environments that have stored events, sorted."""

    @abc.abstractmethod
    def count_events(self, environment: str | None = None) -> int:
        """Number of stored events, in one environment or in all."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend; the store cannot be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def utc_day(epoch_ms: int) -> date:
    """The UTC day of an epoch-milliseconds instant: the day rollups and retention count in."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).date()


@dataclass(frozen=True, slots=True)
class RollupLayout:
    """When the daily cells were last put in order, and how many were appended since."""

    clustered_at_ms: int | None = None
    cells_since: int = 0
    cells: int = 0


def month_start(day: date) -> date:
    """The first day of ``day``'s month: the key of a month's rollups."""
    return day.replace(day=1)


def month_end(month: date) -> date:
    """The last day of ``month``'s month."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def sum_ingest_counts(rows: Sequence[IngestCount]) -> list[IngestCount]:
    """Merge rows that share a key, so one upsert never touches the same counter twice."""
    totals: dict[tuple[date, str, str, str, str, str], IngestCount] = {}
    for row in rows:
        if row.outcome not in INGEST_OUTCOMES:
            raise ValueError(f"ingest count outcome must be one of {INGEST_OUTCOMES}")
        if row.count < 0:
            raise ValueError("ingest counts only ever grow")
        previous = totals.get(row.key)
        totals[row.key] = (
            row if previous is None else replace(row, count=previous.count + row.count)
        )
    return list(totals.values())
