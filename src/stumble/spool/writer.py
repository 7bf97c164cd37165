"""The ``Spool``: one writer thread that appends payloads to the active segment with group commit.

Callers hand a payload (whole NDJSON lines) to ``append`` and wait. The writer thread takes
everything queued, writes it with one ``os.write`` loop and makes it durable with one
``fdatasync``, then resolves every waiter at once: while one fsync runs the next group
gathers, so concurrent requests share fsyncs and durability stays cheap.

With a data key (``stumble.encryption``) each payload becomes one encrypted frame as the
writer thread takes it: the group is still one write and one ``fdatasync``, and a payload's
frame is never split, so a crash tears at most the last frame, which recovery cuts.

A failed write or fsync is cut back off the segment (``ftruncate`` to the length before the
group), every waiter of the group gets ``SpoolUnavailable`` and the next group simply tries
again, so the spool heals by itself when space returns.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import errno
import fcntl
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import msgspec

from stumble.encryption import (
    HEADER_BYTES,
    SPOOL,
    TAG_BYTES,
    DataKeyRing,
    FrameOpener,
    FrameSealer,
)
from stumble.spool.segments import (
    LOCK_FILE_NAME,
    RecoveryReport,
    fsync_directory,
    list_segments,
    recover_segments,
    remove_empty_open_segments,
    remove_sealed_segment,
    seal_segment,
    sealed_segment_paths,
    segment_name,
)

logger = logging.getLogger(__name__)

MIB: Final = 1024 * 1024
FSYNC_SECONDS_BOUNDS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
GROUP_SIZE_BOUNDS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
# How often the writer re-reads sealed sizes from disk, so that segments deleted by a loader
# in another process stop counting against ``max_unloaded_bytes``.
RESYNC_INTERVAL_S: Final = 5.0
# A writer backlog drains within one fsync, so a short retry is enough.
BACKLOG_RETRY_AFTER_S: Final = 1.0
FRAME_OVERHEAD: Final = HEADER_BYTES + TAG_BYTES

WriteFunction = Callable[[int, memoryview], int]
SyncFunction = Callable[[int], None]


class SpoolUnavailable(Exception):  # noqa: N818 - the name states the HTTP answer: 503
    """The payload was not acknowledged: answer 503 with ``Retry-After: retry_after_s``.

    ``reason`` is a code: ``spool_closed``, ``spool_locked``, ``spool_full`` (unloaded bytes at
    the bound), ``writer_backlog`` (queued bytes at the bound), ``disk_full``, ``file_too_large``,
    ``io_error`` or ``writer_failed``. A failed write is cut back off the segment; should even
    that fail, the bytes may survive, which is harmless because ``event_id`` dedupes retries.
    """

    def __init__(self, reason: str, retry_after_s: float = 5.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class SpoolConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Settings of one spool."""

    max_segment_bytes: int = 16 * MIB
    """The active segment is sealed before growing past this; a bigger payload gets its own."""
    max_segment_age_s: float = 1.0
    """A non-empty active segment is sealed this long after its first write."""
    max_unloaded_bytes: int = 1024 * MIB
    """Bytes written but not yet removed by the loader; beyond it appends fail ``spool_full``."""
    max_pending_bytes: int = 64 * MIB
    """Bytes queued for the writer; beyond it appends fail ``writer_backlog`` (bounded memory)."""
    fsync: bool = True
    """fdatasync each group; False only for benchmarks measuring what durability costs."""
    retry_after_s: float = 5.0
    """``retry_after_s`` of the ``SpoolUnavailable`` raised for full or failing storage."""

    def __post_init__(self) -> None:
        if self.max_segment_bytes < 1 or self.max_unloaded_bytes < 1 or self.max_pending_bytes < 1:
            raise ValueError("spool byte limits must be positive")
        if self.max_segment_age_s <= 0 or self.retry_after_s <= 0:
            raise ValueError("spool durations must be positive")


class SpoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot for ``/metrics``. Histogram buckets are cumulative ``(le, count)`` pairs."""

    disk_bytes: int
    unloaded_bytes: int
    pending_bytes: int
    sealed_segments: int
    open_segment_bytes: int
    oldest_sealed_age_s: float
    segments_sealed_total: int
    appends_total: int
    appended_bytes_total: int
    rejected_total: dict[str, int]
    fsync_count: int
    fsync_seconds_sum: float
    fsync_seconds_buckets: tuple[tuple[float, int], ...]
    group_count: int
    group_size_sum: float
    group_size_buckets: tuple[tuple[float, int], ...]


class Histogram:
    """A Prometheus-style histogram: fixed upper bounds, a sum and a count."""

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> tuple[tuple[float, int], ...]:
        bounds = (*self.bounds, float("inf"))
        return tuple(zip(bounds, itertools.accumulate(self.counts), strict=True))


@dataclass
class _Metrics:
    appends: int = 0
    appended_bytes: int = 0
    segments_sealed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    fsync: Histogram = field(default_factory=lambda: Histogram(FSYNC_SECONDS_BOUNDS))
    groups: Histogram = field(default_factory=lambda: Histogram(GROUP_SIZE_BOUNDS))

    def reject(self, reason: str, count: int = 1) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + count


@dataclass(slots=True)
class _Pending:
    payload: bytes
    future: asyncio.Future[None] | concurrent.futures.Future[None]


@dataclass(slots=True)
class _Failure:
    reason: str
    retry_after_s: float

    def exception(self) -> SpoolUnavailable:
        # One instance per waiter: a shared exception would collect every raiser's traceback.
        return SpoolUnavailable(self.reason, self.retry_after_s)


@dataclass(slots=True)
class _ActiveSegment:
    fd: int
    path: Path
    length: int = 0
    first_write_at: float | None = None
    tail_dirty: bool = False
    """A failed write could not be cut back yet: cut before the next write."""
    directory_sync_pending: bool = True
    """The directory entry of this file is not known to be durable yet."""
    roll_requested: bool = False


_REASON_BY_ERRNO: Final = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EFBIG: "file_too_large",
}


class Spool:
    """A durable, append-only spool in one directory, owned by one process at a time.

    Lifecycle: ``open()`` (recovers what a killed process left, starts the writer thread),
    ``append``/``append_blocking`` from any thread, ``sealed_segments``/``remove`` for the
    loader, ``close()``. ``seal_now``, ``remove`` and ``stats`` do file I/O: call them from a
    worker thread, not the event loop. A ``Spool`` object is opened once.
    """

    def __init__(
        self,
        directory: Path,
        config: SpoolConfig | None = None,
        *,
        write: WriteFunction = os.write,
        fdatasync: SyncFunction = os.fdatasync,
        data_keys: DataKeyRing | None = None,
    ) -> None:
        """``data_keys`` turns encryption at rest on (payloads are written as frames under the
        current key; recovery reads every configured key). ``write`` and ``fdatasync`` exist
        for fault-injection tests only."""
        self.directory = Path(directory)
        self.config = config or SpoolConfig()
        self.data_keys = data_keys
        self._sealer: FrameSealer | None = None
        self._frame_overhead = 0 if data_keys is None else FRAME_OVERHEAD
        self._write = write
        self._fdatasync = fdatasync
        self._cond = threading.Condition()  # guards the queue, counters, metrics and state
        self._queue: list[_Pending] = []
        self._in_flight: list[_Pending] = []
        self._pending_bytes = 0
        self._unloaded_bytes = 0
        self._state = "new"
        self._metrics = _Metrics()
        self._io_lock = threading.Lock()  # guards the active segment; held across write+fsync
        self._close_lock = threading.Lock()
        self._segment: _ActiveSegment | None = None
        self._next_sequence = 1
        self._last_resync = 0.0
        self._lock_fd: int | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def open(self) -> RecoveryReport:
        """Lock the directory, recover torn tails, start a new active segment and the writer."""
        with self._cond:
            if self._state != "new":
                raise RuntimeError("a Spool is opened once")
            self._state = "opening"
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = lock_spool_directory(self.directory)
            return self._recover_and_start()
        except BaseException:
            self._abandon_open()
            raise

    def _abandon_open(self) -> None:
        if self._segment is not None:
            os.close(self._segment.fd)
            self._segment = None
        self._release_directory_lock()
        with self._cond:
            self._state = "closed"

    def _recover_and_start(self) -> RecoveryReport:
        keys = self.data_keys
        opener = None if keys is None else FrameOpener(keys, SPOOL)
        report = recover_segments(self.directory, opener)
        # A fresh salt per open: frame counters restart, so the subkey must not repeat.
        self._sealer = None if keys is None else FrameSealer(keys, SPOOL)
        self._next_sequence = report.next_sequence
        with self._io_lock:
            self._segment = self._create_segment()
            self._sync_directory(self._segment)
            # Only now that a higher sequence exists on disk may older empty markers go.
            remove_empty_open_segments(self.directory, keep=self._segment.path)
            self._resync_unloaded_locked()
        self._thread = threading.Thread(target=self._run, name="stumble-spool-writer", daemon=True)
        with self._cond:
            self._state = "open"
        self._thread.start()
        return report

    def close(self) -> None:
        """Commit what is queued, seal the active segment, stop the writer. Idempotent."""
        with self._close_lock:
            with self._cond:
                was_running = self._state in ("open", "failed")
                if was_running:
                    self._state = "closing"
                    self._cond.notify_all()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            try:
                if was_running:
                    self._seal_and_close_active()
            finally:
                self._release_directory_lock()
                with self._cond:
                    self._state = "closed"

    def _seal_and_close_active(self) -> None:
        # Sealing creates the next, empty ``.open`` segment first: it stays behind as the
        # record of the sequence reached, so names never repeat even when the loader has
        # removed every sealed segment (the loader remembers names as loaded).
        with self._io_lock:
            try:
                if self._active.length:
                    self._roll_locked()
            except OSError as exc:  # left ``.open``: the next open() recovers and seals it
                logger.warning("spool could not seal on close: errno=%s", _errno_name(exc))
            os.close(self._active.fd)
            self._segment = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- appending ------------------------------------------------------------------------

    async def append(self, payload: bytes) -> None:
        """Return once ``payload`` (whole NDJSON lines) is durable; else raise SpoolUnavailable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(_Pending(payload, future))
        await future

    def append_blocking(self, payload: bytes) -> None:
        """``append`` for code without an event loop (offline tools, tests)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._enqueue(_Pending(payload, future))
        future.result()

    def _enqueue(self, item: _Pending) -> None:
        if not item.payload.endswith(b"\n"):
            raise ValueError("a spool payload is whole NDJSON lines, ending with a newline")
        with self._cond:
            failure = self._admission_failure(len(item.payload))
            if failure is not None:
                self._metrics.reject(failure.reason)
                raise failure.exception()
            self._queue.append(item)
            self._pending_bytes += len(item.payload)
            self._cond.notify()

    def _admission_failure(self, size: int) -> _Failure | None:
        """Why a payload of ``size`` bytes cannot be queued now, checked before any write."""
        if self._state != "open":
            reason = "writer_failed" if self._state == "failed" else "spool_closed"
            return _Failure(reason, self.config.retry_after_s)
        if self._unloaded_bytes + self._pending_bytes + size > self.config.max_unloaded_bytes:
            return _Failure("spool_full", self.config.retry_after_s)
        if self._pending_bytes + size > self.config.max_pending_bytes:
            return _Failure("writer_backlog", BACKLOG_RETRY_AFTER_S)
        return None

    # --- the loader's side ----------------------------------------------------------------

    def sealed_segments(self) -> list[Path]:
        """Sealed segments ready to load, oldest first."""
        return sealed_segment_paths(self.directory)

    def seal_now(self) -> Path | None:
        """Seal the active segment if it holds anything; returns the sealed path."""
        with self._io_lock:
            if self._segment is None:
                raise SpoolUnavailable("spool_closed", self.config.retry_after_s)
            if self._segment.length == 0:
                return None
            return self._roll_locked()

    def remove(self, path: Path) -> None:
        """Delete a sealed segment the loader has committed (its name is in the database)."""
        if Path(path).parent.resolve() != self.directory.resolve():
            raise ValueError("the segment is not in this spool")
        with self._io_lock:  # so a concurrent resync cannot count this removal twice
            size = remove_sealed_segment(Path(path))
            with self._cond:
                self._unloaded_bytes = max(0, self._unloaded_bytes - size)

    def stats(self) -> SpoolStats:
        """Disk figures from a directory listing plus the writer's counters."""
        disk = _DiskSnapshot.take(self.directory)
        with self._cond:
            metrics = self._metrics
            return SpoolStats(
                disk_bytes=disk.total_bytes,
                unloaded_bytes=self._unloaded_bytes,
                pending_bytes=self._pending_bytes,
                sealed_segments=disk.sealed_count,
                open_segment_bytes=self._segment.length if self._segment else 0,
                oldest_sealed_age_s=disk.oldest_sealed_age_s,
                segments_sealed_total=metrics.segments_sealed,
                appends_total=metrics.appends,
                appended_bytes_total=metrics.appended_bytes,
                rejected_total=dict(metrics.rejected),
                fsync_count=metrics.fsync.count,
                fsync_seconds_sum=metrics.fsync.total,
                fsync_seconds_buckets=metrics.fsync.cumulative(),
                group_count=metrics.groups.count,
                group_size_sum=metrics.groups.total,
                group_size_buckets=metrics.groups.cumulative(),
            )

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (group := self._next_group()) is not None:
                self._in_flight = group
                self._commit_group(group)
                self._in_flight = []
                self._roll_if_due()
        except BaseException:
            logger.exception("spool writer thread failed")
            self._fail_everything()
            raise

    def _next_group(self) -> list[_Pending] | None:
        """Everything queued; [] when the age timer fires; None when closing and drained."""
        with self._cond:
            while not self._queue:
                if self._state != "open":
                    return None
                if not self._cond.wait(self._seconds_until_age_roll()):
                    return []
            group, self._queue = self._queue, []
            return group

    def _commit_group(self, group: list[_Pending]) -> None:
        """Write the group in as few chunks as segment size allows; a payload is never split."""
        chunk: list[_Pending] = []
        chunk_bytes = 0
        limit = self.config.max_segment_bytes
        for item in group:
            size = len(item.payload) + self._frame_overhead
            if self._active.length + chunk_bytes + size > limit:
                if chunk:
                    self._commit_chunk(chunk)
                    chunk, chunk_bytes = [], 0
                self._try_roll()
            chunk.append(item)
            chunk_bytes += size
        if chunk:
            self._commit_chunk(chunk)

    def _commit_chunk(self, chunk: list[_Pending]) -> None:
        queued = sum(len(item.payload) for item in chunk)
        sealer = self._sealer
        if sealer is None:
            data = b"".join(item.payload for item in chunk)
        else:  # one frame per payload, so a torn write loses at most the last payload
            data = b"".join(sealer.seal(item.payload) for item in chunk)
        failure: _Failure | None = None
        fsync_seconds: float | None = None
        with self._io_lock:
            segment = self._active
            try:
                fsync_seconds = self._write_durably(segment, data)
            except OSError as exc:
                failure = self._undo_failed_write(segment, exc)
        self._account(len(chunk), queued, len(data), failure, fsync_seconds)
        _settle(chunk, failure)

    def _write_durably(self, segment: _ActiveSegment, data: bytes) -> float | None:
        """Append ``data`` and make it durable; returns the fsync seconds (None with fsync off)."""
        if segment.tail_dirty:
            os.ftruncate(segment.fd, segment.length)
            segment.tail_dirty = False
        _write_all(self._write, segment.fd, data)
        fsync_seconds = None
        if self.config.fsync:
            started = time.perf_counter()
            self._fdatasync(segment.fd)
            fsync_seconds = time.perf_counter() - started
        self._sync_directory(segment)
        segment.length += len(data)
        if segment.first_write_at is None:
            segment.first_write_at = time.monotonic()
        return fsync_seconds

    def _undo_failed_write(self, segment: _ActiveSegment, exc: OSError) -> _Failure:
        """Cut the group's bytes off again, so no partial line stays behind a later write."""
        reason = _REASON_BY_ERRNO.get(exc.errno or 0, "io_error")
        logger.warning("spool write failed: reason=%s errno=%s", reason, _errno_name(exc))
        try:
            os.ftruncate(segment.fd, segment.length)
        except OSError as truncate_exc:
            segment.tail_dirty = True  # cut before the next write instead
            logger.warning("spool could not cut a write: errno=%s", _errno_name(truncate_exc))
        # A per-file size limit is cured by a fresh segment.
        segment.roll_requested = exc.errno == errno.EFBIG
        return _Failure(reason, self.config.retry_after_s)

    def _account(
        self,
        payloads: int,
        queued: int,
        written: int,
        failure: _Failure | None,
        fsync_seconds: float | None,
    ) -> None:
        """``queued``: payload bytes leaving the queue; ``written``: bytes on disk (frames)."""
        with self._cond:
            self._pending_bytes -= queued
            metrics = self._metrics
            metrics.groups.observe(payloads)
            if fsync_seconds is not None:
                metrics.fsync.observe(fsync_seconds)
            if failure is None:
                self._unloaded_bytes += written
                metrics.appends += payloads
                metrics.appended_bytes += written
            else:
                metrics.reject(failure.reason, payloads)

    def _fail_everything(self) -> None:
        """The writer died of a bug: no waiter may hang, no append may queue again."""
        with self._cond:
            self._state = "failed"
            stranded, self._queue = self._in_flight + self._queue, []
            self._pending_bytes = 0
        _settle(stranded, _Failure("writer_failed", self.config.retry_after_s))

    # --- segments -------------------------------------------------------------------------

    @property
    def _active(self) -> _ActiveSegment:
        if self._segment is None:
            raise SpoolUnavailable("spool_closed", self.config.retry_after_s)
        return self._segment

    def _seconds_until_age_roll(self) -> float | None:
        segment = self._segment
        if segment is None or segment.first_write_at is None:
            return None
        deadline = segment.first_write_at + self.config.max_segment_age_s
        return max(0.0, deadline - time.monotonic())

    def _roll_if_due(self) -> None:
        segment = self._active
        if segment.length == 0 or segment.first_write_at is None:
            return
        age = time.monotonic() - segment.first_write_at
        if segment.roll_requested or age >= self.config.max_segment_age_s:
            self._try_roll()

    def _try_roll(self) -> None:
        """Seal the active segment if non-empty; on failure keep writing to it and retry later."""
        with self._io_lock:
            segment = self._active
            if segment.length == 0:
                return
            try:
                self._roll_locked()
            except OSError as exc:
                logger.warning("spool segment roll failed: errno=%s", _errno_name(exc))
                segment.first_write_at = time.monotonic()  # retry after another age period
                segment.roll_requested = False

    def _roll_locked(self) -> Path:
        """Create the next segment, then seal the active one; the caller holds the I/O lock."""
        old = self._active
        new = self._create_segment()
        try:
            sealed = seal_segment(old.path)
        except OSError:
            os.close(new.fd)
            new.path.unlink(missing_ok=True)
            raise
        os.close(old.fd)
        self._segment = new
        with self._cond:
            self._metrics.segments_sealed += 1
        self._sync_directory(new, best_effort=True)
        if time.monotonic() - self._last_resync >= RESYNC_INTERVAL_S:
            self._resync_unloaded_locked()
        return sealed

    def _create_segment(self) -> _ActiveSegment:
        # The sequence advances even when creation fails, so a half-made name is never reused.
        sequence, self._next_sequence = self._next_sequence, self._next_sequence + 1
        path = self.directory / segment_name(sequence, sealed=False)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        return _ActiveSegment(fd=os.open(path, flags, 0o600), path=path)

    def _sync_directory(self, segment: _ActiveSegment, *, best_effort: bool = False) -> None:
        """Make the segment's name durable before anything written into it is acknowledged."""
        if not segment.directory_sync_pending:
            return
        if self.config.fsync:
            try:
                fsync_directory(self.directory)
            except OSError as exc:
                if not best_effort:
                    raise
                logger.warning("spool directory fsync failed: errno=%s", _errno_name(exc))
                return
        segment.directory_sync_pending = False

    def _resync_unloaded_locked(self) -> None:
        """Recount unloaded bytes from disk (a loader in another process may have removed some)."""
        sealed_bytes = _DiskSnapshot.take(self.directory).sealed_bytes
        with self._cond:
            self._unloaded_bytes = sealed_bytes + self._active.length
        self._last_resync = time.monotonic()

    def _release_directory_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None


