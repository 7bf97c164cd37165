"""Helpers for the spool tests: realistic payloads, reading segments back, a small tmpfs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from stumble.events import StoredEvent
from stumble.spool.segments import list_segments

CHILD_SCRIPT = Path(__file__).with_name("spool_child.py")


class SpoolKit:
    """Payload makers and segment readers, handed to tests by the ``kit`` fixture."""

    child_script = CHILD_SCRIPT

    @staticmethod
    def make_event(event_id: str | None = None) -> StoredEvent:
        """A guarded action event as the collector would spool it (~400 bytes of NDJSON)."""
        return StoredEvent(
            event_id=event_id or str(uuid.uuid4()),
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

    @staticmethod
    def encode_payload(events: list[StoredEvent]) -> bytes:
        """What the collector appends for one batch: one JSON line per event."""
        return b"".join(msgspec.json.encode(event) + b"\n" for event in events)

    def make_payload(self, count: int) -> tuple[bytes, list[str]]:
        """A payload of ``count`` fresh events and their ids."""
        events = [self.make_event() for _ in range(count)]
        return self.encode_payload(events), [event.event_id for event in events]

    @staticmethod
    def read_events(directory: Path) -> list[StoredEvent]:
        """Every row of every segment (sealed and open), oldest first, decoded as StoredEvent."""
        decoder = msgspec.json.Decoder(StoredEvent)
        rows: list[StoredEvent] = []
        for segment in list_segments(directory):
            lines = segment.path.read_bytes().splitlines()
            rows.extend(decoder.decode(line) for line in lines)
        return rows

    def id_counts(self, directory: Path) -> Counter[str]:
        return Counter(event.event_id for event in self.read_events(directory))

    @staticmethod
    def child_command(*args: str) -> list[str]:
        """Run ``spool_child.py`` with this interpreter (it imports stumble like the tests do)."""
        return [sys.executable, str(CHILD_SCRIPT), *args]


@pytest.fixture
def kit() -> SpoolKit:
    return SpoolKit()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs, so that ENOSPC is the kernel's, not a simulation."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)
