"""Detectors: checksums and their boundaries, the golden corpus, and properties."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import random
import re
import string
import tokenize
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from token import NAME

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from tests.privacy.corpus import HOSTILE, LEGIT, SURNAMES, VERSION_LIKE_IPS

from stumble.plan.load import default_plan_path, load_plan
from stumble.privacy import detectors
from stumble.privacy.detectors import (
    Detector,
    detect,
    detect_all,
    is_sensitive_key,
    is_valid_card,
    is_valid_kz_bin,
    is_valid_kz_iin,
    is_valid_ru_inn,
    is_valid_ru_snils,
    kz_check_digit,
)
from stumble.privacy.normalize import (
    canonicalize,
    identifier_digit_groups,
    join_digit_groups,
    normalize,
)
from stumble.simulate import SimulationParams, simulate_sessions

IDENTIFIER = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")

# --- normalize ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("921 029-350.851", "921029350851"),
        ("8 (777) 123-45-67", "87771234567"),
        ("\uff19\uff12\uff11", "921"),
        ("9\u200b2\u200c1\u200d0\u2060\ufeff2\u00ad9", "921029"),
        ("921\u00a0029\u2009350", "921029350"),
        ("1\u20132\u20143\u22124", "1234"),
        ("\u0669\u0662\u0661", "921"),
        ("12/05/2026", "12/05/2026"),
        ("10:30", "10:30"),
        ("report_2026_q3", "report_2026_q3"),
        ("step 2 of 3", "step 2 of 3"),
        ("a - b", "a - b"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_canonicalize_keeps_separators() -> None:
    assert canonicalize("\uff11\uff10.\uff10.\uff10.\uff11") == "10.0.0.1"
    assert join_digit_groups("10.0.0.1") == "10001"


def test_normalize_returns_clean_ascii_as_is() -> None:
    identifier = "invoice_create_clicked"
    assert normalize(identifier) is identifier


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(alphabet="0123456789 -.()\u00a0\u2009\u200b\u2013\uff11\u0301e"))
def test_normalize_is_idempotent_on_digit_soup(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


# --- Kazakhstan IIN / BIN -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first11", "check"),
    [
        ("92102935085", 1),
        ("06121160001", 2),
        ("94014000038", 5),
        ("99014000465", 4),
        # First pass gives 10, so the second weights (3..11, 1, 2) decide:
        # 7*3+4*4+8*5+3*6+3*7+7*8+8*9+8*10+7*11+6*1+2*2 = 411 = 37*11 + 4.
        ("74833788762", 4),
    ],
)
def test_kz_check_digit(first11: str, check: int) -> None:
    assert kz_check_digit(first11) == check


def test_kz_check_digit_none_when_both_passes_give_ten() -> None:
    # Both weightings are recomputed here rather than trusted.
    first11 = "90134117639"
    digits = [int(c) for c in first11]
    first = sum(w * d for w, d in zip(range(1, 12), digits, strict=True)) % 11
    second = sum(w * d for w, d in zip((3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), digits, strict=True))
    assert (first, second % 11) == (10, 10)
    assert kz_check_digit(first11) is None


@pytest.mark.parametrize("bad", ["", "9210293508", "921029350851", "9210293508a", "\uff19" * 11])
def test_kz_check_digit_rejects_malformed(bad: str) -> None:
    assert kz_check_digit(bad) is None


@pytest.mark.parametrize("iin", ["921029350851", "061211600012"])
def test_valid_iins(iin: str) -> None:
    assert is_valid_kz_iin(iin)
    assert not is_valid_kz_bin(iin)


def _with_check_digit(first11: str) -> str:
    check = kz_check_digit(first11)
    assert check is not None
    return first11 + str(check)


@pytest.mark.parametrize(
    ("first11", "valid"),
    [
        ("00022950001", True),  # 29 Feb 2000, century digit 5
        ("00022930001", False),  # 29 Feb 1900 does not exist
        ("00022910001", False),  # nor 29 Feb 1800
        ("00022900001", True),  # century digit 0 (foreigners): 2000 is allowed
        ("92102970001", False),  # century digit 7 does not exist
        ("92103135085", True),  # 31 October exists,
        ("92113135085", False),  # 31 November does not
        ("92002935085", False),  # month 00
        ("92100035085", False),  # day 00
    ],
)
def test_iin_date_and_century_rules(first11: str, valid: bool) -> None:
    assert is_valid_kz_iin(_with_check_digit(first11)) is valid


def test_iin_wrong_check_digit() -> None:
    assert not is_valid_kz_iin("921029350852")
    assert not is_valid_kz_iin("061211600013")


@pytest.mark.parametrize("bin_", ["940140000385", "990140004654"])
def test_valid_bins(bin_: str) -> None:
    assert is_valid_kz_bin(bin_)
    assert not is_valid_kz_iin(bin_)


@pytest.mark.parametrize(
    "first11",
    [
        "94134000038",  # month 13
        "94004000038",  # month 00
        "94017000038",  # type digit 7
        "94013000038",  # type digit 3
        "94014400038",  # attribute digit 4
    ],
)
def test_bin_structure_rules(first11: str) -> None:
    assert not is_valid_kz_bin(_with_check_digit(first11))


def test_bin_wrong_check_digit() -> None:
    assert not is_valid_kz_bin("940140000386")


# --- Russia SNILS / INN, cards ------------------------------------------------------------


@pytest.mark.parametrize(
    ("snils", "valid"),
    [
        ("11223344595", True),
        ("11223344596", False),
        ("12345678964", True),  # sum 165 -> 165 mod 101 = 64
        ("23222222400", True),  # sum 100 -> 00
        ("23222222500", True),  # sum 101 -> 00
        ("23222222401", False),
        ("00100199800", False),  # up to 001-001-998 there was no check digit
        ("1122334459", False),
    ],
)
def test_snils(snils: str, valid: bool) -> None:
    assert is_valid_ru_snils(snils) is valid


@pytest.mark.parametrize(
    ("inn", "valid"),
    [
        ("7707083893", True),
        ("7707083894", False),
        ("500100732259", True),
        ("500100732258", False),
        ("77070838930", False),
    ],
)
def test_inn(inn: str, valid: bool) -> None:
    assert is_valid_ru_inn(inn) is valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("2200700000000009", True),  # Mir
        ("2200700000000008", False),
        ("6200000000000005", True),  # UnionPay
        ("2221000000000009", True),  # Mastercard 2-series
        ("378282246310005", True),  # 15 digits
        ("4222222222222", True),  # 13 digits
        ("424242424242", False),  # 12 digits: too short for a card
        ("42424242424242424242", False),  # 20 digits: too long
    ],
)
def test_card(number: str, valid: bool) -> None:
    assert is_valid_card(number) is valid


# --- detect: each detector and its boundaries ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345678", None),  # 8 digits: below every rule
        ("123456789", Detector.DIGIT_RUN),
        ("1234-5678", None),
        ("1234-56789", Detector.DIGIT_RUN),
        ("+7 000 123 45 67", Detector.DIGIT_RUN),  # no such +7 range: not a phone
        ("+7 701 234 56 78", Detector.PHONE),
        ("+12345", None),  # too short for a phone, too short for a run
        ("999.1.1.1", None),
        ("1.2.3.4.5", None),
        ("192.168.0.1", Detector.IP),
        ("dead::beef", Detector.IP),
        ("a:b:c", None),
        ("std::vector", None),
        ("KZ18722S000012345679", Detector.DIGIT_RUN),  # broken mod-97: only a digit run
        ("root@localhost", None),  # no top-level domain
        ("john@localhost", Detector.PERSON_NAME),  # not an address, but a name
        ("pkg@1.2.3", None),
        ("bearer_token_missing", None),
        ("Bearer", None),
        ("eyJhbGciOiJIUzI1NiJ9", None),  # a JWT header alone is neither JWT nor a long token
        ("-----BEGIN", None),
        ("https://host/path", None),
        ("https://user@host/path", None),  # user without password: no credentials
        ("name=", None),
        ("event_name=x", None),
        ("first_name=x", Detector.SENSITIVE_KEY),
    ],
)
def test_detect_boundaries(text: str, expected: Detector | None) -> None:
    assert detect(text) == expected


def test_detect_is_most_specific_and_detect_all_lists_everything() -> None:
    assert detect("921029350851") is Detector.KZ_IIN
    assert detect_all("921029350851") == (Detector.KZ_IIN, Detector.DIGIT_RUN)
    assert detect_all("mail ivan@mail.kz, iin 921029350851") == (
        Detector.EMAIL,
        Detector.KZ_IIN,
        Detector.DIGIT_RUN,
        Detector.PERSON_NAME,
    )
    assert detect_all("invoice_create_clicked") == ()


def test_plus_prefixed_runs_are_phones_not_national_ids() -> None:
    # A "+" makes a run a phone number candidate only, even when its digits pass SNILS.
    assert is_valid_ru_snils("11223344595")
    assert detect_all("+11223344595") == (Detector.DIGIT_RUN,)
    assert detect("+7 701 234 56 78") is Detector.PHONE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 23 + "1", Detector.TOKEN),  # 24 hex characters with a digit
        ("0a1b2c3d4e5f6a7b8c9d0e1f", Detector.TOKEN),
        ("0a1b2c3d4e5f6a7b8c9d0e1", None),  # 23 hex characters
        ("abcdefabcdefabcdefabcdef", None),  # hex letters only: a word-like run, not a token
        ("request_create_step_submit_clicked", None),
        ("requestCreateStepSubmitClicked", None),
        ("v2ReportQ3Export2026ButtonClicked", None),
        ("Request_Create_Step_2_Submit_Clicked", None),
        ("aB3xQ9kLm2Np7Rs4Tu6Vw8Yz", Detector.TOKEN),
        ("ab3xq9klm2np7rs4tu6vw8yz", None),  # one case only: not a base64 token
    ],
)
def test_token_rules(text: str, expected: Detector | None) -> None:
    assert detect(text) == expected


def test_random_tokens_are_caught() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits
    samples = [base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=") for _ in range(500)]
    samples += ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(500)]
    missed = sum(detect(sample) is None for sample in samples)
    print(f"random 32+ character tokens missed: {missed}/{len(samples)}")
    # Measured: ~0.7% of random 32-character tokens lack a digit or case mix, or chunk
    # like words; a bound of 2% leaves room for the seed without hiding a regression.
    assert missed / len(samples) < 0.02


# --- sensitive keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "userPassword",
        "user_password",
        "PASSWORD",
        "pass_word",
        "passwords",
        "api_key",
        "apiKey",
        "APIKey",
        "x-api-key",
        "accessToken",
        "refresh_token",
        "client_secret",
        "iin",
        "IIN",
        "clientIIN",
        "iin_bin",
        "company_bin",
        "inn",
        "snils",
        "passport_no",
        "email",
        "userEmail",
        "e_mail",
        "e-mail",
        "emails",
        "mail",
        "phone_number",
        "phoneNumber",
        "tel",
        "mobile",
        "fio",
        "name",
        "names",
        "first_name",
        "firstName",
        "lastName",
        "full_name",
        "username",
        "user_name",
        "client_name",
        "file_name",  # a qualifier not known to be technical: fail closed
        "surname",
        "address",
        "home_address",
        "card",
        "card-no",
        "cardNumber",
        "pan",
        "cvv",
        "cvc",
        "birth_date",
        "dateOfBirth",
        "dob",
        "telefon",
        "Телефон",
        "фамилия",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "binary",
        "cardinality",
        "inning",
        "binding",
        "combine",
        "tokenizer_mode",
        "telemetry",
        "hotel",
        "mailbox",
        "panel",
        "expand",
        "event_name",
        "step_name",
        "screen_name",
        "formName",
        "operation",
        "format",
        "field_id",
        "form_id",
        "session_id",
        "step",
        "attempt",
        "is_mobile",
        "has_email",
        "secretary",
        "passage",
        "filename",  # one word: not a person-name compound
        "hostname",
        "",
        "_",
    ],
)
def test_not_sensitive_keys(key: str) -> None:
    assert not is_sensitive_key(key)


# --- the golden corpus --------------------------------------------------------------------


def test_corpus_false_positive_and_miss_rates() -> None:
    false_positives = [text for text in LEGIT if detect(text) is not None]
    misses = [(cat, text) for cat, text in HOSTILE if Detector(cat) not in detect_all(text)]
    mislabelled = [(cat, text) for cat, text in HOSTILE if detect(text) != Detector(cat)]
    print(
        f"privacy corpus: false positives {len(false_positives)}/{len(LEGIT)} "
        f"({len(false_positives) / len(LEGIT):.1%}), misses {len(misses)}/{len(HOSTILE)} "
        f"({len(misses) / len(HOSTILE):.1%}), mislabelled {len(mislabelled)}"
    )
    assert false_positives == []
    assert misses == []
    assert mislabelled == []


def test_corpus_covers_every_detector() -> None:
    assert {Detector(cat) for cat, _ in HOSTILE} == set(Detector)


@pytest.mark.parametrize("version", VERSION_LIKE_IPS)
def test_four_part_versions_are_reported_as_ip(version: str) -> None:
    # Documented: the guard exempts ui_version from the IP detector, not the detector itself.
    assert detect(version) is Detector.IP


# --- properties ---------------------------------------------------------------------------

_DIGITISH = st.text(
    alphabet="0123456789 -.()+@:=_/abcdefKZABCeyJ\u200b\u00a0\uff11\u0669", max_size=60
)


@given(st.text())
def test_detect_never_raises(text: str) -> None:
    result = detect(text)
    assert result is None or result in set(detect_all(text))


@settings(max_examples=300)
@given(_DIGITISH)
def test_detect_never_raises_on_digit_soup(text: str) -> None:
    hits = detect_all(text)
    assert detect(text) == (hits[0] if hits else None)


_NUMBERS = [
    ("kz_iin", "921029350851"),
    ("kz_iin", "061211600012"),
    ("kz_bin", "940140000385"),
    ("card", "2200700000000009"),
    ("card", "4111111111111111"),
    ("ru_inn", "7707083893"),
    ("ru_snils", "11223344595"),
    ("phone", "87771234567"),
]
_SEPARATORS = ["", "", " ", "-", ".", "(", ")", "\u200b", "\u00a0", "\u2009", "\u2013", "\u00ad"]


@st.composite
def _disguised(draw: st.DrawFn) -> tuple[str, str]:
    """A checksum-valid number with fullwidth digits and separators sprinkled through it."""
    category, number = draw(st.sampled_from(_NUMBERS))
    pieces = []
    for index, digit in enumerate(number):
        if index:
            pieces.append(draw(st.sampled_from(_SEPARATORS)))
        fullwidth = draw(st.booleans())
        pieces.append(chr(0xFF10 + int(digit)) if fullwidth else digit)
    return category, "".join(pieces)


@given(_disguised())
def test_disguised_numbers_are_still_found(case: tuple[str, str]) -> None:
    category, text = case
    assert Detector(category) in detect_all(text)


# --- digits split by identifier separators (_ : / x) --------------------------------------

_IDENTIFIER_SEPARATORS = ["_", ":", "/", "x", "X"]


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("id_870412_300129", [(False, ["870412", "300129"])]),
        ("4111:1111/1111x1111", [(False, ["4111", "1111", "1111", "1111"])]),
        ("+770_123_4567", [(True, ["770", "123", "4567"])]),
        ("112_233_445_95", [(False, ["112", "233", "445"]), (False, ["112", "233", "445", "95"])]),
        ("8_777_123_45_67", [(False, ["777", "123"]), (False, ["8", "777", "123", "45", "67"])]),
        ("2026_12_07", []),  # two-digit groups stay apart: dates, times, steps
        ("10:30:15", []),
        ("12/05/2026", []),
        ("step_2_of_3", []),
        ("123_45_678", []),
        ("v2_build", []),
    ],
)
def test_identifier_digit_groups(text: str, groups: list[tuple[bool, list[str]]]) -> None:
    assert identifier_digit_groups(join_digit_groups(text)) == groups


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("870412_300129", Detector.KZ_IIN),
        ("870412:300129", Detector.KZ_IIN),
        ("870412/300129", Detector.KZ_IIN),
        ("870412x300129", Detector.KZ_IIN),
        ("870-412_300-129", Detector.KZ_IIN),  # dashes first, then the underscore
        ("4111_1111_1111_1111", Detector.CARD),
        ("112_233_445_95", Detector.RU_SNILS),
        ("777_123_45_67", Detector.PHONE),
        ("+7_701_234_56_78", Detector.PHONE),
        ("500100_732259", Detector.RU_INN),  # a person's (12-digit) INN
        # Joined runs have no catch-all: a number that no checksum confirms stays apart...
        ("870412_300128", None),
        ("870412-300128", Detector.DIGIT_RUN),  # ...unless joined by a dash, as before
        # ...and the organisation INN (one check digit: one random number in ten) is judged
        # only when written whole or with dashes.
        ("7707_083_893", None),
        ("7707-083-893", Detector.RU_INN),
        # A compact date opens timestamps and ranges, never a national id or a card.
        ("20261122_103015", None),
        ("20260101_20261231", None),
        ("1920x1080", None),
        ("8080:8443:9090", None),
    ],
)
def test_numbers_split_by_identifier_separators(text: str, expected: Detector | None) -> None:
    assert detect(text) == expected


def test_joined_cards_need_a_network_length() -> None:
    # Luhn-valid by chance, but no network issues 15-digit numbers starting with 4.
    assert is_valid_card("400401403404409")
    assert detect("codes_400_401_403_404_409") is None
    assert detect("400-401-403-404-409") is Detector.CARD  # dashes: Luhn alone, as before
    assert detect("8600_1234_5678_9012") is Detector.CARD  # UzCard


@st.composite
def _valid_iins(draw: st.DrawFn) -> str:
    """IINs of people born 1940-2010: date, century and sex digit, serial, check digit."""
    born = draw(st.dates(min_value=dt.date(1940, 1, 1), max_value=dt.date(2010, 12, 31)))
    century = (3 if born.year < 2000 else 5) + draw(st.integers(0, 1))
    first11 = f"{born:%y%m%d}{century}{draw(st.integers(0, 9999)):04d}"
    check = kz_check_digit(first11)
    assume(check is not None)
    return f"{first11}{check}"


# (prefix, length): Visa, Mastercard, Mastercard 2-series, Mir, Amex, UnionPay, JCB, UzCard
_CARD_SHAPES = [
    ("4", 16), ("4", 13), ("4", 19), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16),
    ("2200", 16), ("2204", 19), ("34", 15), ("37", 15), ("62", 16), ("62", 19), ("3528", 16),
    ("8600", 16),
]  # fmt: skip


@st.composite
def _luhn_cards(draw: st.DrawFn) -> str:
    prefix, length = draw(st.sampled_from(_CARD_SHAPES))
    body = prefix + "".join(str(draw(st.integers(0, 9))) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


@st.composite
def _split_in_groups_of_three(draw: st.DrawFn, numbers: st.SearchStrategy[str]) -> str:
    """A number cut at random positions into groups of 3+ digits, one separator each, maybe
    inside an identifier."""
    number = draw(numbers)
    cuts = sorted(draw(st.sets(st.integers(3, len(number) - 3), max_size=(len(number) - 3) // 3)))
    cuts = [c for i, c in enumerate(cuts) if c - ([0, *cuts][i]) >= 3]
    cuts = [c for c in cuts if len(number) - c >= 3]
    bounds = [0, *cuts, len(number)]
    groups = [number[a:b] for a, b in itertools.pairwise(bounds)]
    assume(all(len(g) >= 3 for g in groups))
    text = groups[0]
    for group in groups[1:]:
        text += draw(st.sampled_from(_IDENTIFIER_SEPARATORS)) + group
    prefix, suffix = draw(st.sampled_from([("", ""), ("case_", "_open"), ("u/", "/edit")]))
    return prefix + text + suffix


@settings(max_examples=400)
@given(_split_in_groups_of_three(_valid_iins()))
def test_iins_split_by_identifier_separators_are_found(text: str) -> None:
    assert Detector.KZ_IIN in detect_all(text), text


@settings(max_examples=400)
@given(_split_in_groups_of_three(_luhn_cards()))
def test_cards_split_by_identifier_separators_are_found(text: str) -> None:
    assert Detector.CARD in detect_all(text), text


@settings(max_examples=300)
@given(_valid_iins() | _luhn_cards(), st.data())
def test_one_cut_anywhere_is_still_found(number: str, data: st.DataObject) -> None:
    """One cut: both sides have 3+ digits and are joined, or one side keeps 10+ digits and
    the catch-all sees it."""
    cut = data.draw(st.integers(1, len(number) - 1))
    text = number[:cut] + data.draw(st.sampled_from(_IDENTIFIER_SEPARATORS)) + number[cut:]
    assert detect(text) is not None, text


def _legit_shapes(rng: random.Random) -> dict[str, Callable[[], str]]:
    """Identifiers with digits and identifier separators that are not personal data."""

    def moment() -> dt.datetime:
        start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        return start + dt.timedelta(seconds=rng.randrange(10**9 // 4))

    return {
        "timestamp YYYYMMDD_HHMMSS": lambda: f"{moment():%Y%m%d_%H%M%S}",
        "timestamp YYYYMMDD_HHMM": lambda: f"{moment():%Y%m%d_%H%M}",
        "date-time YYYY_MM_DD_HH_MM": lambda: f"{moment():%Y_%m_%d_%H_%M}",
        "date-time DD/MM/YYYY_HH:MM": lambda: f"{moment():%d/%m/%Y_%H:%M}",
        "time HH:MM:SS.mmm": lambda: f"{moment():%H:%M:%S}.{rng.randrange(1000):03d}",
        "date range": lambda: f"range_{moment():%Y%m%d}_{moment():%Y%m%d}",
        "build id": lambda: f"build_{moment():%Y%m%d}_{rng.randrange(1, 10_000)}",
        "version build": lambda: (
            f"v{rng.randrange(10)}.{rng.randrange(30)}.{rng.randrange(100)}"
            f"_build_{rng.randrange(1, 100_000)}"
        ),
        "resolution": lambda: f"{rng.randrange(320, 7680)}x{rng.randrange(240, 4320)}",
        "ports": lambda: f"{rng.randrange(80, 10_000)}:{rng.randrange(80, 10_000)}",
        "http codes": lambda: (
            "retry_on_" + "_".join(str(rng.randrange(100, 600)) for _ in range(rng.randrange(1, 5)))
        ),
        "route template": lambda: f"api/v{rng.randrange(1, 4)}/orders/:id/step_{rng.randrange(9)}",
        "step": lambda: f"order_v{rng.randrange(1, 5)}_step_{rng.randrange(1, 20)}",
    }


def test_identifier_separator_rates() -> None:
    rng = random.Random(11)
    per_shape = 2_000
    flagged: dict[str, int] = {}
    for label, make in _legit_shapes(rng).items():
        flagged[label] = sum(detect(make()) is not None for _ in range(per_shape))
    total = sum(flagged.values()) / (per_shape * len(flagged))
    worst = max(flagged, key=flagged.__getitem__)
    print(
        f"\nlegit identifiers with _ : / x: false positives {total:.2%} over "
        f"{per_shape * len(flagged)} generated (worst: {worst} {flagged[worst] / per_shape:.2%})"
    )
    # Two random numbers of 5-6 digits side by side are one 10-12-digit number as far as a
    # checksum can tell: measured, not bounded tightly (the same pair joined by a dash was,
    # and is, always flagged by the catch-all).
    pairs = [f"{rng.randrange(100, 10**6)}_{rng.randrange(100, 10**6)}" for _ in range(5_000)]
    pair_rate = sum(detect(pair) is not None for pair in pairs) / len(pairs)
    print(f"two random 3-6 digit ids joined by _: {pair_rate:.2%} flagged")
    # Numbers cut two or three times anywhere: a piece of one or two digits is never joined
    # (as in 2026_12_07), so cuts that leave no long enough run are missed. One cut never is
    # (test_one_cut_anywhere_is_still_found), nor are pieces of three digits or more.
    iins = ["921029350851", "061211600012", "870412300129"]
    cards = ["4111111111111111", "5555555555554444", "2200700000000009"]
    missed = 0
    for _ in range(5_000):
        number = rng.choice(iins + cards)
        cuts = sorted(rng.sample(range(1, len(number)), rng.randrange(2, 4)))
        pieces = [number[a:b] for a, b in itertools.pairwise([0, *cuts, len(number)])]
        missed += detect("_".join(pieces)) is None
    print(f"IINs and cards cut 2-3 times at any position: {missed / 5_000:.2%} missed")
    assert total <= 0.005
    assert pair_rate < 0.05


# --- person names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Aidos_Nurlanov",
        "/users/ivan-petrov/edit",
        "AidosNurlanov",
        "IVANOV_I",
        "ivanpetrov",  # concatenated: the surname ending still shows
        "petrov2",
        "serik_uly",
        "Nurlanuly",
        "olga",
        "Dostoevsky",
        "Ivan Petrov",  # not an identifier, but still a name
    ],
)
def test_person_names_are_found(text: str) -> None:
    assert detect(text) is Detector.PERSON_NAME


@pytest.mark.parametrize(
    "text",
    [
        "login",
        "admin",
        "provider",
        "previous_step",
        "approve_request",
        "kazakhstan_region",
        "novosibirsk",
        "markAsRead",  # mark, max, will, grace, rose, may, bill, art: words first
        "maxWidth",
        "will_retry",
        "grace_period",
        "rose_chart",
        "may_contact",
        "bill_pay",
        "art_board",
        "webdev",  # -dev, -gov: device, development, government
        "opengov",
        "stdev",  # five letters: too short for the ending rule
        "spisok_tovarov",
        "Petrovichivanovsergeev",  # 22 letters: past the 15-letter cap, no given name in it
        "kxqwvbzmtrplgfov",  # random letters with a surname ending: not readable
    ],
)
def test_technical_words_are_not_names(text: str) -> None:
    assert detect(text) is None


_GIVEN_NAME_SAMPLE = [
    "aidos", "aigerim", "nurlan", "aruzhan", "yerlan", "gulnara", "ivan", "olga", "dmitry",
    "svetlana", "alisher", "dilnoza", "ruslan", "madina", "john", "mary", "timur", "zarina",
]  # fmt: skip


def _name_shapes(given: str, surname: str) -> list[str]:
    """How identifiers carry a name: snake, kebab, dotted, camel, Title, surname first,
    initials, digit suffixes, inside a longer identifier."""
    g, s = given.lower(), surname.lower()
    return [
        f"{g}_{s}",
        f"{g}-{s}",
        f"{g}.{s}",
        f"{given.title()}{surname.title()}",
        f"{g}{surname.title()}",
        f"{given.title()}_{surname.title()}",
        f"{s}_{g}",
        f"{surname.upper()}_{given.upper()}",
        f"{g[0]}.{s}",
        f"{s}_{g[0]}",
        f"{g}_{s}_{len(s)}",
        f"{g}{s}1987",
        f"btn_assign_to_{g}",
        f"user:{g}",
    ]


def test_names_in_identifier_shapes_are_all_found() -> None:
    rng = random.Random(5)
    texts = [
        text
        for surname in SURNAMES
        for text in _name_shapes(rng.choice(_GIVEN_NAME_SAMPLE), surname)
    ]
    texts += SURNAMES + [s.lower() for s in SURNAMES] + [s.upper() for s in SURNAMES]
    missed = [text for text in texts if detect(text) is not Detector.PERSON_NAME]
    names = [text for cat, text in HOSTILE if cat == "person_name"]
    print(
        f"\nnames: {len(missed)}/{len(texts)} generated identifiers missed, "
        f"{len(SURNAMES)} surnames alone in three cases, "
        f"{sum(Detector.PERSON_NAME not in detect_all(t) for t in names)}/{len(names)} "
        "hand-written hostile names missed"
    )
    assert missed == []


def _plan_identifiers() -> set[str]:
    """Every identifier-shaped string of the example tracking plan (names, values, owners)."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, str):
            if IDENTIFIER.fullmatch(value):
                found.add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(msgspec.to_builtins(load_plan(default_plan_path())))
    return found


