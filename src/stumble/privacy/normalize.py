"""Canonical text for the detectors: what a person would read, not how it was encoded.

Personal data hides behind encodings that a regular expression does not see: fullwidth
digits (U+FF10..U+FF19), zero-width characters between digits, digits of other scripts, and
the spaces, dashes, dots and parentheses people put between digit groups
(``921 029-350.851``, ``8 (777) 123-45-67``). ``normalize`` undoes all of them so that each
detector only has to recognise plain ASCII digit runs.

Underscores, colons, slashes and the letter ``x`` are not separators for ``normalize``: they
structure dates, times, versions and dimensions (``2026_12_07``, ``10:30``, ``12/05``,
``report_2026_q3``, ``1920x1080``), and joining across them would turn ordinary identifiers
into long digit runs. Yet identifiers carry numbers split by them too (``870412_300129``,
``4111_1111_1111_1111``, ``870412x300129``, ``112_233_445_95``). ``identifier_digit_groups``
gives a second view for those: groups of three or more digits joined across one such
character, and the written shapes of SNILS and phone numbers. Only detectors that confirm a
candidate with a checksum or a numbering plan judge that view (see ``detectors``): without
one, nothing tells ``20261122_103015`` (a timestamp) or ``8080:8443:9090`` from one number.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Default-ignorable characters that are not of category Cf (which is removed wholesale):
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian free variation
# selectors, variation selectors. They render as nothing and can split a digit run.
_IGNORABLE_NOT_CF: Final = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)

_DASHES: Final = "\\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d"
# A run of whitespace (NBSP and thin spaces included), dashes, dots and parentheses with a
# digit on each side. Matching whole runs makes one substitution pass idempotent. The digit
# before the run is consumed rather than looked behind for: the engine then scans for digits
# first, which makes the common no-match case several times faster.
_SEPARATED_DIGITS: Final = re.compile(rf"([0-9])[\s{_DASHES}.()]+(?=[0-9])")


def normalize(text: str) -> str:
    """The canonical form every detector works on.

    NFKC (fullwidth and other compatibility forms become ASCII), invisible characters removed,
    decimal digits of any script mapped to ASCII, separators between digits removed:
    ``"921 029-350.851"`` becomes ``"921029350851"``. Idempotent.
    """
    return join_digit_groups(canonicalize(text))


def canonicalize(text: str) -> str:
    """NFKC, invisible characters removed and digits mapped to ASCII; separators are kept.

    Detectors that need the separators (IP addresses, e-mail, URLs) work on this form.
    Pure ASCII is already canonical and is returned as is, which is the common case.
    """
    if text.isascii():
        return text
    # Invisible characters go before NFKC too: between a letter and a combining mark they
    # would otherwise block a composition that a second pass would then make.
    text = unicodedata.normalize("NFKC", _drop_invisible(text))
    return _ascii_digits(_drop_invisible(text))


def join_digit_groups(text: str) -> str:
    """Remove separators between digits: ``"8 (777) 123-45-67"`` becomes ``"87771234567"``."""
    if _SEPARATED_DIGITS.search(text) is None:
        return text
    return _SEPARATED_DIGITS.sub(_digit_before_separators, text)


def _digit_before_separators(match: re.Match[str]) -> str:
    return match.group(1)


IDENTIFIER_SEPARATORS: Final = "_:/xX"
_SEP: Final = f"[{IDENTIFIER_SEPARATORS}]"
# Groups of 3+ digits joined by one ``_ : / x X``. Three digits on each side keep
# ``2026_12_07``, ``10:30``, ``step_2``, ``v2_3`` and ``12/05/2026`` apart, while a number cut
# into pieces of three or more is whole again. Each group is a whole digit run: the lookbehind
# starts a run, and a group can only end where a separator or a non-digit follows.
_IDENTIFIER_SEPARATED_DIGITS: Final = re.compile(
    rf"(?<![0-9+])(\+?)([0-9]{{3,}}(?:{_SEP}[0-9]{{3,}})+)"
)
# The two-digit groups the rule above leaves apart where they are how a number is written:
# SNILS ``123_456_789_01`` and phones ``8_777_123_45_67``, ``+7_777_123_45_67``,
# ``777_123_45_67``. Dates and times never have these shapes.
_NATIONAL_FORMATS: Final = re.compile(
    rf"(?<![0-9+])(\+?)((?:[0-9]{_SEP})?[0-9]{{3}}{_SEP}[0-9]{{3}}{_SEP}"
    rf"(?:[0-9]{{3}}{_SEP}[0-9]{{2}}|[0-9]{{2}}{_SEP}[0-9]{{2}})(?![0-9]))"
)
_IDENTIFIER_SEPARATOR: Final = re.compile(_SEP)


def identifier_digit_groups(joined: str) -> list[tuple[bool, list[str]]]:
    """Digit groups joined across identifier separators, in text already through
    ``join_digit_groups``: for each run, whether a ``+`` opens it, and its groups.

    ``"id_870412_300129"`` gives ``[(False, ["870412", "300129"])]``; ``"2026_12_07"``,
    ``"10:30"`` and ``"step_2"`` give nothing.
    """
    if not any(char in joined for char in IDENTIFIER_SEPARATORS):
        return []
    return [
        (match.group(1) == "+", _IDENTIFIER_SEPARATOR.split(match.group(2)))
        for pattern in (_IDENTIFIER_SEPARATED_DIGITS, _NATIONAL_FORMATS)
        for match in pattern.finditer(joined)
    ]


def _drop_invisible(text: str) -> str:
    return "".join(
        char
        for char in text
        if char.isascii() or (unicodedata.category(char) != "Cf" and char not in _IGNORABLE_NOT_CF)
    )


def _ascii_digits(text: str) -> str:
    """Map decimal digits of every script (Arabic-Indic, Devanagari...) to ASCII digits."""
    if text.isascii():
        return text
    return "".join(_ascii_digit(char) for char in text)


def _ascii_digit(char: str) -> str:
    if char.isascii():
        return char
    value = unicodedata.decimal(char, None)
    return char if value is None else str(value)
