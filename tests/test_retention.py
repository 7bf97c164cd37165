"""Retention tiers with a controllable clock: raw rows per environment, rollups by month,
quarantine counters by day; idempotent, audited, and a crash at any step is repaired by the
next run without losing what it should keep."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.storage.conftest import make_event

from stumble.access.audit import (
    Actor,
    AuditAction,
    AuditLog,
    archived_logs,
    audit_paths,
    read_records,
    verify,
)
from stumble.config import Settings
from stumble.retention import (
    DAY_MS,
    RetentionAudit,
    RetentionPolicy,
    preview_retention,
    run_retention,
    utc_day,
)
from stumble.storage import DuckDBStore, EventStore, IngestCount, RollupStatement, SpaceReclaimed

NOW_MS = 1_796_644_800_000  # 2026-12-07T12:00:00Z
TODAY = date(2026, 12, 7)
HOUR_MS = 3_600_000
POLICY = RetentionPolicy()  # prod 30, staging 7, test 1, dev 1, others 30; 13 months; 90 days
# (environment, received this long before NOW, kept by POLICY)
ROWS = (
    ("prod", 40 * DAY_MS, False),
    ("prod", 29 * DAY_MS, True),
    ("prod", HOUR_MS, True),
    ("dev", 2 * DAY_MS, False),
    ("dev", HOUR_MS, True),
    ("qa", 31 * DAY_MS, False),  # not listed: the default 30 days
    ("qa", 10 * DAY_MS, True),
)
CELL = (
    "SELECT ? AS environment, CAST(? AS DATE) AS day, 'volume' AS family, '' AS dim, "
    "NULL AS dim_value, 'action' AS k1, NULL AS k2, NULL AS k3, NULL AS k4, 'n' AS measure, "
    "count(DISTINCT session_id) AS sessions, count(*) AS events, NULL AS weighted, "
    "NULL AS value_sum, NULL AS sketch_keys, NULL AS sketch_counts FROM events "
    "WHERE environment = ? AND CAST(ts AS DATE) = ?"
)


def refresh(store: EventStore) -> Callable[[], None]:
    """A stand-in for ``stumble.rollups``: every dirty day rebuilt from its raw rows."""

    def rebuild() -> None:
        for environment, day in store.dirty_rollup_days():
            statement = RollupStatement(CELL, (environment, day, environment, day))
            store.replace_rollup_day(environment, day, [statement], "plan")

    return rebuild


def counter(day: date, count: int = 1) -> IngestCount:
    return IngestCount(day, "prod", "form_submit", "rejected", "too_long", "", count)


def fill(store: EventStore) -> None:
    store.write_rows(
        [make_event(environment=env, received_at=NOW_MS - age, ts=NOW_MS - age) for env, age, _ in ROWS]
    )  # fmt: skip
    # rollup days of long ago (their raw rows went long since): 14 and 12 months back
    for day in (date(2025, 10, 31), date(2025, 11, 1)):
        store.write_rows([make_event(environment="prod", received_at=NOW_MS, ts=_ms(day))])
    store.add_ingest_counts([counter(TODAY - dt.timedelta(days=91)), counter(TODAY)])


def _ms(day: date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp() * 1000)


def snapshot(store: DuckDBStore) -> tuple[Any, ...]:
    """Everything retention may touch (``built_at`` aside: it is the wall clock; and event ids,
    which are random)."""
    events = sorted((e.environment, e.received_at, e.ts) for e in store.read_events())
    days = [(d.environment, d.day, d.cells, d.sealed, d.dirty) for d in store.rollup_days()]
    cells = store.query("SELECT * FROM rollups ORDER BY ALL").rows
    counters = store.ingest_counts(date(2000, 1, 1), date(2100, 1, 1))
    return (events, days, cells, counters)


@pytest.fixture
def store() -> DuckDBStore:
    store = DuckDBStore(":memory:")
    fill(store)
    refresh(store)()
    return store


def test_each_environment_keeps_its_own_days(store: DuckDBStore) -> None:
    report = run_retention(store, POLICY, NOW_MS, refresh_rollups=None, audit=None)

    kept = sorted((row.environment, NOW_MS - row.received_at) for row in store.read_events())
    expected = [(env, age) for env, age, keep in ROWS if keep]
    assert [k for k in kept if k[1] > 0] == sorted(expected)
    by_env = {deletion.environment: deletion for deletion in report.raw}
    assert {env: d.rows_deleted for env, d in by_env.items()} == {
        "dev": 1, "prod": 1, "qa": 1, "staging": 0, "test": 0,
    }  # fmt: skip
    assert by_env["prod"].days_kept == 30 and by_env["qa"].days_kept == 30
    assert by_env["dev"].cutoff_ms == NOW_MS - DAY_MS
    assert by_env["prod"].days_sealed == (utc_day(NOW_MS - 40 * DAY_MS),)


def test_rollups_keep_thirteen_months_before_the_current_one(store: DuckDBStore) -> None:
    report = run_retention(store, POLICY, NOW_MS, refresh_rollups=None, audit=None)

    assert report.first_rollup_day == date(2025, 11, 1)
    assert report.rollup_cells_deleted == 1
    days = {d.day for d in store.rollup_days()}
    assert date(2025, 10, 31) not in days and date(2025, 11, 1) in days
    assert store.query("SELECT count(*) FROM rollups WHERE day < '2025-11-01'").rows == [(0,)]


def test_quarantine_counters_go_by_their_day(store: DuckDBStore) -> None:
    report = run_retention(store, POLICY, NOW_MS, refresh_rollups=None, audit=None)

    assert report.first_quarantine_day == TODAY - dt.timedelta(days=90)
    assert report.quarantine_counters_deleted == 1
    assert store.ingest_counts(date(2000, 1, 1), TODAY) == [counter(TODAY)]


def test_a_second_run_deletes_nothing_and_records_nothing(
    store: DuckDBStore, tmp_path: Path
) -> None:
    audit_log = AuditLog.in_data_dir(tmp_path)
    audit = RetentionAudit(audit_log, Actor.system())
    first = run_retention(store, POLICY, NOW_MS, refresh_rollups=refresh(store), audit=audit)
    state = snapshot(store)
    records = len(read_records(audit_paths(tmp_path).log).records)

    second = run_retention(store, POLICY, NOW_MS, refresh_rollups=refresh(store), audit=audit)

    assert first.deleted_anything and not second.deleted_anything
    assert snapshot(store) == state
    assert len(read_records(audit_paths(tmp_path).log).records) == records
    audit_log.close()


def test_every_deletion_is_one_audit_record_of_counts(store: DuckDBStore, tmp_path: Path) -> None:
    audit_log = AuditLog.in_data_dir(tmp_path)
    run_retention(
        store, POLICY, NOW_MS, refresh_rollups=None, audit=RetentionAudit(audit_log, Actor.cli())
    )
    audit_log.close()

    records = read_records(audit_paths(tmp_path).log).records
    done = sorted(
        (r.detail.target, r.detail.environment, r.detail.rows)
        for r in records
        if r.action == AuditAction.RETENTION_RUN and r.detail is not None
    )
    assert done == [
        ("quarantine", None, 1),
        ("raw", "dev", 1),
        ("raw", "prod", 1),
        ("raw", "qa", 1),
        ("rollups", None, 1),
    ]
    assert all(r.actor == Actor.cli() for r in records if r.action == "retention.run")
    assert verify(audit_paths(tmp_path).log, audit_paths(tmp_path).key.read_bytes()).ok


# --- order and crashes ------------------------------------------------------------------------


class CrashError(Exception):
    pass


@dataclass
class Calls:
    names: list[str]
    fail_at: int | None = None

    def step(self, name: str) -> None:
        if self.fail_at is not None and len(self.names) == self.fail_at:
            raise CrashError(name)
        self.names.append(name)


class RecordingStore(DuckDBStore):
    """Records (and can fail) every step retention takes, in order."""

    calls: Calls

    def seal_rollup_days(self, environment: str, received_before_ms: int) -> list[date]:
        self.calls.step(f"seal:{environment}")
        return super().seal_rollup_days(environment, received_before_ms)

    def delete_expired(self, environment: str, received_before_ms: int) -> int:
        self.calls.step(f"delete:{environment}")
        return super().delete_expired(environment, received_before_ms)

    def delete_rollups_before(self, day: date) -> int:
        self.calls.step("rollups")
        return super().delete_rollups_before(day)

    def delete_ingest_counts_before(self, day: date) -> int:
        self.calls.step("quarantine")
        return super().delete_ingest_counts_before(day)

    def reclaim_space(self, compact_above: float, min_free_bytes: int = 0) -> SpaceReclaimed:
        self.calls.step("reclaim")
        return super().reclaim_space(compact_above, min_free_bytes)


def recording_store(fail_at: int | None = None) -> tuple[RecordingStore, Callable[[], None]]:
    store = RecordingStore(":memory:")
    store.calls = Calls([])
    fill(store)  # loads dirty the days; nothing is built yet: the run's refresh does it
    rebuild = refresh(store)

    def recorded_refresh() -> None:
        store.calls.step("refresh")
        rebuild()

    store.calls.fail_at = fail_at
    return store, recorded_refresh


def test_rollups_are_refreshed_first_and_each_day_sealed_before_its_rows_go() -> None:
    store, rebuild = recording_store()
    run_retention(store, POLICY, NOW_MS, refresh_rollups=rebuild, audit=None)

    names = store.calls.names
    assert names[0] == "refresh"
    for environment in ("dev", "prod", "qa", "staging", "test"):
        assert names.index(f"seal:{environment}") + 1 == names.index(f"delete:{environment}")
    assert names[-3:] == ["rollups", "quarantine", "reclaim"]


def _final_state(fail_at: int | None) -> tuple[Any, ...]:
    store, rebuild = recording_store(fail_at)
    if fail_at is not None:
        with pytest.raises(CrashError):
            run_retention(store, POLICY, NOW_MS, refresh_rollups=rebuild, audit=None)
    store.calls.fail_at = None
    run_retention(store, POLICY, NOW_MS, refresh_rollups=rebuild, audit=None)
    return snapshot(store)


def _steps() -> int:
    clean, rebuild = recording_store()
    run_retention(clean, POLICY, NOW_MS, refresh_rollups=rebuild, audit=None)
    return len(clean.calls.names)


def test_a_crash_at_any_step_ends_as_a_run_without_one() -> None:
    expected = _final_state(None)
    steps = _steps()
    assert steps == 1 + 2 * 5 + 3  # refresh, seal and delete per environment, three more
    events, days, cells, counters = expected
    # what it must keep: the rows in retention, and the cells of the 40-day-old prod day,
    # built from its rows before they went, sealed
    old_day = utc_day(NOW_MS - 40 * DAY_MS)
    assert ("prod", old_day, 1, True, False) in days
    assert any(cell[:2] == ("prod", old_day) for cell in cells)
    assert len(events) == sum(keep for *_, keep in ROWS) + 2  # + Oct 31 and Nov 1
    assert counters == [counter(TODAY)]
    for fail_at in range(steps):
        assert _final_state(fail_at) == expected, f"crash at step {fail_at}"


def test_late_events_never_rebuild_a_day_from_what_retention_left() -> None:
    """Whatever step a run stopped at, two late events for a day whose rows it deletes make
    the day dirty; the day's cells count either its first row only (sealed before the rows
    went) or all three (built before anything was deleted), never the two left."""
    old_ms = NOW_MS - 40 * DAY_MS
    for fail_at in range(_steps()):
        store, rebuild = recording_store(fail_at)
        with pytest.raises(CrashError):
            run_retention(store, POLICY, NOW_MS, refresh_rollups=rebuild, audit=None)
        late = [make_event(environment="prod", received_at=NOW_MS, ts=old_ms) for _ in range(2)]
        store.write_rows(late)
        store.calls.fail_at = None
        run_retention(store, POLICY, NOW_MS, refresh_rollups=rebuild, audit=None)
        (events,) = store.query(
            "SELECT events FROM rollups WHERE environment = 'prod' AND day = ?",
            [utc_day(old_ms)],
        ).rows[0]
        assert events in (1, 3), f"crash at step {fail_at}"


# --- space, policy, preview ----------------------------------------------------------------------


def test_a_large_deletion_shrinks_the_file(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "stumble.duckdb")
    for day in range(10):
        received = NOW_MS - (40 - day) * DAY_MS
        rows = [make_event(environment="prod", received_at=received + i, ts=received + i,
                           session_id=f"s_{day}_{i % 50}") for i in range(15_000)]  # fmt: skip
        store.write_rows(rows)
    store.write_rows([make_event(environment="prod", received_at=NOW_MS, ts=NOW_MS)])
    store.reclaim_space(1.0)
    policy = RetentionPolicy(compact_min_free_bytes=0)  # a small file, to keep the test short
    report = run_retention(store, policy, NOW_MS, refresh_rollups=None, audit=None)

    assert report.rows_deleted == 150_000 and report.space.compacted
    assert report.bytes_before is not None and report.bytes_after is not None
    assert report.bytes_after < report.bytes_before / 2
    assert store.count_events() == 1
    store.close()


def test_the_policy_comes_from_settings() -> None:
    settings = Settings(
        retention_raw_days={"prod": 60},
        retention_raw_default_days=5,
        retention_rollup_months=2,
        retention_quarantine_days=10,
    )
    policy = RetentionPolicy.from_settings(settings)
    assert (policy.raw_days_for("prod"), policy.raw_days_for("dev")) == (60, 5)
    assert policy.first_rollup_day(NOW_MS) == date(2026, 10, 1)
    assert policy.first_quarantine_day(NOW_MS) == date(2026, 11, 27)
    assert RetentionPolicy().raw_days == {"prod": 30, "staging": 7, "test": 1, "dev": 1}
    january = RetentionPolicy(rollup_months=12).first_rollup_day(_ms(date(2027, 1, 31)))
    assert january == date(2026, 1, 1)
    with pytest.raises(ValueError, match="at least one day"):
        RetentionPolicy(raw_days={"prod": 0})


def test_a_preview_says_what_a_run_will_delete_and_deletes_nothing(store: DuckDBStore) -> None:
    state = snapshot(store)
    preview = preview_retention(store, POLICY, NOW_MS)
    assert snapshot(store) == state and preview.dry_run

    report = run_retention(store, POLICY, NOW_MS, refresh_rollups=None, audit=None)
    assert [(d.environment, d.rows_deleted, d.days_sealed) for d in preview.raw] == [
        (d.environment, d.rows_deleted, d.days_sealed) for d in report.raw
    ]
    assert preview.rollup_cells_deleted == report.rollup_cells_deleted
    assert preview.quarantine_counters_deleted == report.quarantine_counters_deleted


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> float:
        return self.now_ms / 1000


def test_the_audit_log_is_archived_monthly_and_old_archives_go(
    store: DuckDBStore, tmp_path: Path
) -> None:
    clock = Clock(NOW_MS - 440 * DAY_MS)
    audit_log = AuditLog.in_data_dir(tmp_path, clock=clock)
    audit = RetentionAudit(audit_log, Actor.system())
    audit_log.record(Actor.cli(), AuditAction.SETTINGS_CHANGE)
    clock.now_ms = NOW_MS - 405 * DAY_MS  # the log's first record is 35 days old
    first = run_retention(store, POLICY, clock.now_ms, refresh_rollups=None, audit=audit)
    assert first.audit is not None and first.audit.archived is not None
    assert first.audit.files_deleted == 0
    (archive,) = archived_logs(audit_paths(tmp_path).log)
    archived_records = len(read_records(archive.path).records)

    clock.now_ms = NOW_MS  # that archive now ends 405 days ago, past 400
    second = run_retention(store, POLICY, NOW_MS, refresh_rollups=None, audit=audit)
    audit_log.close()

    assert second.audit is not None
    assert (second.audit.files_deleted, second.audit.records_deleted) == (1, archived_records)
    assert second.audit.archived is not None  # the log's own first digest was a month old
    remaining = archived_logs(audit_paths(tmp_path).log)
    assert [a.path.name for a in remaining] == [second.audit.archived]
    live = read_records(audit_paths(tmp_path).log).records
    deleted = [r.detail for r in live if r.detail and r.detail.target == "audit"]
    assert [d.rows for d in deleted] == [archived_records]
    paths = audit_paths(tmp_path)
    assert verify(paths.log, paths.key.read_bytes()).ok
    assert verify(remaining[0].path, paths.key.read_bytes()).ok


def test_a_little_free_space_is_not_worth_a_copy(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "stumble.duckdb")
    received = NOW_MS - 40 * DAY_MS
    store.write_rows([make_event(received_at=received + i, ts=received) for i in range(20_000)])
    store.write_rows([make_event(environment="prod", received_at=NOW_MS, ts=NOW_MS)])

    any_share = RetentionPolicy(compact_free_share=0.0)  # only the bytes can say no
    report = run_retention(store, any_share, NOW_MS, refresh_rollups=None, audit=None)

    assert report.rows_deleted == 20_000
    assert report.space.checkpointed and not report.space.compacted
    assert report.space.free_share > 0  # free, but a few MB: not worth a copy
    store.close()
