"""Write keys: stored hashed, looked up by id, revocable while a server runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stumble.access.keys import KeyRing, KeyRingError, normalise_origin, parse_key_id


def test_created_key_authenticates_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    token, record = ring.create("prod", ["https://App.Example.kz/"], sample_rate=0.1)
    assert ring.authenticate(token) == record
    assert record.origins == ["https://app.example.kz"]
    stored = (tmp_path / "keys.json").read_text()
    assert token not in stored
    assert token.split("_", 2)[2] not in stored  # not even the secret part
    assert json.loads(stored)["keys"][0]["environment"] == "prod"


def test_wrong_secret_unknown_id_and_garbage_do_not_authenticate(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    token, _ = ring.create("prod", [])
    assert ring.authenticate(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert ring.authenticate("stk_nosuchid_secret") is None
    for garbage in ["", "Bearer", "stk_", "stk__x", "x" * 500, "stk_123_abc"]:
        assert ring.authenticate(garbage) is None


def test_revocation_is_seen_by_another_ring_on_reload(tmp_path: Path) -> None:
    server_view = KeyRing(tmp_path)
    token, record = KeyRing(tmp_path).create("test", [])
    assert server_view.reload()
    assert server_view.authenticate(token) is not None
    KeyRing(tmp_path).revoke(record.key_id)
    assert server_view.reload()
    assert server_view.authenticate(token) is None


def test_origins_are_exact_and_null_is_never_allowed(tmp_path: Path) -> None:
    _, key = KeyRing(tmp_path).create("prod", ["https://app.example.kz"])
    assert key.allows_origin("https://app.example.kz")
    assert not key.allows_origin("https://app.example.kz.evil.com")
    assert not key.allows_origin("http://app.example.kz")
    assert not key.allows_origin("null")
    assert key.allows_origin(None)  # server-side clients send no Origin


@pytest.mark.parametrize(
    "bad", ["app.example.kz", "ftp://x", "https://u:p@x", "https://x/path", ""]
)
def test_bad_origins_are_refused(bad: str) -> None:
    with pytest.raises(KeyRingError):
        normalise_origin(bad)


def test_unknown_key_id_message_does_not_echo_input(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError) as error:
        KeyRing(tmp_path).revoke("921029350851")
    assert "921029350851" not in str(error.value)


def test_parse_key_id() -> None:
    assert parse_key_id("stk_abcdef_SECRET") == "abcdef"
    assert parse_key_id("sk_abcdef_SECRET") is None
