"""Encryption at rest: the data keys, and the frames that spool segments and audit lines hold.

Keys. A data key is 32 random bytes written as standard base64 (``openssl rand -base64 32``).
It comes from one of two places, never from ``stumble.toml`` itself:

- the file named by the ``data_key_file`` setting (0600 or stricter, outside the data
  directory): one key per line, ``#`` comments allowed;
- the ``STUMBLE_DATA_KEY`` environment variable: keys separated by commas or white space.

The first key is the *current* one: everything new is encrypted under it. The others are old
keys, kept only to read what was written under them until ``stumble keys rotate-data-key`` has
re-encrypted it. A key is named by its id, the first 8 bytes of a SHA-256 over it (hex), which
is safe to print and to store beside the data. With no key configured nothing is encrypted.

Frames. A spool segment is a sequence of frames, one per appended payload; an audit log line
is one frame in base64. A frame is::

    magic (4) | key id (8) | salt (16) | counter (8) | length (4) | ciphertext and GCM tag

AES-256-GCM under a subkey HKDF-SHA256(data key, salt, purpose): each writer (a ``Spool``, an
``AuditLog``) draws a random salt when it starts and counts its frames, so nonces are a plain
counter and can never repeat under one subkey, however many frames a key encrypts (random
96-bit nonces would be limited to about 2**32 frames per key). The 40-byte header is the
associated data, so a frame's key id, salt, counter and length cannot be changed unnoticed, and
the purpose in the subkey keeps a spool frame from being read as an audit line or the reverse.
A frame that does not authenticate is damaged (or torn by a crash), never "another format".

A file whose first byte is not the magic's is plaintext (a spool segment starts with ``{``,
an audit line too), so data written before encryption was turned on stays readable and is
encrypted by the next rotation.

Errors: ``EncryptionError`` is the root; ``DataKeyError`` means the key configuration is wrong
or a file needs a key that is not configured (fix the configuration); ``DamagedFrameError``
means bytes that claim to be a frame do not authenticate. Messages name files and key ids,
never data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import os
import re
import stat
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES: Final = 32
KEY_ENV_VAR: Final = "STUMBLE_DATA_KEY"
MAGIC: Final = b"\xa7SE1"
"""0xA7 can start neither JSON nor UTF-8 text, so one byte tells a frame from plaintext."""
HEADER: Final = struct.Struct(">4s8s16sQI")
HEADER_BYTES: Final = HEADER.size
TAG_BYTES: Final = 16
MAX_FRAME_BYTES: Final = 1 << 31
"""Longest ciphertext a frame may declare; a longer length field is damage, not data."""
SPOOL: Final = b"spool"
AUDIT: Final = b"audit"
DUCKDB: Final = b"duckdb"
_KEY_ID_CONTEXT: Final = b"stumble-data-key-id-v1\0"
_SUBKEY_CONTEXT: Final = b"stumble-at-rest-v1\0"
_KEY_SEPARATORS: Final = re.compile(r"[\s,]+")
_SUBKEY_CACHE_SIZE: Final = 256


class EncryptionError(Exception):
    """Root of the encryption errors."""


class DataKeyError(EncryptionError):
    """The key configuration is wrong, or data needs a key that is not configured."""


class DamagedFrameError(EncryptionError):
    """Bytes that claim to be an encrypted frame do not authenticate (damaged or torn)."""


@dataclass(frozen=True)
class DataKey:
    secret: bytes
    id: bytes
    """8 bytes; ``hex_id`` is how it is shown."""

    @classmethod
    def from_secret(cls, secret: bytes) -> DataKey:
        if len(secret) != KEY_BYTES:
            raise DataKeyError(f"a data key is {KEY_BYTES} bytes")
        return cls(secret, hashlib.sha256(_KEY_ID_CONTEXT + secret).digest()[:8])

    @property
    def hex_id(self) -> str:
        return self.id.hex()

    def __repr__(self) -> str:  # never the secret, even in a traceback
        return f"DataKey(id={self.hex_id})"


@dataclass(frozen=True)
class DataKeyRing:
    """The configured keys: ``current`` encrypts, every key decrypts."""

    keys: tuple[DataKey, ...]
    source: str
    """Where the keys came from (a file path or the variable's name), for messages."""

    def __post_init__(self) -> None:
        if not self.keys:
            raise DataKeyError(f"{self.source} holds no data key")
        ids = [key.id for key in self.keys]
        if len(set(ids)) != len(ids):
            raise DataKeyError(f"{self.source} lists the same data key twice")

    @property
    def current(self) -> DataKey:
        return self.keys[0]

    @property
    def hex_ids(self) -> tuple[str, ...]:
        return tuple(key.hex_id for key in self.keys)

    def find(self, key_id: bytes) -> DataKey:
        for key in self.keys:
            if key.id == key_id:
                return key
        raise DataKeyError(
            f"data encrypted under key id {key_id.hex()} needs a key that {self.source} does "
            f"not hold (it holds {', '.join(self.hex_ids)})"
        )

    def duckdb_keys(self) -> list[tuple[DataKey, str]]:
        """Each key with the passphrase DuckDB gets for it (current first)."""
        return [(key, duckdb_passphrase(key)) for key in self.keys]


# --- where keys come from -----------------------------------------------------------------


def generate_key_text() -> str:
    """A new data key as it is written in a key file or the variable."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def parse_keys(text: str, source: str) -> DataKeyRing:
    """Keys from a key file's text or the variable's value. The message never quotes a key."""
    keys: list[DataKey] = []
    for line in text.splitlines():
        content = line.split("#", 1)[0].strip()
        for token in filter(None, _KEY_SEPARATORS.split(content)):
            try:
                secret = base64.b64decode(token, validate=True)
            except (binascii.Error, ValueError):
                raise DataKeyError(
                    f"{source}: key {len(keys) + 1} is not base64 (make one with "
                    "`openssl rand -base64 32` or `stumble keys new-data-key`)"
                ) from None
            if len(secret) != KEY_BYTES:
                raise DataKeyError(
                    f"{source}: key {len(keys) + 1} is {len(secret)} bytes, not {KEY_BYTES}"
                )
            keys.append(DataKey.from_secret(secret))
    return DataKeyRing(tuple(keys), source)


def load_data_keys(
    key_file: str, data_dir: Path, environ: Mapping[str, str] | None = None
) -> DataKeyRing | None:
    """The configured keys, or None when encryption at rest is off (no key anywhere)."""
    env = os.environ if environ is None else environ
    from_env = env.get(KEY_ENV_VAR, "").strip()
    if from_env and key_file:
        raise DataKeyError(
            f"both {KEY_ENV_VAR} and data_key_file are set; keep one source of data keys"
        )
    if from_env:
        return parse_keys(from_env, KEY_ENV_VAR)
    if not key_file:
        return None
    path = Path(key_file)
    check_key_file(path, data_dir)
    return parse_keys(path.read_text(encoding="ascii", errors="replace"), str(path))


def check_key_file(path: Path, data_dir: Path) -> None:
    """A key file must exist, be private, and live outside the data directory it protects."""
    try:
        status = path.stat()
    except FileNotFoundError:
        raise DataKeyError(f"the data key file {path} does not exist") from None
    if not stat.S_ISREG(status.st_mode):
        raise DataKeyError(f"the data key file {path} is not a regular file")
    if status.st_mode & 0o077:
        raise DataKeyError(
            f"the data key file {path} is readable by others "
            f"(mode {stat.S_IMODE(status.st_mode):04o}); chmod 600 it"
        )
    resolved, data = path.resolve(), data_dir.resolve()
    if resolved == data or data in resolved.parents:
        raise DataKeyError(
            f"the data key file {path} is inside the data directory {data_dir}: a copy of the "
            "directory (a backup) would carry its own key; keep the key elsewhere"
        )


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace a key file atomically (0600, fsynced), current key first."""
    temporary = path.with_name(f".{path.name}.new")
    body = "# stumble data keys: the first encrypts, the others only decrypt\n" + "".join(
        f"{key}\n" for key in keys
    )
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, body.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)
    fsync_directory(path.parent)


