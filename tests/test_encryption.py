"""Data keys and encrypted frames (``stumble.encryption``)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from stumble.encryption import (
    AUDIT,
    HEADER_BYTES,
    KEY_ENV_VAR,
    SPOOL,
    DamagedFrameError,
    DataKeyError,
    FrameOpener,
    FrameSealer,
    frame_bounds,
    frames_end,
    generate_key_text,
    is_encrypted,
    is_encrypted_line,
    load_data_keys,
    open_line,
    parse_keys,
    seal_line,
    write_key_file,
)


def ring(*texts: str):  # type: ignore[no-untyped-def]
    return parse_keys("\n".join(texts), "test keys")


def test_a_generated_key_parses_and_its_id_is_stable():
    text = generate_key_text()
    first, second = ring(text), ring(text)
    assert first.current.id == second.current.id
    assert len(first.current.hex_id) == 16
    assert text not in repr(first.current) and text not in repr(first)


def test_key_text_errors_never_quote_the_key():
    bad = base64.b64encode(os.urandom(16)).decode()
    with pytest.raises(DataKeyError, match="16 bytes, not 32") as caught:
        ring(bad)
    assert bad not in str(caught.value)
    with pytest.raises(DataKeyError, match="not base64") as caught:
        ring("not*base64*at*all")
    assert "not*base64" not in str(caught.value)
    text = generate_key_text()
    with pytest.raises(DataKeyError, match="twice"):
        ring(text, text)
    with pytest.raises(DataKeyError, match="no data key"):
        ring("# only a comment")


def test_keys_come_from_the_variable_or_a_private_file_outside_the_data_dir(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    first, second = generate_key_text(), generate_key_text()
    assert load_data_keys("", data_dir, environ={}) is None
    from_env = load_data_keys("", data_dir, environ={KEY_ENV_VAR: f"{first}, {second}"})
    assert from_env is not None and from_env.current == ring(first).current
    assert len(from_env.keys) == 2

    key_file = tmp_path / "stumble.keys"
    write_key_file(key_file, [second, first])
    assert key_file.stat().st_mode & 0o777 == 0o600
    from_file = load_data_keys(str(key_file), data_dir, environ={})
    assert from_file is not None and from_file.current == ring(second).current

    with pytest.raises(DataKeyError, match="keep one source"):
        load_data_keys(str(key_file), data_dir, environ={KEY_ENV_VAR: first})
    key_file.chmod(0o640)
    with pytest.raises(DataKeyError, match="readable by others"):
        load_data_keys(str(key_file), data_dir, environ={})
    inside = data_dir / "keys.txt"
    write_key_file(inside, [first])
    with pytest.raises(DataKeyError, match="inside the data directory"):
        load_data_keys(str(inside), data_dir, environ={})
    with pytest.raises(DataKeyError, match="does not exist"):
        load_data_keys(str(tmp_path / "missing"), data_dir, environ={})


def test_frames_round_trip_and_never_repeat_a_nonce():
    keys = ring(generate_key_text())
    sealer, opener = FrameSealer(keys, SPOOL), FrameOpener(keys, SPOOL)
    frames = [sealer.seal(b'{"a":1}\n' * n) for n in range(1, 50)]
    assert [opener.open(f) for f in frames] == [b'{"a":1}\n' * n for n in range(1, 50)]
    headers = {f[:HEADER_BYTES] for f in frames}
    assert len(headers) == len(frames)  # counter differs per frame
    assert all(b'"a"' not in f for f in frames)
    data = b"".join(frames)
    assert is_encrypted(data) and not is_encrypted(b'{"a":1}\n')
    assert frames_end(data) == len(data)
    assert len(list(frame_bounds(data))) == len(frames)
    # a second writer (a restart) draws another salt, so its counter 1 is another nonce
    assert FrameSealer(keys, SPOOL).seal(b"x")[12:28] != frames[0][12:28]


def test_any_changed_byte_is_refused():
    keys = ring(generate_key_text())
    frame = FrameSealer(keys, SPOOL).seal(b"payload\n")
    opener = FrameOpener(keys, SPOOL)
    for position in range(len(frame)):
        changed = bytearray(frame)
        changed[position] ^= 0x01
        with pytest.raises((DamagedFrameError, DataKeyError)):
            opener.open(bytes(changed))


def test_purposes_and_keys_do_not_mix():
    keys = ring(generate_key_text())
    frame = FrameSealer(keys, SPOOL).seal(b"payload\n")
    with pytest.raises(DamagedFrameError):
        FrameOpener(keys, AUDIT).open(frame)
    with pytest.raises(DataKeyError, match="not hold"):
        FrameOpener(ring(generate_key_text()), SPOOL).open(frame)


def test_an_old_key_still_reads_after_a_new_one_is_put_first():
    old, new = generate_key_text(), generate_key_text()
    frame = FrameSealer(ring(old), SPOOL).seal(b"before rotation\n")
    assert FrameOpener(ring(new, old), SPOOL).open(frame) == b"before rotation\n"
    assert FrameSealer(ring(new, old), SPOOL).key == ring(new).current


def test_audit_lines_are_base64_frames_without_newlines():
    keys = ring(generate_key_text())
    line = seal_line(FrameSealer(keys, AUDIT), b'{"seq":1}')
    assert b"\n" not in line and is_encrypted_line(line)
    assert not is_encrypted_line(b'{"seq":1}')
    assert open_line(FrameOpener(keys, AUDIT), line) == b'{"seq":1}'


def test_the_key_file_is_replaced_atomically(tmp_path: Path):
    path = tmp_path / "k"
    write_key_file(path, [generate_key_text()])
    write_key_file(path, [generate_key_text(), generate_key_text()])
    assert len(load_data_keys(str(path), tmp_path / "data", environ={}).keys) == 2  # type: ignore[union-attr]
    assert [p.name for p in tmp_path.iterdir()] == ["k"]
