"""The screen: one cheap pass over every string of a request body, before any detector runs.

Every string of a batch, joined by newlines, is mapped byte by byte to a class (letter, digit,
separator, word character, colon, newline, or "!" for anything outside the identifier
alphabet), and the classes are searched with C-level ``find`` and literal-prefix regular
expressions. Each check over-approximates a detector on identifier-alphabet text: when the
screen finds nothing, no detector can hit any string of the body, so the per-field detectors
are skipped. A property test checks the screen never lets a detector hit through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final


def _class_table() -> bytes:
    table = bytearray(b"!" * 256)
    for byte in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
        table[byte] = ord("a")
    for byte in b"0123456789":
        table[byte] = ord("0")
    for char, cls in (("-", "-"), (".", "."), ("_", "_"), ("/", "_"), (":", ":")):
        table[ord(char)] = ord(cls)
    table[ord("\n")] = ord("\n")
    return bytes(table)


_CLASSES: Final = _class_table()
# Characters a base64url-like token may contain (within the identifier alphabet) become "w",
# everything else a space, so runs can be found with ``bytes.find``.
_TOKEN_CLASS: Final = bytes(ord("w") if chr(b) in "a0_-" else ord(" ") for b in range(256))
_NINE_DIGITS: Final = b"0" * 9
_TOKEN_RUN: Final = b"w" * 24
_HEX_RUN: Final = re.compile(rb"[0-9A-Fa-f]{24}")
_IBAN_SHAPE: Final = re.compile(rb"aa00[a0]{11}")
_IPV4_SHAPE: Final = re.compile(rb"0\.0{1,3}\.0{1,3}\.0")
_IPV6_SHAPE: Final = re.compile(rb":[0-9A-Fa-f]{0,4}:")
# event_id is a pattern-validated UUID that storage re-keys; its hex digits are not screened.
_EXEMPT_FROM_SCREEN: Final = re.compile(rb'"event_id"\s*:\s*"[0-9a-fA-F-]{36}"')


def screen_is_clean(body: bytes) -> bool:
    """True when no string in the body could be a non-identifier or a detector hit."""
    if b"\\" in body:
        return False  # escapes could hide anything; judge field by field
    strings = _EXEMPT_FROM_SCREEN.sub(b"", body).split(b'"')[1::2]
    return not screen_hits(b"\n".join(strings))


def screen_hits(text: bytes) -> bool:
    classes = text.translate(_CLASSES)
    if b"!" in classes:
        return True  # outside the identifier alphabet: spaces, @, +, =, quotes, non-ASCII...
    if _NINE_DIGITS in classes.translate(None, b".-"):
        return True  # 9+ digits joined by separators: IIN/BIN, INN, SNILS, cards, phones
    if b"eyJ" in text or _IPV6_SHAPE.search(text) or _IPV4_SHAPE.search(classes):
        return True  # a JWT header, or an IP address shape
    if _IBAN_SHAPE.search(classes):
        return True
    return any(_may_be_token(run) for run in _long_word_runs(text, classes))


def _long_word_runs(text: bytes, classes: bytes) -> Iterator[bytes]:
    """Runs of 24+ token characters, found with literal ``find`` (a regex is quadratic here)."""
    members = classes.translate(_TOKEN_CLASS)
    start = members.find(_TOKEN_RUN)
    while start != -1:
        end = members.find(b" ", start)
        end = len(members) if end == -1 else end
        yield text[start:end]
        start = members.find(_TOKEN_RUN, end)


def _may_be_token(run: bytes) -> bool:
    """As the TOKEN detector: a digit, and either both letter cases or a long hex run."""
    if not any(48 <= byte <= 57 for byte in run):
        return False
    mixed_case = run.lower() != run and run.upper() != run
    return mixed_case or _HEX_RUN.search(run) is not None
