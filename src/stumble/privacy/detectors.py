"""Rule-based detectors for personal data and secrets in short strings.

Every detector works on the normalised text (see ``normalize``): candidates are found with
precompiled regular expressions and confirmed with a checksum or a parser wherever one
exists (Luhn, mod-97, mod-101, the Kazakhstan and Russia check digits, ``phonenumbers``,
``ipaddress``). Two catch-alls stand behind them: any run of 9+ digits, and long random
looking tokens. No NLP: it is slow and imprecise, and the closed schema already leaves free
text nowhere to go. These detectors are the defence in depth behind it.

``detect`` answers with the most specific hit (the order of ``_CHECKS``): secrets first,
then e-mail, IBAN, IIN, BIN, card, SNILS, INN, phone, IP, sensitive ``key=value`` pairs,
and the catch-alls last. Most strings are short identifiers with no digit and none of
``@ : = "`` or whitespace; they are answered by one character-class search. Every scan is
linear in the input length (see ``benchmarks/detectors.py`` for pathological inputs).
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import itertools
import re
from collections.abc import Callable
from typing import Final

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn, numdb
from stdnum.ru import inn as ru_inn

from stumble.privacy.normalize import canonicalize, join_digit_groups


class Detector(enum.StrEnum):
    """What a string was found to contain; the value is the reason code's suffix."""

    EMAIL = "email"
    CARD = "card"
    KZ_IIN = "kz_iin"
    KZ_BIN = "kz_bin"
    RU_INN = "ru_inn"
    RU_SNILS = "ru_snils"
    PHONE = "phone"
    IBAN = "iban"
    IP = "ip"
    BEARER = "bearer"
    JWT = "jwt"
    PEM = "pem"
    URL_CREDENTIALS = "url_credentials"
    SENSITIVE_KEY = "sensitive_key"
    DIGIT_RUN = "digit_run"
    TOKEN = "token"  # noqa: S105 - a detector name, not a credential


# --- Kazakhstan IIN / BIN -----------------------------------------------------------------

_KZ_WEIGHTS: Final = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_KZ_RETRY_WEIGHTS: Final = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
# The IIN's 7th digit gives the century (and sex); 0 is seen on IINs issued to foreigners,
# whose century is not encoded, so either century is accepted for them.
_KZ_CENTURIES: Final[dict[str, tuple[int, ...]]] = {
    "0": (1900, 2000),
    "1": (1800,),
    "2": (1800,),
    "3": (1900,),
    "4": (1900,),
    "5": (2000,),
    "6": (2000,),
}


def kz_check_digit(first11: str) -> int | None:
    """The IIN/BIN check digit of the first 11 digits, or None when no digit is possible."""
    if len(first11) != 11 or not (first11.isascii() and first11.isdigit()):
        return None
    digits = [int(char) for char in first11]
    for weights in (_KZ_WEIGHTS, _KZ_RETRY_WEIGHTS):
        check = sum(w * d for w, d in zip(weights, digits, strict=True)) % 11
        if check != 10:
            return check
    return None


def _kz_check_digit_matches(digits: str) -> bool:
    return len(digits) == 12 and kz_check_digit(digits[:11]) == int(digits[11])


def is_valid_kz_iin(digits: str) -> bool:
    """A person's IIN: YYMMDD of a real date, century digit, serial, check digit."""
    if len(digits) != 12 or not (digits.isascii() and digits.isdigit()):
        return False
    centuries = _KZ_CENTURIES.get(digits[6])
    if centuries is None:
        return False
    year, month, day = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    if not any(_is_real_date(century + year, month, day) for century in centuries):
        return False
    return _kz_check_digit_matches(digits)


def is_valid_kz_bin(digits: str) -> bool:
    """A legal entity's BIN: YYMM of registration, type 4/5/6, attribute 0-3, serial, check."""
    if len(digits) != 12 or not (digits.isascii() and digits.isdigit()):
        return False
    if not 1 <= int(digits[2:4]) <= 12:
        return False
    if digits[4] not in "456" or digits[5] not in "0123":
        return False
    return _kz_check_digit_matches(digits)


def _is_real_date(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


# --- Russia SNILS / INN -------------------------------------------------------------------

# SNILS numbers up to 001-001-998 were issued before check digits existed.
_SNILS_FIRST_CHECKED: Final = 1_001_999


def is_valid_ru_snils(digits: str) -> bool:
    """An 11-digit SNILS: weights 9..1 on the first nine digits, sum mod 101, 100 -> 00."""
    if len(digits) != 11 or not (digits.isascii() and digits.isdigit()):
        return False
    if int(digits[:9]) < _SNILS_FIRST_CHECKED:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(9, 0, -1), strict=True))
    return total % 101 % 100 == int(digits[9:])


