"""Keyed pseudonyms for the two client-made identifiers that reach storage.

Session ids are re-keyed with a *daily* key that is destroyed after 48 hours, so a stored id
cannot be linked across days or back to a browser once the key is gone (Plausible's model,
with random SDK ids instead of IP + User-Agent, which collapse behind a corporate NAT).

Event ids are re-keyed with a long-lived key: they must stay stable for deduplication of
client retries, and re-keying them means a client cannot smuggle digits (an IIN shaped like
a UUID) into storage through the one field the detectors cannot judge.

BLAKE2b in keyed mode is a proper MAC and several times faster than ``hmac`` in CPython.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Final

DAY_MS: Final = 86_400_000
SESSION_KEY_LIFETIME_MS: Final = 2 * DAY_MS
_LETTERS: Final = b"abcdefghijklmnopqrstuvwxyz"
_LETTER_TABLE: Final = bytes(_LETTERS[b % 26] for b in range(256))
MEMO_LIMIT: Final = 200_000


def _new_secret(path: Path) -> bytes:
    """Create a 32-byte secret file (0600, fsynced) unless another writer already did."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets: the owner's alone
    secret = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


def _read_or_create(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _new_secret(path)
    return data if len(data) == 32 else _new_secret_replacing(path)


def _new_secret_replacing(path: Path) -> bytes:
    path.unlink(missing_ok=True)
    return _new_secret(path)


class EventIdKey:
    """Maps a client event id to a stable stored UUID."""

    def __init__(self, secrets_dir: Path) -> None:
        self._key = _read_or_create(secrets_dir / "event-id.key")

    def stored_id(self, client_event_id: str) -> str:
        h = hashlib.blake2b(client_event_id.lower().encode(), key=self._key, digest_size=16)
        x = h.hexdigest()  # formatted by hand: uuid.UUID costs more than the hash itself
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class SessionKeyRing:
    """One random key per UTC day of receipt, deleted 48 hours after that day began."""

    def __init__(self, secrets_dir: Path) -> None:
        self._dir = secrets_dir
        self._lock = threading.Lock()
        self._cache: dict[int, bytes] = {}
        self._memo: dict[int, dict[str, str]] = {}

    def _path(self, day: int) -> Path:
        return self._dir / f"session-{time.strftime('%Y-%m-%d', time.gmtime(day * 86_400))}.key"

    def key_for(self, received_at_ms: int) -> bytes:
        day = received_at_ms // DAY_MS
        key = self._cache.get(day)
        if key is None:
            with self._lock:
                key = self._cache.get(day) or _read_or_create(self._path(day))
                self._cache = {d: k for d, k in self._cache.items() if d >= day - 1}
                self._cache[day] = key
        return key

    def pseudonym(self, session_id: str, received_at_ms: int) -> str:
        """``h_`` + 16 letters: no digits, so a stored id can never look like a number.

        A session sends many events a day, so each day's answers are remembered (in memory
        only, bounded, and forgotten with the day's key).
        """
        day = received_at_ms // DAY_MS
        memo = self._memo.get(day)
        if memo is None or len(memo) > MEMO_LIMIT:
            memo = self._memo[day] = {}
        known = memo.get(session_id)
        if known is None:
            digest = hashlib.blake2b(
                session_id.encode(), key=self.key_for(received_at_ms), digest_size=16
            ).digest()
            known = memo[session_id] = "h_" + digest.translate(_LETTER_TABLE).decode()
        return known

    def destroy_expired(self, now_ms: int) -> list[str]:
        """Delete every daily key older than 48 hours; idempotent, safe to crash in."""
        removed = []
        for path in sorted(self._dir.glob("session-*.key")):
            day_start_ms = _day_start_ms(path.stem.removeprefix("session-"))
            if day_start_ms is not None and now_ms - day_start_ms >= SESSION_KEY_LIFETIME_MS:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        with self._lock:
            live = {
                d
                for d in self._cache.keys() | self._memo.keys()
                if now_ms - d * DAY_MS < SESSION_KEY_LIFETIME_MS
            }
            self._cache = {d: k for d, k in self._cache.items() if d in live}
            self._memo = {d: m for d, m in self._memo.items() if d in live}
        return removed


def _day_start_ms(day_text: str) -> int | None:
    try:
        parsed = time.strptime(day_text, "%Y-%m-%d")
    except ValueError:
        return None
    import calendar  # noqa: PLC0415 - only needed here

    return calendar.timegm(parsed) * 1000
