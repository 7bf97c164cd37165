"""Retention tiers: raw events per environment, daily rollups, quarantine counters, the audit
log; then space.

Tiers (``RetentionPolicy``, from settings): raw events by server receive time, per environment
(prod 30 days, staging 7, test and dev 1 by default; an unlisted environment the default
days); rollup days by calendar month (the current month and the 13 before it by default);
quarantine counters by their day (90 days); audit records 400 days (the log is archived
monthly, an archive goes once its last record is past that). The server runs
``run_retention`` from the loader's housekeeping (the loader is the database's one writer);
``stumble retention run`` runs it while no server holds the file.

Order, and why a crash anywhere loses nothing it should keep and leaves nothing it should
have deleted once the next run is done. Each step is idempotent on its own: it deletes or
marks by a cut-off computed from the clock, so running it again does nothing more.

a. ``refresh_rollups()``: days a load touched are rebuilt from their raw rows while those are
   still whole. A crash here has deleted nothing.
b. per environment, ``seal_rollup_days`` *before* ``delete_expired``: a day whose raw rows
   start disappearing is sealed first, so no later refresh (a late event dirtied the day)
   rebuilds it from what is left. A crash between the two leaves days sealed whose rows are
   all still there: the next run seals the same days again and deletes.
c. ``delete_expired`` per environment. A crash after some environments: the next run finds
   nothing more in those and does the rest.
d. ``delete_rollups_before`` the first kept day, e. ``delete_ingest_counts_before`` theirs:
   each one transaction, by cut-off.
f. the audit log (``AuditLog.rotate``): once its first record is a month old it is signed,
   hard-linked into ``audit/archive/`` and replaced by a new log whose first digest carries
   the archived chain's last signature; archives past ``audit_days`` are deleted. A crash
   after the link is finished by the next run (the same archive name, the same file).
g. ``reclaim_space``: a CHECKPOINT, and when the file is mostly free a copy into a new file
   renamed over the old one (``DuckDBStore._compact``: the old file stays whole until the
   rename, the new one is fsynced before it). A crash here loses no row; the next run
   checkpoints (and compacts) again.

Audit. Each deletion that removed something is one ``retention.run`` record (``target`` the
tier: ``raw`` with its environment, ``rollups``, ``quarantine``, ``audit``; ``rows`` the
count); a run
that deletes nothing writes none. Records are written after the deletion, since the count is
only known then, and a record that cannot be written is logged, never a reason to keep data
past its retention (the loader's rule). A crash between a deletion and its record loses that
record: the next run has nothing left to delete there.

Space (measured with ``benchmarks/retention.py``, DuckDB 1.5; ``docs/decisions.md`` 43).
DELETE only marks rows; a checkpoint drops row groups whose rows are all deleted (and rewrites
partly deleted ones) and puts their blocks on the free list. Free blocks are reused by later
writes, so after the first window the file stops growing, but the file is truncated only when
the free blocks are at its end, and only by a checkpoint that writes something (a second
CHECKPOINT, even FORCE, with nothing new is skipped). Retention deletes the oldest rows, which
sit at the front of the file: the end stays in use, so the file never shrinks by itself.
VACUUM does not reclaim anything. Only a copy into a new file (``COPY FROM DATABASE``) gives
the space back; it is done when more than ``compact_free_share`` of the file, and at least
``compact_min_free_bytes`` (64 MiB), is free (a large deletion: a first run on old data, a
shorter retention setting). Measured at 1.98M rows
over 40 days, the oldest 75% deleted: DELETE and CHECKPOINT leave the file at 98 MB with 73%
of its blocks free; new rows reuse them; the copy makes it 27 MB, the whole run 1.4 s.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from stumble.access.audit import (
    Actor,
    ArchiveDeletion,
    AuditAction,
    AuditDetail,
    AuditError,
    AuditLog,
    Outcome,
    archived_logs,
)
from stumble.storage import EventStore, SpaceReclaimed
from stumble.storage.base import utc_day

if TYPE_CHECKING:
    from stumble.config import Settings

log = logging.getLogger("stumble.retention")
DAY_MS: Final = 86_400_000
RAW: Final = "raw"
ROLLUPS: Final = "rollups"
QUARANTINE: Final = "quarantine"
AUDIT: Final = "audit"
AUDIT_ROTATION_DAYS: Final = 30


@dataclass(frozen=True)
class RetentionPolicy:
    """The tiers in force. ``raw_days`` lists environments; any other one keeps
    ``raw_default_days``."""

    raw_days: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"prod": 30, "staging": 7, "test": 1, "dev": 1})
    )
    raw_default_days: int = 30
    rollup_months: int = 13
    quarantine_days: int = 90
    audit_days: int = 400
    compact_free_share: float = 0.3
    compact_min_free_bytes: int = 64 * 1024 * 1024
    """Below this much free space a copy is not worth pausing the writer for."""

    def __post_init__(self) -> None:
        days = [*self.raw_days.values(), self.raw_default_days, self.quarantine_days]
        days.append(self.audit_days)
        if min(days) < 1 or self.rollup_months < 1:
            raise ValueError("every retention keeps at least one day (or month)")
        object.__setattr__(self, "raw_days", MappingProxyType(dict(self.raw_days)))

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            raw_days=settings.retention_raw_days,
            raw_default_days=settings.retention_raw_default_days,
            rollup_months=settings.retention_rollup_months,
            quarantine_days=settings.retention_quarantine_days,
            audit_days=settings.retention_audit_days,
            compact_free_share=settings.retention_compact_free_share,
        )

    def raw_days_for(self, environment: str) -> int:
        return self.raw_days.get(environment, self.raw_default_days)

    def raw_cutoff_ms(self, environment: str, now_ms: int) -> int:
        """Rows received before this (epoch ms) are past retention."""
        return now_ms - self.raw_days_for(environment) * DAY_MS

    def first_rollup_day(self, now_ms: int) -> dt.date:
        """The first day of the month ``rollup_months`` before the current one (UTC)."""
        today = utc_day(now_ms)
        months = today.year * 12 + today.month - 1 - self.rollup_months
        return dt.date(months // 12, months % 12 + 1, 1)

    def first_quarantine_day(self, now_ms: int) -> dt.date:
        return utc_day(now_ms) - dt.timedelta(days=self.quarantine_days)

    def audit_cutoff_ms(self, now_ms: int) -> int:
        """Archived audit logs whose last record is older than this are deleted."""
        return now_ms - self.audit_days * DAY_MS

    def audit_rotate_before_ms(self, now_ms: int) -> int:
        """The live audit log is archived once its first record is older than this: a month,
        or the whole retention if that is shorter, so archives go at most a month late."""
        return now_ms - min(AUDIT_ROTATION_DAYS, self.audit_days) * DAY_MS


@dataclass(frozen=True)
class RawDeletion:
    """One environment's raw tier in one run."""

    environment: str
    days_kept: int
    cutoff_ms: int
    rows_deleted: int
    days_sealed: tuple[dt.date, ...]


