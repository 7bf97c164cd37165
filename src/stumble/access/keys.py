"""Write keys: each belongs to one environment, lists its allowed origins and its sample rate.

A key looks like ``stk_<key id>_<secret>``. Only a SHA-256 of the whole key is stored, next
to the key id used to find it, so a leaked ``keys.json`` does not leak working keys and lookup
is one dict access plus one constant-time comparison. The file is small, rewritten atomically,
and re-read by the server when it changes, so ``stumble keys revoke`` takes effect without a
restart (and without touching the database, which only the server may hold open).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from pathlib import Path
from typing import Annotated, Final

import msgspec
from msgspec import Meta

from stumble.files import private_dir, replace_private_file

KEY_PREFIX: Final = "stk_"
KEYS_FILE: Final = "keys.json"
DEV_KEY_FILE: Final = "dev-write-key.txt"
"""The ``dev`` key made on first start, kept readable for the demo and local tries (dev only)."""
ENVIRONMENT_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,31}$"
# Letters only: a key id must never look like a number to the privacy detectors or a person.
_ID_ALPHABET: Final = string.ascii_lowercase
_SECRET_ALPHABET: Final = string.ascii_letters + string.digits


class KeyRingError(Exception):
    """A key operation that cannot be done (unknown id, bad origin…); the message says why."""


class WriteKey(msgspec.Struct, kw_only=True):
    key_id: str
    environment: Annotated[str, Meta(pattern=ENVIRONMENT_PATTERN)]
    key_sha256: str
    origins: list[str] = []
    sample_rate: Annotated[float, Meta(ge=0, le=1)] = 1.0
    enabled: bool = True
    """The kill switch: a disabled key tells SDKs to stop sending and its batches get 403."""
    flush_interval_ms: Annotated[int, Meta(ge=500, le=600_000)] = 3000
    created_at_ms: int = 0
    revoked_at_ms: int | None = None
    label: str = ""

    @property
    def revoked(self) -> bool:
        return self.revoked_at_ms is not None

    def allows_origin(self, origin: str | None) -> bool:
        """No ``Origin`` header (server-side clients) is allowed; ``null`` never is."""
        if origin is None:
            return True
        return origin != "null" and ("*" in self.origins or origin in self.origins)


class KeyFile(msgspec.Struct):
    keys: list[WriteKey] = []


def normalise_origin(origin: str) -> str:
    """``https://App.Example.kz/`` -> ``https://app.example.kz``; rejects anything else."""
    text = origin.strip().rstrip("/")
    if text == "*":
        return text
    scheme, sep, host = text.partition("://")
    if not sep or scheme not in {"http", "https"} or not host or "/" in host or "@" in host:
        raise KeyRingError(f"origin must look like https://host[:port], got {len(text)} characters")
    return f"{scheme}://{host.lower()}"


class KeyRing:
    """The write keys of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEYS_FILE
        self._by_id: dict[str, WriteKey] = {}
        self._mtime_ns = -1
        self.reload()

    def reload(self) -> bool:
        """Re-read the file if it changed; returns whether it did."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime == self._mtime_ns:
            return False
        data = msgspec.json.decode(self.path.read_bytes(), type=KeyFile) if mtime else KeyFile()
        self._by_id = {k.key_id: k for k in data.keys}
        self._mtime_ns = mtime
        return True

    def all(self) -> list[WriteKey]:
        return sorted(self._by_id.values(), key=lambda k: k.created_at_ms)

    def any_key_allows(self, origin: str) -> bool:
        """For a CORS preflight that does not name its key (it will send it in a header)."""
        return any(
            k.enabled and not k.revoked and k.allows_origin(origin) for k in self._by_id.values()
        )

    def authenticate(self, token: str) -> WriteKey | None:
        """The key for a presented token, or None when unknown, malformed or revoked."""
        key_id = parse_key_id(token)
        if key_id is None:
            return None
        key = self._by_id.get(key_id)
        if key is None or key.revoked:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        return key if hmac.compare_digest(digest, key.key_sha256) else None

    def create(
        self,
        environment: str,
        origins: list[str],
        sample_rate: float = 1.0,
        label: str = "",
    ) -> tuple[str, WriteKey]:
        """Make a key; returns the token (shown once, never stored) and its record."""
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(32))
        token = f"{KEY_PREFIX}{key_id}_{secret}"
        record = msgspec.convert(
            {
                "key_id": key_id,
                "environment": environment,
                "key_sha256": hashlib.sha256(token.encode()).hexdigest(),
                "origins": [normalise_origin(o) for o in origins],
                "sample_rate": sample_rate,
                "created_at_ms": int(time.time() * 1000),
                "label": label,
            },
            WriteKey,
        )
        self._by_id[key_id] = record
        self._save()
        return token, record

    def update(self, key_id: str, **changes: object) -> WriteKey:
        key = self._require(key_id)
        updated = msgspec.convert({**msgspec.to_builtins(key), **changes}, WriteKey)
        self._by_id[key_id] = updated
        self._save()
        return updated

    def revoke(self, key_id: str) -> WriteKey:
        return self.update(key_id, revoked_at_ms=int(time.time() * 1000))

    def _require(self, key_id: str) -> WriteKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise KeyRingError(
                f"no write key with id {key_id!r}" if key_id.isalpha() else "no such key"
            )
        return key

    def _save(self) -> None:
        private_dir(self.path.parent)  # the data directory
        replace_private_file(
            self.path, msgspec.json.format(msgspec.json.encode(KeyFile(self.all())))
        )
        self._mtime_ns = self.path.stat().st_mtime_ns


def parse_key_id(token: str) -> str | None:
    if not token.startswith(KEY_PREFIX) or len(token) > 100:
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id.isalpha() or not secret:
        return None
    return key_id