@dataclass(frozen=True, slots=True)
class _DiskSnapshot:
    total_bytes: int
    sealed_bytes: int
    sealed_count: int
    oldest_sealed_age_s: float

    @classmethod
    def take(cls, directory: Path) -> _DiskSnapshot:
        total = sealed_bytes = sealed_count = 0
        oldest_mtime: float | None = None
        for segment in list_segments(directory):
            try:
                status = segment.path.stat()
            except FileNotFoundError:  # removed by the loader while we listed
                continue
            total += status.st_size
            if segment.sealed:
                sealed_bytes += status.st_size
                sealed_count += 1
                oldest_mtime = status.st_mtime if oldest_mtime is None else oldest_mtime
        age = max(0.0, time.time() - oldest_mtime) if oldest_mtime is not None else 0.0
        return cls(total, sealed_bytes, sealed_count, age)


def lock_spool_directory(directory: Path) -> int:
    """Hold an exclusive flock for the life of the spool; the kernel drops it if we die."""
    fd = os.open(directory / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolUnavailable("spool_locked") from None
    return fd


def _write_all(write: WriteFunction, fd: int, data: bytes) -> None:
    """Write every byte: a short write (the disk filling up mid-way) continues where it stopped."""
    view = memoryview(data)
    while view.nbytes:
        written = write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _settle(chunk: list[_Pending], failure: _Failure | None) -> None:
    """Resolve every waiter of a chunk: one ``call_soon_threadsafe`` per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for item in chunk:
        if isinstance(item.future, asyncio.Future):
            by_loop.setdefault(item.future.get_loop(), []).append(item.future)
        elif item.future.done():  # settled before the writer failed (see _fail_everything)
            continue
        elif failure is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(failure.exception())
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, futures, failure)
        except RuntimeError:  # the loop is closed: nobody waits for these any more
            continue


def _settle_on_loop(futures: list[asyncio.Future[None]], failure: _Failure | None) -> None:
    for future in futures:
        if future.done():  # the awaiting request was cancelled (client went away)
            continue
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(failure.exception())


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, "unknown")
