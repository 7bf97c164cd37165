"""Browser sessions: idle and absolute expiry on a controlled clock, death with their token,
CSRF checks and one-time sign-in links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stumble.access.roles import Permission, Role
from stumble.access.sessions import SESSION_COOKIE_NAME, SessionError, SessionStore
from stumble.access.tokens import Token, TokenRing

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture
def ring(tmp_path: Path) -> TokenRing:
    return TokenRing(tmp_path)


@pytest.fixture
def store(ring: TokenRing) -> SessionStore:
    return SessionStore(ring, idle_timeout=IDLE, absolute_lifetime=LIFETIME)


@pytest.fixture
def token(ring: TokenRing) -> Token:
    return ring.create(Role.ENGINEER, "frontend", now=T0)[1]


def test_sign_in_gives_a_random_session_id_and_a_separate_csrf_token(
    store: SessionStore, token: Token
) -> None:
    first = store.sign_in(token, T0)
    second = store.sign_in(token, T0)
    assert len({first.session_id, first.csrf_token, second.session_id, second.csrf_token}) == 4
    assert len(first.session_id) >= 43 and len(first.csrf_token) >= 43
    assert store.lookup(first.session_id, T0) == first
    assert first.role is Role.ENGINEER and first.grants(Permission.READ_RAW)
    assert store.lookup("not-a-session", T0) is None
    assert store.lookup("", T0) is None
    assert store.lookup("\udcff", T0) is None  # any cookie text, even unencodable, is safe


def test_idle_sessions_expire_and_each_lookup_restarts_the_idle_clock(
    store: SessionStore, token: Token
) -> None:
    session = store.sign_in(token, T0)
    assert store.lookup(session.session_id, T0 + minutes(29)) is not None
    assert store.lookup(session.session_id, T0 + minutes(58)) is not None
    assert store.lookup(session.session_id, T0 + minutes(88)) is None  # 30 idle minutes
    assert store.lookup(session.session_id, T0 + minutes(88.5)) is None  # and it stays dead


def test_busy_sessions_still_end_at_the_absolute_lifetime(
    store: SessionStore, token: Token
) -> None:
    session = store.sign_in(token, T0)
    moment = T0
    while moment + minutes(10) < T0 + LIFETIME:
        moment += minutes(10)
        assert store.lookup(session.session_id, moment) is not None
    assert store.lookup(session.session_id, T0 + LIFETIME) is None


def test_a_session_dies_when_its_token_is_revoked(
    tmp_path: Path, ring: TokenRing, store: SessionStore, token: Token
) -> None:
    session = store.sign_in(token, T0)
    TokenRing(tmp_path).revoke(token.token_id)  # `stumble tokens revoke` in another process
    ring.reload()  # what the server does every second
    assert store.lookup(session.session_id, T0 + minutes(1)) is None


def test_a_session_dies_when_its_token_expires(ring: TokenRing, store: SessionStore) -> None:
    _, short = ring.create(Role.ANALYST, "ux_team", minutes(10), now=T0)
    session = store.sign_in(short, T0)
    assert store.lookup(session.session_id, T0 + minutes(9)) is not None
    assert store.lookup(session.session_id, T0 + minutes(10)) is None


def test_no_session_for_a_revoked_or_expired_token(
    ring: TokenRing, store: SessionStore, token: Token
) -> None:
    ring.revoke(token.token_id)
    with pytest.raises(SessionError, match="revoked or expired"):
        store.sign_in(token, T0)
    _, short = ring.create(Role.ANALYST, "ux_team", minutes(10), now=T0)
    with pytest.raises(SessionError):
        store.sign_in(short, T0 + minutes(10))


def test_sign_out_ends_the_session(store: SessionStore, token: Token) -> None:
    session = store.sign_in(token, T0)
    assert store.sign_out(session.session_id)
    assert store.lookup(session.session_id, T0) is None
    assert not store.sign_out(session.session_id)


def test_csrf_must_be_the_sessions_own_token(store: SessionStore, token: Token) -> None:
    session = store.sign_in(token, T0)
    other = store.sign_in(token, T0)
    assert store.check_csrf(session, session.csrf_token)
    for wrong in [other.csrf_token, session.session_id, "", None, session.csrf_token + "x", "é"]:
        assert not store.check_csrf(session, wrong)


def test_a_one_time_link_works_once(store: SessionStore, token: Token) -> None:
    code = store.create_one_time_link(token, minutes(15), T0)
    session = store.redeem(code, T0 + minutes(1))
    assert session is not None and session.token_id == token.token_id
    looked_up = store.lookup(session.session_id, T0 + minutes(2))
    assert looked_up is not None and looked_up.csrf_token == session.csrf_token
    assert store.redeem(code, T0 + minutes(1)) is None
    assert store.redeem("made-up", T0) is None


def test_an_expired_link_fails_and_is_spent(store: SessionStore, token: Token) -> None:
    code = store.create_one_time_link(token, minutes(15), T0)
    assert store.redeem(code, T0 + minutes(15)) is None
    assert store.redeem(code, T0) is None  # even with the clock back: the first try spent it


def test_a_link_dies_with_its_token(ring: TokenRing, store: SessionStore, token: Token) -> None:
    code = store.create_one_time_link(token, minutes(15), T0)
    ring.revoke(token.token_id)
    assert store.redeem(code, T0 + minutes(1)) is None
    with pytest.raises(SessionError):
        store.create_one_time_link(token, minutes(15), T0)


def test_the_cookie_is_http_only_same_site_strict_and_lasts_no_longer_than_the_session(
    store: SessionStore, token: Token
) -> None:
    cookie = store.cookie_for(store.sign_in(token, T0), secure=True)
    assert cookie.name == SESSION_COOKIE_NAME
    assert cookie.http_only and cookie.same_site == "strict" and cookie.secure
    assert cookie.max_age_s == LIFETIME.total_seconds()


def test_sessions_per_token_are_bounded_oldest_first(ring: TokenRing, token: Token) -> None:
    store = SessionStore(ring, max_sessions_per_token=3)
    sessions = [store.sign_in(token, T0 + minutes(i)) for i in range(5)]
    alive = [store.lookup(s.session_id, T0 + minutes(5)) is not None for s in sessions]
    assert alive == [False, False, True, True, True]


def test_purge_drops_dead_sessions_and_links(store: SessionStore, token: Token) -> None:
    store.sign_in(token, T0)
    store.create_one_time_link(token, minutes(5), T0)
    live = store.sign_in(token, T0 + minutes(1))
    assert store.purge(T0 + minutes(30.5)) == 2  # the first session (idle) and the link
    assert store.lookup(live.session_id, T0 + minutes(30.5)) is not None


def test_timeouts_must_be_positive(ring: TokenRing) -> None:
    with pytest.raises(ValueError, match="positive"):
        SessionStore(ring, idle_timeout=timedelta(0))
    with pytest.raises(ValueError, match="at least 1"):
        SessionStore(ring, max_sessions_per_token=0)
