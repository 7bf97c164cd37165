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

    # A segment is read twice: once for the dedupe keys only, once straight into ``events``.
    # Rows to drop are named by their key (event_id and receive time, as spelled in the file)
    # and filtered out by a plain expression: a bit per key hash in a bitmap, then an exact
    # look-up in a short list for the few rows whose bit is set. Any join in the insert's plan
    # turns DuckDB's parallel, order-keeping batch insert into a plain one (+15-20% of the
    # load), so a join is kept for batches with more keys than a short list holds (a partly
    # replayed segment). The keys reach the insert through a session variable, not as bound
    # parameters: ``list_contains`` over a bound list cost ~60 ms of CPU per 100k rows, over
    # the variable ~5 ms.
    DUPLICATE_BITMAP_BITS: Final = 1 << 18
    DUPLICATES: Final = "stumble_duplicates"

    def stage_keys(self) -> str:
        """Parse only ``event_id`` and ``received_at`` (epoch ms) of one NDJSON file (parameter:
        its path) into the ``staged_keys`` temp table, in their wire types."""
        columns = {"event_id": ColumnType.UUID, "received_at": ColumnType.INT64}
        wire = ", ".join(f"'{name}': '{self.wire_type_names[t]}'" for name, t in columns.items())
        return (
            "CREATE OR REPLACE TEMP TABLE staged_keys AS SELECT event_id, received_at "  # noqa: S608
            f"FROM read_json(?, format = 'newline_delimited', columns = {{{wire}}})"
        )

    def staged_keys_summary(self) -> str:
        """Rows and earliest receive time (epoch ms) of the staged keys; an error if a line
        lacks either key, since a NULL key would slip through (or empty) the filters instead of
        failing the insert's NOT NULL check."""
        return (
            "SELECT count(*), min(CASE WHEN event_id IS NULL OR received_at IS NULL "
            "THEN error('a line lacks event_id or received_at') ELSE received_at END) "
            "FROM staged_keys"
        )

    def set_duplicate_keys(self) -> str:
        """Name the keys whose rows the insert leaves out, in the session variable
        ``DUPLICATES``: a struct of their ``count``, the ``lines`` holding them, a ``bits``
        bitmap of their hashes (NULL if none), the ``keys`` as a list, and ``repeats``: the
        keys of which one line is appended afterwards (``stage_repeats``).

        Parameter: the earliest ``received_at`` (epoch ms) a stored duplicate may have (a
        constant bound, so the scan of ``events`` skips row groups received before it). A line
        is dropped when its ``event_id`` is stored inside that window, or when the batch holds
        a copy received earlier. Copies received in the same millisecond share their key, so
        none of them passes the filter and the first line is appended on its own. Only the
        event ids the batch holds more than once go through the window function.
        """
        bits = self.DUPLICATE_BITMAP_BITS
        key = self._key_text("event_id", "received_at")
        return (
            f"SET VARIABLE {self.DUPLICATES} = (WITH copies AS ("  # noqa: S608
            "SELECT event_id, received_at, count(*) AS lines FROM staged_keys SEMI JOIN "
            "(SELECT event_id FROM staged_keys GROUP BY event_id HAVING count(*) > 1) "
            "USING (event_id) GROUP BY ALL), "
            "stored AS (SELECT s.event_id, s.received_at, count(*) AS lines "
            "FROM staged_keys AS s SEMI JOIN events AS e ON e.event_id = s.event_id "
            "AND e.received_at >= epoch_ms(CAST(? AS BIGINT)) GROUP BY ALL), "
            "dropped AS (SELECT *, false AS keep_one FROM stored UNION ALL "
            "SELECT event_id, received_at, lines, received_at = first AS keep_one FROM ("
            "SELECT *, min(received_at) OVER (PARTITION BY event_id) AS first FROM copies) "
            "WHERE (received_at > first OR lines > 1) "
            "AND event_id NOT IN (SELECT event_id FROM stored)) "
            "SELECT {'count': count(*), 'lines': coalesce(sum(lines), 0), "
            f"'bits': bitstring_agg({self._key_bit('event_id', 'received_at')}, 0, {bits - 1}), "
            f"'keys': list({key}), 'repeats': list({key}) FILTER (WHERE keep_one)}} FROM dropped)"
        )

    def duplicate_summary(self) -> str:
        """The ``count`` of keys, their ``lines`` and whether any is a repeat."""
        duplicates = f"getvariable('{self.DUPLICATES}')"
        return (
            f"SELECT {duplicates}.count, {duplicates}.lines, "
            f"coalesce(len({duplicates}.repeats), 0) > 0"
        )

    def reset_duplicate_keys(self) -> str:
        return f"RESET VARIABLE {self.DUPLICATES}"

    def insert_segment(self, *, filter_by: str | None = None) -> str:
        """Parse one NDJSON file (parameter: its path) straight into ``events``, in file order,
        without the lines whose key ``set_duplicate_keys`` named: looked up in its bitmap and
        list if ``filter_by`` is ``"bitmap"``, by a join if ``"join"``. ``read_json`` parses
        columnar with an explicit schema: no type sniffing, no Python object per row, and a
        mistyped value is an error instead of a silent NULL.
        """
        duplicates = f"getvariable('{self.DUPLICATES}')"
        key = self._key_text("r.event_id", "r.received_at")
        where = {
            None: "",
            "bitmap": f" WHERE get_bit({duplicates}.bits, "
            f"{self._key_bit('r.event_id', 'r.received_at')}) = 0 "
            f"OR NOT list_contains({duplicates}.keys, {key})",
            "join": f" WHERE {key} NOT IN (SELECT unnest({duplicates}.keys))",
        }[filter_by]
        names = ", ".join(EVENT_COLUMN_NAMES)
        return f"INSERT INTO events ({names}) {self._read_segment()} AS r{where}"

    def stage_repeats(self) -> str:
        """Parse the lines of the ``repeats`` keys (parameter: the file's path) into the
        ``staged_repeats`` temp table, in file order (``preserve_insertion_order``)."""
        key = self._key_text("r.event_id", "r.received_at")
        return (
            "CREATE OR REPLACE TEMP TABLE staged_repeats AS "
            f"{self._read_segment()} AS r "
            f"WHERE list_contains(getvariable('{self.DUPLICATES}').repeats, {key})"
        )

    def insert_first_repeats(self) -> str:
        """Append the first line of each staged repeat. Only row ids go through the
        aggregate: DuckDB rewrites a ``QUALIFY row_number() = 1`` over wide rows into an
        ``arg_min`` of a 47-field struct, which cost 3 s per 100k rows."""
        names = ", ".join(EVENT_COLUMN_NAMES)
        return (
            f"INSERT INTO events ({names}) SELECT {names} FROM staged_repeats "  # noqa: S608
            "WHERE rowid IN (SELECT min(rowid) FROM staged_repeats GROUP BY event_id)"
        )

    def drop_staged(self) -> tuple[str, ...]:
        return ("DROP TABLE IF EXISTS staged_keys", "DROP TABLE IF EXISTS staged_repeats")

    def _read_segment(self) -> str:
        return (
            f"SELECT {', '.join(self._from_wire(c) for c in EVENT_COLUMNS)} "  # noqa: S608
            f"FROM read_json(?, format = 'newline_delimited', columns = {self._wire_columns()})"
        )

    def _key_bit(self, event_id: str, received_at: str) -> str:
        bits = self.DUPLICATE_BITMAP_BITS
        return f"CAST(hash({event_id}, {received_at}) % {bits} AS INTEGER)"

    def _key_text(self, event_id: str, received_at: str) -> str:
        return f"CAST({event_id} AS VARCHAR) || '@' || CAST({received_at} AS VARCHAR)"

    def last_row_id(self) -> str:
        """The highest row id stored: rows appended afterwards have higher ones."""
        return "SELECT coalesce(max(rowid), -1) FROM events"

    def mark_appended_days_dirty(self) -> str:
        """The (environment, UTC day) of every row appended after row id ``?`` needs its
        rollups rebuilt. The first parameter, the batch's earliest receive time (epoch ms),
        only lets the scan skip the row groups received before it."""
        return (
            "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT environment, CAST(ts AS DATE) "
            "FROM events WHERE received_at >= epoch_ms(CAST(? AS BIGINT)) AND rowid > ?"
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
