"""What only the in-memory double does: refuse SQL, clearly."""

from __future__ import annotations

import pytest
from tests.storage.conftest import make_event

from stumble.storage import MemoryStore


def test_query_explains_that_analytics_needs_sql() -> None:
    with (
        MemoryStore() as store,
        pytest.raises(NotImplementedError, match=r"DuckDBStore\(':memory:'\)"),
    ):
        store.query("SELECT 1")


def test_rows_returned_are_copies() -> None:
    with MemoryStore() as store:
        store.write_rows([make_event("action", feature_flags=[])])
        store.read_events()[0].screen_id = "changed"

        assert store.read_events()[0].screen_id == "request_create"