def is_valid_ru_inn(digits: str) -> bool:
    """A 10-digit (organisation) or 12-digit (person) INN with valid check digit(s)."""
    if not (digits.isascii() and digits.isdigit()):
        return False
    # stdnum's check-digit functions, without its validate(): exceptions cost more than the sum.
    if len(digits) == 10:
        return bool(ru_inn.calc_company_check_digit(digits) == digits[-1])
    if len(digits) == 12:
        return bool(ru_inn.calc_personal_check_digits(digits) == digits[-2:])
    return False


# --- payment cards and phones -------------------------------------------------------------


def is_valid_card(digits: str) -> bool:
    """13-19 digits passing Luhn. Brand prefixes are not checked: Mir, UnionPay and new
    Mastercard ranges would be missed by a prefix list, and Luhn already does the work."""
    if not (13 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        return False
    return bool(luhn.checksum(digits) == 0)


def is_valid_phone(e164: str) -> bool:
    """``+`` and 8-15 digits forming a number valid in its country's numbering plan."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


# --- IBAN ---------------------------------------------------------------------------------


def _iban_lengths() -> dict[str, int]:
    """IBAN length per country from python-stdnum's registry (``KZ``: 20)."""
    lengths = {}
    for _, country, _, props, _ in numdb.get("iban").prefixes:
        bban = props.get("bban", "")
        sizes = [int(size) for size in re.findall(r"(\d+)!?[nac]", bban)]
        if sizes:
            lengths[country] = 4 + sum(sizes)
    return lengths


_IBAN_LENGTHS: Final = _iban_lengths()
_IBAN_SHAPE: Final = re.compile(r"[A-Za-z]{2}\s?[0-9]{2}")
# IBANs are printed in groups of four separated by single spaces.
_IBAN_GROUP_GAP: Final = re.compile(r"(?<=[A-Za-z0-9])\s(?=[A-Za-z0-9])")
_IBAN_START: Final = re.compile(r"(?=([A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}))")


def _contains_iban(text: str) -> bool:
    if _IBAN_SHAPE.search(text) is None:
        return False
    compact = _IBAN_GROUP_GAP.sub("", text).upper()
    for match in _IBAN_START.finditer(compact):
        candidate = match.group(1)
        length = _IBAN_LENGTHS.get(candidate[:2])
        if length is None or len(candidate) < length:
            continue
        # mod-97 first: it rejects nearly every non-IBAN for a fraction of stdnum's cost.
        if _iban_mod97(candidate[:length]) == 1 and stdnum_iban.is_valid(candidate[:length]):
            return True
    return False


def _iban_mod97(iban: str) -> int:
    """ISO 7064 mod 97-10 of an upper-case IBAN: country and check digits moved to the end,
    letters as numbers (A=10 ... Z=35)."""
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97


# --- IP addresses -------------------------------------------------------------------------

_IPV4: Final = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])")
# Runs of the IPv6 alphabet not glued to a word; ``ipaddress`` decides. One greedy class keeps
# the scan linear (three starred classes around two colons would backtrack quadratically).
_IPV6_RUN: Final = re.compile(r"(?<![0-9A-Za-z_:.])[0-9A-Fa-f:.]{2,}+(?![G-Zg-z_])")
_IPV6_MAX: Final = 45  # "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"


def _contains_ip(text: str) -> bool:
    if text.count(".") >= 3 and _contains_ipv4(text):
        return True
    return text.count(":") >= 2 and _contains_ipv6(text)


def _contains_ipv4(text: str) -> bool:
    return any(_parses(ipaddress.IPv4Address, m.group()) for m in _IPV4.finditer(text))


def _contains_ipv6(text: str) -> bool:
    return any(
        len(run) <= _IPV6_MAX and run.count(":") >= 2 and _parses(ipaddress.IPv6Address, run)
        for run in _IPV6_RUN.findall(text)
    )


def _parses(parser: Callable[[str], object], candidate: str) -> bool:
    try:
        parser(candidate)
    except ValueError:
        return False
    return True


# --- secrets ------------------------------------------------------------------------------

