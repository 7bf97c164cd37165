"""The screen: one cheap pass over every string of a request body, before any detector runs.

Every string of a batch, joined by newlines, is mapped byte by byte to a class (letter, digit,
separator, word character, colon, newline, or "!" for anything outside the identifier
alphabet), and the classes are searched with C-level ``find`` and literal-prefix regular
expressions. Each check over-approximates a detector on identifier-alphabet text: when the
screen finds nothing, no detector can hit any string of the body, so the per-field detectors
are skipped. Person names are the one check that needs words: the body's strings not seen
clean before are split into words and judged exactly as the name detector judges them.
Property tests check the screen never lets a detector hit through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from stumble.events import EVENT_ID_SHAPE, SESSION_ID_SHAPES
from stumble.privacy.detectors import name_words, person_name_among


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
# Digits become "0", ``x`` and ``X`` "x", every other byte "a"; the separators the digit
# detectors join across are deleted: ``normalize.join_digit_groups``'s (dot, dash; the others
# are outside the identifier alphabet) and ``identifier_digit_groups``'s (``_ : /``, and an
# x between digits). Deleting them whatever the group lengths only makes digit runs longer.
_DIGIT_RUN_CLASSES: Final = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("x") if chr(b) in "xX" else ord("a")
    for b in range(256)
)
_DIGIT_SEPARATORS: Final = b".-_:/"
# ASCII letters stay, everything else becomes a space: the body's letter runs, by ``split``.
_LETTERS_ONLY: Final = bytes(b if chr(b).isascii() and chr(b).isalpha() else 32 for b in range(256))
# Fields storage re-keys, when they have their declared shape (see ``REKEYED_FIELDS``).
_EXEMPT_FROM_SCREEN: Final = re.compile(
    rf'"(?:event_id"\s*:\s*"{EVENT_ID_SHAPE}|session_id"\s*:\s*"{SESSION_ID_SHAPES})"'.encode()
)


def screen_is_clean(body: bytes) -> bool:
    """True when no string in the body could be a non-identifier or a detector hit."""
    if b"\\" in body:
        return False  # escapes could hide anything; judge field by field
    strings = _EXEMPT_FROM_SCREEN.sub(b"", body).split(b'"')[1::2]
    return not screen_hits(b"\n".join(strings))


def screen_hits(text: bytes) -> bool:
    """Whether any detector could hit a string of ``text`` (strings joined by newlines)."""
    classes = text.translate(_CLASSES)
    if b"!" in classes:
        return True  # outside the identifier alphabet: spaces, @, +, =, quotes, non-ASCII...
    if _may_hold_nine_digits(text.translate(_DIGIT_RUN_CLASSES, _DIGIT_SEPARATORS)):
        return True  # 9+ digits joined by separators: IIN/BIN, INN, SNILS, cards, phones
    if b"eyJ" in text or _IPV6_SHAPE.search(text) or _IPV4_SHAPE.search(classes):
        return True  # a JWT header, or an IP address shape
    if _IBAN_SHAPE.search(classes):
        return True
    if any(_may_be_token(run) for run in _long_word_runs(text, classes)):
        return True
    return _may_hold_a_name(text)


def _may_hold_nine_digits(joined: bytes) -> bool:
    """Nine digits in a row once separators are gone, or once an ``x`` between digits is."""
    if _NINE_DIGITS in joined:
        return True
    return b"0x0" in joined and _NINE_DIGITS in joined.replace(b"x", b"")


def _may_hold_a_name(text: bytes) -> bool:
    """As the PERSON_NAME detector, on each string of the body not already known to hold no
    name.

    Traffic repeats a small vocabulary (keys, event names, screens, enums): the strings found
    clean before are set aside with one C-level set difference, so only new strings (an
    operation id, a new value) are split into words. Letter runs are found with ``translate``
    and ``split`` (a regular expression costs several times more), and only runs with
    capitals are split at camelCase humps: the words are exactly the ones the detector sees.
    """
    fresh = set(text.split(b"\n")).difference(_NAMELESS_STRINGS)
    if not fresh:
        return False
    runs = set(b" ".join(fresh).translate(_LETTERS_ONLY).decode("ascii").split())
    words = {run for run in runs if run.islower()}
    for run in runs - words:
        words.update(name_words(run))
    if person_name_among(words):
        return True
    if len(_NAMELESS_STRINGS) + len(fresh) > _NAMELESS_STRINGS_MAX:
        _NAMELESS_STRINGS.clear()  # a bounded memo: ids never repeat, the vocabulary does
    _NAMELESS_STRINGS.update(string for string in fresh if len(string) <= _NAMELESS_LENGTH_MAX)
    return False


# Strings the name check found clean: a memo of a pure function, so it can only save work.
# Bounded in count and in length (some 15 MB at most), so no body can make it hold more.
# Each set operation on it is one C call under the GIL; concurrent batches may at worst
# judge a string twice.
_NAMELESS_STRINGS: set[bytes] = set()
_NAMELESS_STRINGS_MAX: Final = 50_000
_NAMELESS_LENGTH_MAX: Final = 256


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
