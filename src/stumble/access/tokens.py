"""API tokens: a bearer secret per team or service, each with one role and an optional expiry.

A token looks like ``sta_<token id>_<secret>`` (``stk_`` is a write key). As with write keys
(``keys.py``), only a SHA-256 of the whole token is stored, next to the token id used to find
it, so ``tokens.json`` leaks no working token and lookup is one dict access plus one
constant-time comparison. The file is 0600 in a 0700 data directory, replaced atomically and
re-read by the server when its inode, size or mtime changes (one ``stat`` when it did not), so
``stumble tokens revoke`` takes effect within the server's one-second reload.

Unlike ``keys.py``, every change re-reads the file under an exclusive lock first: a revocation
made by one process is never lost to another process writing from a stale copy.

Names say who holds a token (``ux_team``, ``grafana``): identifiers, never a person's name or
e-mail address, because they end up in audit records that outlive people's consent.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import string
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Final, NamedTuple

import msgspec
from msgspec import Meta

from stumble.access.roles import Permission, Role
from stumble.files import replace_private_file

TOKEN_PREFIX: Final = "sta_"  # noqa: S105 - the public prefix of every token, not a secret
TOKENS_FILE: Final = "tokens.json"
TOKENS_LOCK_FILE: Final = "tokens.lock"
NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
_NAME_RE: Final = re.compile(NAME_PATTERN)
# Letters only, as for write keys: an id must never look like a number to the detectors.
_ID_ALPHABET: Final = string.ascii_lowercase
_ID_LENGTH: Final = 10
_SECRET_ALPHABET: Final = string.ascii_letters + string.digits
_SECRET_LENGTH: Final = 32  # about 190 bits
_MAX_TOKEN_TEXT: Final = 100


class TokenError(Exception):
    """A token operation that cannot be done (bad name, unknown token…); the message says why
    in one line and never repeats input that might be personal data."""


class TokenState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What may be shown about a token (CLI, admin API): never the token nor its hash."""

    token_id: str
    name: str
    role: Role
    state: TokenState
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedToken(TokenInfo, frozen=True, kw_only=True):
    """A token just created: the one time its text is known and shown."""

    token: str


class Token(msgspec.Struct, frozen=True, kw_only=True):
    """The stored record of an API token."""

    token_id: str
    name: Annotated[str, Meta(pattern=NAME_PATTERN)]
    role: Role
    token_sha256: str
    created_at_ms: int
    expires_at_ms: int | None = None
    """None: never expires."""
    revoked_at_ms: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at_ms is not None

    def state(self, now: datetime) -> TokenState:
        now_ms = to_ms(now)  # first: a naive clock is a bug even for a token that never expires
        if self.revoked:
            return TokenState.REVOKED
        if self.expires_at_ms is not None and now_ms >= self.expires_at_ms:
            return TokenState.EXPIRED
        return TokenState.ACTIVE

    def is_active(self, now: datetime) -> bool:
        return self.state(now) is TokenState.ACTIVE

    def grants(self, permission: Permission) -> bool:
        return self.role.grants(permission)

    def issued(self, token_text: str, now: datetime) -> IssuedToken:
        """What ``create`` shows its caller once: the record and the token's text."""
        return IssuedToken(token=token_text, **msgspec.structs.asdict(self.info(now)))

    def info(self, now: datetime) -> TokenInfo:
        return TokenInfo(
            token_id=self.token_id,
            name=self.name,
            role=self.role,
            state=self.state(now),
            created_at=from_ms(self.created_at_ms),
            expires_at=None if self.expires_at_ms is None else from_ms(self.expires_at_ms),
            revoked_at=None if self.revoked_at_ms is None else from_ms(self.revoked_at_ms),
        )


class TokenFile(msgspec.Struct):
    tokens: list[Token] = []


class _FileSignature(NamedTuple):
    """What changes whenever the file is replaced: a new inode at the least."""

    inode: int
    size: int
    mtime_ns: int


_MISSING: Final = _FileSignature(0, 0, 0)
_NEVER_READ: Final = _FileSignature(-1, -1, -1)