_PEM: Final = re.compile(r"-----BEGIN [A-Z0-9 ]*[A-Z0-9]")
# A JWT is three base64url parts joined by dots, the header starting ``eyJ`` (``{"``). Parts
# are split in Python: a regex anchored on every ``eyJ`` rescans the run after it, which is
# quadratic on ``eyJeyJeyJ…``.
_JWT_START: Final = "eyJ"
_DOTTED_WORD: Final = re.compile(r"[A-Za-z0-9_.-]+")
_JWT_HEADER: Final = re.compile(r"eyJ[A-Za-z0-9_-]")
_BEARER: Final = re.compile(r"\b(?:bearer\s+[A-Za-z0-9._~+/-]+|basic\s+[A-Za-z0-9+/]{8,}=*)", re.I)
# ``scheme://user:password@`` or ``//user:password@``; the password may be empty.
_URL_CREDENTIALS: Final = re.compile(r"//[^\s/?#@:]+:[^\s/?#]*@")


def _contains_jwt(text: str) -> bool:
    for word in _DOTTED_WORD.findall(text):
        if _JWT_START not in word:
            continue
        parts = word.split(".")
        # Pairs of header and payload that still have a signature part after them.
        for header, payload in itertools.pairwise(parts[:-1]):
            if payload and _JWT_HEADER.search(header) is not None:
                return True
    return False


# --- e-mail -------------------------------------------------------------------------------

# Unicode-aware: ``иван@почта.рф`` and ``ivan@пример.рф`` are addresses too. The top-level
# domain is letters only, or punycode.
_EMAIL: Final = re.compile(
    r"[\w.%+'-]{1,64}@(?:[^\W_](?:[\w-]{0,62}[^\W_])?\.)+(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{2,59})",
    re.I,
)


# --- catch-alls ---------------------------------------------------------------------------

DIGIT_RUN_MIN: Final = 9
TOKEN_MIN: Final = 24
# Random text breaks into many short case/digit chunks (``aB3xQ`` is five); words do not
# (``requestCreateStep2`` is four chunks in 18 characters). A base64-like run is a token when
# its chunks average under this many characters. Measured: this rule alone lets through 0.6%
# of random 24-character alphanumeric tokens (2.9% with the digit-and-both-cases requirement,
# 0.7% at 32 characters) and flags 0.3% of synthetic camelCase identifiers with digits.
_TOKEN_MAX_MEAN_CHUNK: Final = 3

_HEX_RUN: Final = re.compile(rf"(?<![A-Za-z0-9])[0-9A-Fa-f]{{{TOKEN_MIN},}}(?![A-Za-z0-9])")
_BASE64_RUN: Final = re.compile(rf"[A-Za-z0-9+/_-]{{{TOKEN_MIN},}}")
_CHUNK: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _contains_token(text: str) -> bool:
    for match in _HEX_RUN.finditer(text):
        if any(char.isdigit() for char in match.group()):
            return True
    return any(_looks_random(match.group()) for match in _BASE64_RUN.finditer(text))


def _looks_random(run: str) -> bool:
    """A base64-like run with a digit, both cases, and no longer words than random text has."""
    if run.islower() or run.isupper() or not any(char.isdigit() for char in run):
        return False
    chunks = sum(1 for _ in _CHUNK.finditer(run))
    return chunks * _TOKEN_MAX_MEAN_CHUNK > len(run)


# --- sensitive key names ------------------------------------------------------------------

_SENSITIVE_WORDS: Final = frozenset(
    {
        # secrets
        "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "accesskey",
        "privatekey", "credential", "credentials", "authorization", "cookie", "otp", "pin",
        # national identifiers and documents
        "iin", "bin", "inn", "snils", "passport", "ssn", "iban",
        # contacts
        "email", "mail", "phone", "telephone", "tel", "mobile", "msisdn", "address",
        # names
        "fio", "surname", "patronymic", "firstname", "lastname", "fullname", "middlename",
        "username", "nickname", "displayname", "givenname", "familyname",
        # payment cards
        "card", "cardnumber", "creditcard", "pan", "cvv", "cvc", "cvv2",
        # birth
        "birth", "birthday", "birthdate", "dob",
        # transliterated Russian / Kazakh
        "parol", "telefon", "pochta", "adres", "familiya", "familia", "imya", "otchestvo",
        "pasport",
        # Cyrillic
        "пароль", "телефон", "почта", "адрес", "фамилия", "имя", "отчество", "паспорт",
        "иин", "бин", "инн", "снилс", "фио",
    }
)  # fmt: skip
# ``name`` alone usually holds a person's name; after one of these words it names a thing.
_TECHNICAL_NAME_QUALIFIERS: Final = frozenset(
    {
        "event", "step", "screen", "form", "field", "operation", "action", "metric", "route",
        "module", "page", "section", "tab", "button", "btn", "flag", "feature", "experiment",
        "variant", "component", "class", "type", "kind", "app", "service", "plan", "template",
        "report", "column", "table", "param", "parameter", "queue", "job", "task", "state",
        "status", "category", "role", "region", "division", "browser", "device", "os",
        "platform", "env", "environment", "attribute", "attr", "dimension", "error", "widget",
        "dialog", "modal", "menu", "view", "filter", "sort", "tag", "label", "schema",
    }
)  # fmt: skip
_NAME_WORDS: Final = frozenset({"name", "names"})
# Boolean flags (``is_mobile``, ``has_email``) say whether something exists, never what it is.
_FLAG_PREFIXES: Final = frozenset({"is", "has"})
_KEY_WORDS: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_UNICODE_WORDS: Final = re.compile(r"[^\W\d_]+")
_MAX_JOINED_WORDS: Final = 3


