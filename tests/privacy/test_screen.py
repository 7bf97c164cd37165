"""The body screen over-approximates every detector: when it passes a batch's strings, no
detector may hit any of them. Inputs are built to sit right at the screen's edges: digit
groups joined by ``_ : / x``, names in every identifier shape, random identifier soup."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.privacy.corpus import HOSTILE, LEGIT, SURNAMES
from tests.privacy.test_detectors import (
    _GIVEN_NAME_SAMPLE,
    _luhn_cards,
    _name_shapes,
    _split_in_groups_of_three,
    _valid_iins,
)

from stumble.privacy.detectors import detect
from stumble.privacy.screen import screen_hits

IDENTIFIER_ALPHABET = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-"
)


def _lets_through(strings: list[str]) -> list[str]:
    """The strings a detector hits although the screen passed them all."""
    if screen_hits("\n".join(strings).encode()):
        return []
    return [text for text in strings if detect(text) is not None]


def test_every_hostile_identifier_is_flagged() -> None:
    identifiers = [t for _, t in HOSTILE if t.isascii() and set(t) <= IDENTIFIER_ALPHABET]
    assert all(screen_hits(text.encode()) for text in identifiers)
    assert all(screen_hits(f"event_name\nbtn_save\n{text}\n2.3.1".encode()) for text in HOSTILE)
    clean = [t for t in LEGIT if not screen_hits(t.encode())]
    print(f"\nscreen passes {len(clean)}/{len(LEGIT)} legitimate identifiers without the slow path")


def test_names_in_every_shape_are_flagged() -> None:
    rng = random.Random(2)
    for surname in SURNAMES:
        for text in _name_shapes(rng.choice(_GIVEN_NAME_SAMPLE), surname):
            assert screen_hits(f"kind\naction\n{text}\nrequest_create".encode()), text


def test_distinct_words_are_judged_once_whatever_their_count() -> None:
    body = "\n".join(["event_name", "request_back_clicked", "screen_id"] * 500)
    assert not screen_hits(body.encode())
    assert screen_hits((body + "\nAidosNurlanov").encode())
    assert screen_hits((body + "\nnurlanovAIDOS").encode())


# Digits, the separators detectors join across (and some they do not), and letters from
# names and surname endings, so that hits and near misses both come up often.
_SOUP = st.text(alphabet="0123456789_:/xX.-+ aeiovyknrstIPAN", max_size=40)
_PIECES = st.sampled_from(
    [
        *("ivan", "Petrov", "aidos", "NURLANOV", "ova", "ev", "enko", "skiy", "uly", "kyzy"),
        *("Ivanovich", "svetlana", "step_2", "2026_12_07", "10:30", "1920x1080"),
        *("870412", "300129", "4111", "1111", "20261122"),
    ]
)
_IDENTIFIER_LIKE = st.lists(_PIECES | _SOUP, min_size=1, max_size=5).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.lists(_IDENTIFIER_LIKE, min_size=1, max_size=8))
def test_screen_never_lets_a_detector_hit_through(strings: list[str]) -> None:
    assert _lets_through(strings) == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        _split_in_groups_of_three(_valid_iins() | _luhn_cards()) | _IDENTIFIER_LIKE,
        min_size=1,
        max_size=6,
    )
)
def test_split_numbers_never_pass_the_screen(strings: list[str]) -> None:
    assert _lets_through(strings) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_screen_never_lets_a_detector_hit_through_on_any_text(strings: list[str]) -> None:
    strings = [text.replace("\n", " ") for text in strings]
    assert _lets_through(strings) == []
