"""SQL dialect specifics, kept as data in one place (the way ibis keeps one compiler per engine).

The engine-neutral part is the column model: ``EVENT_COLUMNS`` is derived from
``StoredEvent``'s annotations (via ``msgspec.inspect``), so a field added to the wire contract
needs no hand-written column here, only a migration. ``STORAGE_TYPE_OVERRIDES`` lists the few
fields whose stored type is narrower or richer than their Python annotation (a UUID, a timestamp
stored from epoch milliseconds, a small integer, a JSON document).

SQL here is assembled from that column model and fixed keywords only; every value travels as a
bound parameter, which is why the string-built statements carry ``noqa: S608``.

Everything engine-specific — DDL type names, how NDJSON is read (``read_json`` with an explicit
column map), how epoch milliseconds become timestamps, how duplicates are dropped, how counters
are upserted — lives on the dialect class. ``DuckDBDialect`` is the only one today; a ClickHouse
dialect will sit beside it with the same methods (``fromUnixTimestamp64Milli``, ``Array(String)``,
``JSONEachRow``, insert deduplication tokens).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import msgspec
import msgspec.inspect as msgspec_inspect

from stumble.events import StoredEvent
from stumble.storage.base import RawEventQuery


class ColumnType(enum.Enum):
    """Engine-neutral column types; each dialect maps them to its own type names."""

    UUID = "uuid"
    STRING = "string"
    STRING_LIST = "string_list"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT64 = "float64"
    TIMESTAMP_MS = "timestamp_ms"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Column:
    """One ``events`` column: its type, nullability and the value an omitted key stands for.

    ``StoredEvent`` is encoded with ``omit_defaults``, so a key absent from a segment line means
    the field's default (``[]`` feature flags, ``0`` redactions), not NULL.
    """

    name: str
    type: ColumnType
    nullable: bool
    default: object = None


STORAGE_TYPE_OVERRIDES: Final[Mapping[str, ColumnType]] = {
    "event_id": ColumnType.UUID,  # 16 bytes instead of a 36-character string
    "received_at": ColumnType.TIMESTAMP_MS,
    "ts": ColumnType.TIMESTAMP_MS,
    "schema_version": ColumnType.INT32,
    "redactions": ColumnType.INT16,
    "step": ColumnType.INT16,
    "attempt": ColumnType.INT16,
    "http_status": ColumnType.INT16,
    "params": ColumnType.JSON,
}
"""Stored types that differ from what the annotation alone implies (``int`` → BIGINT, …)."""


def _annotation_type(info: msgspec_inspect.Type) -> tuple[ColumnType, bool]:
    """Map a field's msgspec type to (column type, nullable)."""
    nullable = False
    if isinstance(info, msgspec_inspect.UnionType):
        non_null = [t for t in info.types if not isinstance(t, msgspec_inspect.NoneType)]
        if len(non_null) != 1:
            raise TypeError(f"no column type for a union of {len(non_null)} types")
        info, nullable = non_null[0], True
    if isinstance(info, msgspec_inspect.StrType):
        return ColumnType.STRING, nullable
    if isinstance(info, msgspec_inspect.IntType):
        return ColumnType.INT64, nullable
    if isinstance(info, msgspec_inspect.FloatType):
        return ColumnType.FLOAT64, nullable
    if isinstance(info, msgspec_inspect.ListType) and isinstance(
        info.item_type, msgspec_inspect.StrType
    ):
        return ColumnType.STRING_LIST, nullable
    raise TypeError(f"no column type for {type(info).__name__}")


def _field_default(field: msgspec_inspect.Field) -> object:
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return None if field.default is msgspec.NODEFAULT else field.default


def derive_columns(struct: type[msgspec.Struct]) -> tuple[Column, ...]:
    """One column per field of a flat Struct, in declaration order."""
    struct_info = msgspec_inspect.type_info(struct)
    assert isinstance(struct_info, msgspec_inspect.StructType)
    columns = []
    for field in struct_info.fields:
        column_type, nullable = _annotation_type(field.type)
        columns.append(
            Column(
                name=field.name,
                type=STORAGE_TYPE_OVERRIDES.get(field.name, column_type),
                nullable=nullable,
                default=_field_default(field),
            )
        )
    return tuple(columns)


