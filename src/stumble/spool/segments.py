"""Segment files on disk: naming, listing, scanning for a torn tail, sealing and recovery.

A segment is an NDJSON file named by a 12-digit sequence number; with encryption at rest it
holds encrypted frames instead, one per appended payload (``stumble.encryption``), and the
first byte tells which. A whole frame that authenticates plays the part of a whole line.

The segment being written is ``seg-<seq>.open``; sealing renames it to ``seg-<seq>.ndjson``,
after which it never changes until the loader deletes it. Functions here do no locking: the
reader side (listing sealed segments, deleting a loaded one) is safe from any process, the
write side belongs to the ``Spool`` that holds the directory lock.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from stumble.encryption import (
    HEADER,
    HEADER_BYTES,
    MAGIC,
    TAG_BYTES,
    DamagedFrameError,
    DataKeyError,
    FrameOpener,
    frame_bounds,
    is_encrypted,
)

logger = logging.getLogger(__name__)

OPEN_SUFFIX: Final = ".open"
SEALED_SUFFIX: Final = ".ndjson"
LOCK_FILE_NAME: Final = "spool.lock"
_NAME_PATTERN: Final = re.compile(r"^seg-(\d{12})\.(open|ndjson)$")
_MAX_SEQUENCE: Final = 10**12 - 1
_SCAN_CHUNK: Final = 1024 * 1024

# Any JSON object is a complete line: the spool is agnostic of the row schema (the loader
# validates rows); what matters here is that the line is whole and not zero fill or garbage.
_object_decoder: Final = msgspec.json.Decoder(dict)


@dataclass(frozen=True, slots=True)
class SegmentFile:
    """One segment file found on disk."""

    sequence: int
    path: Path
    sealed: bool


class RecoveryReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``Spool.open()`` found and repaired. Counts only: never the content of a line."""

    recovered_segments: tuple[str, ...] = ()
    """Non-empty segments left ``.open`` by the previous process: cut back, then sealed."""
    lines_kept: int = 0
    """Complete lines kept in the recovered segments."""
    lines_dropped: int = 0
    """Torn, garbage or zero-filled lines cut from the tails (never acknowledged)."""
    bytes_dropped: int = 0
    """Bytes cut from the tails."""
    repaired_sealed: tuple[str, ...] = ()
    """Sealed segments whose last byte was not a newline, so their tail was scanned and cut."""
    next_sequence: int = 1
    """Sequence number of the new active segment."""


@dataclass(frozen=True, slots=True)
class TailRepair:
    """The result of cutting one segment back to its longest prefix of whole lines."""

    lines_kept: int
    lines_dropped: int
    bytes_dropped: int


def segment_name(sequence: int, *, sealed: bool) -> str:
    if not 0 < sequence <= _MAX_SEQUENCE:
        raise ValueError("segment sequence out of range")
    return f"seg-{sequence:012d}{SEALED_SUFFIX if sealed else OPEN_SUFFIX}"


def parse_segment(path: Path) -> SegmentFile | None:
    """The segment a path names, or None for any other file (the lock file, strays)."""
    match = _NAME_PATTERN.match(path.name)
    if match is None:
        return None
    return SegmentFile(int(match.group(1)), path, match.group(2) == "ndjson")


def list_segments(directory: Path) -> list[SegmentFile]:
    """Every segment in the directory, oldest (lowest sequence) first."""
    found = (parse_segment(path) for path in directory.iterdir())
    return sorted((s for s in found if s is not None), key=lambda s: s.sequence)


def sealed_segment_paths(directory: Path) -> list[Path]:
    """Sealed segments waiting for the loader, oldest first. Safe from any process."""
    return [s.path for s in list_segments(directory) if s.sealed]


def remove_sealed_segment(path: Path) -> int:
    """Delete a loaded sealed segment; returns its size. Refuses anything else."""
    segment = parse_segment(path)
    if segment is None or not segment.sealed:
        raise ValueError("only a sealed spool segment can be removed")
    size = path.stat().st_size
    path.unlink()
    return size


def fsync_directory(directory: Path) -> None:
    """Make renames, creations and deletions in the directory durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal_segment(path: Path) -> Path:
    """Rename ``.open`` to ``.ndjson``. The caller fsyncs the directory."""
    sealed = path.with_suffix(SEALED_SUFFIX)
    path.rename(sealed)
    return sealed


def valid_prefix(path: Path) -> tuple[int, int]:
    """(bytes, lines) of the longest prefix made of whole lines that each hold a JSON object."""
    valid_bytes = 0
    lines = 0
    with path.open("rb") as stream:
        for line in stream:
            if not _is_whole_object_line(line):
                break
            valid_bytes += len(line)
            lines += 1
    return valid_bytes, lines


def _is_whole_object_line(line: bytes) -> bool:
    # A line without its newline was cut mid-write: the newline is the last byte of every
    # payload, so no acknowledged line can lack it.
    if not line.endswith(b"\n"):
        return False
    try:
        _object_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    return True


def count_lines_after(path: Path, offset: int) -> int:
    """Lines (the last one possibly without a newline) from ``offset`` to the end of the file."""
    newlines = 0
    last = b"\n"
    with path.open("rb") as stream:
        stream.seek(offset)
        while chunk := stream.read(_SCAN_CHUNK):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return newlines + (last != b"\n")


def truncate_and_sync(path: Path, length: int) -> None:
    """Cut the file to ``length`` bytes and make its content durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_is_encrypted(path: Path) -> bool:
    """Whether the segment holds encrypted frames (an empty one holds nothing either way)."""
    with path.open("rb") as stream:
        return is_encrypted(stream.read(1))