@dataclass(frozen=True)
class AuditExpiry:
    """The audit tier in one run: the live log archived (its archive's name) or not, and the
    archived logs (and their records) deleted as past ``audit_days``."""

    cutoff_ms: int
    archived: str | None
    files_deleted: int
    records_deleted: int


@dataclass(frozen=True)
class RetentionReport:
    """What one run deleted (or, dry, would delete) and the store's size around it."""

    now_ms: int
    raw: tuple[RawDeletion, ...]
    first_rollup_day: dt.date
    rollup_cells_deleted: int
    first_quarantine_day: dt.date
    quarantine_counters_deleted: int
    audit: AuditExpiry | None
    bytes_before: int | None
    bytes_after: int | None
    space: SpaceReclaimed
    dry_run: bool = False

    @property
    def rows_deleted(self) -> int:
        return sum(deletion.rows_deleted for deletion in self.raw)

    @property
    def deleted_anything(self) -> bool:
        audit_records = 0 if self.audit is None else self.audit.records_deleted
        counts = (self.rows_deleted, self.rollup_cells_deleted, self.quarantine_counters_deleted)
        return any(counts) or audit_records > 0


@dataclass(frozen=True)
class RetentionAudit:
    """Where deletions are recorded, and as whom (``system`` in the server, ``cli``)."""

    log: AuditLog
    actor: Actor

    def deleted(self, tier: str, rows: int, environment: str | None = None) -> None:
        if rows == 0:
            return
        detail = AuditDetail(target=tier, environment=environment, rows=rows)
        try:
            self.log.record(self.actor, AuditAction.RETENTION_RUN, Outcome.OK, detail)
        except AuditError as error:
            # Deletion is an obligation: never held back (nor undone) for want of its record.
            log.warning("retention.run not recorded in the audit log: %s", type(error).__name__)

    def expire(self, policy: RetentionPolicy, now_ms: int) -> AuditExpiry:
        """Archive the live log when due, delete archives past retention, record it. A log
        that cannot be rotated or cleaned now is tried again at the next run."""
        cutoff_ms = policy.audit_cutoff_ms(now_ms)
        archived: str | None = None
        deletion = ArchiveDeletion(0, 0)
        try:
            archive = self.log.rotate(now_ms, policy.audit_rotate_before_ms(now_ms))
            archived = None if archive is None else archive.name
            deletion = self.log.delete_archives_before(cutoff_ms)
        except (AuditError, OSError) as error:
            log.warning("audit log retention did not finish: %s", type(error).__name__)
        self.deleted(AUDIT, deletion.records)
        return AuditExpiry(cutoff_ms, archived, deletion.files, deletion.records)

    def preview(self, policy: RetentionPolicy, now_ms: int) -> AuditExpiry:
        """What ``expire`` would delete now (rotation aside)."""
        cutoff_ms = policy.audit_cutoff_ms(now_ms)
        expired = [a for a in archived_logs(self.log.path) if a.last_at_ms < cutoff_ms]
        records = 0
        for archive in expired:
            with archive.path.open("rb") as lines:
                records += sum(1 for _ in lines)
        return AuditExpiry(cutoff_ms, None, len(expired), records)