def key_text(key: DataKey) -> str:
    return base64.b64encode(key.secret).decode()


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- subkeys ------------------------------------------------------------------------------


def derive(key: DataKey, purpose: bytes, salt: bytes = b"") -> bytes:
    """HKDF-SHA256 of the data key for one purpose (and salt)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt or None,
                info=_SUBKEY_CONTEXT + purpose)  # fmt: skip
    return hkdf.derive(key.secret)


def duckdb_passphrase(key: DataKey) -> str:
    """What DuckDB's ``ENCRYPTION_KEY`` gets: a subkey, so the data key never enters SQL."""
    return derive(key, DUCKDB).hex()


# --- frames -------------------------------------------------------------------------------


def is_encrypted(first_bytes: bytes) -> bool:
    """Whether content starting with these bytes is frames (an empty file is neither)."""
    return first_bytes[:1] == MAGIC[:1]


class FrameSealer:
    """Encrypts frames under the current key with one salt and a counter. Thread-safe."""

    def __init__(self, ring: DataKeyRing, purpose: bytes) -> None:
        self.key = ring.current
        self.purpose = purpose
        self._salt = os.urandom(16)
        self._aead = AESGCM(derive(self.key, purpose, self._salt))
        self._counter = itertools.count(1)  # next() on a count is atomic in CPython
        self._lock = threading.Lock()

    def seal(self, plaintext: bytes) -> bytes:
        with self._lock:
            counter = next(self._counter)
        ciphertext_bytes = len(plaintext) + TAG_BYTES
        if ciphertext_bytes > MAX_FRAME_BYTES:
            raise ValueError("a frame holds at most 2 GiB")
        header = HEADER.pack(MAGIC, self.key.id, self._salt, counter, ciphertext_bytes)
        return header + self._aead.encrypt(_nonce(counter), plaintext, header)


