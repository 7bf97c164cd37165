"""Key rotation: re-encrypt a whole data directory under the current data key.

``stumble keys rotate-data-key`` (server stopped) puts a new key first in the key file, calls
``rekey_data_dir`` and, once everything is re-encrypted, drops the old keys from the file:

1. the spool's lock is taken (a running server holds it: the rotation refuses to start);
2. the spool is recovered (torn tails cut, as ``Spool.open`` does), then every segment,
   sealed, open or set aside in ``unloadable/``, that holds a frame under another key (or is
   plaintext) is rewritten: decrypted frame by frame, sealed under the current key into a
   temporary file, fsynced and renamed over the old one;
3. the database is copied (``COPY FROM DATABASE``) into a new file encrypted under the
   current key, which replaces the old one (skipped when the current key already opens it);
4. the audit log and its head file are re-encrypted line by line, and so is each archived log
   (hashes and signatures cover the plaintext, so they stay valid: ``stumble audit verify``
   passes before and after).

Every step reads with any configured key and writes with the current one, and every file is
replaced by a rename, so a rotation that stops half-way (a crash, a full disk) leaves each file
readable with the keys still in the file and is finished by running it again. Old keys may
only be removed once a rotation has completed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb

from stumble.access.audit import audit_paths, rekey_log
from stumble.encryption import (
    SPOOL,
    DamagedFrameError,
    DataKeyRing,
    EncryptionError,
    FrameOpener,
    FrameSealer,
    frame_bounds,
    frames_end,
    fsync_directory,
    is_encrypted,
)
from stumble.spool.segments import list_segments, recover_segments
from stumble.spool.writer import lock_spool_directory
from stumble.storage.duckdb_encryption import attach, enable_encrypted_writes, is_encrypted_database
from stumble.storage.duckdb_store import CATALOG, ROW_GROUP_SIZE, database_path

PLAINTEXT_FRAME_BYTES: Final = 1024 * 1024
"""A plaintext segment being encrypted becomes frames of about this many bytes of lines."""
_REKEY_SUFFIX: Final = ".rekey"


class RekeyError(EncryptionError):
    """A file cannot be re-encrypted as it is; that file was left unchanged."""


@dataclass(frozen=True)
class RekeyReport:
    key_id: str
    """The current key, under which everything now is."""
    segments: int
    """Spool segments rewritten."""
    database: bool
    """Whether the database file was rewritten."""
    audit_lines: int


def rekey_data_dir(data_dir: Path, keys: DataKeyRing) -> RekeyReport:
    """Re-encrypt everything in ``data_dir`` under ``keys.current`` (see the module doc)."""
    spool_dir = data_dir / "spool"
    lock_fd = lock_spool_directory(spool_dir) if spool_dir.is_dir() else None
    try:
        segments = rekey_spool(spool_dir, keys) if spool_dir.is_dir() else 0
        database = rekey_database(database_path(data_dir), keys)
        audit_lines = rekey_log(audit_paths(data_dir), keys)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
    return RekeyReport(keys.current.hex_id, segments, database, audit_lines)


# --- the spool ----------------------------------------------------------------------------


def rekey_spool(spool_dir: Path, keys: DataKeyRing) -> int:
    """Rewrite every segment not wholly under the current key; returns how many. The caller
    holds the spool's lock."""
    opener = FrameOpener(keys, SPOOL)
    recover_segments(spool_dir, opener)
    paths = [segment.path for segment in list_segments(spool_dir)]
    unloadable = spool_dir / "unloadable"
    if unloadable.is_dir():
        paths += sorted(p for p in unloadable.iterdir() if p.suffix in (".ndjson", ".open"))
    rewritten = 0
    for path in paths:
        if _rekey_segment(path, keys, opener):
            rewritten += 1
    return rewritten


def _rekey_segment(path: Path, keys: DataKeyRing, opener: FrameOpener) -> bool:
    data = path.read_bytes()
    if not data:
        return False
    if is_encrypted(data):
        if opener.key_ids(data) == {keys.current.id}:
            return False  # already under the current key (a rotation run again)
        payloads = _frame_plaintexts(data, opener, path)
    else:
        payloads = _line_chunks(data)
    sealer = FrameSealer(keys, SPOOL)
    _replace(path, b"".join(sealer.seal(payload) for payload in payloads))
    return True


def _frame_plaintexts(data: bytes, opener: FrameOpener, path: Path) -> list[bytes]:
    """Frame by frame, so a payload stays one frame (a torn write never splits one)."""
    if frames_end(data) != len(data):
        raise RekeyError(f"spool segment {path.name} ends with a torn frame; nothing changed")
    view = memoryview(data)
    try:
        return [opener.open(view[start:end]) for start, end in frame_bounds(view)]
    except DamagedFrameError as error:
        raise RekeyError(f"spool segment {path.name}: {error}; nothing changed") from None


def _line_chunks(data: bytes) -> list[bytes]:
    """Whole lines of a plaintext segment, grouped into frames of about 1 MiB."""
    chunks: list[bytes] = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", min(len(data) - 1, start + PLAINTEXT_FRAME_BYTES))
        end = len(data) if end < 0 else end + 1
        chunks.append(data[start:end])
        start = end
    return chunks


def _replace(path: Path, content: bytes) -> None:
    """Write ``content`` beside ``path``, fsync, rename over it, fsync the directory."""
    temporary = path.with_name(path.name + _REKEY_SUFFIX)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(content)
        while view.nbytes:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)
    fsync_directory(path.parent)


# --- the database -------------------------------------------------------------------------


def rekey_database(path: Path, keys: DataKeyRing) -> bool:
    """Copy the database into a new file encrypted under the current key and put it in the
    old one's place; False when there is no database or the current key already opens it."""
    encrypted = is_encrypted_database(path)
    if encrypted is None:
        return False
    current_only = DataKeyRing((keys.current,), keys.source)
    target = path.with_name(path.name + _REKEY_SUFFIX)
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)  # from a rotation that stopped half-way
    con = duckdb.connect(
        ":memory:",
        config={
            "temp_file_encryption": True,
            "autoinstall_known_extensions": False,
            "preserve_insertion_order": True,
            "temp_directory": str(path.with_name(path.name + ".tmp")),
        },
    )
    try:
        enable_encrypted_writes(con)
        used = attach(con, path, "old", "", keys if encrypted else None)
        if used is not None and used == keys.current:
            return False
        con.execute("CHECKPOINT old")  # fold a WAL left by a crash into the old file first
        attach(con, target, CATALOG, f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}", current_only)
        con.execute(f"COPY FROM DATABASE old TO {CATALOG}")
        con.execute(f"CHECKPOINT {CATALOG}")
        con.execute(f"DETACH {CATALOG}")
        con.execute("DETACH old")
    finally:
        con.close()
    stale_wal = path.with_name(path.name + ".wal")
    if stale_wal.exists():
        raise RekeyError(f"{stale_wal} is still there after a checkpoint; nothing replaced")
    fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    target.replace(path)
    fsync_directory(path.parent)
    return True
