"""Numbered schema migrations, applied in order when a store opens.

Each step runs in its own transaction together with the ``schema_migrations`` row that records
it, so a crash leaves a step either fully applied or not at all. A recorded step is never rerun,
and every step is also written to be harmless if it were (``IF NOT EXISTS``), so rerunning
``migrate()`` is always safe.

Rules for the next change: never edit a released step, append one. Step 1 builds ``events`` from
the column model derived from ``StoredEvent``; when ``StoredEvent`` gains a field, append a step
running ``ALTER TABLE events ADD COLUMN IF NOT EXISTS …`` (a fresh database already has the
column from step 1, hence ``IF NOT EXISTS``). ``verify_events_schema`` runs after migrating (the
store's ``migrate()`` calls both) and fails loudly when a field of ``StoredEvent`` has no column,
so a forgotten step cannot go unnoticed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import duckdb

from stumble.storage.base import SchemaDriftError
from stumble.storage.dialect import DUCKDB, EVENT_COLUMNS, DuckDBDialect


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: SQL (or Python issuing SQL) run on the writer connection."""

    version: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection, DuckDBDialect], None]


def _create_core_tables(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect) -> None:
    for statement in (
        sql.create_events(),
        sql.create_loaded_segments(),
        sql.create_ingest_counts(),
    ):
        con.execute(statement)


def _create_rollup_tables(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect) -> None:
    for statement in sql.create_rollup_tables():
        con.execute(statement)
    # Every day already stored needs its rollups built once.
    con.execute(
        "INSERT OR IGNORE INTO rollup_dirty SELECT DISTINCT environment, CAST(ts AS DATE) "
        "FROM events"
    )


def _create_rollup_month_tables(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect) -> None:
    # Built by the next refresh from the daily cells already there (``rollup_months_due``).
    for statement in sql.create_rollup_month_tables():
        con.execute(statement)


def _create_pending_duplicates(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect) -> None:
    con.execute(sql.create_pending_duplicates())


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(1, "events, loaded_segments and ingest_counts", _create_core_tables),
    Migration(2, "rollups, rollup_days and rollup_dirty", _create_rollup_tables),
    Migration(3, "rollup_months and rollup_month_days", _create_rollup_month_tables),
    Migration(4, "pending_duplicates", _create_pending_duplicates),
)
LATEST_VERSION: Final = MIGRATIONS[-1].version


def apply_migrations(
    con: duckdb.DuckDBPyConnection,
    sql: DuckDBDialect = DUCKDB,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Apply the steps not yet recorded, in version order; returns the schema version."""
    con.execute(sql.create_schema_migrations())
    applied = applied_versions(con)
    latest = max((m.version for m in migrations), default=0)
    if applied and max(applied) > latest:
        raise SchemaDriftError(
            f"database schema version {max(applied)} is newer than this stumble ({latest})"
        )
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version not in applied:
            _apply_one(con, sql, migration)
    return latest


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    return {
        int(version)
        for (version,) in con.execute("SELECT version FROM schema_migrations").fetchall()
    }


def _apply_one(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect, migration: Migration) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        migration.apply(con, sql)
        con.execute(
            "INSERT INTO schema_migrations VALUES (?, epoch_ms(CAST(? AS BIGINT)))",
            [migration.version, time.time_ns() // 1_000_000],
        )
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def verify_events_schema(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect = DUCKDB) -> None:
    """Raise ``SchemaDriftError`` unless ``events`` has exactly the columns of ``StoredEvent``."""
    stored = dict(con.execute(sql.events_schema()).fetchall())
    expected = {c.name: sql.type_names[c.type] for c in EVENT_COLUMNS}
    missing = sorted(set(expected) - set(stored))
    mistyped = sorted(n for n in set(expected) & set(stored) if stored[n] != expected[n])
    unknown = sorted(set(stored) - set(expected))
    if missing or mistyped or unknown:
        raise SchemaDriftError(
            "events table does not match StoredEvent (a migration is missing): "
            f"missing={missing} mistyped={mistyped} unknown={unknown}"
        )