def valid_frame_prefix(path: Path, opener: FrameOpener) -> tuple[int, int]:
    """(bytes, lines) of the longest prefix made of whole frames that authenticate.

    ``DataKeyError`` when a whole frame names a key that is not configured: that is not a
    torn tail, and cutting it would destroy acknowledged events."""
    data = path.read_bytes()
    valid_bytes = lines = 0
    view = memoryview(data)
    for start, end in frame_bounds(view):
        try:
            plaintext = opener.open(view[start:end])
        except DamagedFrameError:
            break
        except DataKeyError as error:
            raise DataKeyError(f"spool segment {path.name}: {error}") from None
        valid_bytes = end
        lines += plaintext.count(b"\n")
    return valid_bytes, lines


def cut_torn_tail(path: Path, opener: FrameOpener | None = None) -> TailRepair:
    """Keep the longest prefix of whole JSON-object lines (or whole frames that authenticate,
    in an encrypted segment), drop the rest, fsync either way.

    The fsync matters even when nothing is cut: lines written but not yet fsynced when the
    previous process died are still in the page cache, and a sealed segment must be durable.
    A torn encrypted frame counts as one dropped line: what it held cannot be read.
    """
    size = path.stat().st_size
    if segment_is_encrypted(path):
        if opener is None:
            raise DataKeyError(f"spool segment {path.name} is encrypted but no data key is set")
        valid_bytes, lines_kept = valid_frame_prefix(path, opener)
        lines_dropped = 1 if size > valid_bytes else 0
    else:
        valid_bytes, lines_kept = valid_prefix(path)
        lines_dropped = count_lines_after(path, valid_bytes) if size > valid_bytes else 0
    truncate_and_sync(path, valid_bytes)
    return TailRepair(lines_kept, lines_dropped, size - valid_bytes)


def ends_with_newline(path: Path) -> bool:
    """The cheap check for a sealed segment: its last byte is a newline (or it is empty); for
    an encrypted one, its frame headers lead exactly to its end (nothing is decrypted)."""
    with path.open("rb") as stream:
        size = stream.seek(0, os.SEEK_END)
        if size == 0:
            return True
        stream.seek(0)
        if is_encrypted(stream.read(1)):
            return _frames_reach_end(stream.fileno(), size)
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"


def _frames_reach_end(fd: int, size: int) -> bool:
    position = 0
    while size - position >= HEADER_BYTES:
        magic, _, _, _, length = HEADER.unpack(os.pread(fd, HEADER_BYTES, position))
        if magic != MAGIC or length < TAG_BYTES:
            return False
        position += HEADER_BYTES + length
    return position == size


def recover_segments(directory: Path, opener: FrameOpener | None = None) -> RecoveryReport:
    """Repair what a killed process left: cut torn tails, seal every non-empty ``.open`` segment.

    Empty ``.open`` segments are left in place: the highest one may be the only record of the
    sequence reached, so the ``Spool`` deletes them only after its new active segment exists.
    ``opener`` decrypts encrypted segments (None: there is no data key).
    """
    segments = list_segments(directory)
    tally = _RecoveryTally()
    for segment in segments:
        if not segment.sealed:
            tally.add_open(segment, cut_torn_tail(segment.path, opener))
        elif not ends_with_newline(segment.path):
            tally.add_repaired_sealed(segment, cut_torn_tail(segment.path, opener))
    fsync_directory(directory)
    next_sequence = segments[-1].sequence + 1 if segments else 1
    return tally.report(next_sequence)


class _RecoveryTally:
    """Accumulates per-segment repairs into one report."""

    def __init__(self) -> None:
        self.recovered: list[str] = []
        self.repaired: list[str] = []
        self.lines_kept = 0
        self.lines_dropped = 0
        self.bytes_dropped = 0

    def add_open(self, segment: SegmentFile, repair: TailRepair) -> None:
        self._count(repair)
        if repair.lines_kept or repair.bytes_dropped:  # not the empty marker a clean close leaves
            self.recovered.append(segment.path.name)
        if repair.lines_kept:
            seal_segment(segment.path)
        if repair.bytes_dropped:
            logger.warning(
                "spool recovery cut a torn tail: lines=%d bytes=%d",
                repair.lines_dropped,
                repair.bytes_dropped,
            )

    def add_repaired_sealed(self, segment: SegmentFile, repair: TailRepair) -> None:
        self._count(repair)
        self.repaired.append(segment.path.name)
        logger.warning("sealed spool segment did not end with a newline; tail cut")

    def _count(self, repair: TailRepair) -> None:
        self.lines_kept += repair.lines_kept
        self.lines_dropped += repair.lines_dropped
        self.bytes_dropped += repair.bytes_dropped

    def report(self, next_sequence: int) -> RecoveryReport:
        return RecoveryReport(
            recovered_segments=tuple(self.recovered),
            lines_kept=self.lines_kept,
            lines_dropped=self.lines_dropped,
            bytes_dropped=self.bytes_dropped,
            repaired_sealed=tuple(self.repaired),
            next_sequence=next_sequence,
        )


def remove_empty_open_segments(directory: Path, keep: Path) -> int:
    """Delete empty ``.open`` leftovers other than ``keep`` (the new active segment)."""
    removed = 0
    for segment in list_segments(directory):
        if segment.sealed or segment.path == keep or segment.path.stat().st_size:
            continue
        segment.path.unlink()
        removed += 1
    return removed
