"""The Python SDK's delivery rules, with ``httpx.MockTransport`` scripting the server's answers.

The transport only plays the collector's side of the HTTP contract (status codes, headers,
the 202 body); everything else is the real client: real batching, encoding, gzip, threads.
"""

from __future__ import annotations

import gzip
import threading
import uuid
from collections.abc import Callable, Iterator

import httpx
import msgspec
import pytest

from stumble.client import GZIP_THRESHOLD_BYTES, StumbleClient, parse_retry_after
from stumble.events import ActionEvent, Event, decode_event

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Keeps every request the client made (decoded body, headers) and answers by script."""

    def __init__(self, answers: Iterator[Handler] | Handler) -> None:
        self._answers = answers
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, object]] = []
        self.raw_events: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        raw = request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        with self._lock:
            self.requests.append(request)
            self.bodies.append(msgspec.json.decode(raw))
            # The bytes of the "events" array, exactly as sent (the envelope starts with sent_at).
            self.raw_events.append(raw[raw.index(b'"events":') + len(b'"events":') : -1])
            handler = self._answers if callable(self._answers) else next(self._answers)
        return handler(request)

    def event_ids(self, index: int) -> list[str]:
        events = self.bodies[index]["events"]
        assert isinstance(events, list)
        return [event["event_id"] for event in events]


def accept_all(request: httpx.Request) -> httpx.Response:
    events = msgspec.json.decode(_plain_body(request))["events"]
    return httpx.Response(202, json={"accepted": len(events), "redacted": 0, "rejected": []})


def _plain_body(request: httpx.Request) -> bytes:
    raw = request.read()
    return gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    return lambda _request: httpx.Response(code, headers=headers, json={"error": "scripted"})


def make_events(count: int) -> list[Event]:
    return [
        ActionEvent(
            event_id=str(uuid.uuid4()),
            event_name="request_next_clicked",
            ts=1_767_225_600_000 + i,
            session_id="s_abcdefghijklmnopqrst",
            screen_id="request_create",
            schema_version=3,
            ui_version="1.4.2",
            action_id="click_next",
            target="btn_next",
        )
        for i in range(count)
    ]


class FakeClock:
    """Injectable sleep and clock: records the delays, advances time instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_767_225_600_000
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * 1000)

    def now_ms(self) -> int:
        return self.now


def make_client(recorder: Recorder, clock: FakeClock, **options: object) -> StumbleClient:
    return StumbleClient(
        "http://collector.test/",
        "wk_test_key",
        transport=httpx.MockTransport(recorder),
        sleep=clock.sleep,
        now_ms=clock.now_ms,
        **options,  # type: ignore[arg-type]
    )


def test_sends_a_batch_with_bearer_key_and_counts_the_result() -> None:
    clock = FakeClock()
    recorder = Recorder(accept_all)
    events = make_events(3)
    with make_client(recorder, clock) as client:
        client.track_many(events)
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "http://collector.test/v1/batch"
    assert request.headers["Authorization"] == "Bearer wk_test_key"
    assert request.headers["Content-Type"] == "application/json"
    assert "Content-Encoding" not in request.headers
    assert recorder.bodies[0]["sent_at"] == clock.now
    assert recorder.event_ids(0) == [event.event_id for event in events]
    decoded = msgspec.json.decode(recorder.raw_events[0], type=list[msgspec.Raw])
    assert [decode_event(raw) for raw in decoded] == events
    stats = client.stats
    assert (stats.tracked, stats.accepted, stats.dropped, stats.retries) == (3, 3, 0, 0)


def test_503_then_202_resends_identical_events_with_a_fresh_sent_at() -> None:
    clock = FakeClock()
    recorder = Recorder(iter([status(503), accept_all]))
    with make_client(recorder, clock) as client:
        client.track_many(make_events(5))
    assert len(recorder.requests) == 2
    assert recorder.raw_events[0] == recorder.raw_events[1]
    assert recorder.event_ids(0) == recorder.event_ids(1)
    assert recorder.bodies[1]["sent_at"] == recorder.bodies[0]["sent_at"] + int(  # type: ignore[operator]
        clock.sleeps[0] * 1000
    )
    assert len(clock.sleeps) == 1
    assert 0.0 <= clock.sleeps[0] <= 0.5  # full jitter over the first window (base 0.5 s)
    stats = client.stats
    assert (stats.accepted, stats.retries, stats.requests, stats.dropped) == (5, 1, 2, 0)


@pytest.mark.parametrize("code", [400, 401, 403, 415, 500])
def test_client_errors_are_not_retried(code: int) -> None:
    clock = FakeClock()
    recorder = Recorder(status(code))
    with make_client(recorder, clock) as client:
        client.track_many(make_events(4))
    assert len(recorder.requests) == 1
    assert clock.sleeps == []
    stats = client.stats
    assert stats.dropped == 4
    assert stats.dropped_by_reason == {f"http_{code}": 4}
    assert stats.accepted == 0


def test_retry_after_seconds_is_honoured_and_capped() -> None:
    clock = FakeClock()
    recorder = Recorder(
        iter([status(429, {"Retry-After": "3"}), status(503, {"Retry-After": "600"}), accept_all])
    )
    with make_client(recorder, clock, backoff_cap_s=30.0) as client:
        client.track_many(make_events(2))
    assert clock.sleeps == [3.0, 30.0]
    assert client.stats.accepted == 2


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: go now
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_network_errors_are_retried() -> None:
    clock = FakeClock()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    recorder = Recorder(iter([refuse, refuse, accept_all]))
    with make_client(recorder, clock) as client:
        client.track_many(make_events(3))
    assert len(recorder.requests) == 3
    assert recorder.raw_events[0] == recorder.raw_events[2]
    assert client.stats.accepted == 3
    assert client.stats.retries == 2