def is_sensitive_key(name: str) -> bool:
    """Whether a JSON key or parameter name says its value is personal data or a secret.

    Words are matched whole inside snake_case, kebab-case and camelCase (``userEmail``,
    ``phone_number``, ``card-no``, ``APIKey``), also joined up to three at a time (``api_key``
    is ``apikey``, ``e_mail`` is ``email``) and in the plural. So ``binary``,
    ``cardinality``, ``binding`` and ``tokenizer_mode`` are not sensitive while ``bin_size``
    is: a blunt rule that fails closed. ``name`` is sensitive unless a technical word comes
    just before it (``event_name``, ``step_name``); ``username``/``user_name`` are sensitive
    (logins are usually built from a person's name), ``filename``/``hostname`` as one word are
    not. Keys starting with ``is``/``has`` are boolean flags and never sensitive.
    """
    words = _split_key(name)
    if not words or words[0] in _FLAG_PREFIXES:
        return False
    return any(_is_sensitive_at(words, index) for index in range(len(words)))


def _split_key(name: str) -> list[str]:
    words = [word.lower() for word in _KEY_WORDS.findall(name)]
    if not name.isascii():
        words += _UNICODE_WORDS.findall(canonicalize(name).lower())
    return words


def _is_sensitive_at(words: list[str], index: int) -> bool:
    if words[index] in _NAME_WORDS:
        return index == 0 or words[index - 1] not in _TECHNICAL_NAME_QUALIFIERS
    for count in range(1, _MAX_JOINED_WORDS + 1):
        if index + count > len(words):
            break
        joined = "".join(words[index : index + count])
        if joined in _SENSITIVE_WORDS or _singular(joined) in _SENSITIVE_WORDS:
            return True
    return False


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


# ``password=…`` or ``"password": …`` inside a longer string (an exception text, a query).
_KEY_VALUE: Final = re.compile(
    r"([A-Za-z_][A-Za-z0-9_-]{0,63})\s*=\s*[^\s&;]"  # key=value
    r'|"([^"]{1,64})"\s*:'  # "key": value
)


def _contains_sensitive_pair(text: str) -> bool:
    return any(
        is_sensitive_key(match.group(1) or match.group(2)) for match in _KEY_VALUE.finditer(text)
    )


# --- detection ----------------------------------------------------------------------------

# Nothing can hit unless the canonical text has a digit, one of ``@ : = "``, whitespace
# (bearer, PEM), or the start of a JWT: every token, IBAN and number needs a digit. A
# character class scans several times faster than an alternation, hence the separate ``in``.
_MAYBE_SENSITIVE: Final = re.compile(r"[0-9@:=\s\"]")
_DIGIT_RUN: Final = re.compile(r"[0-9]+")
_SIGNED_DIGIT_RUN: Final = re.compile(r"\+?[0-9]+")


class _Views:
    """One string as the detectors see it: canonical text, and its digit runs once joined."""

    __slots__ = ("canonical", "longest_run", "national_runs", "plus_runs")

    def __init__(self, canonical: str) -> None:
        self.canonical = canonical
        joined = join_digit_groups(canonical)
        self.plus_runs: list[str] = []
        if "+" in joined:
            # A run written ``+…`` is a phone number candidate only, never a national id.
            runs = _SIGNED_DIGIT_RUN.findall(joined)
            self.national_runs = [run for run in runs if run[0] != "+"]
            self.plus_runs = [run[1:] for run in runs if run[0] == "+"]
        else:
            self.national_runs = _DIGIT_RUN.findall(joined)
        self.longest_run = max(map(len, self.national_runs), default=0)
        if self.plus_runs:
            self.longest_run = max(self.longest_run, *map(len, self.plus_runs))

    def runs_of(self, length: int) -> list[str]:
        if self.longest_run < length:
            return []
        return [run for run in self.national_runs if len(run) == length]


