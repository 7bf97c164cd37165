"""``POST /v1/batch``: from bytes on the wire to a durable 202, or a precise refusal.

This endpoint is a plain ASGI callable mounted inside the Starlette app: it handles tens of
thousands of requests per second per core, and a framework Request/Response pair per call
costs more than the work itself. Everything else (config, health, metrics) uses Starlette.

Answers: 202 with a result per event, only after the accepted events are fsynced; 400 for a
malformed envelope; 401 unknown or revoked key; 403 origin not allowed or key disabled; 408 body
too slow; 413 too large; 415 unsupported type or encoding; 429 rate limited and 503 when the
spool cannot take more (both with ``Retry-After``). Bodies never appear in logs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import sys
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs

import msgspec

from stumble import reasons as r
from stumble.access.keys import KeyRing, WriteKey
from stumble.admission import (
    WHOLE_BODY_SCREEN_BYTES,
    Admission,
    AdmissionRules,
    Arrival,
    BatchRefusedError,
    DecodedBatch,
    Rejection,
    admit,
    decode_body,
)
from stumble.collector.enrich import Enricher, RequestContext
from stumble.collector.metrics import CollectorMetrics
from stumble.collector.quarantine import REJECTED, Quarantine, findings_of, utc_day
from stumble.collector.useragent import classify_user_agent
from stumble.spool import Spool, SpoolUnavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("stumble.ingest")

ACCEPTED_TYPES: Final = frozenset({"application/json", "text/plain"})
MAX_HEADER_BYTES: Final = 16 * 1024  # httptools sets no limit of its own
INLINE_BODY_BYTES: Final = WHOLE_BODY_SCREEN_BYTES
"""Bodies up to this size are decoded and screened on the event loop (well under a
millisecond), and admitted there too when the screen finds them clean. Larger bodies, gzipped
ones and flagged ones (whose events take the detectors) go to the admission thread, so no
request holds the loop for long."""
_EVENT_ID_KEY: Final = b'"event_id"'
_T = TypeVar("_T")
BUSY_SWITCH_INTERVAL_S: Final = 0.001
_encode: Final = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_body_bytes: int
    max_events: int
    body_read_timeout_s: float = 10.0


class HttpRefusalError(Exception):
    """An answer other than 202; ``reason`` is a code, never client text."""

    def __init__(self, status: int, reason: str, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s


class RateLimiter:
    """A token bucket per write key, in events; ``rate == 0`` disables it."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def has_tokens(self, key_id: str, now: float) -> bool:
        """Whether the key could send one event now (nothing is charged)."""
        if self.rate <= 0:
            return True
        tokens, last = self._buckets.get(key_id, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate) >= 1

    def retry_after(self, key_id: str, events: int, now: float) -> int | None:
        """None when allowed (and charged), else seconds until enough tokens exist."""
        if self.rate <= 0:
            return None
        tokens, last = self._buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= events:
            self._buckets[key_id] = (tokens - events, now)
            return None
        self._buckets[key_id] = (tokens, now)
        return max(1, math.ceil((events - tokens) / self.rate))


