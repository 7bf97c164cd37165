"""Keyed pseudonyms for the two client-made identifiers that reach storage.

Session ids are re-keyed with a *daily* key that is destroyed after 48 hours, so a stored id
cannot be linked across days or back to a browser once the key is gone (Plausible's model,
with random SDK ids instead of IP + User-Agent, which collapse behind a corporate NAT).
The day is that of a time zone (``session_key_time_zone``, default the server's): the key
changes at local midnight, when nobody works, instead of at midnight UTC, which cut the
working day of everyone west of Europe in two sessions (decision 39).

Event ids are re-keyed with a long-lived key: they must stay stable for deduplication of
client retries, and re-keying them means a client cannot smuggle digits (an IIN shaped like
a UUID) into storage through the one field the detectors cannot judge.

BLAKE2b in keyed mode is a proper MAC and several times faster than ``hmac`` in CPython.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import threading
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_MS: Final = 86_400_000
SESSION_KEY_LIFETIME_MS: Final = 2 * DAY_MS
_LETTERS: Final = b"abcdefghijklmnopqrstuvwxyz"
_LETTER_TABLE: Final = bytes(_LETTERS[b % 26] for b in range(256))
MEMO_LIMIT: Final = 200_000
LOCALTIME: Final = Path("/etc/localtime")


def server_time_zone() -> ZoneInfo:
    """The server's IANA zone: ``TZ``, else what ``/etc/localtime`` links to, else UTC.

    A fixed offset (``datetime.now().astimezone()``) would not follow daylight saving."""
    names = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):  # no /etc/localtime: TZ or UTC
        names.append(str(LOCALTIME.resolve()).partition("zoneinfo/")[2])
    for name in names:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def time_zone(name: str) -> ZoneInfo:
    """The zone a setting names; empty means the server's. Raises ``ValueError``."""
    if not name:
        return server_time_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("session_key_time_zone is not an IANA time zone name") from None


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
    """One random key per local day of receipt, deleted 48 hours after that day began.

    Days are ordinals (``date.toordinal``) of the calendar date in ``zone``; a key file is
    named by that date. Receipt times arrive in order, so the current day's bounds are kept
    and a zone conversion happens once a day, not once an event."""

    def __init__(self, secrets_dir: Path, zone: ZoneInfo | None = None) -> None:
        self._dir = secrets_dir
        self.zone = zone or ZoneInfo("UTC")
        self._lock = threading.Lock()
        self._cache: dict[int, bytes] = {}
        self._memo: dict[int, dict[str, str]] = {}
        self._span = (0, 0, 0)  # [start ms, end ms) of the last day seen, and its ordinal

    def day_of(self, received_at_ms: int) -> int:
        start, end, day = self._span
        if start <= received_at_ms < end:
            return day
        date = dt.datetime.fromtimestamp(received_at_ms / 1000, self.zone).date()
        span = (self.day_start_ms(date), self.day_start_ms(date + dt.timedelta(days=1)))
        self._span = (*span, date.toordinal())  # one tuple: readers never see half of it
        return date.toordinal()

    def day_start_ms(self, date: dt.date) -> int:
        """Local midnight of ``date`` (the first instant of the day when DST skips it)."""
        midnight = dt.datetime.combine(date, dt.time(), self.zone)
        return int(midnight.astimezone(dt.UTC).timestamp() * 1000)

    def _path(self, day: int) -> Path:
        return self._dir / f"session-{dt.date.fromordinal(day).isoformat()}.key"

    def key_for(self, received_at_ms: int) -> bytes:
        day = self.day_of(received_at_ms)
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
        day = self.day_of(received_at_ms)
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
            day = _day_of_name(path.stem.removeprefix("session-"))
            if day is not None and self._expired(day, now_ms):
                path.unlink(missing_ok=True)
                removed.append(path.name)
        with self._lock:
            live = {
                d for d in self._cache.keys() | self._memo.keys() if not self._expired(d, now_ms)
            }
            self._cache = {d: k for d, k in self._cache.items() if d in live}
            self._memo = {d: m for d, m in self._memo.items() if d in live}
        return removed

    def _expired(self, day: int, now_ms: int) -> bool:
        start = self.day_start_ms(dt.date.fromordinal(day))
        return now_ms - start >= SESSION_KEY_LIFETIME_MS


def _day_of_name(day_text: str) -> int | None:
    try:
        return dt.date.fromisoformat(day_text).toordinal()
    except ValueError:
        return None
