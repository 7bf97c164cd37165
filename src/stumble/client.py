"""The Python SDK: queue events, send them in batches, retry what the server asks to retry.

Delivery contract with the collector (``POST {endpoint}/v1/batch``):

* ``202`` ``{"accepted": n, "redacted": k, "rejected": [{"index", "event_id", "reason"}]}``:
  done. Rejected events are counted by reason and never retried: resending cannot fix them.
* ``429``, ``502``, ``503``, ``504`` and network errors: retried with exponential backoff and
  full jitter, honouring ``Retry-After``, at most ``max_retries`` times. The events part of
  the body is byte-identical on every attempt (same ``event_id``s, so the server deduplicates
  a retry whose first attempt was stored after all); only ``sent_at`` is re-stamped, because
  the collector corrects client clock skew with it and a stale one would shift every event
  by the time spent backing off.
* ``413``: the batch is split in half and each half is sent once more (without further splits).
* Any other status: not retried; the events are counted as dropped under ``http_<status>``.

The queue is bounded (``max_queue``); when it is full the oldest event is dropped and counted,
as browser SDKs do, so a dead collector cannot exhaust the host's memory.
"""

from __future__ import annotations

import gzip
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Final, Self

import httpx
import msgspec

from stumble.events import Event

RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})
GZIP_THRESHOLD_BYTES: Final = 8 * 1024
USER_AGENT: Final = "stumble-python/0.1"


class RejectedEvent(msgspec.Struct):
    index: int
    event_id: str = ""
    reason: str = "unknown"


class BatchResult(msgspec.Struct):
    """The collector's 202 body. Unknown keys are ignored so the server may add fields."""

    accepted: int = 0
    redacted: int = 0
    rejected: list[RejectedEvent] = []


_result_decoder: Final = msgspec.json.Decoder(BatchResult)
_events_encoder: Final = msgspec.json.Encoder()