class FrameOpener:
    """Decrypts frames under any key of the ring; caches the subkeys of recent salts."""

    def __init__(self, ring: DataKeyRing, purpose: bytes) -> None:
        self.ring = ring
        self.purpose = purpose
        self._aeads: dict[tuple[bytes, bytes], AESGCM] = {}
        self._lock = threading.Lock()

    def open(self, frame: bytes | memoryview) -> bytes:
        """The plaintext of one whole frame; ``DamagedFrameError`` when it does not
        authenticate, ``DataKeyError`` when its key is not configured."""
        view = memoryview(frame)
        if len(view) < HEADER_BYTES:
            raise DamagedFrameError("a frame is shorter than its header")
        magic, key_id, salt, counter, length = HEADER.unpack_from(view)
        if magic != MAGIC or length != len(view) - HEADER_BYTES or length < TAG_BYTES:
            raise DamagedFrameError("a frame's header does not fit it")
        aead = self._aead(key_id, salt)
        try:
            return aead.decrypt(_nonce(counter), view[HEADER_BYTES:], view[:HEADER_BYTES])
        except InvalidTag:
            raise DamagedFrameError("a frame does not authenticate") from None

    def _aead(self, key_id: bytes, salt: bytes) -> AESGCM:
        with self._lock:
            aead = self._aeads.get((key_id, salt))
            if aead is None:
                if len(self._aeads) >= _SUBKEY_CACHE_SIZE:
                    self._aeads.clear()
                aead = AESGCM(derive(self.ring.find(key_id), self.purpose, salt))
                self._aeads[(key_id, salt)] = aead
            return aead

    def open_all(self, data: bytes, what: str) -> bytes:
        """The plaintext of a whole file of frames, joined; any damage raises."""
        parts = []
        for start, end in frame_bounds(data):
            try:
                parts.append(self.open(memoryview(data)[start:end]))
            except DamagedFrameError as error:
                raise DamagedFrameError(f"{what}: {error} at byte {start}") from None
        if frames_end(data) != len(data):
            raise DamagedFrameError(f"{what}: ends with a torn frame")
        return b"".join(parts)

    def key_ids(self, data: bytes) -> set[bytes]:
        """The key ids of the frames in ``data`` (structure only, nothing decrypted)."""
        return {bytes(data[start + 4 : start + 12]) for start, _ in frame_bounds(data)}


def _nonce(counter: int) -> bytes:
    return b"\0\0\0\0" + counter.to_bytes(8, "big")


def frame_bounds(data: bytes | memoryview) -> Iterator[tuple[int, int]]:
    """(start, end) of each structurally whole frame from the start, stopping at the first
    bytes that are not one (a torn or damaged tail). Nothing is decrypted."""
    position, size = 0, len(data)
    while size - position >= HEADER_BYTES:
        magic, _, _, _, length = HEADER.unpack_from(data, position)
        end = position + HEADER_BYTES + length
        if magic != MAGIC or length < TAG_BYTES or end > size:
            return
        yield position, end
        position = end


def frames_end(data: bytes | memoryview) -> int:
    """Where the structurally whole frames at the start of ``data`` end."""
    end = 0
    for _, end in frame_bounds(data):  # noqa: B007 - the last one is the answer
        pass
    return end


# --- lines (the audit log) ----------------------------------------------------------------


def seal_line(sealer: FrameSealer, line: bytes) -> bytes:
    """One audit line (no newline) as a base64 frame (no newline): text stays line-based."""
    return base64.b64encode(sealer.seal(line))


def open_line(opener: FrameOpener, stored: bytes) -> bytes:
    """The plaintext of a stored audit line (no newline); ``DamagedFrameError`` if it is not
    a whole frame that authenticates."""
    try:
        frame = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        raise DamagedFrameError("an encrypted line is not base64") from None
    return opener.open(frame)


def is_encrypted_line(stored: bytes) -> bool:
    """Whether a stored audit line is a frame: base64 of the magic starts ``p1NF``."""
    return stored.startswith(_MAGIC_B64_PREFIX)


_MAGIC_B64_PREFIX: Final = base64.b64encode(MAGIC + b"\0\0")[:4]
