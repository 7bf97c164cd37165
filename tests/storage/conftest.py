"""The parametrised ``store`` fixture (every backend) and builders for stored rows and segments."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from stumble.encryption import DataKeyRing, generate_key_text, parse_keys
from stumble.events import StoredEvent
from stumble.storage import DuckDBStore, EventStore, MemoryStore
from stumble.storage.duckdb_encryption import httpfs_extension_path

BASE_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z
DAY_MS = 24 * 3600 * 1000

_KIND_FIELDS: dict[str, dict[str, Any]] = {
    "action": {"action_id": "submit_request", "target": "primary_button", "position": "footer"},
    "screen_view": {"route": "/requests/:id", "referrer_screen": "request_list"},
    "form_submit": {"form_id": "service_request", "step": 2, "attempt": 3, "status": "fail"},
    "field_error": {
        "form_id": "service_request",
        "field_id": "iin_bin",
        "error_type": "format",
        "attempt": 1,
        "step": 1,
    },
    "operation_start": {"operation_id": "op_7f3a", "operation": "request_submit"},
    "operation_step": {
        "operation_id": "op_7f3a",
        "operation": "request_submit",
        "step_name": "server_response_received",
    },
    "operation_end": {
        "operation_id": "op_7f3a",
        "operation": "request_submit",
        "status": "timeout",
        "duration_ms": 15234.125,
    },
    "navigation": {"nav": "back"},
    "error": {
        "error_kind": "http",
        "error_type": "TypeError",
        "fingerprint": "0a1b2c3d4e5f6a7b",
        "module": "requests.form",
        "http_status": 503,
        "route": "/api/requests",
    },
    "vital": {"metric": "LCP", "value": 2512.5, "rating": "needs-improvement", "route": "/home"},
    "custom": {"params": '{"export_format":"xlsx","rows":1200,"ratio":0.25,"filtered":true}'},
}
KINDS: tuple[str, ...] = tuple(_KIND_FIELDS)


def new_event_id() -> str:
    return str(uuid.uuid4())


def make_event(kind: str = "action", **overrides: Any) -> StoredEvent:
    """A plausible guarded row of ``kind``; keyword arguments override any field."""
    fields: dict[str, Any] = {
        "event_id": new_event_id(),
        "environment": "production",
        "key_id": "wk_prod_1",
        "sample_rate": 1.0,
        "received_at": BASE_MS,
        "ts": BASE_MS - 120,
        "client_ts": BASE_MS - 3_600_120,
        "skew_ms": 3_600_000,
        "event_name": kind,
        "kind": kind,
        "session_id": "s_4f9d2c1ab7e0",
        "screen_id": "request_create",
        "schema_version": 3,
        "ui_version": "2024.06.1",
        **_KIND_FIELDS[kind],
    }
    fields.update(overrides)
    return StoredEvent(**fields)


def every_field_event() -> StoredEvent:
    """One row with every optional field set, whatever its kind, so no column goes untested."""
    fields: dict[str, Any] = {}
    for kind_fields in _KIND_FIELDS.values():
        fields.update(kind_fields)
    return make_event(
        "custom",
        **fields,
        feature_flags=["new_search", "beta_export"],
        experiment="exp_checkout_v2",
        tz="Asia/Almaty",
        role="operator",
        division="branch_north",
        device_type="desktop",
        browser="firefox",
        region="almaty",
        redactions=2,
        sample_rate=0.25,
    )


def write_segment(path: Path, rows: Sequence[StoredEvent]) -> Path:
    """Write rows as the spool does: one msgspec-encoded ``StoredEvent`` per line."""
    path.write_bytes(msgspec.json.Encoder().encode_lines(rows))
    return path


def session_rows(
    count: int, *, session_id: str, start_ms: int = BASE_MS, **overrides: Any
) -> list[StoredEvent]:
    """``count`` actions of one session, one millisecond apart."""
    return [
        make_event(
            "action",
            session_id=session_id,
            received_at=start_ms + i,
            ts=start_ms + i - 50,
            **overrides,
        )
        for i in range(count)
    ]


def make_data_keys() -> DataKeyRing:
    """A fresh data key ring; skips the test where DuckDB cannot write encrypted files."""
    if httpfs_extension_path() is None:
        pytest.skip(f"no httpfs extension for DuckDB {duckdb.__version__}: encryption off")
    return parse_keys(generate_key_text(), "test keys")


@pytest.fixture(params=["duckdb-file", "duckdb-encrypted", "duckdb-memory", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """Every backend; the contract suite runs once per backend (and on an encrypted file)."""
    backend: EventStore
    if request.param == "duckdb-file":
        backend = DuckDBStore(tmp_path / "stumble.duckdb", threads=2, memory_limit="1GB")
    elif request.param == "duckdb-encrypted":
        backend = DuckDBStore(
            tmp_path / "stumble.duckdb",
            threads=2,
            memory_limit="1GB",
            data_keys=make_data_keys(),
        )
    elif request.param == "duckdb-memory":
        backend = DuckDBStore(":memory:", threads=2)
    else:
        backend = MemoryStore()
    try:
        yield backend
    finally:
        backend.close()