def test_retries_are_bounded_with_growing_capped_full_jitter_windows() -> None:
    clock = FakeClock()
    recorder = Recorder(status(502))
    with make_client(
        recorder, clock, max_retries=6, backoff_base_s=1.0, backoff_cap_s=8.0
    ) as client:
        client.track_many(make_events(2))
    assert len(recorder.requests) == 7
    windows = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(clock.sleeps) == len(windows)
    assert all(0.0 <= slept <= window for slept, window in zip(clock.sleeps, windows, strict=True))
    assert client.stats.dropped_by_reason == {"retries_exhausted": 2}
    assert client.stats.retries == 6


def test_413_splits_the_batch_in_half_once() -> None:
    clock = FakeClock()

    def too_large_over_three(request: httpx.Request) -> httpx.Response:
        events = msgspec.json.decode(_plain_body(request))["events"]
        if len(events) > 3:
            return httpx.Response(413)
        return accept_all(request)

    recorder = Recorder(too_large_over_three)
    with make_client(recorder, clock, batch_size=10) as client:
        client.track_many(make_events(10))  # 10 -> 413 -> 5 + 5 -> each 413 again -> dropped
        client.track_many(make_events(6))
    sizes = [len(body["events"]) for body in recorder.bodies]  # type: ignore[arg-type]
    assert sizes == [10, 5, 5, 6, 3, 3]
    stats = client.stats
    assert stats.dropped_by_reason == {"http_413": 10}
    assert stats.accepted == 6
    assert clock.sleeps == []


def test_rejected_events_are_counted_not_retried() -> None:
    clock = FakeClock()
    events = make_events(3)

    def reject_second(_request: httpx.Request) -> httpx.Response:
        rejected = [{"index": 1, "event_id": events[1].event_id, "reason": "unknown_event_name"}]
        return httpx.Response(202, json={"accepted": 2, "redacted": 1, "rejected": rejected})

    recorder = Recorder(reject_second)
    with make_client(recorder, clock) as client:
        client.track_many(events)
    assert len(recorder.requests) == 1
    stats = client.stats
    assert (stats.accepted, stats.redacted, stats.rejected) == (2, 1, 1)
    assert stats.rejected_by_reason == {"unknown_event_name": 1}


def test_large_bodies_are_gzipped() -> None:
    clock = FakeClock()
    recorder = Recorder(accept_all)
    with make_client(recorder, clock, batch_size=1000) as client:
        client.track_many(make_events(200))
        client.flush()
        client.track_many(make_events(2))
    big, small = recorder.requests
    assert big.headers["Content-Encoding"] == "gzip"
    assert len(gzip.decompress(big.read())) > GZIP_THRESHOLD_BYTES
    assert "Content-Encoding" not in small.headers
    assert client.stats.accepted == 202


def test_full_batches_go_out_as_they_fill_and_close_flushes_the_rest() -> None:
    clock = FakeClock()
    recorder = Recorder(accept_all)
    client = make_client(recorder, clock, batch_size=4)
    for event in make_events(10):
        client.track(event)
    assert [len(body["events"]) for body in recorder.bodies] == [4, 4]  # type: ignore[arg-type]
    client.close()
    assert [len(body["events"]) for body in recorder.bodies] == [4, 4, 2]  # type: ignore[arg-type]
    client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        client.track(make_events(1)[0])


def test_full_queue_drops_the_oldest_events() -> None:
    release = threading.Event()

    def slow_accept(request: httpx.Request) -> httpx.Response:
        release.wait(timeout=10)
        return accept_all(request)

    recorder = Recorder(slow_accept)
    client = StumbleClient(
        "http://collector.test",
        "wk_test_key",
        transport=httpx.MockTransport(recorder),
        batch_size=5,
        max_queue=10,
        autoflush=True,
        flush_interval_s=0.01,
    )
    client.track_many(make_events(5))
    deadline = threading.Event()
    while not recorder.requests and not deadline.wait(0.01):
        pass  # the background thread has taken the first batch and is blocked on the server
    late = make_events(14)
    client.track_many(late)  # 14 into a queue of 10: the 4 oldest are dropped
    release.set()
    client.close()
    stats = client.stats
    assert stats.dropped_by_reason == {"queue_full": 4}
    assert stats.accepted == 15
    sent = {
        event_id for index in range(len(recorder.bodies)) for event_id in recorder.event_ids(index)
    }
    assert {event.event_id for event in late[4:]} <= sent
    assert not {event.event_id for event in late[:4]} & sent


def test_concurrent_tracking_delivers_every_event_exactly_once() -> None:
    recorder = Recorder(accept_all)
    client = StumbleClient(
        "http://collector.test",
        "wk_test_key",
        transport=httpx.MockTransport(recorder),
        batch_size=50,
        autoflush=True,
        flush_interval_s=0.05,
    )
    per_thread = [make_events(1000) for _ in range(4)]

    def produce(events: list[Event]) -> None:
        for event in events:
            client.track(event)

    threads = [threading.Thread(target=produce, args=(events,)) for events in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    sent = [
        event_id for index in range(len(recorder.bodies)) for event_id in recorder.event_ids(index)
    ]
    assert len(sent) == 4000
    assert set(sent) == {event.event_id for events in per_thread for event in events}
    assert client.stats.accepted == 4000
    assert all(len(body["events"]) <= 50 for body in recorder.bodies)  # type: ignore[arg-type]
