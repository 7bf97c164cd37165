"""Rule-based detectors for personal data and secrets in short strings.

Every detector works on the normalised text (see ``normalize``): candidates are found with
precompiled regular expressions and confirmed with a checksum or a parser wherever one
exists (Luhn, mod-97, mod-101, the Kazakhstan and Russia check digits, ``phonenumbers``,
``ipaddress``). Two catch-alls stand behind them: any run of 9+ digits, and long random
looking tokens. Digit groups joined by identifier separators (``870412_300129``) are judged
by the checksum-confirmed detectors only (see ``_Views``). Latin-script person names are
recognised by their words: common given names, and surname and patronymic endings. No NLP:
it is slow and imprecise, and the closed schema already leaves free text nowhere to go.
These detectors are the defence in depth behind it.

``detect`` answers with the most specific hit (the order of ``_CHECKS``): secrets first,
then e-mail, IBAN, IIN, BIN, card, SNILS, INN, phone, IP, sensitive ``key=value`` pairs,
the catch-alls, and person names last. Most strings are short identifiers with no digit and
none of ``@ : = "`` or whitespace; only the name detector looks at those, after one
character-class search. Every scan is linear in the input length (see
``benchmarks/detectors.py`` for pathological inputs).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import ipaddress
import itertools
import re
from collections.abc import Callable
from typing import Final

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn, numdb
from stdnum.ru import inn as ru_inn

from stumble.privacy.normalize import canonicalize, identifier_digit_groups, join_digit_groups


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
    PERSON_NAME = "person_name"


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


# --- person names -------------------------------------------------------------------------

# Latin-script names where identifiers go (``target="Aidos_Nurlanov"``, ``ivan-petrov``): a
# name is a perfectly good identifier character by character, so only its words give it
# away. The words of a text are its runs of ASCII letters, split at camelCase humps and
# lowercased (``AidosNurlanov_2`` is ``aidos``, ``nurlanov``). A word is a name when it is
#
# - a common given name of the people these systems serve (``_GIVEN_NAMES``, about 800):
#   Kazakh, Russian, Ukrainian, Uzbek, Kyrgyz, Tatar, Caucasian and English first names in
#   their usual Latin spellings, everyday short forms (sasha, dima), a few common surnames
#   the ending rule cannot see (popov, pushkin, medvedev), and the patronymic markers
#   written apart (uly, kyzy, uulu, ugli); or
# - a surname or patronymic by its ending (``_SURNAME_ENDINGS``: -ov, -ova, -ev, -eva, -yev,
#   -enko, -ovich, -ovna, -evich, -evna, -skiy, -skaya, -sky after a consonant, -uly, -kyzy,
#   -chuk, -shvili, -dze, -yan...) in a word of 6 to 15 letters that reads like a
#   transliterated word (``_NOT_TRANSLITERATED``). Six letters, because shorter words with
#   these endings are mostly not names (prev, stdev, egov, mygov); fifteen, because longer
#   words are ids. Random ids are letters too (the browser SDK's operation ids are ``o_`` and
#   16 letters), and one random word in 300 ends like a surname: the readability rule and
#   the length cap take that to 0.1% at 8 letters, 0.015% at 15 and none from 16 on,
#   while every one of 277 common surnames and patronymics passes.
#
# Left out, on purpose, so that ordinary identifiers pass:
# - given names that are English or technical words more often than names: mark, max,
#   will, grace, rose, may, bill, art, jack, frank, asset, roman, semen, julia (a language),
#   doris (a database), aida (the marketing funnel), adilet (Kazakhstan's legal database),
#   and the NATO spelling alphabet (victor, oscar, charlie, juliet, romeo, mike); names of
#   three letters or fewer (ali, ann, eva, ian, leo, sam, nur) collide with abbreviations;
#   names kept although a dictionary lists them as words too: john, peter, harry, maria,
#   marina, margarita, maxim, carol, terry, randy, pasha, davit, amir (13 of 63,875
#   lowercase English words hit, 0.02%);
# - names that are also places or brands identifiers carry: Thomas, Vincent, Victoria,
#   Juan, Wayne, Sofia, Regina, Ulan (IANA time zones: every zone passes), Abai/Abay (a
#   region), Sultan and Nursultan (Astana's name in 2019-2022), Altyn (a bank), Arystan (an
#   airline); and places named like surnames: Saratov, Rostov, Satpayev, Konaev, Auezov;
# - words with a surname ending that are not names (``_NOT_SURNAMES``, ``-dev``, ``-gov``):
#   English and technical words (abbrev, unruly, supernova, makedev, opengov, markov as in
#   Markov-chain attribution, kaspersky, whose scripts show up in JavaScript errors), and
#   transliterated Russian genitive plurals (spisok_tovarov, klientov, dokumentov), which
#   look exactly like surnames: a plural not listed is taken for a name and dropped, failing
#   closed;
# - -in, -ina, -yn (Pushkin, Karenina): English is full of them (admin, login, plugin,
#   margin, origin, retina, stamina);
# - Cyrillic and other scripts: no such word is an identifier, so the guard already refuses
#   it (``schema.not_identifier``) and route templating cuts such a segment to ``:id``.
#
# Names run together are caught when one side is a given name and the other a name
# (``svetlanasmirnova``, ``petrovivan``, ``marynikitin``), at any length. A name alone
# (``ivan``) is a hit: in an identifier it has no technical meaning.


def _word_set(*groups: str) -> frozenset[str]:
    return frozenset(word for group in groups for word in group.split())


_GIVEN_NAMES: Final = _word_set(
    # Kazakh
    """
    abylai ablai adil adilbek adilzhan aibek aibol aidar aidarbek aidos aidyn akhat akhmet
    alibek alikhan alisher almas almat almaz altynbek alzhan amangeldy anuar ansar arman
    armanzhan arnur arsen arslan asan askar askhat aslan aset asylbek ayan azamat baglan bakhyt
    bakyt bakytzhan batyr baurzhan bauyrzhan beibit beibut bekbolat bekzat bekzhan berik birzhan
    bolat daniar daniyar darkhan daulet dauren dias dinmukhamed dosym duman elzhas erbol erkin
    erlan ermek ernar ersultan eskendir galym kairat kanat kuanysh kuat madi makhambet maksat
    marat medet meiram miras mukhtar murat nariman nurbek nurbol nurdaulet nurlan nurlybek
    nurzhan olzhas rakhat ruslan rustem sabit samat sanzhar sayat serik serzhan syrym talgat
    tamerlan temirlan timur tokhtar ulanbek yerbol yerlan yerzhan yesset zhalgas zhandos
    zhanibek zhanbolat zhaksylyk zhasulan zhenis zhomart aidana aigerim aigul aiganym aikerim
    ainur aisulu aizhan aizere akbota akmaral aknur aliya altynai amina anel arailym aruzhan
    asel assel ayana ayaulym aygerim aygul ayzhan balnur botagoz dameli dana dariga dilnaz dina
    dinara gaukhar gulbanu gulim gulmira gulnar gulnara gulnaz gulzhan indira inkar kamila
    karakat karlygash kuralai lazzat lyazzat madina makpal malika marzhan meruert moldir nazerke
    nazym nurgul nursulu perizat raushan sabina sabira saltanat samal sandugash saule sholpan
    symbat togzhan tomiris ulzhan umit zarina zhadyra zhamilya zhanar zhanel zhannat zhansaya
    zhuldyz zhibek
    """,
    # Russian, Ukrainian, Belarusian (with everyday short forms)
    """
    aleksandr alexander alexandr aleksei aleksey alexei alexey anatoly anatoliy andrei andrey
    andriy anton arkady arkadiy arseny artem artyom bogdan bohdan boris vadim valentin valery
    valeriy vasily vasiliy vasyl viktor vitaly vitaliy vladimir volodymyr vladislav vlad
    vsevolod vyacheslav gennady gennadiy georgy georgiy gleb grigory grigoriy daniil danila
    denis dmitry dmitriy dmitri dmytro evgeny evgeniy yevgeny egor yegor ilya igor ignat ilyas
    ivan kirill konstantin leonid maksim maxim makar matvey mikhail miroslav mykola nikita
    nikolai nikolay oleg oleksandr oleksii oleksiy ostap pavel petr pyotr platon rodion ruslan
    savely semyon sergei sergey serhiy stanislav stepan svyatoslav taras timofey timofei fedor
    fyodor yakov yaroslav yuri yuriy yury zakhar sasha sanya vanya vova volodya dima misha petya
    kolya seryozha serezha zhenya tolya lyosha kostya slava vitya grisha pasha yura alevtina
    alexandra aleksandra alena alyona alina alisa alla anastasia anastasiya angelina anna
    antonina anya arina valentina valeria valeriya varvara vasilisa vera veronika viktoria
    viktoriya galina halyna darya daria darina diana elena yelena olena elizaveta yelizaveta
    ekaterina yekaterina katerina kateryna evgenia yevgenia zhanna zinaida zoya inna irina iryna
    kira kristina ksenia kseniya larisa larissa larysa lidia lidiya lilia liliya lyubov lyudmila
    ludmila margarita marina maria mariya marianna milana miroslava nadezhda nadia nadya natalia
    natalya nataliya natasha nina oksana olesya olga polina raisa snezhana svetlana svitlana
    taisia tamara tatiana tatyana tetiana ulyana uliana yulia yuliya yana yaroslava zlata sofiya
    sofya dasha masha katya olya tanya sveta vika nastya lena galya lyuba yulya
    """,
    # common surnames the ending rule cannot see: under six letters, -dev, -in
    """
    popov orlov titov gusev belov bykov zuev lvov zotov panov kotov isaev boyko medvedev lebedev
    ilyin kuzmin sorokin nikitin kalinin fomin mukhin galkin lukin kapustin kostin yudin
    kulagin pushkin zimin belkin voronin borodin
    """,
    # Uzbek, Kyrgyz, Tajik
    """
    abdulla abdullah akmal anvar aziz azizbek bakhodir bakhtiyor bekzod bobur botir davron
    dilshod doniyor eldor elyor farkhod farrukh furkat ikrom ilkhom islom jakhongir jahongir
    jamshid jasur javlon kamol laziz mansur mirzo nodir odil otabek oybek rustam sanjar sardor
    sherzod shokhrukh shukhrat temur ulugbek umid zafar barno dilbar dildora dilfuza dilnoza
    dilorom feruza gulnora gulchekhra kamola lola mavluda mokhira munisa nargiza nigora nilufar
    nodira oygul sevara shakhlo shahlo shakhnoza umida yulduz zilola zukhra aizada almazbek
    askat begimai chyngyz chingiz cholpon elmira gulzat kanybek kubanychbek kubat meerim nurzat
    talant tilek ulukbek zhyldyz
    """,
    # Tatar, Bashkir, Caucasian, Arabic
    """
    airat ayrat alsu damir elvira gulshat ildar ildus ilgiz ilnar ilnur ilshat kamil leysan
    radik rafael ramil ramilya ranis rashid rezeda renat rinat ruzil zulfiya zulfia ahmed akhmed
    ahmad akhmad amir amira aisha aysha bilal fatima hassan hasan husein hussein ibrahim ismail
    jamal karim khadija leila leyla magomed mohammed muhammad mukhammad muhammed mustafa omar
    umar rahim salim salman shamil suleiman yusuf yussuf zaur zaynab zarema giorgi levan davit
    aram armen ashot gayane hayk narek tigran vardan
    """,
    # English
    """
    aaron adam alan albert alex alexis andrew andy anthony arthur benjamin bradley brandon brian
    bruce bryan carl charles christopher chris daniel david dennis donald douglas dylan edward
    eric erik ethan eugene gabriel gary george gerald gregory harold harry henry howard jacob
    james jason jeffrey jeremy jerry jesse john jonathan jose joseph joshua justin keith kenneth
    kevin kyle larry lawrence logan louis luke matthew michael nathan nicholas noah oliver
    patrick paul peter philip phillip ralph randy raymond richard robert ronald russell ryan
    samuel scott sean stephen steven terry timothy tyler walter william willie zachary abigail
    alice alicia amanda amelia andrea angela ashley barbara betty brenda brittany carol carolyn
    catherine charlotte cheryl christina christine cynthia danielle deborah debra denise diane
    donna dorothy elizabeth emily emma evelyn frances gloria hannah helen isabella jacqueline
    janet janice jean jennifer jessica joan joyce judith judy julie karen kathleen katherine
    kathryn kayla kelly kimberly laura lauren linda lisa lori margaret marie marilyn martha mary
    megan melissa michelle nancy natalie nicole olivia pamela patricia rachel rebecca ruth
    samantha sandra sarah sharon shirley sophia stephanie susan teresa theresa
    """,
    # patronymic markers written apart: Nurlan uly, Aruzhan kyzy, Bakyt uulu, Alisher o'g'li
    """
    uly kyzy qyzy uulu kizi qizi ugli ogli ogly oglu
    """,
)

_SURNAME_ENDINGS: Final = (
    "ov", "ova", "ev", "eva", "enko", "ovich", "evich", "ovna", "evna",  # -yev, -iev too
    "skiy", "skii", "skaya", "skaja", "uly", "kyzy", "uulu", "chuk", "yuk", "iuk", "nyk", "ykh",
    "shvili", "dze", "zoda", "zade", "yan",
    # ``-sky`` after a consonant (Dostoevsky, Kandinsky); after a vowel it is English (whisky)
    *(consonant + "sky" for consonant in "bcdfghjklmnpqrstvwxz"),
)  # fmt: skip
_SURNAME_MIN: Final = 6
_SURNAME_MAX: Final = 15
# ``dev`` (device, development) and ``gov`` (government) end far more identifiers than
# surnames: makedev, webdev, pstdev, ENODEV, onegov, digigov. The common ``-dev`` surnames
# (Medvedev, Lebedev) are listed as names.
_NOT_SURNAME_ENDINGS: Final = ("dev", "gov")
# Transliterated surnames read as words: no ``w``, a ``c`` only in ``ch``, ``q`` and ``x``
# (Uzbek Latin) only before a vowel, at most three consonants in a row once digraphs count
# as one (``shch`` in Khrushchev, ``vsk`` in Dostoevsky). Random letters mostly do not:
# of random lowercase words, 0.33% end like a surname; with this rule 0.10% at 8 letters,
# 0.03% at 12, 0.015% at 15 (and the 15-letter cap stops the SDK's 16-letter ids).
_DIGRAPHS: Final = re.compile(r"shch|zh|kh|ch|sh|ts|th|ph|gh")
_NOT_TRANSLITERATED: Final = re.compile(r"w|c(?!h)|[qx](?![aeiouy])|[bcdfghjklmnpqrstvwxz]{4}")
_NOT_SURNAMES: Final = _word_set(
    # English words (every lowercase word of a 100,000-word English list with these
    # endings and six letters or more) and technical compounds
    """
    abbrev filerev gitrev banyan shaykh supernova unduly unruly improv writev pwritev hypernova
    bossanova casanova terranova villanova sambanova bunyan markov kaspersky
    """,
    # places: cities, towns and time zones named like surnames
    """
    saratov rostov tambov dmitrov ostrov satpayev satpaev konaev konayev qonaev kishinev auezov
    kurchatov
    """,
    # transliterated Russian genitive plurals, common in identifiers written in Russian
    """
    tovarov zakazov klientov dokumentov otchetov schetov parametrov statusov spiskov filtrov
    obektov uchastnikov sotrudnikov rabotnikov postavshchikov periodov produktov servisov
    dogovorov kontraktov zaprosov otvetov faylov fajlov razdelov modulov ekranov bankov adresov
    platezhev
    """,
)

# The words of an identifier: runs of ASCII letters split at camelCase humps (``XMLHttp`` is
# ``XML``, ``Http``). Digits and every other character end a word.
_NAME_WORD: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")


def is_person_name_word(word: str) -> bool:
    """Whether one lowercased word of an identifier is a name: a given name, a patronymic
    marker, a surname or patronymic by its ending, or two of them run together with a given
    name on one side (``svetlanasmirnova``, ``petrovivan``); see the rules above."""
    if word in _GIVEN_NAMES:
        return True
    if len(word) < _SURNAME_MIN:
        return False
    # One set lookup each turns away nearly every word before the full checks run.
    if word[-2:] in _ENDING_TAILS and _is_surname_by_ending(word):
        return True
    return (word[:_MIN_GIVEN] in _NAME_HEADS or word[-_MIN_GIVEN:] in _NAME_TAILS) and (
        _is_two_names(word)
    )


def _is_single_name(word: str) -> bool:
    return word in _GIVEN_NAMES or _is_surname_by_ending(word)


# The last two letters of every ending.
_ENDING_TAILS: Final = frozenset(ending[-2:] for ending in _SURNAME_ENDINGS)


def _is_surname_by_ending(word: str) -> bool:
    return (
        word[-2:] in _ENDING_TAILS
        and _SURNAME_MIN <= len(word) <= _SURNAME_MAX
        and word.endswith(_SURNAME_ENDINGS)
        and not word.endswith(_NOT_SURNAME_ENDINGS)
        and word not in _NOT_SURNAMES
        and _NOT_TRANSLITERATED.search(_DIGRAPHS.sub("h", word)) is None
    )


# Given names are 4+ letters: a word that starts or ends with one starts or ends with one of
# these, which turns away nearly every other word with one set lookup.
_MIN_GIVEN: Final = 4
_NAME_HEADS: Final = frozenset(name[:_MIN_GIVEN] for name in _GIVEN_NAMES)
_NAME_TAILS: Final = frozenset(name[-_MIN_GIVEN:] for name in _GIVEN_NAMES)


def _is_two_names(word: str) -> bool:
    """A given name and another name run together, in either order. Past the 15-letter cap
    this is the only way a word is a name: a random id that long would have to be made of
    two names exactly."""
    if len(word) < 2 * _MIN_GIVEN:
        return False
    if word[:_MIN_GIVEN] in _NAME_HEADS:
        for cut in range(_MIN_GIVEN, len(word) - _MIN_GIVEN + 1):
            if word[:cut] in _GIVEN_NAMES and _is_single_name(word[cut:]):
                return True
    if word[-_MIN_GIVEN:] in _NAME_TAILS:
        for cut in range(_MIN_GIVEN, len(word) - _MIN_GIVEN + 1):
            if word[cut:] in _GIVEN_NAMES and _is_single_name(word[:cut]):
                return True
    return False


def person_name_among(words: set[str]) -> bool:
    """``is_person_name_word`` for any of a set of lowercased words, given names first with
    one C-level set intersection (the body screen judges a whole batch's words at once)."""
    if not words.isdisjoint(_GIVEN_NAMES):
        return True
    return any(map(is_person_name_word, words))


def name_words(run: str) -> list[str]:
    """The lowercased words of a run of ASCII letters, split at camelCase humps."""
    if run.islower():
        return [run]
    return [word.lower() for word in _NAME_WORD.findall(run)]


def _contains_person_name(text: str) -> bool:
    """Memoised for identifier-sized text: traffic repeats its identifiers, and this is the
    one check every string takes, digits or not. Longer text is not kept."""
    if len(text) <= _MEMO_MAX_LENGTH:
        return _contains_person_name_memo(text)
    return _contains_person_name_now(text)


_MEMO_MAX_LENGTH: Final = 256


@functools.lru_cache(maxsize=16_384)
def _contains_person_name_memo(text: str) -> bool:
    return _contains_person_name_now(text)


def _contains_person_name_now(text: str) -> bool:
    for run in _LETTER_RUN.findall(text):
        if run.islower():
            if is_person_name_word(run):
                return True
        elif any(map(is_person_name_word, name_words(run))):
            return True
    return False


_LETTER_RUN: Final = re.compile(r"[A-Za-z]+")


# --- detection ----------------------------------------------------------------------------

# Nothing can hit unless the canonical text has a digit, one of ``@ : = "``, whitespace
# (bearer, PEM), or the start of a JWT: every token, IBAN and number needs a digit. A
# character class scans several times faster than an alternation, hence the separate ``in``.
_MAYBE_SENSITIVE: Final = re.compile(r"[0-9@:=\s\"]")
_DIGIT_RUN: Final = re.compile(r"[0-9]+")
_SIGNED_DIGIT_RUN: Final = re.compile(r"\+?[0-9]+")


class _Views:
    """One string as the detectors see it: canonical text, and its digit runs once joined.

    ``national_runs`` and ``plus_runs`` are the digit runs of ``join_digit_groups`` (spaces,
    dashes, dots, parentheses removed), a run written ``+…`` being a phone candidate only;
    ``longest_run`` is the longest of them, which is what the catch-all judges.

    ``joined_runs`` are the runs joined across identifier separators (``870412_300129``, see
    ``normalize.identifier_digit_groups``) and ``trunkless_phones`` the ones written as a
    phone without its 8 (``777_123_45_67``). Only detectors whose confirmation passes about
    one random number in a hundred or fewer judge them: IIN, BIN, SNILS, the 12-digit INN,
    cards (Luhn passes one in ten, but a legitimate identifier rarely joins 13+ digits) and
    national phones. The catch-all does not (nothing tells ``20261122_103015`` or
    ``http_500_502_503`` from one number, and it would flag every such identifier), nor does
    the 10-digit INN: it names an organisation, not a person, and its one check digit passes
    one random number in ten (``ticket_44700_16373``, ``14396:61697``).
    """

    __slots__ = (
        "canonical",
        "joined_runs",
        "longest_joined",
        "longest_run",
        "national_runs",
        "plus_runs",
        "trunkless_phones",
    )

    def __init__(self, canonical: str) -> None:
        self.canonical = canonical
        joined = join_digit_groups(canonical)
        self.plus_runs: list[str] = []
        self.joined_runs: list[str] = []
        self.trunkless_phones: list[str] = []
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
        if self.longest_run >= 3:
            self._add_identifier_joined_runs(joined)
        self.longest_joined = max(map(len, self.joined_runs), default=0)

    def _add_identifier_joined_runs(self, joined: str) -> None:
        for plus, groups in identifier_digit_groups(joined):
            run = "".join(groups)
            if plus:
                self.plus_runs.append(run)
            elif tuple(map(len, groups)) == _TRUNKLESS_PHONE_GROUPS:
                self.trunkless_phones.append(run)
            elif not _is_date_led(groups[0]):
                self.joined_runs.append(run)

    def runs_of(self, length: int, *, joined: bool = True) -> list[str]:
        """The national runs of ``length`` digits, and the joined ones unless told not to."""
        runs = []
        if self.longest_run >= length:
            runs = [run for run in self.national_runs if len(run) == length]
        if joined and self.longest_joined >= length:
            runs += [run for run in self.joined_runs if len(run) == length]
        return runs


_TRUNKLESS_PHONE_GROUPS: Final = (3, 3, 2, 2)


def _is_date_led(group: str) -> bool:
    """``20261122`` in ``20261122_103015``: a compact date opens timestamps, date ranges and
    build stamps, never an IIN/BIN, card, SNILS or INN (no IIN's first eight digits are a
    date of 1900-2099 unless its holder was born in 1919-1920 or is a foreigner born on the
    1st-12th of a month in 2019-2020; no card network issues 19xx or 20xx numbers)."""
    if len(group) != 8 or group[:2] not in ("19", "20"):
        return False
    return _is_real_date(int(group[:4]), int(group[4:6]), int(group[6:]))


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
    if v.longest_run >= 13:
        national = (run for length in range(13, 20) for run in v.runs_of(length, joined=False))
        if any(map(is_valid_card, national)):
            return True
    return any(is_valid_card(run) and _has_card_network_length(run) for run in v.joined_runs)


# Luhn passes one random number in ten, and identifiers join 13+ digits now and then
# (``codes_400_401_403_404_409``): a run joined across identifier separators must also have a
# length some payment network issues for its first digit (ISO/IEC 7812 major industry
# identifier). 2: Mir, Mastercard 2-series; 3: Amex (15), Diners (14), JCB; 4: Visa (13, 16,
# 19); 5: Mastercard, Maestro; 6: UnionPay, Discover, Maestro; and the national schemes
# UzCard (8600), Humo (9860), Troy (9792). Numbers joined by spaces or dashes keep Luhn alone.
_CARD_NETWORK_LENGTHS: Final[dict[str, range | tuple[int, ...]]] = {
    "2": range(16, 20),
    "3": range(14, 20),
    "4": (13, 16, 19),
    "5": range(16, 20),
    "6": range(16, 20),
    "8600": (16,),
    "9860": (16,),
    "9792": (16,),
}


def _has_card_network_length(run: str) -> bool:
    lengths = _CARD_NETWORK_LENGTHS.get(run[0]) or _CARD_NETWORK_LENGTHS.get(run[:4], ())
    return len(run) in lengths


def _has_ru_snils(v: _Views) -> bool:
    return any(map(is_valid_ru_snils, v.runs_of(11)))


def _has_ru_inn(v: _Views) -> bool:
    # The 10-digit (organisation) INN only as a national run: see ``_Views``.
    ten = v.runs_of(10, joined=False)
    return any(map(is_valid_ru_inn, ten)) or any(map(is_valid_ru_inn, v.runs_of(12)))


def _has_phone(v: _Views) -> bool:
    if any(8 <= len(run) <= 15 and is_valid_phone("+" + run) for run in v.plus_runs):
        return True
    # National Kazakhstan/Russia format: 8 or 7, then ten digits, or the ten digits alone
    # when written as a phone number is (777_123_45_67).
    if any(is_valid_phone("+7" + run) for run in v.trunkless_phones):
        return True
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


def _has_person_name(v: _Views) -> bool:
    return _contains_person_name(v.canonical)


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
    (Detector.PERSON_NAME, _has_person_name),
)


def detect(text: str) -> Detector | None:
    """The most specific detector that hits ``text`` after normalisation, or None."""
    canonical = canonicalize(text)
    if not _worth_checking(canonical):
        # Only a name can hide in text without a digit or any of ``@ : = "`` and whitespace.
        return Detector.PERSON_NAME if _contains_person_name(canonical) else None
    views = _Views(canonical)
    for detector, check in _CHECKS:
        if check(views):
            return detector
    return None


def detect_all(text: str) -> tuple[Detector, ...]:
    """Every detector that hits ``text``, most specific first."""
    canonical = canonicalize(text)
    if not _worth_checking(canonical):
        return (Detector.PERSON_NAME,) if _contains_person_name(canonical) else ()
    views = _Views(canonical)
    return tuple(detector for detector, check in _CHECKS if check(views))


def _worth_checking(canonical: str) -> bool:
    """Whether any detector but the name detector could hit."""
    return _MAYBE_SENSITIVE.search(canonical) is not None or _JWT_START in canonical
