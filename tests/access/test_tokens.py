"""API tokens: stored hashed, refused once revoked or expired, revocable while a server runs."""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from stumble.access.roles import Permission, Role
from stumble.access.tokens import (
    TOKENS_FILE,
    TokenError,
    TokenInfo,
    TokenRing,
    TokenState,
    parse_token_id,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def every_byte_under(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_a_token_authenticates_and_is_stored_nowhere_in_clear(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    text, token = ring.create(Role.ANALYST, "ux_team", now=T0)
    assert text.startswith("sta_") and len(text) > 40
    assert ring.authenticate(text, T0) == token
    secret = text.rsplit("_", 1)[1]
    on_disk = every_byte_under(tmp_path)
    assert text.encode() not in on_disk
    assert secret.encode() not in on_disk
    assert token.token_sha256.encode() in on_disk  # only the hash is there
    assert token.grants(Permission.READ_AGGREGATES) and not token.grants(Permission.READ_RAW)


def test_each_token_is_random(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    texts = {ring.create(Role.ANALYST, f"team_{i}", now=T0)[0] for i in range(20)}
    assert len(texts) == 20
    assert len({parse_token_id(t) for t in texts}) == 20


def test_wrong_secret_unknown_id_and_garbage_are_refused(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    text, _ = ring.create(Role.ADMIN, "ops", now=T0)
    assert ring.authenticate(text[:-1] + ("a" if text[-1] != "a" else "b"), T0) is None
    assert ring.authenticate(text + "x", T0) is None
    assert ring.authenticate("sta_nosuchid_secret", T0) is None
    assert ring.authenticate(text.replace("sta_", "stk_", 1), T0) is None
    for garbage in ["", "sta_", "sta__x", "sta_abc_", "x" * 500, "sta_123_abc", "sta_é_x"]:
        assert ring.authenticate(garbage, T0) is None
    assert ring.authenticate("sta_abc_\udcff", T0) is None  # unencodable text never raises


def test_an_expired_token_is_refused_from_its_expiry_on(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    text, token = ring.create(Role.ENGINEER, "frontend", timedelta(hours=1), now=T0)
    assert ring.authenticate(text, T0 + timedelta(minutes=59)) == token
    assert ring.authenticate(text, T0 + timedelta(hours=1)) is None
    assert token.state(T0 + timedelta(hours=2)) is TokenState.EXPIRED
    assert ring.active(token.token_id, T0 + timedelta(hours=1)) is None


def test_a_revoked_token_is_refused_by_id_or_by_name(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    by_id, first = ring.create(Role.ANALYST, "ux_team", now=T0)
    by_name, second = ring.create(Role.AUDITOR, "infosec", now=T0)
    assert [t.token_id for t in ring.revoke(first.token_id, now=T0)] == [first.token_id]
    assert [t.token_id for t in ring.revoke("infosec", now=T0)] == [second.token_id]
    assert ring.authenticate(by_id, T0) is None
    assert ring.authenticate(by_name, T0) is None
    assert {t.state(T0) for t in ring.list()} == {TokenState.REVOKED}


def test_revoking_twice_keeps_the_first_revocation_time(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    _, token = ring.create(Role.ANALYST, "ux_team", now=T0)
    (first,) = ring.revoke(token.token_id, now=T0)
    (again,) = ring.revoke(token.token_id, now=T0 + timedelta(days=1))
    assert first.revoked_at_ms == again.revoked_at_ms


def test_unknown_token_message_does_not_echo_input(tmp_path: Path) -> None:
    with pytest.raises(TokenError) as error:
        TokenRing(tmp_path).revoke("ivan.petrov@example.kz")
    assert "ivan" not in str(error.value)


def test_revocation_elsewhere_is_seen_by_an_open_ring_on_reload(tmp_path: Path) -> None:
    server_view = TokenRing(tmp_path)
    text, token = TokenRing(tmp_path).create(Role.ANALYST, "ux_team", now=T0)
    assert server_view.reload()
    assert server_view.authenticate(text, T0) is not None
    TokenRing(tmp_path).revoke(token.token_id)
    assert server_view.reload()
    assert server_view.authenticate(text, T0) is None


def test_reload_does_not_read_an_unchanged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = TokenRing(tmp_path)
    ring.create(Role.ANALYST, "ux_team", now=T0)

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("reload read a file that did not change")

    monkeypatch.setattr(Path, "open", no_reading)
    monkeypatch.setattr(Path, "read_bytes", no_reading)
    assert [ring.reload() for _ in range(1000)] == [False] * 1000


def test_reload_sees_a_replacement_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    ring.create(Role.ANALYST, "ux_team", now=T0)
    path = tmp_path / TOKENS_FILE
    before = path.stat()
    data = path.read_bytes().replace(b'"analyst"', b'"auditor"')  # same length
    replacement = tmp_path / "replacement"
    replacement.write_bytes(data)
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.replace(path)  # what every writer does: a new inode
    assert ring.reload()
    assert ring.list()[0].role is Role.AUDITOR


def test_a_stale_ring_never_loses_another_writers_change(tmp_path: Path) -> None:
    stale = TokenRing(tmp_path)
    _, other = TokenRing(tmp_path).create(Role.ANALYST, "ux_team", now=T0)
    stale.create(Role.ADMIN, "ops", now=T0)  # without reloading first: create must re-read
    stale.revoke("ops")
    fresh = TokenRing(tmp_path)
    assert {t.name for t in fresh.list()} == {"ux_team", "ops"}
    assert fresh.active(other.token_id, T0) is not None


def test_concurrent_creates_from_threads_all_land(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)

    def create_five(worker: int) -> None:
        for i in range(5):
            TokenRing(tmp_path).create(Role.ANALYST, f"w{worker}_{i}", now=T0)

    threads = [threading.Thread(target=create_five, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ring.reload()
    assert len(ring.list()) == 40


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    previous = os.umask(0)
    try:
        TokenRing(data).create(Role.ADMIN, "ops", now=T0)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for file in data.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    assert sorted(p.name for p in data.iterdir()) == ["tokens.json", "tokens.lock"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ivan.petrov@example.kz", "e-mail"),
        ("ux team", "1-64 letters"),
        ("ux/team", "1-64 letters"),
        ("", "1-64 letters"),
        ("a" * 65, "1-64 letters"),
        ("Aidos_Nurlanov", "personal data"),
        ("870412300129", "personal data"),
    ],
)
def test_names_that_are_not_team_identifiers_are_refused(
    tmp_path: Path, name: str, says: str
) -> None:
    with pytest.raises(TokenError) as error:
        TokenRing(tmp_path).create(Role.ANALYST, name, now=T0)
    assert says in str(error.value)
    assert "ux_team" in str(error.value)  # says what a good name looks like
    if name:
        assert name not in str(error.value)
    assert not (tmp_path / TOKENS_FILE).exists()


def test_good_names(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    for name in ["ux_team", "grafana.prod", "ci-bot", "a" * 64, "svc_reports_2"]:
        ring.create(Role.ANALYST, name, now=T0)


def test_a_name_belongs_to_one_active_token(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    _, first = ring.create(Role.ANALYST, "ux_team", timedelta(days=1), now=T0)
    with pytest.raises(TokenError, match="already"):
        ring.create(Role.ADMIN, "ux_team", now=T0)
    with pytest.raises(TokenError, match="already"):
        ring.create(Role.ADMIN, first.token_id, now=T0)  # a name is never taken for an id
    ring.create(Role.ANALYST, "ux_team", now=T0 + timedelta(days=2))  # the first has expired
    assert len(ring.revoke("ux_team")) == 2  # revoking a name revokes every token with it


def test_lifetimes_must_be_positive_and_clocks_aware(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    with pytest.raises(TokenError, match="positive"):
        ring.create(Role.ANALYST, "ux_team", timedelta(0), now=T0)
    text, _ = ring.create(Role.ANALYST, "ux_team", now=T0)
    with pytest.raises(ValueError, match="timezone"):
        ring.authenticate(text, datetime(2026, 3, 1, 12, 0))  # noqa: DTZ001 - the point


def test_the_public_view_has_no_secret(tmp_path: Path) -> None:
    text, token = TokenRing(tmp_path).create(Role.AUDITOR, "infosec", timedelta(days=90), now=T0)
    shown = msgspec.json.encode(token.info(T0))
    assert token.token_sha256.encode() not in shown and text.encode() not in shown
    assert "token_sha256" not in TokenInfo.__struct_fields__
    assert token.info(T0).expires_at == T0 + timedelta(days=90)
    assert token.issued(text, T0).token == text


def test_parse_token_id() -> None:
    assert parse_token_id("sta_abcdef_SECRET") == "abcdef"
    assert parse_token_id("stk_abcdef_SECRET") is None
    assert parse_token_id("sta_abc1_SECRET") is None


def test_a_damaged_file_is_one_clear_error_and_the_old_copy_stays(tmp_path: Path) -> None:
    ring = TokenRing(tmp_path)
    text, _ = ring.create(Role.ANALYST, "ux_team", now=T0)
    (tmp_path / "damaged").write_bytes(b'{"tokens": [{"token_id": 1}]}')
    (tmp_path / "damaged").replace(tmp_path / TOKENS_FILE)
    with pytest.raises(TokenError, match="damaged"):
        ring.reload()
    assert ring.authenticate(text, T0) is not None
    with pytest.raises(TokenError, match="damaged"):
        TokenRing(tmp_path)