class TokenRing:
    """The API tokens of one data directory.

    Reads (``authenticate``, ``active``, ``list``) use the copy loaded by the last ``reload``;
    the server calls ``reload()`` every second. Changes lock, re-read, write and reload.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / TOKENS_FILE
        self._lock_path = data_dir / TOKENS_LOCK_FILE
        self._by_id: dict[str, Token] = {}
        self._seen = _NEVER_READ
        self._mutex = threading.Lock()  # flock is per open file: threads need their own lock
        self.reload()

    def reload(self) -> bool:
        """Re-read the file if it changed (one ``stat`` when it did not); returns whether.

        Raises ``TokenError`` for a damaged file and ``OSError`` for an unreadable one, and
        then keeps the tokens it had."""
        if _signature(self.path) == self._seen:
            return False
        signature, tokens = _read_tokens(self.path)
        self._by_id = {t.token_id: t for t in tokens}  # one assignment: readers see old or new
        self._seen = signature
        return True

    def list(self) -> tuple[Token, ...]:
        return tuple(sorted(self._by_id.values(), key=lambda t: (t.created_at_ms, t.token_id)))

    def authenticate(self, token_text: str, now: datetime) -> Token | None:
        """The token presented, or None when malformed, unknown, revoked or expired."""
        token_id = parse_token_id(token_text)
        if token_id is None:
            return None
        token = self._by_id.get(token_id)
        if token is None:
            return None
        digest = hashlib.sha256(token_text.encode()).hexdigest()
        if not hmac.compare_digest(digest, token.token_sha256):
            return None
        return token if token.is_active(now) else None

    def active(self, token_id: str, now: datetime) -> Token | None:
        """The token with this id if it is still active: how a session re-checks its token."""
        token = self._by_id.get(token_id)
        return token if token is not None and token.is_active(now) else None

    def create(
        self,
        role: Role,
        name: str,
        expires_in: timedelta | None = None,
        *,
        now: datetime | None = None,
    ) -> tuple[str, Token]:
        """Make a token; returns its text (shown once, never stored) and its record."""
        moment = now or datetime.now(UTC)
        check_token_name(name)
        expires_at_ms = _expiry_ms(moment, expires_in)
        with self._changing():
            self._refuse_taken_name(name, moment)
            token_id = self._new_token_id()
            text = TOKEN_PREFIX + token_id + "_" + _random_text(_SECRET_ALPHABET, _SECRET_LENGTH)
            token = Token(
                token_id=token_id,
                name=name,
                role=role,
                token_sha256=hashlib.sha256(text.encode()).hexdigest(),
                created_at_ms=to_ms(moment),
                expires_at_ms=expires_at_ms,
            )
            self._write([*self._by_id.values(), token])
        return text, token

    def revoke(self, token_id_or_name: str, *, now: datetime | None = None) -> tuple[Token, ...]:
        """Revoke the token with this id, or every token with this name; returns them all
        (one already revoked keeps its first revocation time)."""
        revoked_at_ms = to_ms(now or datetime.now(UTC))
        with self._changing():
            matches = self._matching(token_id_or_name)
            if not matches:
                raise TokenError("no API token with that id or name (see `stumble tokens list`)")
            revoked = tuple(
                t if t.revoked else msgspec.structs.replace(t, revoked_at_ms=revoked_at_ms)
                for t in matches
            )
            if revoked != matches:
                self._write({**self._by_id, **{t.token_id: t for t in revoked}}.values())
        return revoked

    def _matching(self, token_id_or_name: str) -> tuple[Token, ...]:
        by_id = self._by_id.get(token_id_or_name)
        if by_id is not None:
            return (by_id,)
        return tuple(t for t in self.list() if t.name == token_id_or_name)

    def _refuse_taken_name(self, name: str, now: datetime) -> None:
        # A name must pick one live token for `revoke NAME`, and never be read as an id.
        if name in self._by_id or any(
            t.name == name and t.is_active(now) for t in self._by_id.values()
        ):
            raise TokenError(
                f"{name} is already the name or id of an active API token; "
                "revoke that token or choose another name"
            )

    def _new_token_id(self) -> str:
        names = {t.name for t in self._by_id.values()}
        while True:
            token_id = _random_text(_ID_ALPHABET, _ID_LENGTH)
            if token_id not in self._by_id and token_id not in names:
                return token_id

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock (threads and processes) over a fresh copy of the file."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data directory
        with self._mutex:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.reload()
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    def _write(self, tokens: Iterable[Token]) -> None:
        ordered = sorted(tokens, key=lambda t: (t.created_at_ms, t.token_id))
        encoded = msgspec.json.encode(TokenFile(ordered))
        replace_private_file(self.path, msgspec.json.format(encoded))
        self.reload()


def check_token_name(name: str) -> None:
    """Refuse a name that is not an identifier or that looks like personal data."""
    hint = "name the team or service that holds the token, e.g. ux_team"
    if "@" in name:
        raise TokenError(f"a token name must not be an e-mail address; {hint}")
    if not _NAME_RE.fullmatch(name):
        raise TokenError(f"a token name is 1-64 letters, digits, '_', '.' or '-'; {hint}")
    # Imported here: the detectors load phone and IBAN tables that reads of tokens never need.
    from stumble.privacy.detectors import detect  # noqa: PLC0415

    hit = detect(name)
    if hit is not None:
        raise TokenError(f"that token name looks like personal data ({hit}); {hint}")


def parse_token_id(token_text: str) -> str | None:
    """The token id inside ``sta_<id>_<secret>``, or None for anything else."""
    if len(token_text) > _MAX_TOKEN_TEXT or not token_text.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token_text[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not secret or not token_text.isascii() or not token_id.isalpha():
        return None
    return token_id


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is refused (its zone is a guess)."""
    if moment.tzinfo is None:
        raise ValueError("a timezone-aware datetime is required")
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _expiry_ms(now: datetime, expires_in: timedelta | None) -> int | None:
    if expires_in is None:
        return None
    if expires_in <= timedelta(0):
        raise TokenError("a token's lifetime must be positive")
    return to_ms(now + expires_in)


def _random_text(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _signature(path: Path) -> _FileSignature:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return _MISSING
    return _FileSignature(stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _read_tokens(path: Path) -> tuple[_FileSignature, list[Token]]:
    """The file's tokens with the signature of the very bytes read (fstat of the same open
    file), so a replacement between the two cannot be missed by the next reload."""
    try:
        with path.open("rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError:
        return _MISSING, []
    signature = _FileSignature(stat.st_ino, stat.st_size, stat.st_mtime_ns)
    try:
        return signature, msgspec.json.decode(data, type=TokenFile).tokens
    except msgspec.DecodeError as error:  # msgspec names the field, never its value
        raise TokenError(f"{path} is damaged: {error}") from None
