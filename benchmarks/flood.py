"""Does a flood of worst-case small bodies freeze the server? /healthz latency, idle and under it.

A real ``stumble serve`` (pinned to core 0 when possible) is flooded from this process by K
keep-alive connections, each sending one kind of hostile request after another, while a
separate connection asks ``/healthz`` every 20 ms. Printed for each flood: /healthz p50 / p99 /
max next to the idle figures, and how many flood requests were answered (and with what status).

Floods (each body at most 1 MB, as the collector allows):

- ``zeros``: 913 bytes of gzip that inflate to ``[0,0,0,…]`` (issue 8: 1.9 s of event loop each);
- ``empty_objects``: gzip of ``[{},{},…]`` (a cheap count must refuse it before decoding);
- ``hostile_batch``: 500 events whose every optional string is personal data (the slow path
  of every detector, moved off the event loop);
- ``rate_limited``: full batches from a key whose rate limit is exhausted.

    .venv/bin/python benchmarks/flood.py [--seconds 5] [--connections 8]

Prints figures; asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import uvloop

from ingest import Collector, can_pin, percentile, pin_process

HEALTH_INTERVAL_S = 0.02
GENERATOR_CORE = 1


@dataclass
class Flood:
    name: str
    body: bytes
    headers: dict[str, str]
    key: str = "prod"


def _request(collector: Collector, flood: Flood, token: str) -> bytes:
    head = [
        "POST /v1/batch HTTP/1.1",
        f"Host: 127.0.0.1:{collector.port}",
        f"Authorization: Bearer {token}",
        "Content-Type: application/json",
        f"Content-Length: {len(flood.body)}",
        *(f"{name}: {value}" for name, value in flood.headers.items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + flood.body


def _hostile_event(index: int, now: int) -> dict[str, object]:
    return {
        "kind": "action",
        "event_id": str(uuid.uuid4()),
        "event_name": "request_next_clicked",
        "ts": now - 1000,
        "session_id": f"s_{'abcdefghijklmnopqrst'}",
        "screen_id": "request_create",
        "schema_version": 3,
        "ui_version": "1.4.2",
        "action_id": "request_next_clicked",
        "target": f"Aidos_Nurlanov_870412_300129_{index}",
        "position": "aigerim.nurlanova@example.kz",
        "experiment": "4111 1111 1111 1111",
        "feature_flags": ["+7 701 123 45 67", "KZ86125KZT5004100100", "Ivan_Petrovich"],
    }


def floods() -> list[Flood]:
    now = int(time.time() * 1000)
    gzipped = {"Content-Encoding": "gzip"}
    zeros = gzip.compress(b"[" + b",".join([b"0"] * 500_000) + b"]", compresslevel=9)
    objects = gzip.compress(b"[" + b",".join([b"{}"] * 300_000) + b"]", compresslevel=9)
    hostile = json.dumps({"sent_at": now, "events": [_hostile_event(i, now) for i in range(500)]})
    return [
        Flood("zeros", zeros, gzipped),
        Flood("empty_objects", objects, gzipped),
        Flood("hostile_batch", hostile.encode(), {}),
        Flood("rate_limited", hostile.encode(), {}, key="limited"),
    ]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def _flood_connection(
    port: int, request: bytes, stop: asyncio.Event, statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            writer.write(request)
            statuses[await _read_response(reader)] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        statuses[-1] += 1
    finally:
        writer.close()


async def _health_latencies(port: int, seconds: float) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        writer.write(request)
        await _read_response(reader)
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(HEALTH_INTERVAL_S)
    writer.close()
    return latencies


async def _measure(
    port: int, request: bytes | None, connections: int, seconds: float
) -> tuple[list[float], Counter[int]]:
    stop = asyncio.Event()
    statuses: Counter[int] = Counter()
    tasks = [
        asyncio.create_task(_flood_connection(port, request, stop, statuses))
        for _ in range(connections if request else 0)
    ]
    await asyncio.sleep(0.3 if request else 0)  # the flood is under way first
    latencies = await _health_latencies(port, seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, statuses


def _line(name: str, latencies: list[float], statuses: Counter[int], seconds: float) -> str:
    answered = ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items()))
    return (
        f"{name:<16} /healthz p50 {percentile(latencies, 0.5):7.1f} ms  "
        f"p99 {percentile(latencies, 0.99):7.1f} ms  max {max(latencies):7.1f} ms   "
        f"flood {sum(statuses.values()) / seconds:6.0f} req/s ({answered or '-'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if can_pin():
        pin_process(os.getpid(), GENERATOR_CORE)
    print(f"flood benchmark: {args.connections} connections, {args.seconds:.0f} s each")
    for flood in floods():
        # A fresh collector per flood; the rate-limited one has a limit (settings are global).
        collector = Collector(fsync=True, loader_interval_s=0.5)
        if flood.key == "limited":
            collector.env["STUMBLE_RATE_LIMIT_EVENTS_PER_S"] = "1"
            collector.env["STUMBLE_RATE_LIMIT_BURST"] = "500"
        collector.start()
        try:
            if flood.name == "zeros":
                idle, _ = uvloop.run(_measure(collector.port, None, 0, args.seconds))
                print(_line("idle", idle, Counter(), args.seconds))
            request = _request(collector, flood, collector.token)
            latencies, statuses = uvloop.run(
                _measure(collector.port, request, args.connections, args.seconds)
            )
            print(_line(flood.name, latencies, statuses, args.seconds))
        finally:
            collector.kill()
            collector.remove()


if __name__ == "__main__":
    main()
