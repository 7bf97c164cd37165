"""Spool throughput: appends/s and MB/s with N concurrent asyncio producers, fsync on and off.

Each producer appends one payload after another, as a collector request handler would:
a 1-event payload (~400 B) or a 100-event payload (~40 KB) of real ``StoredEvent`` lines.
A drain thread removes sealed segments as a loader that keeps up would, so the run measures
the spool, not the disk filling up. Prints figures; asserts nothing about timing.

    .venv/bin/python benchmarks/spool.py [--seconds 2] [--producers 1,16,64,256] [--dir PATH]
        [--encrypt]   (encryption at rest: one AES-GCM frame per payload, a fresh data key)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

from stumble.encryption import DataKeyRing, generate_key_text, parse_keys
from stumble.events import StoredEvent
from stumble.spool import Spool, SpoolConfig, SpoolStats


@dataclass(frozen=True)
class Result:
    appends: int
    seconds: float
    payload_bytes: int
    stats: SpoolStats

    @property
    def appends_per_s(self) -> float:
        return self.appends / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.appends * self.payload_bytes / self.seconds / 1e6

    @property
    def mean_group(self) -> float:
        return self.stats.group_size_sum / max(1, self.stats.group_count)


def make_payload(events: int) -> bytes:
    rows = [
        StoredEvent(
            event_id=str(uuid.uuid4()),
            environment="prod",
            key_id="k_live_01",
            sample_rate=1.0,
            received_at=1_763_800_000_000,
            ts=1_763_800_000_000,
            client_ts=1_763_800_000_000,
            skew_ms=0,
            event_name="request_create_clicked",
            kind="action",
            session_id="s_3f9a8c1d2e7b4a60b1c2d3e4f5a6b7c8",
            screen_id="request_create",
            schema_version=3,
            ui_version="2.3.1",
            role="operator",
            device_type="desktop",
            browser="chrome",
            action_id="btn_save",
        )
        for _ in range(events)
    ]
    return b"".join(msgspec.json.encode(row) + b"\n" for row in rows)


def drain(spool: Spool, stop: threading.Event) -> None:
    """Play a loader that keeps up: delete sealed segments as they appear."""
    while not stop.wait(0.05):
        for path in spool.sealed_segments():
            spool.remove(path)


async def produce(spool: Spool, payload: bytes, deadline: float) -> int:
    appends = 0
    while time.perf_counter() < deadline:
        await spool.append(payload)
        appends += 1
    return appends


async def run_producers(spool: Spool, payload: bytes, producers: int, seconds: float) -> int:
    deadline = time.perf_counter() + seconds
    counts = await asyncio.gather(*(produce(spool, payload, deadline) for _ in range(producers)))
    return sum(counts)


def measure(
    directory: Path,
    payload: bytes,
    producers: int,
    seconds: float,
    fsync: bool,
    *,
    keys: DataKeyRing | None = None,
) -> Result:
    spool = Spool(directory, SpoolConfig(fsync=fsync), data_keys=keys)
    spool.open()
    stop = threading.Event()
    drainer = threading.Thread(target=drain, args=(spool, stop))
    drainer.start()
    started = time.perf_counter()
    appends = asyncio.run(run_producers(spool, payload, producers, seconds))
    elapsed = time.perf_counter() - started
    stats = spool.stats()
    stop.set()
    drainer.join()
    spool.close()
    return Result(appends, elapsed, len(payload), stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each case")
    parser.add_argument("--producers", default="1,16,64,256", help="comma-separated counts")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the spool")
    parser.add_argument("--encrypt", action="store_true", help="encryption at rest on")
    args = parser.parse_args()
    keys = parse_keys(generate_key_text(), "benchmark") if args.encrypt else None
    producer_counts = [int(n) for n in args.producers.split(",")]

    print(f"{'payload':>18} {'producers':>9} {'fsync':>5} {'appends/s':>11} {'MB/s':>8} "
          f"{'events/s':>10} {'mean group':>10} {'fsync ms':>10}")  # fmt: skip
    for events in (1, 100):
        payload = make_payload(events)
        label = f"{events} ev ({len(payload) / 1000:.1f} KB)"
        for producers in producer_counts:
            for fsync in (True, False):
                with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
                    result = measure(
                        Path(scratch) / "spool", payload, producers, args.seconds, fsync, keys=keys
                    )
                print(
                    f"{label:>18} {producers:>9} {'on' if fsync else 'off':>5} "
                    f"{result.appends_per_s:>11,.0f} {result.mb_per_s:>8.1f} "
                    f"{result.appends_per_s * events:>10,.0f} {result.mean_group:>10.1f} "
                    f"{mean_fsync_ms(result.stats):>10}"
                )


def mean_fsync_ms(stats: SpoolStats) -> str:
    if stats.fsync_count == 0:
        return "-"
    return f"{stats.fsync_seconds_sum / stats.fsync_count * 1000:.2f}"


if __name__ == "__main__":
    main()