@dataclass
class ClientStats:
    """Counters since the client was created. ``client.stats`` returns a copy."""

    tracked: int = 0
    accepted: int = 0
    redacted: int = 0
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    dropped_by_reason: Counter[str] = field(default_factory=Counter)
    """``queue_full``, ``retries_exhausted`` or ``http_<status>``."""
    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    unreadable_responses: int = 0

    def copy(self) -> ClientStats:
        return replace(
            self,
            rejected_by_reason=Counter(self.rejected_by_reason),
            dropped_by_reason=Counter(self.dropped_by_reason),
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; ``None`` if absent."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class StumbleClient:
    """Thread-safe batching client. Use as a context manager or call ``close()``.

    Without ``autoflush`` a batch is sent from the thread whose ``track`` fills it, and
    ``flush()`` sends the rest. With ``autoflush=True`` a background thread sends whenever a
    batch is full or ``flush_interval_s`` has passed. ``sleep``, ``now_ms`` and ``rng`` are
    injectable so the retry schedule can be tested without waiting.
    """

    def __init__(
        self,
        endpoint: str,
        key: str,
        *,
        batch_size: int = 100,
        flush_interval_s: float = 2.0,
        max_queue: int = 10_000,
        timeout_s: float = 10,
        max_retries: int = 8,
        transport: httpx.BaseTransport | None = None,
        autoflush: bool = False,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        now_ms: Callable[[], int] = _now_ms,
        rng: random.Random | None = None,
    ) -> None:
        if batch_size < 1 or max_queue < 1 or max_retries < 0:
            raise ValueError("batch_size and max_queue must be positive, max_retries >= 0")
        self._url = endpoint.rstrip("/") + "/v1/batch"
        self._headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self._now_ms = now_ms
        self._rng = rng or random.Random()  # noqa: S311 -- backoff jitter, not a secret
        self._http = httpx.Client(transport=transport, timeout=timeout_s)
        self._queue: deque[Event] = deque(maxlen=max_queue)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._in_flight = 0
        self._closed = False
        self._stats = ClientStats()
        self._worker: threading.Thread | None = None
        if autoflush:
            self._worker = threading.Thread(target=self._run, name="stumble-flush", daemon=True)
            self._worker.start()

    # --- public API ------------------------------------------------------------------------

    @property
    def stats(self) -> ClientStats:
        with self._lock:
            return self._stats.copy()

    def track(self, event: Event) -> None:
        """Queue one event; it is sent with the next batch."""
        self.track_many((event,))

    def track_many(self, events: Iterable[Event]) -> None:
        """Queue several events under one lock acquisition."""
        with self._lock:
            if self._closed:
                raise RuntimeError("client is closed")
            for event in events:
                if len(self._queue) == self._queue.maxlen:
                    self._count_drop("queue_full", 1)
                self._queue.append(event)
                self._stats.tracked += 1
            batch_ready = len(self._queue) >= self._batch_size
            if batch_ready and self._worker is not None:
                self._changed.notify_all()
        if batch_ready and self._worker is None:
            self._send_full_batches()

    def flush(self) -> None:
        """Send everything queued and wait until every batch in flight has an outcome.

        Events tracked by other threads while this runs may go with a later flush.
        """
        self._drain()
        with self._lock:
            self._changed.wait_for(lambda: self._in_flight == 0)

    def close(self) -> None:
        """Flush, stop the background thread and release the connection pool. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        if self._worker is not None:
            self._worker.join()
        self.flush()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- batching --------------------------------------------------------------------------

    def _take_batch(self, *, full_only: bool) -> list[Event]:
        with self._lock:
            if not self._queue or (full_only and len(self._queue) < self._batch_size):
                return []
            size = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft() for _ in range(size)]
            self._in_flight += 1
            return batch

    def _send_and_release(self, batch: list[Event]) -> None:
        try:
            self._deliver(batch, may_split=True)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._changed.notify_all()

    def _send_full_batches(self) -> None:
        while batch := self._take_batch(full_only=True):
            self._send_and_release(batch)

    def _drain(self) -> None:
        while batch := self._take_batch(full_only=False):
            self._send_and_release(batch)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._changed.wait_for(
                    lambda: self._closed or len(self._queue) >= self._batch_size,
                    timeout=self._flush_interval_s,
                )
                closing = self._closed
            self._drain()
            if closing:
                return

    # --- delivery --------------------------------------------------------------------------

    def _body(self, events_json: bytes) -> tuple[bytes, dict[str, str]]:
        body = b'{"sent_at":%d,"events":%b}' % (self._now_ms(), events_json)
        if len(body) <= GZIP_THRESHOLD_BYTES:
            return body, self._headers
        return gzip.compress(body, compresslevel=5), {**self._headers, "Content-Encoding": "gzip"}

    def _deliver(self, events: list[Event], *, may_split: bool) -> None:
        events_json = _events_encoder.encode(events)
        for attempt in range(self._max_retries + 1):
            if attempt:
                with self._lock:
                    self._stats.retries += 1
            body, headers = self._body(events_json)
            try:
                response = self._http.post(self._url, content=body, headers=headers)
            except httpx.TransportError:
                retry_after = None
            else:
                with self._lock:
                    self._stats.requests += 1
                    self._stats.bytes_sent += len(body)
                status = response.status_code
                if status == 413 and may_split and len(events) > 1:
                    half = len(events) // 2
                    self._deliver(events[:half], may_split=False)
                    self._deliver(events[half:], may_split=False)
                    return
                if status not in RETRYABLE_STATUSES:
                    self._record_outcome(response, len(events))
                    return
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt < self._max_retries:
                self._sleep(self._backoff_s(attempt, retry_after))
        with self._lock:
            self._count_drop("retries_exhausted", len(events))

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self._backoff_cap_s, retry_after)
        # Full jitter (uniform over the whole window) spreads clients that failed together.
        window = min(self._backoff_cap_s, self._backoff_base_s * 2**attempt)
        return self._rng.uniform(0.0, window)

    def _record_outcome(self, response: httpx.Response, batch_size: int) -> None:
        if not response.is_success:
            with self._lock:
                self._count_drop(f"http_{response.status_code}", batch_size)
            return
        try:
            result: BatchResult | None = _result_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            result = None
        with self._lock:
            if result is None:
                # The server took the batch; without a readable body, count it as accepted.
                self._stats.unreadable_responses += 1
                self._stats.accepted += batch_size
                return
            self._stats.accepted += result.accepted
            self._stats.redacted += result.redacted
            self._stats.rejected += len(result.rejected)
            self._stats.rejected_by_reason.update(item.reason for item in result.rejected)

    def _count_drop(self, reason: str, count: int) -> None:
        """Call with the lock held."""
        self._stats.dropped += count
        self._stats.dropped_by_reason[reason] += count
