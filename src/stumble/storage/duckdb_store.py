"""The embedded backend: one DuckDB file, ``<data>/stumble.duckdb``, or ``":memory:"``.

Loading. A segment is parsed once, columnar, by ``read_json`` with an explicit column map
(never ``executemany``), straight into ``events`` in file order: DuckDB's own parallel,
order-keeping batch insert. The same transaction then reads back the keys of the rows it
appended (row ids above the highest stored before the load), names the copies among them (a
row with the same ``event_id`` and ``client_ts`` stored inside the dedupe window, or received
earlier in the batch; ties to the earlier line), records them in ``pending_duplicates``, marks
the (environment, day) pairs of the other appended rows dirty for the rollups and records the
segment's name. A second transaction deletes the copies, by key, and empties
``pending_duplicates``. A process that stops between the two leaves the copies named; opening
the database deletes them (``_delete_pending_duplicates``), as does the next load after a
second transaction that failed. ``LoadResult.duplicates`` is the number of copies.
``write_rows`` encodes its rows to an in-memory NDJSON file with msgspec and takes the very same
path, so both entry points share every conversion and dedupe rule.

Why two transactions. DuckDB moves a transaction's appended row groups into the table as
written only if none of its rows was deleted (``LocalStorage::Flush``); one deleted row makes
the commit append the whole batch again (~280 ms per 100k rows against 5-7 ms). Until this
design the copies were therefore found *before* the insert, from a second, keys-only
``read_json`` of the segment (~65 ms per 100k rows, 13% of DuckDB's own load of the file) and
filtered out of the insert by a bitmap and a list in a session variable, with a third read for
copies received in the same millisecond. Reading the keys back from the table costs ~8 ms, the
delete ~10-15 ms. What it gives up: a read that starts in the ~15 ms between the two commits
counts the copies of that one segment (about 1% of its rows in the loader benchmark) once
more; the rollups never see that state (the loader's own thread builds them, after both).
The copies of one event share its client time (the SDK resends queued events as they were
made), so the search for stored copies reads only the stored rows of the batch's client time
range: its cost follows the rows received around the batch's own time, not the whole window
(at 2.0M rows in the window, 68 ms without that bound, 29 ms with it).

Deduplication: an anti-join over a receive-time window, not a unique index. Both were measured
on this machine (2 vCPU shared with other jobs, on-disk file, the same staging and sorted insert,
100 segments of 100k rows + 1% retries, every row inside the window):

=====================================  ==========================  ===========================
at 10M stored rows                     anti-join, 7-day window     UUID PRIMARY KEY (ART) +
                                                                   INSERT OR IGNORE
=====================================  ==========================  ===========================
load a 100k segment: empty / at 10M    0.81 s / 0.94 s             1.13 s / 2.0-3.7 s
replay a loaded segment (all dupes)    0.53 s                      2.2 s
peak RSS while loading                 0.86 GB                     1.42 GB (ART 0.45 GB)
new process: open + first load         1.3 s, 0.45 GB RSS          5.2 s, 0.94 GB RSS
database file                          468 MB                      1018 MB
retention: delete 0.9M rows            0.35 s                      8.6 s
=====================================  ==========================  ===========================

A DuckDB ART index must sit in memory once touched, grows with the table rather than with the
retry window, and makes deletes (retention) slower. The anti-join costs the rows received inside
the window (zone maps on ``received_at`` skip older row groups, and DuckDB's join filter skips
most of the rest), so its cost is bounded by the window and memory stays flat. What it gives up:
a retry that reaches storage more than ``dedupe_window_ms`` after the first copy is stored
twice. Client retries stop long before the default of seven days.

Layout. Rows are appended in arrival (file) order, unsorted, so zone maps on ``received_at``
and ``ts`` stay narrow; the file is attached with 16,384-row row groups (DuckDB's default is
122,880). Row-group size is not persisted by DuckDB, so every connection attaches the file with
it. Until issue 13 each batch was sorted by (environment, session_id, ts) so that a
``WHERE session_id = ?`` read could skip row groups; that sort of 47-column rows, after the
batch had been materialised for deduplication, was more than half of the load time. Measured
with ``benchmarks/loader.py`` (2 vCPU shared with other jobs, load average 6-12 during the
before/after runs, so the ratios, each pair measured back to back, are the figures to read;
100k-row segments, 1% retries):

====================================  =================================  ======================
stumble rows/s / reference rows/s     before: staged, sorted per batch   after: keys + filtered
                                                                         insert, arrival order
====================================  =================================  ======================
empty table (10 segments)             0.43 (paired per segment 0.47)     0.67 (paired 0.63)
at 1.5M rows (10 segments)            0.42 (paired 0.41)                 0.75 (paired 0.70)
empty table, later run (3 segments)   --                                 0.78 (paired 0.73)
at 9.9M rows, later run (3 segments)  --                                 0.60 (paired 0.63)
empty / at 4.0M rows, a third run     --                                 0.67 / 0.53 (paired
                                                                         0.63 / 0.62)
quiet machine, empty table            0.43 (116k vs 266k rows/s)         not measured quiet
====================================  =================================  ======================

``WHERE session_id = ? ORDER BY ts`` at 10.2M rows (``--session-scan``, median of 100 sessions,
warm): arrival order with 16k groups 164 ms (p90 185), the old per-batch sort 24 ms, arrival
order with 122,880-row groups 53 ms, fully sorted 6 ms. The row-group size is left at 16k here:
whether 122,880 (which brings the timeline under 100 ms) costs the reports' time-range scans is
not measured yet (issue 13's notes).

The reference is DuckDB's own ``INSERT INTO events SELECT ... FROM read_json(...)`` of the same
file with the same columns, one transaction, same row-group size. With one parse and the copies
deleted by a second transaction (``benchmarks/loader.py --prefill-rows 2000000 --rollups
--profile``, quiet machine, three runs; ratio of medians): 0.84-0.90 on an empty table and
0.81-0.89 at 2.0M rows, against 0.83 and 0.75 for the keys-first load in the same conditions.
Per 100k rows beyond the insert itself (which costs what the reference costs): naming the
copies 20-25 ms, reading the appended keys 9-14 ms, marking dirty days 5-6 ms, the row id
look-up 2-6 ms, deleting the copies 7-9 ms, the two commits and small statements ~30 ms. At
10M rows a row id filter reads every row group's deleted-row information (~17 ms per read,
twice per load) and the load is 0.73-0.82 of the reference. The history of the earlier steps
is in ``docs/decisions.md`` (45).

Encryption at rest (``data_keys``): the file is attached with DuckDB's ``ENCRYPTION_KEY`` and
spilled temp files are encrypted; encrypted spool segments are decrypted into memory and parsed
from there (``duckdb_encryption``), as are ``write_rows`` batches, so no plaintext row touches
a disk.

Threads. One writer at a time (a lock); readers each get their own cursor (``reader()``), which
DuckDB runs concurrently with the writer under MVCC.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

import duckdb
import msgspec

from stumble.encryption import (
    SPOOL,
    DamagedFrameError,
    DataKeyRing,
    FrameOpener,
    fsync_directory,
    is_encrypted,
)
from stumble.events import StoredEvent
from stumble.storage.base import (
    DEFAULT_DEDUPE_WINDOW_MS,
    DatabaseInUseError,
    EventStore,
    IngestCount,
    LoadResult,
    QueryResult,
    RawEventQuery,
    ReadOnlyQueryError,
    RollupDay,
    RollupLayout,
    RollupStatement,
    SegmentError,
    SpaceReclaimed,
    StorageError,
    month_end,
    sum_ingest_counts,
)
from stumble.storage.dialect import DUCKDB, EVENT_COLUMN_NAMES
from stumble.storage.duckdb_encryption import attach, enable_encrypted_writes, memory_file
from stumble.storage.migrations import apply_migrations, verify_events_schema

logger = logging.getLogger(__name__)

if importlib.util.find_spec("pandas") is None:
    # DuckDB's Python client tries ``import pandas`` on every statement that takes parameters
    # (to recognise data frames among them). Python does not remember a failed import, so
    # without pandas each statement searched sys.path again: ~0.12 ms of a 0.25 ms query,
    # a tenth of a report that runs a hundred small statements. ``None`` in ``sys.modules``
    # is Python's own way of saying "not importable", answered at once.
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]

DATABASE_FILENAME: Final = "stumble.duckdb"
CATALOG: Final = "stumble"
ROW_GROUP_SIZE: Final = 16_384
MEMORY: Final = ":memory:"
_COMPACT_SUFFIX: Final = ".compact"
_COMPACT_CATALOG: Final = "stumble_compact"

# Counters per upsert statement: 7 parameters each keeps one statement well under limits.
_INGEST_COUNTS_PER_STATEMENT: Final = 500

# Errors whose DuckDB message quotes the offending value: a malformed line is reported by
# line number and error class only.
_SEGMENT_ERRORS: Final = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.ConstraintException,
)
_LINE_NUMBER = re.compile(r"\bline (\d+)")
# DuckDB's message for a file another process holds, which names that process by its PID
_LOCK_CONFLICT = re.compile(
    r'Could not set lock on file "(?P<path>[^"]+)"(?:.*\((?P<holder>PID \d+)\))?'
)

_row_encoder: Final = msgspec.json.Encoder()


def database_path(data_dir: Path) -> Path:
    """Where the embedded database lives inside the data directory."""
    return data_dir / DATABASE_FILENAME


class DuckDBStore(EventStore):
    """``EventStore`` on DuckDB; ``path`` is a database file or ``":memory:"``."""

    dialect = "duckdb"

    def __init__(
        self,
        path: Path | str,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
        migrate: bool = True,
        data_keys: DataKeyRing | None = None,
    ) -> None:
        """``data_keys``: encrypt the file and read encrypted segments (see the module doc)."""
        self.path = path if str(path) == MEMORY else Path(path)
        self.dedupe_window_ms = dedupe_window_ms
        self.data_keys = data_keys
        self._segments = None if data_keys is None else FrameOpener(data_keys, SPOOL)
        self._sql = DUCKDB
        self._write_lock = threading.Lock()
        self._cursor_lock = threading.Lock()
        self._threads = threads
        self._memory_limit = memory_limit
        self._copies_pending = True  # until the first look: a crash may have left some
        with _storage_errors():  # e.g. the file is locked by another process
            self._root = self._connect(threads, memory_limit)
            self._writer = self._cursor()
        if isinstance(self.path, Path):
            _remove_unfinished_compaction(self.path)  # safe now: this process holds the file
        try:
            if migrate:
                self.migrate()
            else:
                self._finish_interrupted_load()
        except BaseException:
            self.close()  # release the file lock: the caller never gets this object
            raise

    @classmethod
    def in_data_dir(
        cls,
        data_dir: Path,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        dedupe_window_ms: int = DEFAULT_DEDUPE_WINDOW_MS,
        data_keys: DataKeyRing | None = None,
    ) -> DuckDBStore:
        """Open (creating if needed) ``<data_dir>/stumble.duckdb``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            database_path(data_dir),
            threads=threads,
            memory_limit=memory_limit,
            dedupe_window_ms=dedupe_window_ms,
            data_keys=data_keys,
        )

    # --- connections --------------------------------------------------------------------------

    def _connect(self, threads: int | None, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
        # Rows are appended in file (arrival) order, so zone maps on received_at and ts stay
        # narrow; it also keeps DuckDB's parallel batch insert (see the module doc).
        config: dict[str, Any] = {"preserve_insertion_order": True}
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        if isinstance(self.path, Path):
            # The root catalog is in memory, so DuckDB would not spill big sorts anywhere.
            config["temp_directory"] = str(self.path.with_name(self.path.name + ".tmp"))
        if self.data_keys is not None:
            config["temp_file_encryption"] = True  # off by default: spills would be plaintext
            config["autoinstall_known_extensions"] = False  # never a download
        root = duckdb.connect(MEMORY, config=config)
        try:
            if self.data_keys is not None:
                enable_encrypted_writes(root)
            # Attached rather than opened so it gets small row groups (see module doc).
            if isinstance(self.path, Path):
                attach(root, self.path, CATALOG, f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}", self.data_keys)
            else:
                root.execute(f"ATTACH ':memory:' AS {CATALOG} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
            root.execute(f"USE {CATALOG}")
        except BaseException:
            root.close()
            raise
        return root

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        # The root connection never runs queries, so making cursors from it cannot race with
        # the writer; the lock only orders concurrent cursor creation.
        with self._cursor_lock:
            cursor = self._root.cursor()
        cursor.execute(f"USE {CATALOG}")
        return cursor

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one reading thread; closed on exit."""
        cursor = self._cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._write_lock, self._transaction_held() as con:
            yield con

    @contextlib.contextmanager
    def _transaction_held(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on the writer; the caller holds ``_write_lock``."""
        self._writer.execute("BEGIN TRANSACTION")
        try:
            yield self._writer
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        self.write_count += 1

    # --- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        with _storage_errors(), self._write_lock:
            version = apply_migrations(self._writer, self._sql)
            verify_events_schema(self._writer, self._sql)
            self._delete_pending_duplicates()
        return version

    def _finish_interrupted_load(self) -> None:
        """Delete the copies a load named but did not delete before the process stopped, also
        when opening without migrating (an older schema has no such table)."""
        with _storage_errors(), self._write_lock:
            (tables,) = _one_row(self._writer.execute(self._sql.pending_duplicates_exists()))
            self._copies_pending = bool(tables)
            self._delete_pending_duplicates()

    # --- loading ------------------------------------------------------------------------------

    def load_segment(self, path: Path) -> LoadResult:
        name = path.name
        with _storage_errors(), self._loading() as con:
            if self._segment_recorded(con, name):
                return LoadResult(already_loaded=True)
            if not path.is_file():
                raise FileNotFoundError(path)
            result = self._load_segment_file(con, path, name)
            con.execute(
                self._sql.record_segment(), [name, _now_ms(), result.inserted, result.duplicates]
            )
        logger.debug(
            "loaded segment %s: %d rows, %d duplicates", name, result.inserted, result.duplicates
        )
        return result

    def write_rows(self, rows: Sequence[StoredEvent]) -> LoadResult:
        if not rows:
            return LoadResult()
        # In memory, never a scratch file: the rows must not reach a disk unencrypted.
        with (
            memory_file(_row_encoder.encode_lines(rows)) as scratch,
            _storage_errors(),
            self._loading() as con,
        ):
            return self._load_file(con, scratch, "write_rows batch")

    @contextlib.contextmanager
    def _loading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A load's two transactions, under the write lock: the one yielded (rows, copies
        named, segment recorded), then the copies' delete. Copies a failed delete left are
        deleted first, so a load never names copies against rows that are themselves copies."""
        with self._write_lock:
            self._delete_pending_duplicates()
            with self._transaction_held() as con:
                yield con
            self._delete_pending_duplicates()

    def _load_segment_file(
        self, con: duckdb.DuckDBPyConnection, path: Path, label: str
    ) -> LoadResult:
        """A plaintext segment is parsed from its file; an encrypted one from memory."""
        with path.open("rb") as stream:
            encrypted = is_encrypted(stream.read(1))
        if not encrypted:
            return self._load_file(con, str(path), label)
        if self._segments is None:
            raise StorageError(f"{label} is encrypted but no data key is configured")
        try:
            plaintext = self._segments.open_all(path.read_bytes(), label)
        except DamagedFrameError as error:
            raise SegmentError(str(error)) from None
        with memory_file(plaintext) as in_memory:
            return self._load_file(con, in_memory, label)

    def _load_file(self, con: duckdb.DuckDBPyConnection, path: str, label: str) -> LoadResult:
        try:
            result = self._insert_file(con, path)
        except _SEGMENT_ERRORS as exc:
            # The caller's rollback also discards the staged tables.
            raise SegmentError(_describe_segment_error(label, exc)) from None
        for statement in self._sql.drop_staged():
            con.execute(statement)
        return result

    def _insert_file(self, con: duckdb.DuckDBPyConnection, path: str) -> LoadResult:
        """Every line appended, then its copies named (``pending_duplicates``, deleted by the
        next transaction) and the days of the other rows marked dirty."""
        sql = self._sql
        (last_row_id,) = _one_row(con.execute(sql.last_row_id()))
        (lines,) = _one_row(con.execute(sql.insert_segment(), [path]))
        if lines == 0:
            return LoadResult()
        con.execute(sql.stage_appended(), [last_row_id])
        earliest_ms, low, high = _one_row(con.execute(sql.appended_bounds()))
        since = earliest_ms - self.dedupe_window_ms
        con.execute(
            sql.stage_duplicates(),
            {"last": last_row_id, "since": since, "low": low, "high": high},
        )
        (copies,) = _one_row(con.execute(sql.staged_duplicates_count()))
        if copies:
            con.execute(sql.record_pending_duplicates())
            self._copies_pending = True  # a rollback leaves it set: one needless look
        if copies < lines:
            con.execute(sql.mark_appended_days_dirty(), [earliest_ms, last_row_id])
        return LoadResult(inserted=int(lines - copies), duplicates=int(copies))

    def _delete_pending_duplicates(self) -> None:
        """The second transaction of a load (or, after a crash between the two, of opening the
        database; after a failed one, of the next load): the copies it named are deleted and
        forgotten together, so running it again deletes nothing more."""
        if not self._copies_pending:
            return
        # Read first, outside a transaction (the caller holds the write lock, so nothing
        # changes in between): opening a database with nothing pending writes nothing.
        rows, low, high = _one_row(self._writer.execute(self._sql.pending_duplicates_bounds()))
        if rows:
            with self._transaction_held() as con:
                (deleted,) = _one_row(
                    con.execute(self._sql.delete_duplicates(), {"low": low, "high": high})
                )
                con.execute(self._sql.clear_pending_duplicates())
            if deleted != rows:  # a counting bug, not a data condition: say so, in counts
                logger.error("deleted %d copies where %d were named", deleted, rows)
        self._copies_pending = False

    def is_loaded(self, segment_name: str) -> bool:
        with _storage_errors(), self.reader() as cursor:
            return self._segment_recorded(cursor, segment_name)

    def _segment_recorded(self, con: duckdb.DuckDBPyConnection, name: str) -> bool:
        (count,) = _one_row(con.execute(self._sql.is_loaded(), [name]))
        return bool(count)

    # --- reading ------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[object] = ()) -> QueryResult:
        _require_single_select(sql)
        with _storage_errors(), self.reader() as cursor:
            cursor.execute(sql, list(params))
            columns = tuple(column[0] for column in cursor.description or ())
            return QueryResult(columns=columns, rows=cursor.fetchall())

    def read_events(
        self, environment: str | None = None, session_id: str | None = None
    ) -> list[StoredEvent]:
        sql = self._sql.select_events(
            by_environment=environment is not None, by_session=session_id is not None
        )
        params = [value for value in (environment, session_id) if value is not None]
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(sql, params).fetchall()
        return [_stored_event(row) for row in rows]

    def read_raw(self, query: RawEventQuery) -> list[StoredEvent]:
        sql, params = self._sql.select_raw_events(query)
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(sql, params).fetchall()
        return [_stored_event(row) for row in rows]

    def environments(self) -> list[str]:
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(self._sql.select_environments()).fetchall()
        return [str(environment) for (environment,) in rows]

    def count_events(self, environment: str | None = None) -> int:
        sql = self._sql.count_events(by_environment=environment is not None)
        with _storage_errors(), self.reader() as cursor:
            (count,) = _one_row(cursor.execute(sql, [] if environment is None else [environment]))
        return int(count)

    # --- retention and quarantine counters ----------------------------------------------------

    def delete_expired(self, environment: str, received_before_ms: int) -> int:
        with _storage_errors(), self._transaction() as con:
            (deleted,) = _one_row(
                con.execute(self._sql.delete_expired(), [environment, received_before_ms])
            )
        return int(deleted)

    # --- rollups ----------------------------------------------------------------------------

    def dirty_rollup_days(self) -> list[tuple[str, date]]:
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(self._sql.select_dirty_rollup_days()).fetchall()
        return [(str(environment), day) for environment, day in rows]

    def replace_rollup_day(
        self,
        environment: str,
        day: date,
        statements: Sequence[RollupStatement],
        plan_fingerprint: str,
    ) -> int | None:
        for statement in statements:
            _require_single_select(statement.text)
        key = [environment, day]
        with _storage_errors(), self._transaction() as con:
            (sealed,) = _one_row(con.execute(self._sql.is_rollup_day_sealed(), key))
            if sealed:
                con.execute(self._sql.clear_rollup_dirty(), key)
                return None
            con.execute(self._sql.delete_rollup_day(), key)
            for statement in statements:
                con.execute(self._sql.insert_rollups(statement.text), list(statement.params))
            (cells,) = _one_row(con.execute(self._sql.count_rollup_day(), key))
            con.execute(
                self._sql.record_rollup_day(), [*key, _now_ms(), plan_fingerprint, int(cells)]
            )
            con.execute(self._sql.clear_rollup_dirty(), key)
        return int(cells)

    def seal_rollup_days(self, environment: str, received_before_ms: int) -> list[date]:
        with _storage_errors(), self._transaction() as con:
            days = [
                day
                for (day,) in con.execute(
                    self._sql.days_received_before(), [environment, received_before_ms]
                ).fetchall()
            ]
            for day in days:
                con.execute(self._sql.seal_rollup_day(), [environment, day])
        return days

    def delete_rollups_before(self, day: date) -> int:
        with _storage_errors(), self._transaction() as con:
            deleted = 0
            for number, statement in enumerate(self._sql.delete_rollups_before()):
                (count,) = _one_row(con.execute(statement, [day]))
                deleted += int(count) if number == 0 else 0
        return deleted

    def rollup_months_due(self, current_month: date) -> list[tuple[str, date]]:
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(self._sql.select_rollup_months_due(), [current_month]).fetchall()
        return [(str(environment), month) for environment, month in rows]

    def replace_rollup_month(self, environment: str, month: date) -> int:
        last = month_end(month)
        key = [environment, month]
        with _storage_errors(), self._transaction() as con:
            state = con.execute(self._sql.select_month_state(), [environment, month, last])
            (_, _, days, newest) = _one_row(state)
            for statement in self._sql.delete_rollup_month():
                con.execute(statement, key)
            con.execute(self._sql.insert_rollup_month(), [environment, month, last, *key])
            (cells,) = _one_row(con.execute(self._sql.count_rollup_month(), key))
            con.execute(
                self._sql.record_rollup_month(), [*key, days, newest, _now_ms(), int(cells)]
            )
        return int(cells)

    def rollup_layout(self) -> RollupLayout:
        with _storage_errors(), self.reader() as cursor:
            at, since, cells = _one_row(cursor.execute(self._sql.select_rollup_layout()))
        return RollupLayout(None if at is None else int(at), int(since), int(cells))

    def cluster_rollups(self) -> None:
        statements = self._sql.cluster_rollups()
        with _storage_errors(), self._transaction() as con:
            for statement in statements[:-1]:
                con.execute(statement)
            con.execute(statements[-1], [_now_ms()])

    def rollup_days(self, environment: str | None = None) -> list[RollupDay]:
        sql = self._sql.select_rollup_days(by_environment=environment is not None)
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(sql, [] if environment is None else [environment]).fetchall()
        return [
            RollupDay(
                environment=env,
                day=day,
                built_at_ms=None if not fingerprint else int(built_at_ms),
                plan_fingerprint=fingerprint or None,
                cells=int(cells),
                sealed=bool(sealed),
                dirty=bool(dirty),
            )
            for env, day, built_at_ms, fingerprint, cells, sealed, dirty in rows
        ]

    def add_ingest_counts(self, rows: Sequence[IngestCount]) -> None:
        merged = sum_ingest_counts(rows)
        if not merged:
            return
        with _storage_errors(), self._transaction() as con:
            for start in range(0, len(merged), _INGEST_COUNTS_PER_STATEMENT):
                chunk = merged[start : start + _INGEST_COUNTS_PER_STATEMENT]
                params = [value for row in chunk for value in _ingest_count_values(row)]
                con.execute(self._sql.upsert_ingest_counts(len(chunk)), params)

    def delete_ingest_counts_before(self, day: date) -> int:
        with _storage_errors(), self._transaction() as con:
            (deleted,) = _one_row(con.execute(self._sql.delete_ingest_counts_before(), [day]))
        return int(deleted)

    def ingest_counts(
        self, since_day: date, until_day: date, environment: str | None = None
    ) -> list[IngestCount]:
        sql = self._sql.select_ingest_counts(by_environment=environment is not None)
        params: list[object] = [since_day, until_day]
        if environment is not None:
            params.append(environment)
        with _storage_errors(), self.reader() as cursor:
            rows = cursor.execute(sql, params).fetchall()
        return [
            IngestCount(
                day=day,
                environment=env,
                event_name=event_name,
                outcome=outcome,
                reason=reason,
                field_path=field_path,
                count=count,
            )
            for day, env, event_name, outcome, reason, field_path, count in rows
        ]

    # --- space ------------------------------------------------------------------------------

    def storage_bytes(self) -> int | None:
        if not isinstance(self.path, Path):
            return None
        return sum(_file_bytes(path) for path in (self.path, _wal_path(self.path)))

    def reclaim_space(self, compact_above: float, min_free_bytes: int = 0) -> SpaceReclaimed:
        """CHECKPOINT (the blocks of deleted row groups go on the free list and are reused by
        later loads), then, past ``compact_above`` free, a copy into a new file (see
        ``docs/decisions.md``: DuckDB truncates its file only when the free blocks are at its
        end, and retention frees the oldest rows, which sit at the front)."""
        with _storage_errors(), self._write_lock:
            self._writer.execute(f"CHECKPOINT {CATALOG}")
            free_share, free_bytes = self._free_space()
            small = free_share <= compact_above or free_bytes < min_free_bytes
            if not isinstance(self.path, Path) or small:
                return SpaceReclaimed(checkpointed=True, free_share=free_share)
            with self._cursor_lock:
                self._compact(self.path)
        return SpaceReclaimed(checkpointed=True, compacted=True, free_share=free_share)

    def _free_space(self) -> tuple[float, int]:
        """The share of the file's blocks that are free, and their bytes."""
        total, free, block_size = _one_row(
            self._writer.execute(
                "SELECT total_blocks, free_blocks, block_size FROM pragma_database_size() "
                "WHERE database_name = ?",
                [CATALOG],
            )
        )
        share = int(free) / int(total) if total else 0.0
        return share, int(free) * int(block_size)

    def _compact(self, path: Path) -> None:
        """Copy the database into ``<file>.compact`` (same encryption and row groups) and
        rename it over the file. Called with both locks held; readers still running on the
        old connection fail (``StorageError``) and are simply asked again. A crash before the
        rename leaves the old file whole (the copy is removed next time); after it, the new
        one is complete: it was fsynced first."""
        target = _remove_unfinished_compaction(path)
        options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
        attach(self._writer, target, _COMPACT_CATALOG, options, self.data_keys)
        try:
            self._writer.execute(f"COPY FROM DATABASE {CATALOG} TO {_COMPACT_CATALOG}")
            self._writer.execute(f"CHECKPOINT {_COMPACT_CATALOG}")
        finally:
            self._writer.execute(f"DETACH {_COMPACT_CATALOG}")
        self._writer.close()
        self._root.close()  # checkpoints and removes the WAL: it must not meet the new file
        try:
            if _wal_path(path).exists():
                raise StorageError("the write-ahead log outlived closing; the file was kept")
            _fsync_file(target)
            target.replace(path)
            fsync_directory(path.parent)
        finally:
            self._root = self._connect(self._threads, self._memory_limit)
            self._writer = self._root.cursor()
            self._writer.execute(f"USE {CATALOG}")

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
            self._root.close()


# --- helpers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Surface DuckDB failures (disk full, lock held by another process…) as ``StorageError``."""
    try:
        yield
    except _SEGMENT_ERRORS as exc:
        # These quote stored values; keep the class only and drop the chained original.
        raise StorageError(f"duckdb {type(exc).__name__}") from None
    except duckdb.Error as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        lock = _LOCK_CONFLICT.search(first_line)
        if lock:
            raise DatabaseInUseError(lock["path"], lock["holder"]) from exc
        raise StorageError(f"duckdb {type(exc).__name__}: {first_line}") from exc


def _describe_segment_error(label: str, exc: duckdb.Error) -> str:
    line = _LINE_NUMBER.search(str(exc))
    where = f" near line {line.group(1)}" if line else ""
    return f"{label} is malformed{where} ({type(exc).__name__})"


def _require_single_select(sql: str) -> None:
    # A guard against accidental writes from the analytics layer, not a sandbox.
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyQueryError(f"query does not parse ({type(exc).__name__})") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ReadOnlyQueryError("query() runs exactly one SELECT statement")


def _one_row(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    row = con.fetchone()
    assert row is not None, "aggregate and DML statements always return one row"
    return row


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    return msgspec.convert(dict(zip(EVENT_COLUMN_NAMES, row, strict=True)), StoredEvent)


def _ingest_count_values(row: IngestCount) -> tuple[object, ...]:
    return (
        row.day,
        row.environment,
        row.event_name,
        row.outcome,
        row.reason,
        row.field_path,
        row.count,
    )


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove_unfinished_compaction(path: Path) -> Path:
    """Delete the copy a compaction left when it stopped before the rename; returns its path."""
    target = path.with_name(path.name + _COMPACT_SUFFIX)
    for leftover in (target, _wal_path(target)):
        leftover.unlink(missing_ok=True)
    return target


def _file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
