"""Browser sessions for the dashboard: an API token exchanged for a cookie, server-side.

Signing in with an API token (or a one-time link made for one) gives a ``BrowserSession``:
a random session id for an HttpOnly, SameSite=Strict cookie, and a separate random CSRF token
that pages echo in a header on every change. The cookie carries nothing but the id; the
store keeps the session, so signing out or revoking the token ends it at once.

A session lives until the first of: ``idle_timeout`` without a lookup, ``absolute_lifetime``
after sign-in, sign-out, or its API token being revoked or expiring — every lookup re-checks
the token in the ``TokenRing`` (which the server reloads every second), so a session never
outlives the revocation of the token it came from by more than that second.

Sessions and links live in this process's memory: a restart signs everyone out, which for an
internal dashboard is a fair price for holding no session secret on disk. Stored ids are keyed
by their SHA-256, so the time a lookup takes says nothing about the ids that exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import datetime, timedelta
from typing import Final

import msgspec

from stumble.access.roles import Permission, Role
from stumble.access.tokens import Token, TokenRing

SESSION_COOKIE_NAME: Final = "stumble_session"
CSRF_HEADER_NAME: Final = "X-CSRF-Token"
IDLE_TIMEOUT_DEFAULT: Final = timedelta(minutes=30)
ABSOLUTE_LIFETIME_DEFAULT: Final = timedelta(hours=12)
MAX_SESSIONS_PER_TOKEN_DEFAULT: Final = 20
_RANDOM_BYTES: Final = 32  # 256 bits, 43 URL-safe characters


class SessionError(Exception):
    """A session cannot be made (the token is revoked or expired…); the message says why."""


class BrowserSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    """The cookie value: HttpOnly, SameSite=Strict (see ``SessionStore.cookie_for``)."""
    csrf_token: str
    """Given to pages, sent back in ``X-CSRF-Token`` with every change; never in the cookie."""
    token_id: str
    role: Role
    signed_in_at: datetime
    last_seen_at: datetime

    def grants(self, permission: Permission) -> bool:
        return self.role.grants(permission)


class SessionCookie(msgspec.Struct, frozen=True, kw_only=True):
    """The cookie a route sets at sign-in, attribute by attribute (Starlette's ``set_cookie``)."""

    name: str
    value: str
    max_age_s: int
    secure: bool
    http_only: bool = True
    same_site: str = "strict"
    path: str = "/"


class _PendingLink(msgspec.Struct, frozen=True):
    token_id: str
    expires_at: datetime


class SessionStore:
    """The signed-in browsers of one server process; safe to use from several threads."""

    def __init__(
        self,
        tokens: TokenRing,
        *,
        idle_timeout: timedelta = IDLE_TIMEOUT_DEFAULT,
        absolute_lifetime: timedelta = ABSOLUTE_LIFETIME_DEFAULT,
        max_sessions_per_token: int = MAX_SESSIONS_PER_TOKEN_DEFAULT,
    ) -> None:
        if idle_timeout <= timedelta(0) or absolute_lifetime <= timedelta(0):
            raise ValueError("session timeouts must be positive")
        if max_sessions_per_token < 1:
            raise ValueError("max_sessions_per_token must be at least 1")
        self._tokens = tokens
        self.idle_timeout = idle_timeout
        self.absolute_lifetime = absolute_lifetime
        self._max_per_token = max_sessions_per_token
        self._sessions: dict[bytes, BrowserSession] = {}
        self._links: dict[bytes, _PendingLink] = {}
        self._lock = threading.Lock()

    def sign_in(self, token: Token, now: datetime) -> BrowserSession:
        """A new session for an authenticated token; refused if it is no longer active."""
        current = self._tokens.active(token.token_id, now)
        if current is None or current.token_sha256 != token.token_sha256:
            raise SessionError("the API token is revoked or expired; ask an admin for a new one")
        session = BrowserSession(
            session_id=secrets.token_urlsafe(_RANDOM_BYTES),
            csrf_token=secrets.token_urlsafe(_RANDOM_BYTES),
            token_id=current.token_id,
            role=current.role,
            signed_in_at=now,
            last_seen_at=now,
        )
        with self._lock:
            self._forget_expired(now)
            self._evict_oldest_of(current.token_id)
            self._sessions[_digest(session.session_id)] = session
        return session

    def lookup(self, session_id: str, now: datetime) -> BrowserSession | None:
        """The live session for a cookie value (its idle clock restarts), or None."""
        key = _digest(session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if not self._is_live(session, now):
                del self._sessions[key]
                return None
            seen = msgspec.structs.replace(session, last_seen_at=max(session.last_seen_at, now))
            self._sessions[key] = seen
        return seen

    def check_csrf(self, session: BrowserSession, presented: str | None) -> bool:
        """Whether a request's CSRF token is this session's (constant-time comparison)."""
        return check_csrf(session, presented)

    def sign_out(self, session_id: str) -> bool:
        """End a session; returns whether there was one."""
        with self._lock:
            return self._sessions.pop(_digest(session_id), None) is not None

    def create_one_time_link(self, token: Token, ttl: timedelta, now: datetime) -> str:
        """A code that ``redeem`` exchanges once, within ``ttl``, for a session of ``token``
        (``stumble demo`` prints it in a sign-in URL)."""
        if ttl <= timedelta(0):
            raise ValueError("a sign-in link's lifetime must be positive")
        if self._tokens.active(token.token_id, now) is None:
            raise SessionError("the API token is revoked or expired; no sign-in link for it")
        code = secrets.token_urlsafe(_RANDOM_BYTES)
        with self._lock:
            self._links[_digest(code)] = _PendingLink(token.token_id, now + ttl)
        return code

    def redeem(self, code: str, now: datetime) -> BrowserSession | None:
        """A session for a one-time code; None when unknown, used, expired or its token is no
        longer active. The code is spent by the first attempt whatever its outcome."""
        with self._lock:
            link = self._links.pop(_digest(code), None)
        if link is None or now >= link.expires_at:
            return None
        token = self._tokens.active(link.token_id, now)
        if token is None:
            return None
        try:
            return self.sign_in(token, now)
        except SessionError:  # revoked by another thread's reload since the line above
            return None

    def cookie_for(self, session: BrowserSession, *, secure: bool) -> SessionCookie:
        """The cookie for a new session; ``secure`` when the dashboard is served over HTTPS."""
        remaining = session.signed_in_at + self.absolute_lifetime - session.last_seen_at
        return SessionCookie(
            name=SESSION_COOKIE_NAME,
            value=session.session_id,
            max_age_s=max(0, int(remaining.total_seconds())),
            secure=secure,
        )

    def purge(self, now: datetime) -> int:
        """Drop dead sessions and links (sign-in does it too); returns how many were dropped."""
        with self._lock:
            return self._forget_expired(now)

    def _is_live(self, session: BrowserSession, now: datetime) -> bool:
        return (
            now < session.last_seen_at + self.idle_timeout
            and now < session.signed_in_at + self.absolute_lifetime
            and self._tokens.active(session.token_id, now) is not None
        )

    def _forget_expired(self, now: datetime) -> int:
        dead_sessions = [k for k, s in self._sessions.items() if not self._is_live(s, now)]
        dead_links = [k for k, link in self._links.items() if now >= link.expires_at]
        for key in dead_sessions:
            del self._sessions[key]
        for key in dead_links:
            del self._links[key]
        return len(dead_sessions) + len(dead_links)

    def _evict_oldest_of(self, token_id: str) -> None:
        """Keep one token's sessions bounded: a script signing in in a loop cannot fill memory."""
        own = sorted(
            (s.signed_in_at, k) for k, s in self._sessions.items() if s.token_id == token_id
        )
        for _, key in own[: max(0, len(own) - self._max_per_token + 1)]:
            del self._sessions[key]


def check_csrf(session: BrowserSession, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF token, compared in constant time."""
    if not presented or not presented.isascii():
        return False
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode())


def _digest(secret_text: str) -> bytes:
    # surrogatepass: a cookie value is untrusted text, and hashing it must never raise.
    return hashlib.sha256(secret_text.encode("utf-8", "surrogatepass")).digest()
