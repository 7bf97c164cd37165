"""Storage: where guarded events live once the spool has made them durable.

``EventStore`` (``base``) is the one interface every backend implements and one contract suite
tests: load a sealed spool segment exactly once (its name is recorded in the same transaction
as its rows), drop client retries by ``event_id``, answer read-only SQL for analytics, keep the
quarantine counters (reason codes and counts, never payloads) and delete by receive time for
retention, and the days of daily rollups (built, dirty, sealed). Backends: ``DuckDBStore``
(the embedded default, a file or ``":memory:"``) and
``MemoryStore`` (a pure-Python double for tests that need no SQL). SQL specifics live in
``dialect``, schema steps in ``migrations``; a ClickHouse backend for scale-out comes later.
"""

from stumble.storage.base import (
    DEFAULT_DEDUPE_WINDOW_MS,
    INGEST_OUTCOMES,
    DatabaseInUseError,
    EventPosition,
    EventStore,
    IngestCount,
    IngestOutcome,
    LoadResult,
    QueryResult,
    RawEventQuery,
    ReadOnlyQueryError,
    RollupDay,
    RollupStatement,
    SchemaDriftError,
    SegmentError,
    SpaceReclaimed,
    StorageError,
)
from stumble.storage.duckdb_store import DATABASE_FILENAME, DuckDBStore, database_path
from stumble.storage.memory_store import MemoryStore
from stumble.storage.migrations import LATEST_VERSION

__all__ = [
    "DATABASE_FILENAME",
    "DEFAULT_DEDUPE_WINDOW_MS",
    "INGEST_OUTCOMES",
    "LATEST_VERSION",
    "DatabaseInUseError",
    "DuckDBStore",
    "EventPosition",
    "EventStore",
    "IngestCount",
    "IngestOutcome",
    "LoadResult",
    "MemoryStore",
    "QueryResult",
    "RawEventQuery",
    "ReadOnlyQueryError",
    "RollupDay",
    "RollupStatement",
    "SchemaDriftError",
    "SegmentError",
    "SpaceReclaimed",
    "StorageError",
    "database_path",
]