def run_retention(
    store: EventStore,
    policy: RetentionPolicy,
    now_ms: int,
    *,
    refresh_rollups: Callable[[], object] | None,
    audit: RetentionAudit | None,
) -> RetentionReport:
    """Apply every tier in the order the module doc argues for; idempotent."""
    bytes_before = store.storage_bytes()
    if refresh_rollups is not None:
        refresh_rollups()
    raw = tuple(
        _expire_raw(store, policy, environment, now_ms, audit)
        for environment in _environments(store, policy)
    )
    first_rollup_day = policy.first_rollup_day(now_ms)
    cells = store.delete_rollups_before(first_rollup_day)
    if audit is not None:
        audit.deleted(ROLLUPS, cells)
    first_quarantine_day = policy.first_quarantine_day(now_ms)
    counters = store.delete_ingest_counts_before(first_quarantine_day)
    if audit is not None:
        audit.deleted(QUARANTINE, counters)
    audit_expiry = None if audit is None else audit.expire(policy, now_ms)
    space = store.reclaim_space(policy.compact_free_share, policy.compact_min_free_bytes)
    return RetentionReport(
        now_ms=now_ms,
        raw=raw,
        first_rollup_day=first_rollup_day,
        rollup_cells_deleted=cells,
        first_quarantine_day=first_quarantine_day,
        quarantine_counters_deleted=counters,
        audit=audit_expiry,
        bytes_before=bytes_before,
        bytes_after=store.storage_bytes(),
        space=space,
    )


def _expire_raw(
    store: EventStore,
    policy: RetentionPolicy,
    environment: str,
    now_ms: int,
    audit: RetentionAudit | None,
) -> RawDeletion:
    cutoff_ms = policy.raw_cutoff_ms(environment, now_ms)
    sealed = store.seal_rollup_days(environment, cutoff_ms)  # before the rows go: see (b)
    deleted = store.delete_expired(environment, cutoff_ms)
    if audit is not None:
        audit.deleted(RAW, deleted, environment)
    return RawDeletion(
        environment=environment,
        days_kept=policy.raw_days_for(environment),
        cutoff_ms=cutoff_ms,
        rows_deleted=deleted,
        days_sealed=tuple(sealed),
    )


