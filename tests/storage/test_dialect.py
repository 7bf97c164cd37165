"""The column model is derived from ``StoredEvent``; DuckDB names and conversions follow it."""

from __future__ import annotations

import msgspec
import pytest

from stumble.events import STORED_FIELDS
from stumble.storage.dialect import (
    DUCKDB,
    EVENT_COLUMN_NAMES,
    EVENT_COLUMNS,
    STORAGE_TYPE_OVERRIDES,
    ColumnType,
    derive_columns,
)


def test_there_is_one_column_per_stored_field_in_order() -> None:
    assert EVENT_COLUMN_NAMES == STORED_FIELDS


def test_types_follow_annotations_unless_overridden() -> None:
    types = {c.name: c.type for c in EVENT_COLUMNS}

    assert types["environment"] is ColumnType.STRING
    assert types["client_ts"] is ColumnType.INT64
    assert types["duration_ms"] is ColumnType.FLOAT64
    assert types["feature_flags"] is ColumnType.STRING_LIST
    assert {name: types[name] for name in STORAGE_TYPE_OVERRIDES} == dict(STORAGE_TYPE_OVERRIDES)


def test_required_fields_are_not_null_and_defaults_are_kept() -> None:
    columns = {c.name: c for c in EVENT_COLUMNS}

    assert not columns["event_id"].nullable
    assert columns["rating"].nullable
    assert (columns["feature_flags"].default, columns["redactions"].default) == ([], 0)
    ddl = DUCKDB.create_events()
    assert "event_id UUID NOT NULL" in ddl
    assert "received_at TIMESTAMP NOT NULL" in ddl
    assert "feature_flags VARCHAR[] NOT NULL" in ddl  # a default, not an option
    assert "redactions SMALLINT NOT NULL" in ddl
    assert "params JSON" in ddl


def test_the_segment_reader_converts_epoch_ms_and_fills_omitted_defaults() -> None:
    sql = DUCKDB.insert_segment()

    assert "format = 'newline_delimited'" in sql
    assert "'received_at': 'BIGINT'" in sql
    assert "epoch_ms(received_at) AS received_at" in sql
    assert "coalesce(feature_flags, CAST([] AS VARCHAR[])) AS feature_flags" in sql
    assert "coalesce(redactions, 0) AS redactions" in sql


class _Nested(msgspec.Struct):
    name: str
    tags: dict[str, int]


class _Ambiguous(msgspec.Struct):
    value: int | str | None = None


@pytest.mark.parametrize("struct", [_Nested, _Ambiguous])
def test_a_field_with_no_column_type_is_refused(struct: type[msgspec.Struct]) -> None:
    with pytest.raises(TypeError, match="no column type"):
        derive_columns(struct)
