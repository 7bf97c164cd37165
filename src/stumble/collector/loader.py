"""The loader thread: sealed spool segments into the ``EventStore``, exactly once.

The store records a segment's name in the same transaction as its rows, so a crash between
that commit and deleting the file only means the next cycle sees a segment it already has
(``already_loaded``) and deletes it. The thread is also the one writer of the embedded
database, so it runs the other writes too: quarantine counts, rollups (``stumble.rollups``),
retention and key rotation.
When storage fails the segments simply wait in the spool, which answers 503 once its bound
is reached: backpressure instead of loss.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditError, AuditLog, Outcome
from stumble.access.pseudonyms import SessionKeyRing
from stumble.collector.metrics import CollectorMetrics
from stumble.collector.quarantine import CountKey, Quarantine
from stumble.retention import RetentionAudit, RetentionPolicy, RetentionReport, run_retention
from stumble.rollups import RollupMaintainer
from stumble.spool import Spool
from stumble.storage import EventStore, IngestCount, IngestOutcome, SegmentError

log = logging.getLogger("stumble.loader")
HOUSEKEEPING_INTERVAL_S = 3600.0
LOADER_NICENESS = 10
DAY_MS = 86_400_000


@dataclass
class LoaderStatus:
    last_cycle_at: float = 0.0
    segments_loaded: int = 0
    rows_loaded: int = 0
    duplicates: int = 0
    last_error: str | None = None
    consecutive_errors: int = 0
    segments_set_aside: int = 0
    retention_deleted: dict[str, int] = field(default_factory=dict)
    last_retention: RetentionReport | None = None


class Loader:
    def __init__(
        self,
        *,
        spool: Spool,
        store: EventStore,
        quarantine: Quarantine,
        metrics: CollectorMetrics | None,
        session_keys: SessionKeyRing,
        retention: RetentionPolicy,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
        rollups: RollupMaintainer | None = None,
    ) -> None:
        """``rollups``: rebuilt after loads, at most once per its interval, and brought up to
        date by retention before it deletes anything (``stumble.retention``). None: no
        rollups, as with a store that has no SQL."""
        self.spool = spool
        self.store = store
        self.quarantine = quarantine
        self.metrics = metrics
        self.session_keys = session_keys
        self.retention = retention
        self.interval_s = interval_s
        self.clock = clock
        self.audit = audit
        self.rollups = rollups
        self.status = LoaderStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stumble-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then load whatever the spool sealed on close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.run_once()

    def alive(self) -> bool:
        """Running, and a cycle finished recently (three intervals, or 30 s if longer)."""
        running = self._thread is not None and self._thread.is_alive()
        silence_allowed = max(30.0, 3 * self.interval_s)
        return running and self.clock() - self.status.last_cycle_at < silence_allowed

    def _run(self) -> None:
        _lower_this_threads_priority()
        while not self._stop.wait(self.interval_s):
            self.run_once()

    # --- one cycle -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Load every sealed segment, write counts, do due housekeeping; returns rows loaded."""
        rows = 0
        try:
            rows = self._load_sealed()
            self._flush_counts()
            if self.rollups is not None:
                self.rollups.refresh_if_due(catching_up=bool(self.spool.sealed_segments()))
            self._housekeeping_if_due()
        except Exception as error:  # noqa: BLE001 - the loader must outlive any storage failure
            self._record_error(error)
        else:
            self.status.consecutive_errors = 0
            self.status.last_error = None
        self.status.last_cycle_at = self.clock()
        return rows

    def _load_sealed(self) -> int:
        rows = 0
        for path in self.spool.sealed_segments():
            try:
                result = self.store.load_segment(path)
            except SegmentError:
                self._set_aside(path)
                continue
            self.spool.remove(path)
            rows += result.inserted
            self.status.segments_loaded += 1
            self.status.rows_loaded += result.inserted
            self.status.duplicates += result.duplicates
            if self.metrics is not None:
                self.metrics.loaded_rows.inc(result.inserted)
                self.metrics.loaded_duplicates.inc(result.duplicates)
        return rows

    def _flush_counts(self) -> None:
        pending = self.quarantine.drain()
        if not pending:
            return
        try:
            self.store.add_ingest_counts([_ingest_count(k, n) for k, n in pending.items()])
        except Exception:
            self.quarantine.restore(pending)
            raise

    def _housekeeping_if_due(self) -> None:
        now = self.clock()
        if now - self._last_housekeeping < HOUSEKEEPING_INTERVAL_S:
            return
        self.run_housekeeping(int(now * 1000))
        self._last_housekeeping = now

    def run_housekeeping(self, now_ms: int) -> None:
        """Retention tiers (``stumble.retention``), and destruction of expired daily session
        keys. Both are idempotent, so a crash half-way is repaired by the next run."""
        audit = None if self.audit is None else RetentionAudit(self.audit, Actor.system())
        report = run_retention(
            self.store,
            self.retention,
            now_ms,
            refresh_rollups=None if self.rollups is None else self.rollups.refresh,
            audit=audit,
        )
        self.status.last_retention = report
        self.status.retention_deleted = {d.environment: d.rows_deleted for d in report.raw}
        removed = self.session_keys.destroy_expired(now_ms)
        if removed:
            log.info("destroyed %d expired session keys", len(removed))
        for name in removed:
            self._audit(
                AuditAction.SESSION_KEY_DESTROY, AuditDetail(target=name.removesuffix(".key"))
            )

    def _audit(self, action: AuditAction, detail: AuditDetail) -> None:
        """Deletion is an obligation: it is recorded, never held back for want of the record."""
        if self.audit is None:
            return
        try:
            self.audit.record(Actor.system(), action, Outcome.OK, detail)
        except AuditError as error:
            log.warning("%s not recorded in the audit log: %s", action, type(error).__name__)

    def _set_aside(self, path: Path) -> None:
        """A segment whose content cannot be loaded must not block every later one.

        It is moved to ``spool/unloadable/`` (it holds only guarded rows, never raw input) and
        counted, so an admin can inspect it and run ``stumble load`` on it after a fix.
        Storage being down is a different error (``StorageError``): that one is retried.
        """
        target = path.parent / "unloadable" / path.name
        target.parent.mkdir(exist_ok=True)
        path.replace(target)
        self.status.segments_set_aside += 1
        log.error("segment %s could not be loaded and was set aside", path.name)

    def _record_error(self, error: Exception) -> None:
        # The exception type only: a message could quote data from a segment.
        self.status.last_error = type(error).__name__
        self.status.consecutive_errors += 1
        if self.metrics is not None:
            self.metrics.loader_errors.inc()
        log.warning("loader cycle failed (%s); segments stay in the spool", type(error).__name__)


def _lower_this_threads_priority() -> None:
    """The loader competes with the event loop for CPU; the 202 path must win (Linux only)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOADER_NICENESS)
    except (AttributeError, OSError):
        log.debug("could not lower the loader thread's priority")


def _ingest_count(key: CountKey, count: int) -> IngestCount:
    outcome: IngestOutcome = "rejected" if key.outcome == "rejected" else "redacted"
    return IngestCount(
        day=dt.date.fromisoformat(key.day),
        environment=key.environment,
        event_name=key.event_name,
        outcome=outcome,
        reason=key.reason,
        field_path=key.field_path,
        count=count,
    )
