"""Small private files that must survive a crash: written whole or not at all, 0600 from their
first byte, fsynced with their directory. Keys, tokens and the review loop's records use them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner may enter (created if missing)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def replace_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically, so no reader ever sees half a file and a change survives a
    power cut. The caller serialises writers (a lock), since the temporary name is fixed."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # left by a crash
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


def append_private_lines(path: Path, lines: Iterable[bytes]) -> None:
    """Append whole lines (each must end with a newline) and fsync before returning: a record
    appended is a record kept. A crash may leave a torn last line, which readers skip."""
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        data = b"".join(lines)
        assert data.endswith(b"\n") or not data, "append whole lines"
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def read_lines(path: Path) -> list[bytes]:
    """The complete lines of ``path`` (a torn last line is left out); none when it is missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    return [line for line in lines[:-1] if line]


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