def _simulated_identifiers() -> set[str]:
    """Every string of simulated traffic but the re-keyed ids (sessions, events)."""
    plan = load_plan(default_plan_path())
    found: set[str] = set()
    for session in simulate_sessions(SimulationParams(sessions=200, days=2, seed=3), plan):
        for event in session.events:
            data = msgspec.to_builtins(event)
            data.pop("event_id", None)
            data.pop("session_id", None)
            found.update(_strings(data))
    return found


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(key) + _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _source_identifiers() -> set[str]:
    """The identifiers this repository's own code uses (Python and the browser SDK)."""
    root = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for path in sorted((root / "src").rglob("*.py")):
        with path.open("rb") as source:
            found.update(t.string for t in tokenize.tokenize(source.readline) if t.type == NAME)
    for path in sorted((root / "sdk" / "js" / "src").rglob("*.js")):
        found.update(re.findall(r"[A-Za-z_$][A-Za-z0-9_$]*", path.read_text(encoding="utf-8")))
    return found


def test_person_name_false_positive_rates() -> None:
    rng = random.Random(9)
    corpora: dict[str, list[str]] = {
        "legit corpus": LEGIT,
        "IANA time zones": sorted(zoneinfo.available_timezones()),
        "tracking plan": sorted(_plan_identifiers()),
        "simulated traffic": sorted(_simulated_identifiers()),
        "source identifiers": sorted(_source_identifiers()),
        "SDK operation ids": [
            "o_" + "".join(rng.choices(string.ascii_lowercase, k=16)) for _ in range(20_000)
        ],
        "random 8-letter ids": [
            "".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(20_000)
        ],
    }
    rates = {}
    for label, texts in corpora.items():
        hits = [text for text in texts if Detector.PERSON_NAME in detect_all(text)]
        rates[label] = len(hits) / len(texts)
        print(
            f"person_name false positives, {label}: {len(hits)}/{len(texts)} ({rates[label]:.2%})"
        )
    for label in ("legit corpus", "IANA time zones", "tracking plan", "SDK operation ids"):
        assert rates[label] == 0, label
    assert max(rates.values()) <= 0.005


def test_exceptions_to_the_surname_rule_are_all_needed() -> None:
    # Each listed word would be a name without its entry: the list carries no dead weight.
    for word in detectors._NOT_SURNAMES:
        assert len(word) >= 6 and word.endswith(detectors._SURNAME_ENDINGS), word
    for name in detectors._GIVEN_NAMES:
        assert len(name) >= 4 or name == "uly", name