class BatchIngest:
    """The ASGI callable for ``POST /v1/batch`` (CORS preflight included)."""

    def __init__(
        self,
        *,
        keys: KeyRing,
        rules: Callable[[], AdmissionRules],
        spool: Spool,
        enricher: Enricher,
        quarantine: Quarantine,
        metrics: CollectorMetrics,
        limits: IngestLimits,
        rate_limiter: RateLimiter,
    ) -> None:
        self.keys = keys
        self.rules = rules
        self.spool = spool
        self.enricher = enricher
        self.quarantine = quarantine
        self.metrics = metrics
        self.limits = limits
        self.rate_limiter = rate_limiter
        # One thread: admission is CPU work under the GIL, more threads would not add speed,
        # and queueing large batches behind each other keeps the event loop's share fair.
        self._admission_thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="stumble-admission"
        )
        self._busy = 0  # admission jobs in flight; the switch interval is lowered while > 0
        self._idle_switch_interval = sys.getswitchinterval()

    def close(self) -> None:
        self._admission_thread.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, headers, send)
            return
        started = time.perf_counter()
        key: WriteKey | None = None
        if scope["method"] != "POST":
            await self._refuse(send, HttpRefusalError(405, r.METHOD_NOT_ALLOWED), None, None)
            return
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            await self._refuse(send, HttpRefusalError(431, r.HEADERS_TOO_LARGE), None, None)
            return
        try:
            key = self._authenticate(scope, headers)
            self._refuse_if_out_of_tokens(key)
            body, gzipped = await self._read_body(scope, headers, receive)
            status, payload = 202, await self._ingest(body, gzipped, key, headers, origin)
        except HttpRefusalError as refusal:
            await self._refuse(send, refusal, origin if key else None, key)
            return
        self.metrics.ingest.ack_latency.observe(time.perf_counter() - started)
        self.metrics.ingest.requests[status] += 1
        await _respond(send, status, payload, _cors_headers(origin, key))

    # --- steps ---------------------------------------------------------------------------

    def _authenticate(self, scope: Scope, headers: dict[str, str]) -> WriteKey:
        token = _bearer_token(headers) or _query_key(scope)
        if not token:
            raise HttpRefusalError(401, r.KEY_MISSING)
        key = self.keys.authenticate(token)
        if key is None:
            raise HttpRefusalError(401, r.KEY_UNKNOWN_OR_REVOKED)
        if not key.allows_origin(headers.get("origin")):
            raise HttpRefusalError(403, r.ORIGIN_NOT_ALLOWED)
        if not key.enabled:
            raise HttpRefusalError(403, r.KEY_DISABLED)
        return key

    def _refuse_if_out_of_tokens(self, key: WriteKey) -> None:
        """A key that could not send even one event now is refused before its body is read."""
        if not self.rate_limiter.has_tokens(key.key_id, time.monotonic()):
            raise HttpRefusalError(429, r.RATE_LIMITED, 1)

    async def _read_body(
        self, scope: Scope, headers: dict[str, str], receive: Receive
    ) -> tuple[bytes, bool]:
        """The body as received (bounded in size and time), and whether it is gzipped."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_TYPES:
            raise HttpRefusalError(415, r.BODY_UNSUPPORTED_CONTENT_TYPE)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in {"identity", "gzip"}:
            raise HttpRefusalError(415, r.BODY_UNSUPPORTED_CONTENT_ENCODING)
        declared = headers.get("content-length")
        if (
            declared is not None
            and declared.isdigit()
            and int(declared) > self.limits.max_body_bytes
        ):
            raise HttpRefusalError(413, r.BODY_TOO_LARGE)
        try:
            # asyncio.timeout, not wait_for: no extra task per request on the hot path
            async with asyncio.timeout(self.limits.body_read_timeout_s):
                raw = await _receive_body(receive, self.limits.max_body_bytes)
        except TimeoutError as error:
            raise HttpRefusalError(408, r.BODY_READ_TIMEOUT) from error
        return raw, encoding == "gzip"

    async def _ingest(
        self,
        body: bytes,
        gzipped: bool,
        key: WriteKey,
        headers: dict[str, str],
        origin: str | None,
    ) -> dict[str, Any]:
        """Cheap limits first, then admission: on the loop for a small body, else in the
        admission thread, so that no request holds the event loop for more than a moment."""
        if gzipped:
            body = await self._off_the_loop(_gunzip_bounded, body, self.limits.max_body_bytes)
        if not body.strip():
            raise HttpRefusalError(400, r.BATCH_EMPTY_BODY)
        # Charged before any decoding, so a limited key costs next to nothing: every valid
        # event carries exactly one "event_id" key, which bytes.count finds at memory speed.
        charged = max(1, body.count(_EVENT_ID_KEY))
        retry = self.rate_limiter.retry_after(key.key_id, charged, time.monotonic())
        if retry is not None:
            raise HttpRefusalError(429, r.RATE_LIMITED, retry)
        device_type, browser = classify_user_agent(headers.get("user-agent", ""))
        received_at = int(time.time() * 1000)
        request = RequestContext(key, received_at, 0, device_type, browser, origin)
        if gzipped or len(body) > INLINE_BODY_BYTES:
            admission, lines = await self._off_the_loop(self._admit, body, request)
        else:
            decoded = self._decode(body)
            if decoded.screened_clean:
                admission, lines = self._admit_decoded(decoded, request)
            else:
                admission, lines = await self._off_the_loop(self._admit_decoded, decoded, request)
        if lines:
            await self._make_durable(lines)
        self._count_stored(admission, request)
        return {
            "accepted": len(admission.stored),
            "redacted": len(admission.redactions),
            "rejected": [_rejection(item) for item in admission.rejections],
        }

    async def _off_the_loop(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run CPU work on the admission thread. While it runs, the GIL switch interval drops
        to 1 ms so the event loop keeps answering everyone else; measured, keeping it there
        all the time costs a fifth of clean throughput, so it is restored once idle."""
        loop = asyncio.get_running_loop()
        if self._busy == 0:
            sys.setswitchinterval(BUSY_SWITCH_INTERVAL_S)
        self._busy += 1
        try:
            return await loop.run_in_executor(self._admission_thread, work, *args)
        finally:
            self._busy -= 1
            if self._busy == 0:
                sys.setswitchinterval(self._idle_switch_interval)

    def _admit(self, body: bytes, request: RequestContext) -> tuple[Admission, bytes]:
        """Decode, admit and encode the spool lines: pure CPU work, on the loop or a thread."""
        return self._admit_decoded(self._decode(body), request)

    def _decode(self, body: bytes) -> DecodedBatch:
        try:
            return decode_body(body, self.limits.max_events)
        except BatchRefusedError as refusal:
            raise HttpRefusalError(refusal.status, refusal.reason) from refusal

    def _admit_decoded(
        self, decoded: DecodedBatch, request: RequestContext
    ) -> tuple[Admission, bytes]:
        arrival = Arrival.at(request.received_at_ms, decoded.sent_at)
        admission = admit(decoded, self.rules(), arrival)
        self._count_findings(admission, request)
        request = RequestContext(
            request.key,
            request.received_at_ms,
            arrival.skew_ms,
            request.device_type,
            request.browser,
            request.origin,
        )
        return admission, self.enricher.stored_lines(admission, request)

    async def _make_durable(self, payload: bytes) -> None:
        try:
            await self.spool.append(payload)
        except SpoolUnavailable as error:
            log.warning("spool unavailable: %s", error.reason)
            raise HttpRefusalError(
                503, f"spool.{error.reason}", max(1, round(error.retry_after_s))
            ) from error

    def _count_findings(self, admission: Admission, request: RequestContext) -> None:
        """Quarantine counts and metrics by reason code, done where admission ran (a batch of
        hostile events has thousands of findings: never on the event loop)."""
        if not (admission.rejections or admission.redactions):
            return
        day, env = utc_day(request.received_at_ms), request.key.environment
        self.quarantine.add_admission(admission, day, env)
        found = Counter((k.outcome, k.reason) for k in findings_of(admission, day, env))
        for (outcome, reason), count in found.items():
            by_reason = self.metrics.rejected if outcome == REJECTED else self.metrics.redactions
            by_reason.labels(reason=reason).inc(count)

    def _count_stored(self, admission: Admission, request: RequestContext) -> None:
        self.metrics.ingest.accepted[request.key.environment] += len(admission.stored)
        self.metrics.ingest.batch_size.observe(admission.count)

    async def _refuse(
        self, send: Send, refusal: HttpRefusalError, origin: str | None, key: WriteKey | None
    ) -> None:
        self.metrics.ingest.requests[refusal.status] += 1
        extra = _cors_headers(origin, key)
        if refusal.retry_after_s is not None:
            extra.append((b"retry-after", str(refusal.retry_after_s).encode()))
        body = {"error": refusal.reason, "status": refusal.status}
        await _respond(send, refusal.status, body, extra)

    async def _preflight(self, scope: Scope, headers: dict[str, str], send: Send) -> None:
        """Answer CORS preflight only for an origin some active key allows; never reflect others."""
        origin = headers.get("origin")
        token = _query_key(scope)
        key = self.keys.authenticate(token) if token else None
        allowed = origin is not None and (
            key.allows_origin(origin) if key else self.keys.any_key_allows(origin)
        )
        if not allowed:
            await _respond(send, 403, {"error": r.ORIGIN_NOT_ALLOWED, "status": 403}, [])
            return
        extra = [
            (b"access-control-allow-origin", origin.encode()),  # type: ignore[union-attr]
            (b"access-control-allow-methods", b"POST, OPTIONS"),
            (b"access-control-allow-headers", b"authorization, content-type, content-encoding"),
            (b"access-control-max-age", b"86400"),
            (b"vary", b"origin"),
        ]
        await _respond(send, 204, None, extra)