def preview_retention(
    store: EventStore,
    policy: RetentionPolicy,
    now_ms: int,
    audit: RetentionAudit | None = None,
) -> RetentionReport:
    """What ``run_retention`` would delete now, deleting nothing (read-only SQL: a SQL store)."""
    raw = tuple(
        _preview_raw(store, policy, environment, now_ms)
        for environment in _environments(store, policy)
    )
    first_rollup_day = policy.first_rollup_day(now_ms)
    first_quarantine_day = policy.first_quarantine_day(now_ms)
    size = store.storage_bytes()
    return RetentionReport(
        now_ms=now_ms,
        raw=raw,
        first_rollup_day=first_rollup_day,
        rollup_cells_deleted=_count(store, _OLD_ROLLUPS, first_rollup_day),
        first_quarantine_day=first_quarantine_day,
        quarantine_counters_deleted=_count(store, _OLD_COUNTERS, first_quarantine_day),
        audit=None if audit is None else audit.preview(policy, now_ms),
        bytes_before=size,
        bytes_after=size,
        space=SpaceReclaimed(),
        dry_run=True,
    )


def _preview_raw(
    store: EventStore, policy: RetentionPolicy, environment: str, now_ms: int
) -> RawDeletion:
    cutoff_ms = policy.raw_cutoff_ms(environment, now_ms)
    days = store.query(_EXPIRED_DAYS, [environment, cutoff_ms]).rows
    return RawDeletion(
        environment=environment,
        days_kept=policy.raw_days_for(environment),
        cutoff_ms=cutoff_ms,
        rows_deleted=_count(store, _EXPIRED_ROWS, environment, cutoff_ms),
        days_sealed=tuple(day for (day,) in days),
    )


_EXPIRED_ROWS: Final = (
    "SELECT count(*) FROM events WHERE environment = ? "
    "AND received_at < epoch_ms(CAST(? AS BIGINT))"
)
_EXPIRED_DAYS: Final = (
    "SELECT DISTINCT CAST(ts AS DATE) AS day FROM events WHERE environment = ? "
    "AND received_at < epoch_ms(CAST(? AS BIGINT)) ORDER BY day"
)
_OLD_ROLLUPS: Final = "SELECT count(*) FROM rollups WHERE day < ?"
_OLD_COUNTERS: Final = "SELECT count(*) FROM ingest_counts WHERE day < ?"


@dataclass(frozen=True)
class RawHolding:
    """What one environment holds now."""

    environment: str
    rows: int
    oldest_received_ms: int


@dataclass(frozen=True)
class RetentionStatus:
    """What the store holds, tier by tier (read-only SQL: a SQL store)."""

    raw: tuple[RawHolding, ...]
    oldest_rollup_day: dt.date | None
    rollup_days: int
    sealed_days: int
    dirty_days: int
    oldest_counter_day: dt.date | None
    storage_bytes: int | None


def retention_status(store: EventStore) -> RetentionStatus:
    raw = tuple(
        RawHolding(str(environment), int(rows), int(oldest))
        for environment, rows, oldest in store.query(_RAW_HOLDINGS).rows
    )
    days = store.rollup_days()
    ((oldest_counter,),) = store.query("SELECT min(day) FROM ingest_counts").rows
    return RetentionStatus(
        raw=raw,
        oldest_rollup_day=min((d.day for d in days), default=None),
        rollup_days=len(days),
        sealed_days=sum(d.sealed for d in days),
        dirty_days=sum(d.dirty for d in days),
        oldest_counter_day=oldest_counter,
        storage_bytes=store.storage_bytes(),
    )


_RAW_HOLDINGS: Final = (
    "SELECT environment, count(*), epoch_ms(min(received_at)) FROM events "
    "GROUP BY environment ORDER BY environment"
)


def _count(store: EventStore, sql: str, *params: object) -> int:
    (row,) = store.query(sql, params).rows
    return int(row[0])


def _environments(store: EventStore, policy: RetentionPolicy) -> list[str]:
    """Listed environments, and any other one that has rows (it gets the default days)."""
    return sorted(set(policy.raw_days) | set(store.environments()))
