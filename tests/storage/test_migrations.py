"""Migrations: ordered, recorded, atomic per step, idempotent, and loud about drift."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from stumble.storage import LATEST_VERSION, DuckDBStore, SchemaDriftError
from stumble.storage.dialect import DUCKDB, DuckDBDialect
from stumble.storage.migrations import (
    MIGRATIONS,
    Migration,
    applied_versions,
    apply_migrations,
    verify_events_schema,
)


def test_versions_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


def test_a_fresh_database_records_every_step_once(tmp_path: Path) -> None:
    database = tmp_path / "stumble.duckdb"
    with DuckDBStore(database) as store:
        assert store.migrate() == LATEST_VERSION
    with DuckDBStore(database) as store:
        (rows,) = store.query("SELECT count(*) FROM schema_migrations").rows[0]
        tables = {name for (name,) in store.query("SELECT table_name FROM duckdb_tables()").rows}

    assert rows == LATEST_VERSION
    assert {"events", "loaded_segments", "ingest_counts", "schema_migrations"} <= tables


def _create_then_fail(con: duckdb.DuckDBPyConnection, sql: DuckDBDialect) -> None:
    con.execute("CREATE TABLE half_done (x INTEGER)")
    raise RuntimeError("step failed midway")


def test_a_failing_step_is_rolled_back_and_can_be_retried() -> None:
    con = duckdb.connect()
    failing = (*MIGRATIONS, Migration(LATEST_VERSION + 1, "breaks", _create_then_fail))

    with pytest.raises(RuntimeError, match="midway"):
        apply_migrations(con, DUCKDB, failing)

    assert applied_versions(con) == set(range(1, LATEST_VERSION + 1))
    assert con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'"
    ).fetchone() == (0,)

    fixed = (*MIGRATIONS, Migration(LATEST_VERSION + 1, "fixed", lambda c, s: None))
    assert apply_migrations(con, DUCKDB, fixed) == LATEST_VERSION + 1
    assert apply_migrations(con, DUCKDB, fixed) == LATEST_VERSION + 1


def test_steps_run_in_version_order_whatever_the_listing() -> None:
    con = duckdb.connect()
    order: list[int] = []
    steps = [
        Migration(2, "second", lambda c, s: order.append(2)),
        Migration(1, "first", lambda c, s: order.append(1)),
    ]

    apply_migrations(con, DUCKDB, steps)

    assert order == [1, 2]


def test_a_database_from_a_newer_stumble_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "stumble.duckdb"
    DuckDBStore(database).close()
    con = duckdb.connect(str(database))
    con.execute("INSERT INTO schema_migrations VALUES (?, now()::TIMESTAMP)", [LATEST_VERSION + 1])
    con.close()

    with pytest.raises(SchemaDriftError, match="newer"):
        DuckDBStore(database)


def test_a_column_without_a_migration_is_reported_by_name(tmp_path: Path) -> None:
    database = tmp_path / "stumble.duckdb"
    DuckDBStore(database).close()
    con = duckdb.connect(str(database))
    con.execute("ALTER TABLE events DROP COLUMN rating")
    con.execute("ALTER TABLE events ALTER COLUMN step TYPE BIGINT")
    con.close()

    with pytest.raises(SchemaDriftError, match=r"missing=\['rating'\] mistyped=\['step'\]"):
        DuckDBStore(database)


def test_the_created_schema_matches_stored_event() -> None:
    con = duckdb.connect()
    apply_migrations(con)

    verify_events_schema(con)  # raises on any difference
