"""The loader's housekeeping is in the audit log: retention runs and destroyed session keys."""

from __future__ import annotations

import time
from pathlib import Path

from stumble.access.audit import audit_paths, read_records
from stumble.app import CollectorServices
from stumble.config import Settings
from stumble.events import StoredEvent

DAY_MS = 86_400_000


def old_row(received_at: int) -> StoredEvent:
    return StoredEvent(
        event_id="3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f", environment="dev", key_id="k",
        sample_rate=1.0, received_at=received_at, ts=received_at, client_ts=received_at,
        skew_ms=0, event_name="screen_view", kind="screen_view", session_id="h_abcdefghijklmnop",
        screen_id="home", schema_version=3, ui_version="1.4.2",
    )  # fmt: skip


def test_retention_and_key_destruction_are_recorded(tmp_path: Path) -> None:
    services = CollectorServices(Settings(data_dir=str(tmp_path / "data")))
    services.open()
    try:
        now_ms = int(time.time() * 1000)
        services.session_keys.key_for(now_ms - 3 * DAY_MS)  # a key that is past its 48 hours
        services.store.write_rows([old_row(now_ms - 30 * DAY_MS)])  # older than dev's 7 days
        services.loader.run_housekeeping(now_ms)
    finally:
        services.close()
    records = read_records(audit_paths(tmp_path / "data").log).records
    done = [(r.action, r.actor.kind, r.detail) for r in records if r.action != "audit.digest"]
    assert any(
        a == "retention.run" and d and d.rows == 1 and d.environment == "dev" for a, _, d in done
    )
    destroyed = [d.target for a, k, d in done if a == "session_key.destroy" and k == "system" and d]
    day = time.strftime("%Y-%m-%d", time.gmtime((now_ms - 3 * DAY_MS) // 1000))
    assert destroyed == [f"session-{day}"]


def test_housekeeping_rolls_a_day_up_before_retention_deletes_its_rows(tmp_path: Path) -> None:
    services = CollectorServices(Settings(data_dir=str(tmp_path / "data")))
    services.open()
    try:
        now_ms = int(time.time() * 1000)
        services.store.write_rows([old_row(now_ms - 30 * DAY_MS)])  # dev keeps 1 day
        services.loader.run_housekeeping(now_ms)
        report = services.loader.status.last_retention
        (day,) = services.store.rollup_days("dev")
        volume = services.store.query(
            "SELECT sessions, value_sum FROM rollups WHERE family = 'volume' AND dim = ''"
        ).rows
        left = services.store.count_events("dev")
    finally:
        services.close()
    assert report is not None and report.rows_deleted == 1
    assert services.loader.status.retention_deleted["dev"] == 1
    assert left == 0
    assert (day.sealed, day.built_at_ms is not None) == (True, True)
    assert volume == [(1, 1.0)]  # the day's trend outlives its raw row