EVENT_COLUMNS: Final[tuple[Column, ...]] = derive_columns(StoredEvent)

# A month's state: how many of its days are recorded and the newest of their build times. Any
# rebuilt, sealed-unbuilt or deleted day changes it, and with it whether the month's cells hold.


def _rollup_cells_table(name: str) -> str:
    """A table of rollup cells (the daily ``rollups`` and the monthly ``rollup_months``)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (environment VARCHAR NOT NULL, "
        "day DATE NOT NULL, family VARCHAR NOT NULL, dim VARCHAR NOT NULL, "
        "dim_value VARCHAR, k1 VARCHAR, k2 VARCHAR, k3 VARCHAR, k4 VARCHAR, "
        "measure VARCHAR NOT NULL, sessions BIGINT NOT NULL, events BIGINT NOT NULL, "
        "weighted DOUBLE, value_sum DOUBLE, sketch_keys INTEGER[], "
        "sketch_counts BIGINT[])"
    )


_MONTH_DAYS: Final = (
    "SELECT environment, CAST(date_trunc('month', day) AS DATE) AS month, count(*) AS days, "
    "max(built_at) AS newest FROM rollup_days"
)
EVENT_COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in EVENT_COLUMNS)


class DuckDBDialect:
    """DuckDB: type names, NDJSON reading, epoch conversion, dedupe and upsert syntax."""

    name: Final = "duckdb"

    type_names: Final[Mapping[ColumnType, str]] = {
        ColumnType.UUID: "UUID",
        ColumnType.STRING: "VARCHAR",
        ColumnType.STRING_LIST: "VARCHAR[]",
        ColumnType.INT16: "SMALLINT",
        ColumnType.INT32: "INTEGER",
        ColumnType.INT64: "BIGINT",
        ColumnType.FLOAT64: "DOUBLE",
        ColumnType.TIMESTAMP_MS: "TIMESTAMP",
        ColumnType.JSON: "JSON",
    }

    # How each value is spelled in a segment line, i.e. the type read_json parses it as.
    # Epoch milliseconds arrive as integers, a JSON document as a string holding its text.
    wire_type_names: Final[Mapping[ColumnType, str]] = {
        **type_names,
        ColumnType.TIMESTAMP_MS: "BIGINT",
        ColumnType.JSON: "VARCHAR",
    }

    # --- DDL ---------------------------------------------------------------------------------

    def create_schema_migrations(self) -> str:
        return (
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
        )

    def create_events(self) -> str:
        columns = ",\n  ".join(self._column_ddl(c) for c in EVENT_COLUMNS)
        return f"CREATE TABLE IF NOT EXISTS events (\n  {columns}\n)"

    def create_loaded_segments(self) -> str:
        return (
            "CREATE TABLE IF NOT EXISTS loaded_segments (name VARCHAR PRIMARY KEY, "
            "loaded_at TIMESTAMP NOT NULL, rows BIGINT NOT NULL, duplicates BIGINT NOT NULL)"
        )

    def create_ingest_counts(self) -> str:
        return (
            "CREATE TABLE IF NOT EXISTS ingest_counts (day DATE NOT NULL, "
            "environment VARCHAR NOT NULL, event_name VARCHAR NOT NULL, "
            "outcome VARCHAR NOT NULL CHECK (outcome IN ('rejected', 'redacted')), "
            "reason VARCHAR NOT NULL, field_path VARCHAR NOT NULL, count BIGINT NOT NULL, "
            "PRIMARY KEY (day, environment, event_name, outcome, reason, field_path))"
        )

    def create_rollup_tables(self) -> tuple[str, ...]:
        """Daily rollups (``stumble.rollups``): one long table of cells, the days built, and
        the days a load touched since. A cell is (environment, day, family, breakdown
        dimension and value, up to four keys, a measure): counts, a sum (for means) and
        durations as a log-bucket sketch (parallel lists of bucket keys and counts). No cell
        holds a session id."""
        return (
            _rollup_cells_table("rollups"),
            (
                "CREATE TABLE IF NOT EXISTS rollup_days (environment VARCHAR NOT NULL, "
                "day DATE NOT NULL, built_at TIMESTAMP NOT NULL, "
                "plan_fingerprint VARCHAR NOT NULL, cells BIGINT NOT NULL, "
                "sealed BOOLEAN NOT NULL DEFAULT false, "
                "PRIMARY KEY (environment, day))"
            ),
            (
                "CREATE TABLE IF NOT EXISTS rollup_dirty (environment VARCHAR NOT NULL, "
                "day DATE NOT NULL, PRIMARY KEY (environment, day))"
            ),
        )

    def create_rollup_month_tables(self) -> tuple[str, ...]:
        """Monthly rollups: the daily cells of a whole past month added up (``rollups``' columns,
        ``day`` the month's first day), so a year reads twelve months of cells instead of 365
        days of them; per month what it was built from (the number of its days and the newest
        of their build times), which tells a reader whether it still matches them; and the
        day the daily cells were last put in order (``cluster_rollups``)."""
        return (
            _rollup_cells_table("rollup_months"),
            (
                "CREATE TABLE IF NOT EXISTS rollup_month_days (environment VARCHAR NOT NULL, "
                "month DATE NOT NULL, days BIGINT NOT NULL, newest_built TIMESTAMP NOT NULL, "
                "built_at TIMESTAMP NOT NULL, cells BIGINT NOT NULL, "
                "PRIMARY KEY (environment, month))"
            ),
            "CREATE TABLE IF NOT EXISTS rollup_layout (clustered_at TIMESTAMP NOT NULL)",
        )

    def cluster_rollups(self) -> tuple[str, ...]:
        """Parameter (last statement): now (epoch ms). The daily cells rewritten in (environment,
        family, dimension, day) order: cells are appended a day at a time, so every row group
        holds every family and a read of one family scans them all; in this order DuckDB's
        zone maps skip the row groups of other families and days."""
        return (
            "DROP TABLE IF EXISTS rollups_clustered",
            _rollup_cells_table("rollups_clustered"),
            (
                "INSERT INTO rollups_clustered SELECT * FROM rollups "
                "ORDER BY environment, family, dim, day, k1"
            ),
            "DROP TABLE rollups",
            "ALTER TABLE rollups_clustered RENAME TO rollups",
            "DELETE FROM rollup_layout",
            "INSERT INTO rollup_layout VALUES (epoch_ms(CAST(? AS BIGINT)))",
        )

    def select_rollup_layout(self) -> str:
        """When the daily cells were last ordered (epoch ms, NULL: never), the cells of the
        days built since (appended at the end, unordered) and all of them."""
        return (
            "WITH l AS (SELECT max(clustered_at) AS at FROM rollup_layout) "
            "SELECT epoch_ms(any_value(l.at)), coalesce(sum(d.cells) FILTER (WHERE l.at IS NULL "
            "OR d.built_at > l.at), 0), coalesce(sum(d.cells), 0) FROM rollup_days AS d, l"
        )

    def events_schema(self) -> str:
        """(column name, type name) of the stored ``events`` table, for the drift check."""
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "AND table_name = 'events' ORDER BY ordinal_position"
        )

    def _column_ddl(self, column: Column) -> str:
        not_null = "" if column.nullable else " NOT NULL"
        return f"{column.name} {self.type_names[column.type]}{not_null}"

    # --- loading ------------------------------------------------------------------------------

    # A segment is parsed once, straight into ``events``; its duplicates are then named from
    # the appended rows (their row ids above the highest stored before, read back from the
    # transaction's own storage) and deleted by a second transaction (``delete_duplicates``):
    # a row deleted in the transaction that appended it makes DuckDB append the whole batch a
    # second time at commit. A copy is a client's resend of the same event: the same
    # ``event_id`` and the same ``client_ts`` (the SDK keeps queued events as they were made).

    def create_pending_duplicates(self) -> str:
        """The copies a committed load appended and has not deleted yet, by key and the number
        of its last rows (by row id) to delete; emptied by the transaction that deletes them."""
        return (
            "CREATE TABLE IF NOT EXISTS pending_duplicates (event_id UUID NOT NULL, "
            "client_ts BIGINT NOT NULL, received_at TIMESTAMP NOT NULL, "
            "copies BIGINT NOT NULL)"
        )

    def pending_duplicates_exists(self) -> str:
        return (
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = 'pending_duplicates'"
        )

    def stage_appended(self) -> str:
        """The keys of the rows appended after row id ``?``, into the temp table
        ``staged_appended``: read once, since a row id filter prunes no row group of a table
        whose row groups hold deleted rows (~16 ms per read at 10M rows)."""
        return (
            "CREATE OR REPLACE TEMP TABLE staged_appended AS SELECT rowid AS rid, event_id, "
            "client_ts, received_at FROM events WHERE rowid > ?"
        )

    def appended_bounds(self) -> str:
        """Earliest receive time (epoch ms) and client time range of the appended rows: the
        bounds that let the search for stored copies skip row groups."""
        return (
            "SELECT epoch_ms(min(received_at)), min(client_ts), max(client_ts) FROM staged_appended"
        )

    def stage_duplicates(self) -> str:
        """The appended rows that are copies, into the temp table ``staged_duplicates``: a copy
        of a row stored inside the window (row id up to ``$last``, received at or after
        ``$since``, epoch ms), or of an appended row received earlier (ties: the earlier line).
        A stored copy has the same client time, so only stored rows inside the appended rows'
        client time range (``$low`` to ``$high``) are looked at: the search costs the rows of
        that range, not of the whole dedupe window."""
        return (
            "CREATE OR REPLACE TEMP TABLE staged_duplicates AS WITH "
            "stored AS (SELECT DISTINCT event_id, client_ts FROM (SELECT event_id, client_ts "
            "FROM events WHERE received_at >= epoch_ms(CAST($since AS BIGINT)) "
            "AND client_ts BETWEEN $low AND $high AND rowid <= $last) "
            "SEMI JOIN staged_appended USING (event_id, client_ts)), "
            "copies AS (SELECT * FROM staged_appended SEMI JOIN (SELECT event_id, client_ts "
            "FROM staged_appended GROUP BY ALL HAVING count(*) > 1) USING (event_id, client_ts)) "
            "SELECT rid, event_id, client_ts, received_at FROM staged_appended "
            "SEMI JOIN stored USING (event_id, client_ts) "
            "UNION ALL SELECT rid, event_id, client_ts, received_at FROM ("
            "SELECT *, row_number() OVER (PARTITION BY event_id, client_ts "
            "ORDER BY received_at, rid) AS nth FROM copies "
            "ANTI JOIN stored USING (event_id, client_ts)) WHERE nth > 1"
        )

    def record_pending_duplicates(self) -> str:
        """The staged copies as keys for ``delete_duplicates``, with how many rows of each key
        are copies. A copy is always among the last rows (by row id) of its key: stored rows
        and the first line come first."""
        return (
            "INSERT INTO pending_duplicates SELECT event_id, client_ts, received_at, count(*) "
            "FROM staged_duplicates GROUP BY ALL"
        )

    def staged_duplicates_count(self) -> str:
        return "SELECT count(*) FROM staged_duplicates"

    def drop_staged(self) -> tuple[str, ...]:
        return ("DROP TABLE IF EXISTS staged_appended", "DROP TABLE IF EXISTS staged_duplicates")

    def pending_duplicates_bounds(self) -> str:
        """Rows to delete and the receive time range (epoch ms) of their keys."""
        return (
            "SELECT coalesce(sum(copies), 0), epoch_ms(min(received_at)), "
            "epoch_ms(max(received_at)) FROM pending_duplicates"
        )

    def delete_duplicates(self) -> str:
        """Delete the last ``copies`` rows (by row id) of every pending key; parameters: the
        keys' receive time range (epoch ms), which bounds both the delete's own scan and the
        ranking's, so each skips every other row group. Keys, not row ids, name them: a
        checkpoint between the two transactions may renumber rows."""
        return (
            "DELETE FROM events WHERE received_at BETWEEN epoch_ms(CAST($low AS BIGINT)) "
            "AND epoch_ms(CAST($high AS BIGINT)) AND rowid IN (SELECT rid FROM ("
            "SELECT e.rowid AS rid, p.copies, row_number() OVER (PARTITION BY e.event_id, "
            "e.client_ts, e.received_at ORDER BY e.rowid DESC) AS from_last "
            "FROM events AS e JOIN pending_duplicates AS p "
            "USING (event_id, client_ts, received_at) "
            "WHERE e.received_at BETWEEN epoch_ms(CAST($low AS BIGINT)) "
            "AND epoch_ms(CAST($high AS BIGINT))) WHERE from_last <= copies)"
        )

    def clear_pending_duplicates(self) -> str:
        return "DELETE FROM pending_duplicates"

    def insert_segment(self) -> str:
        """Parse one NDJSON file (parameter: its path) straight into ``events``, in file order.
        ``read_json`` parses columnar with an explicit schema: no type sniffing, no Python
        object per row, and a mistyped value is an error instead of a silent NULL."""
        names = ", ".join(EVENT_COLUMN_NAMES)
        return f"INSERT INTO events ({names}) {self._read_segment()} AS r"

    def _read_segment(self) -> str:
        return (
            f"SELECT {', '.join(self._from_wire(c) for c in EVENT_COLUMNS)} "  # noqa: S608
            f"FROM read_json(?, format = 'newline_delimited', columns = {self._wire_columns()})"
        )

    def last_row_id(self) -> str:
        """The highest row id stored: rows appended afterwards have higher ones."""
        return "SELECT coalesce(max(rowid), -1) FROM events"

    def mark_appended_days_dirty(self) -> str:
        """The (environment, UTC day) of every appended row that is not a copy needs its
        rollups rebuilt. Parameters: the earliest receive time (epoch ms) of the appended
        rows, which lets the scan skip the row groups received before, and the highest row id
        stored before them."""
        return (
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT environment, CAST(ts AS DATE) "
            "FROM events WHERE received_at >= epoch_ms(CAST(? AS BIGINT)) AND rowid > ? "
            "AND rowid NOT IN (SELECT rid FROM staged_duplicates)"
        )

    def record_segment(self) -> str:
        """Parameters: name, loaded_at (epoch ms), rows inserted, duplicates dropped."""
        return "INSERT INTO loaded_segments VALUES (?, epoch_ms(CAST(? AS BIGINT)), ?, ?)"

    def is_loaded(self) -> str:
        return "SELECT count(*) FROM loaded_segments WHERE name = ?"

    def _wire_columns(self) -> str:
        pairs = ", ".join(f"'{c.name}': '{self.wire_type_names[c.type]}'" for c in EVENT_COLUMNS)
        return "{" + pairs + "}"

    def _from_wire(self, column: Column) -> str:
        expression = column.name
        if column.default is not None:
            expression = f"coalesce({expression}, {self._literal(column.default, column.type)})"
        if column.type is ColumnType.TIMESTAMP_MS:
            expression = f"epoch_ms({expression})"
        elif column.type is ColumnType.JSON:
            expression = f"CAST({expression} AS JSON)"  # validates the document
        return f"{expression} AS {column.name}"

    def _literal(self, value: object, column_type: ColumnType) -> str:
        if isinstance(value, list) and not value:
            return f"CAST([] AS {self.type_names[column_type]})"
        if isinstance(value, int | float) and not isinstance(value, bool):
            return repr(value)
        raise TypeError(f"no SQL literal for a {type(value).__name__} default")

    # --- reading back -------------------------------------------------------------------------

    def select_events(self, *, by_environment: bool, by_session: bool) -> str:
        """Rows as ``StoredEvent`` fields (epoch ms, UUID and JSON as text), in time order."""
        conditions = [
            condition
            for condition, wanted in (
                ("environment = ?", by_environment),
                ("session_id = ?", by_session),
            )
            if wanted
        ]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        columns = ", ".join(self._to_wire(c) for c in EVENT_COLUMNS)
        return f"SELECT {columns} FROM events{where} ORDER BY ts, CAST(event_id AS VARCHAR)"  # noqa: S608

    def select_raw_events(self, query: RawEventQuery) -> tuple[str, list[object]]:
        """One page of raw rows (as ``select_events``) and its parameters, keyset-paginated on
        (``ts``, ``event_id``): DuckDB orders UUIDs as their canonical text, like the other
        backends, so every backend pages alike."""
        conditions = [
            "ts >= epoch_ms(CAST(? AS BIGINT))",
            "received_at >= epoch_ms(CAST(? AS BIGINT))",
        ]
        params: list[object] = [query.since_ms, query.received_since_ms]
        for condition, value in (
            ("ts < epoch_ms(CAST(? AS BIGINT))", query.until_ms),
            ("environment = ?", query.environment),
            ("event_name = ?", query.event_name),
            ("screen_id = ?", query.screen_id),
            ("session_id = ?", query.session_id),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        direction = "DESC" if query.newest_first else "ASC"
        if query.after is not None:
            # (ts, event_id) beyond the cursor, spelled so the bare ``ts`` bound can use the
            # row groups' zone maps
            beyond = "<" if query.newest_first else ">"
            conditions.append(
                f"ts {beyond}= epoch_ms(CAST(? AS BIGINT)) AND "
                f"(ts {beyond} epoch_ms(CAST(? AS BIGINT)) OR event_id {beyond} CAST(? AS UUID))"
            )
            params.extend((query.after.ts, query.after.ts, query.after.event_id))
        columns = ", ".join(self._to_wire(c) for c in EVENT_COLUMNS)
        sql = (
            f"SELECT {columns} FROM events WHERE {' AND '.join(conditions)} "  # noqa: S608
            f"ORDER BY ts {direction}, event_id {direction} LIMIT ?"
        )
        return sql, [*params, query.limit]

    def _to_wire(self, column: Column) -> str:
        if column.type is ColumnType.TIMESTAMP_MS:
            return f"epoch_ms({column.name}) AS {column.name}"
        if column.type in (ColumnType.UUID, ColumnType.JSON):
            return f"CAST({column.name} AS VARCHAR) AS {column.name}"
        return column.name

    def select_environments(self) -> str:
        return "SELECT DISTINCT environment FROM events ORDER BY environment"

    def count_events(self, *, by_environment: bool) -> str:
        where = " WHERE environment = ?" if by_environment else ""
        return f"SELECT count(*) FROM events{where}"  # noqa: S608

    # --- retention and quarantine counters ----------------------------------------------------

    def delete_expired(self) -> str:
        """Parameters: environment, receive-time cut-off in epoch ms (exclusive)."""
        return (
            "DELETE FROM events WHERE environment = ? AND received_at < epoch_ms(CAST(? AS BIGINT))"
        )

    # --- rollups ------------------------------------------------------------------------------

    def select_dirty_rollup_days(self) -> str:
        return "SELECT environment, day FROM rollup_dirty ORDER BY environment, day"

    def is_rollup_day_sealed(self) -> str:
        """Parameters: environment, day."""
        return "SELECT count(*) FROM rollup_days WHERE environment = ? AND day = ? AND sealed"

    def delete_rollup_day(self) -> str:
        """Parameters: environment, day."""
        return "DELETE FROM rollups WHERE environment = ? AND day = ?"

    def insert_rollups(self, select: str) -> str:
        return f"INSERT INTO rollups {select}"

    def count_rollup_day(self) -> str:
        """Parameters: environment, day."""
        return "SELECT count(*) FROM rollups WHERE environment = ? AND day = ?"

    def record_rollup_day(self) -> str:
        """Parameters: environment, day, built_at (epoch ms), plan fingerprint, cells."""
        return (
            "INSERT INTO rollup_days VALUES (?, ?, epoch_ms(CAST(? AS BIGINT)), ?, ?, false) "
            "ON CONFLICT (environment, day) DO UPDATE SET built_at = excluded.built_at, "
            "plan_fingerprint = excluded.plan_fingerprint, cells = excluded.cells"
        )

    def clear_rollup_dirty(self) -> str:
        """Parameters: environment, day."""
        return "DELETE FROM rollup_dirty WHERE environment = ? AND day = ?"

    def days_received_before(self) -> str:
        """Parameters: environment, receive-time cut-off (epoch ms): the UTC days of the rows
        retention is about to delete."""
        return (
            "SELECT DISTINCT CAST(ts AS DATE) AS day FROM events WHERE environment = ? "
            "AND received_at < epoch_ms(CAST(? AS BIGINT)) ORDER BY day"
        )

    def seal_rollup_day(self) -> str:
        """Parameters: environment, day. A day never built is recorded sealed with no cells."""
        return (
            "INSERT INTO rollup_days VALUES (?, ?, epoch_ms(CAST(0 AS BIGINT)), '', 0, true) "
            "ON CONFLICT (environment, day) DO UPDATE SET sealed = true"
        )

    def delete_rollups_before(self) -> tuple[str, ...]:
        """Parameter: the first day kept (each statement takes it). A month that began before
        it goes too: what is left of it is built again from its remaining days."""
        return (
            "DELETE FROM rollups WHERE day < ?",
            "DELETE FROM rollup_days WHERE day < ?",
            "DELETE FROM rollup_dirty WHERE day < ?",
            "DELETE FROM rollup_months WHERE day < ?",
            "DELETE FROM rollup_month_days WHERE month < ?",
        )

    def select_rollup_months_due(self) -> str:
        """Parameter: the first day of the current month. Past months whose cells are missing
        or older than their days, and none of whose days waits to be rebuilt."""
        return (
            f"WITH d AS ({_MONTH_DAYS} WHERE day < ? GROUP BY ALL) "  # noqa: S608
            "SELECT d.environment, d.month FROM d LEFT JOIN rollup_month_days AS m "
            "ON m.environment = d.environment AND m.month = d.month "
            "WHERE (m.month IS NULL OR m.days <> d.days OR m.newest_built <> d.newest) "
            "AND NOT EXISTS (SELECT 1 FROM rollup_dirty AS x WHERE x.environment = d.environment "
            "AND CAST(date_trunc('month', x.day) AS DATE) = d.month) "
            "ORDER BY d.environment, d.month"
        )

    def select_month_state(self) -> str:
        """Parameters: environment, first day, last day of the month."""
        return f"{_MONTH_DAYS} WHERE environment = ? AND day BETWEEN ? AND ? GROUP BY ALL"

    def delete_rollup_month(self) -> tuple[str, ...]:
        """Parameters: environment, month (each statement takes them)."""
        return (
            "DELETE FROM rollup_months WHERE environment = ? AND day = ?",
            "DELETE FROM rollup_month_days WHERE environment = ? AND month = ?",
        )

    def insert_rollup_month(self) -> str:
        """Parameters: environment, first day, last day, environment, month. Every daily cell
        of the month but the ``built`` markers (readers ask the days for those), added up per
        cell: counts and sums summed, sketches merged key by key. Sorted by family, so a read
        of one family touches few row groups."""
        cell = "family, dim, dim_value, k1, k2, k3, k4, measure"
        same = " AND ".join(
            f"c.{column} IS NOT DISTINCT FROM b.{column}" for column in cell.split(", ")
        )
        return (
            "INSERT INTO rollup_months WITH base AS (SELECT * FROM rollups "  # noqa: S608
            "WHERE environment = ? AND day BETWEEN ? AND ? AND family <> 'built'), "
            f"cells AS (SELECT {cell}, CAST(sum(sessions) AS BIGINT) AS sessions, "
            "CAST(sum(events) AS BIGINT) AS events, sum(weighted) AS weighted, "
            "sum(value_sum) AS value_sum FROM base GROUP BY ALL), "
            f"buckets AS (SELECT {cell}, list(key ORDER BY key) AS ks, "
            "CAST(list(c ORDER BY key) AS BIGINT[]) AS cs "
            f"FROM (SELECT {cell}, key, sum(c) AS c FROM (SELECT {cell}, "
            "unnest(sketch_keys) AS key, unnest(sketch_counts) AS c FROM base "
            "WHERE sketch_keys IS NOT NULL) GROUP BY ALL) GROUP BY ALL) "
            "SELECT ?, CAST(? AS DATE), c.family, c.dim, c.dim_value, c.k1, c.k2, c.k3, c.k4, "
            "c.measure, c.sessions, c.events, c.weighted, c.value_sum, b.ks, b.cs "
            f"FROM cells AS c LEFT JOIN buckets AS b ON {same} "
            "ORDER BY c.family, c.dim, c.k1, c.dim_value"
        )

    def record_rollup_month(self) -> str:
        """Parameters: environment, month, days, newest build (timestamp), built_at (epoch
        ms), cells."""
        return "INSERT INTO rollup_month_days VALUES (?, ?, ?, ?, epoch_ms(CAST(? AS BIGINT)), ?)"

    def count_rollup_month(self) -> str:
        """Parameters: environment, month."""
        return "SELECT count(*) FROM rollup_months WHERE environment = ? AND day = ?"

    def select_rollup_days(self, *, by_environment: bool) -> str:
        where = " WHERE environment = ?" if by_environment else ""
        return (
            "SELECT environment, day, epoch_ms(built_at) AS built_at_ms, plan_fingerprint, "  # noqa: S608
            "cells, sealed, dirty FROM (SELECT d.environment, d.day, b.built_at, "
            "b.plan_fingerprint, coalesce(b.cells, 0) AS cells, coalesce(b.sealed, false) "
            "AS sealed, x.day IS NOT NULL AS dirty FROM (SELECT environment, day FROM rollup_days "
            "UNION SELECT environment, day FROM rollup_dirty) AS d "
            "LEFT JOIN rollup_days AS b USING (environment, day) "
            "LEFT JOIN rollup_dirty AS x USING (environment, day))"
            f"{where} ORDER BY environment, day"
        )

    def upsert_ingest_counts(self, row_count: int) -> str:
        """Add ``row_count`` counters (7 parameters each); rows must have distinct keys."""
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * row_count)
        return (
            f"INSERT INTO ingest_counts VALUES {values} "  # noqa: S608
            "ON CONFLICT (day, environment, event_name, outcome, reason, field_path) "
            "DO UPDATE SET count = ingest_counts.count + excluded.count"
        )

    def delete_ingest_counts_before(self) -> str:
        """Parameter: the first day kept."""
        return "DELETE FROM ingest_counts WHERE day < ?"

    def select_ingest_counts(self, *, by_environment: bool) -> str:
        """Parameters: since_day, until_day (inclusive) and optionally the environment."""
        environment = " AND environment = ?" if by_environment else ""
        return (
            "SELECT day, environment, event_name, outcome, reason, field_path, count "  # noqa: S608
            f"FROM ingest_counts WHERE day BETWEEN ? AND ?{environment} "
            "ORDER BY day, environment, event_name, outcome, reason, field_path"
        )


DUCKDB: Final = DuckDBDialect()