def _has_pem(v: _Views) -> bool:
    return "-----" in v.canonical and _PEM.search(v.canonical) is not None


def _has_jwt(v: _Views) -> bool:
    return _JWT_START in v.canonical and _contains_jwt(v.canonical)


def _has_bearer(v: _Views) -> bool:
    return _BEARER.search(v.canonical) is not None


def _has_url_credentials(v: _Views) -> bool:
    return "@" in v.canonical and _URL_CREDENTIALS.search(v.canonical) is not None


def _has_email(v: _Views) -> bool:
    return "@" in v.canonical and _EMAIL.search(v.canonical) is not None


def _has_iban(v: _Views) -> bool:
    return v.longest_run >= 2 and len(v.canonical) >= 15 and _contains_iban(v.canonical)


def _has_kz_iin(v: _Views) -> bool:
    return any(map(is_valid_kz_iin, v.runs_of(12)))


def _has_kz_bin(v: _Views) -> bool:
    return any(map(is_valid_kz_bin, v.runs_of(12)))


def _has_card(v: _Views) -> bool:
    if v.longest_run < 13:
        return False
    return any(is_valid_card(run) for length in range(13, 20) for run in v.runs_of(length))


def _has_ru_snils(v: _Views) -> bool:
    return any(map(is_valid_ru_snils, v.runs_of(11)))


def _has_ru_inn(v: _Views) -> bool:
    return any(map(is_valid_ru_inn, v.runs_of(10))) or any(map(is_valid_ru_inn, v.runs_of(12)))


def _has_phone(v: _Views) -> bool:
    if any(8 <= len(run) <= 15 and is_valid_phone("+" + run) for run in v.plus_runs):
        return True
    # National Kazakhstan/Russia format: 8 or 7, then ten digits.
    return any(run[0] in "78" and is_valid_phone("+7" + run[1:]) for run in v.runs_of(11))


def _has_ip(v: _Views) -> bool:
    return _contains_ip(v.canonical)


def _has_sensitive_pair(v: _Views) -> bool:
    text = v.canonical
    return ("=" in text or '"' in text) and _contains_sensitive_pair(text)


def _has_digit_run(v: _Views) -> bool:
    return v.longest_run >= DIGIT_RUN_MIN


def _has_token(v: _Views) -> bool:
    return len(v.canonical) >= TOKEN_MIN and _contains_token(v.canonical)


# In priority order: ``detect`` answers with the first detector whose check hits.
_CHECKS: Final[tuple[tuple[Detector, Callable[[_Views], bool]], ...]] = (
    (Detector.PEM, _has_pem),
    (Detector.JWT, _has_jwt),
    (Detector.BEARER, _has_bearer),
    (Detector.URL_CREDENTIALS, _has_url_credentials),
    (Detector.EMAIL, _has_email),
    (Detector.IBAN, _has_iban),
    (Detector.KZ_IIN, _has_kz_iin),
    (Detector.KZ_BIN, _has_kz_bin),
    (Detector.CARD, _has_card),
    (Detector.RU_SNILS, _has_ru_snils),
    (Detector.RU_INN, _has_ru_inn),
    (Detector.PHONE, _has_phone),
    (Detector.IP, _has_ip),
    (Detector.SENSITIVE_KEY, _has_sensitive_pair),
    (Detector.DIGIT_RUN, _has_digit_run),
    (Detector.TOKEN, _has_token),
)


def detect(text: str) -> Detector | None:
    """The most specific detector that hits ``text`` after normalisation, or None."""
    views = _views_worth_checking(text)
    if views is not None:
        for detector, check in _CHECKS:
            if check(views):
                return detector
    return None


def detect_all(text: str) -> tuple[Detector, ...]:
    """Every detector that hits ``text``, most specific first."""
    views = _views_worth_checking(text)
    if views is None:
        return ()
    return tuple(detector for detector, check in _CHECKS if check(views))


def _views_worth_checking(text: str) -> _Views | None:
    canonical = canonicalize(text)
    if _MAYBE_SENSITIVE.search(canonical) is None and _JWT_START not in canonical:
        return None
    return _Views(canonical)
