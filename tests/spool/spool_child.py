"""A separate process that uses a real Spool, for the crash and file-size-limit tests.

``append-forever DIR``: concurrent asyncio producers append until killed; after each append
returns, the ids it committed are printed (one line per payload) and flushed. Whatever the
parent finds printed was acknowledged, so it must survive a ``kill -9``.

``file-limit DIR LIMIT``: appends under ``RLIMIT_FSIZE`` (SIGXFSZ ignored, so the kernel
answers EFBIG), then raises the limit again; prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import uuid
from pathlib import Path

import msgspec

from stumble.encryption import load_data_keys
from stumble.events import StoredEvent
from stumble.spool import Spool, SpoolConfig, SpoolUnavailable


def payload_with_ids(count: int) -> tuple[bytes, list[str]]:
    events = [
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
            session_id="s_child",
            screen_id="request_create",
            schema_version=1,
            ui_version="2.3.1",
            action_id="btn_save",
        )
        for _ in range(count)
    ]
    payload = b"".join(msgspec.json.encode(event) + b"\n" for event in events)
    return payload, [event.event_id for event in events]


async def produce_forever(spool: Spool, events_per_payload: int) -> None:
    while True:
        payload, ids = payload_with_ids(events_per_payload)
        await spool.append(payload)
        sys.stdout.write(" ".join(ids) + "\n")
        sys.stdout.flush()


async def append_forever(directory: Path, producers: int) -> None:
    config = SpoolConfig(max_segment_bytes=32 * 1024, max_segment_age_s=0.05)
    # Encrypted when the parent sets STUMBLE_DATA_KEY (the encrypted spool's crash test).
    spool = Spool(directory, config, data_keys=load_data_keys("", directory))
    spool.open()
    await asyncio.gather(*(produce_forever(spool, 1 + n % 4) for n in range(producers)))


def active_segment(directory: Path) -> Path:
    # The highest: for an instant during a roll the next segment exists beside the old one.
    return max(directory.glob("*.open"))


def size_of(segment: Path) -> int:
    """Size of a segment that may have been sealed (renamed) since we looked."""
    # The writer thread may seal (rename) the segment between two calls: try both names.
    for candidate in (segment, segment.with_suffix(".ndjson"), segment):
        try:
            return candidate.stat().st_size
        except FileNotFoundError:
            continue
    raise FileNotFoundError(segment.name)


def try_append(spool: Spool, events: int, report: dict[str, list[object]]) -> bool:
    payload, ids = payload_with_ids(events)
    segment = active_segment(spool.directory)
    size_before = size_of(segment)
    try:
        spool.append_blocking(payload)
    except SpoolUnavailable as exc:
        report["failures"].append([exc.reason, size_before, size_of(segment), len(payload)])
        report["rejected_ids"].extend(ids)
        return False
    report["committed_ids"].extend(ids)
    return True


def file_limit(directory: Path, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    spool = Spool(directory)
    spool.open()
    report: dict[str, list[object]] = {"failures": [], "committed_ids": [], "rejected_ids": []}
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    while try_append(spool, 25, report):  # ~10 KB payloads until the limit bites
        pass
    report["after_roll"] = [try_append(spool, 25, report)]
    big_events = limit // 200  # ~360 bytes an event: one payload well over the limit
    report["big_under_limit"] = [try_append(spool, big_events, report) for _ in range(2)]
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
    report["big_after_raise"] = [try_append(spool, big_events, report)]
    spool.close()
    print(json.dumps(report))


def main() -> None:
    command, directory = sys.argv[1], Path(sys.argv[2])
    if command == "append-forever":
        print("ready", flush=True)
        asyncio.run(append_forever(directory, producers=int(sys.argv[3])))
    elif command == "file-limit":
        file_limit(directory, int(sys.argv[3]))
    else:
        os._exit(2)


if __name__ == "__main__":
    main()