# --- helpers ------------------------------------------------------------------------------


def _rejection(rejection: Rejection) -> dict[str, Any]:
    """One refused event in a 202: its index, its id if valid, the reason and the schema path
    of the field (never its value)."""
    item: dict[str, Any] = {
        "index": rejection.index,
        "reason": rejection.finding.reason,
        "field": rejection.finding.field_path,
    }
    if rejection.event_id is not None:
        item["event_id"] = rejection.event_id
    return item


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
    }


def _bearer_token(headers: dict[str, str]) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _query_key(scope: Scope) -> str | None:
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query).get("key")
    return values[0] if values else None


def _cors_headers(origin: str | None, key: WriteKey | None) -> list[tuple[bytes, bytes]]:
    if origin is None or key is None or not key.allows_origin(origin):
        return []
    return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin")]


async def _receive_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpRefusalError(400, r.BODY_CLIENT_DISCONNECTED)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpRefusalError(413, r.BODY_TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member (RFC 1952 allows several, concatenated), at most ``limit``
    bytes in all: a 1 KB bomb that expands to 1 GB stops at the limit, and a second member is
    never silently dropped. Anything after the last member that is not a member is refused."""
    parts: list[bytes] = []
    size = 0
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(data, limit - size + 1)
        except zlib.error as error:
            raise HttpRefusalError(400, r.BODY_BAD_GZIP) from error
        size += len(out)
        if size > limit or inflater.unconsumed_tail:
            raise HttpRefusalError(413, r.BODY_TOO_LARGE_AFTER_DECOMPRESSION)
        if not inflater.eof:
            raise HttpRefusalError(400, r.BODY_BAD_GZIP)
        parts.append(out)
        data = inflater.unused_data
    return b"".join(parts)


async def _respond(send: Send, status: int, body: object, extra: list[tuple[bytes, bytes]]) -> None:
    payload = b"" if body is None else _encode(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
