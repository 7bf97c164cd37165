"""Admission: decoding with the cheap limits first, time rules, declared shapes, and the
privacy property over every string field of every kind."""

from __future__ import annotations

import json
import random
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.collector.conftest import event, now_ms
from tests.privacy.corpus import HOSTILE

from stumble import reasons as r
from stumble.access.keys import WriteKey
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.admission import (
    AdmissionRules,
    Arrival,
    BatchRefusedError,
    SchemaFailure,
    TimeRules,
    admit,
    admit_events,
    clock_skew_ms,
    decode_body,
    time_problem,
)
from stumble.collector.enrich import Enricher, RequestContext
from stumble.events import KIND_TO_CLASS, REKEYED_FIELDS, Event, decode_event
from stumble.plan.load import default_plan_path, load_plan
from stumble.privacy.guard import Outcome

NOW = now_ms()
RULES = TimeRules(max_age_ms=30 * 86_400_000, max_future_ms=300_000)
PLAN = load_plan(default_plan_path())
ADMISSION = AdmissionRules(PLAN, TimeRules(max_age_ms=10**14, max_future_ms=10**14))


def body_of(*events: dict[str, Any]) -> bytes:
    return json.dumps({"sent_at": now_ms(), "events": list(events)}).encode()


def admit_body(body: bytes, max_events: int = 500) -> Any:
    decoded = decode_body(body, max_events)
    return admit(decoded, ADMISSION, Arrival.at(now_ms(), decoded.sent_at))


# --- time -------------------------------------------------------------------------------------


def test_skew_comes_from_sent_at() -> None:
    assert clock_skew_ms(NOW - 3_600_000, NOW) == 3_600_000  # client clock an hour slow
    assert clock_skew_ms(None, NOW) == 0
    assert clock_skew_ms(0, NOW) == 0  # an unset client clock does not define the skew


@pytest.mark.parametrize(
    ("ts", "sent_at", "expected"),
    [
        (NOW - 1000, NOW, None),
        (NOW - 2 * 3_600_000, NOW - 3_600_000, None),  # a slow clock is corrected, not refused
        (0, NOW, "time.implausible"),
        (NOW // 1000, NOW, "time.seconds_not_ms"),
        (NOW + 10_000, NOW, "time.after_sent_at"),
        (NOW - 40 * 86_400_000, NOW, "time.too_old"),
        (4_102_444_800_000 - 1000, 4_102_444_800_000, None),  # year 2100 on both: skew, corrected
        (4_102_444_800_000, NOW, "time.after_sent_at"),
    ],
)
def test_time_problems(ts: int, sent_at: int, expected: str | None) -> None:
    assert time_problem(ts, Arrival.at(NOW, sent_at), RULES) == expected


def test_without_sent_at_nothing_can_be_corrected() -> None:
    assert time_problem(4_102_444_800_000, Arrival.at(NOW, None), RULES) == "time.in_future"
    assert time_problem(NOW - 1000, Arrival.at(NOW, None), RULES) is None


def test_a_time_rejection_names_the_ts_field() -> None:
    rules = AdmissionRules(PLAN, RULES)
    decoded = decode_body(body_of(event(ts=now_ms() - 40 * 86_400_000)), 500)
    rejection = admit(decoded, rules, Arrival.at(now_ms(), decoded.sent_at)).rejections[0]
    assert (rejection.finding.reason, rejection.finding.field_path) == ("time.too_old", "$.ts")
    assert rejection.event_name == "request_next_clicked"


# --- the cheap limits come first ------------------------------------------------------------------


def test_many_tiny_elements_are_refused_before_any_is_decoded() -> None:
    with pytest.raises(BatchRefusedError) as refused:
        decode_body(b"[" + b",".join([b"0"] * 500_000) + b"]", 500)
    assert (refused.value.status, refused.value.reason) == (400, "batch.event_not_an_object")
    with pytest.raises(BatchRefusedError) as refused:
        decode_body(b"[" + b",".join([b"{}"] * 300_000) + b"]", 500)
    assert (refused.value.status, refused.value.reason) == (413, "batch.too_many_objects")


def test_braces_inside_strings_do_not_count_as_objects() -> None:
    # Routes may hold braces; the quick count over-counts them and the precise one does not.
    route = "/requests/" + "{" * 1500
    decoded = decode_body(body_of(event("screen_view", route=route)), 10)
    assert len(decoded.events) == 1


def test_more_events_than_allowed_is_413_on_both_paths() -> None:
    valid = [event() for _ in range(11)]
    with pytest.raises(BatchRefusedError) as refused:
        decode_body(body_of(*valid), 10)
    assert (refused.value.status, refused.value.reason) == (413, "batch.too_many_events")
    with pytest.raises(BatchRefusedError) as refused:
        decode_body(body_of(*valid[:10], {"kind": "x"}), 10)
    assert refused.value.reason == "batch.too_many_events"


# --- one event at a time, good ones kept ------------------------------------------------------------


def test_good_events_next_to_bad_ones_are_kept_in_order() -> None:
    admission = admit_body(body_of(event(), {"kind": "x"}, event(target="ivan@x.kz"), event()))
    outcomes = [verdict.outcome for verdict in admission.verdicts()]
    assert outcomes == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.REDACTED, Outcome.ACCEPTED]
    assert len(admission.stored) == 3
    assert admission.redaction_counts() == {1: 1}


def test_program_made_events_are_admitted_exactly_as_over_http() -> None:
    events: list[Event] = [decode_event(json.dumps(event(target=t))) for t in ("a", "ivan@x.kz")]
    now = now_ms()
    offline = admit_events(events, ADMISSION, Arrival.at(now, now), 500)
    wire = admit_body(msgspec.json.encode({"sent_at": now, "events": events}))
    assert offline.verdicts() == wire.verdicts()


# --- declared shapes ---------------------------------------------------------------------------


def _ulid(rng: random.Random) -> str:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return rng.choice("01234567") + "".join(rng.choice(alphabet) for _ in range(25))


SESSION_ID_MAKERS = {
    "uuid4": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "uuid4 upper case": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
    "32 hex": lambda rng: f"{rng.getrandbits(128):032x}",
    "ulid": _ulid,
}


@pytest.mark.parametrize("shape", list(SESSION_ID_MAKERS))
def test_no_standard_session_id_is_rejected_in_100_000(shape: str) -> None:
    rng = random.Random(shape)
    make = SESSION_ID_MAKERS[shape]
    template = event()
    rejected = 0
    for _ in range(200):
        events = [{**template, "session_id": make(rng)} for _ in range(500)]
        admission = admit_body(body_of(*events))
        rejected += len(admission.rejections) + len(admission.redactions)
    print(f"\n{shape}: {rejected} of 100,000 session ids rejected or trimmed")
    assert rejected == 0


def test_a_session_id_of_no_declared_shape_is_still_screened() -> None:
    admission = admit_body(body_of(event(session_id="921029350851")))
    finding = admission.rejections[0].finding
    assert (finding.reason, finding.field_path) == ("pii.kz_iin", "$.session_id")


@pytest.mark.parametrize(
    "version",
    ["1.4.2", "2.3.1-rc.1", "2026.12.07", "2026-12-07", "build_4711", "10.0.0.1", "a1b2c3d"],
)
def test_versions_of_a_version_shape_pass(version: str) -> None:
    assert admit_body(body_of(event(ui_version=version))).rejections == []


@pytest.mark.parametrize(
    "version", ["2001:db8:85a3::8a2e:370:7334", "/api/from/10.17.201.34", "1.4.2/x", "-1.0"]
)
def test_anything_else_in_ui_version_rejects_the_event(version: str) -> None:
    rejection = admit_body(body_of(event(ui_version=version))).rejections[0]
    # An address is named as one (pii.ip); anything else of no version shape is not_a_version.
    expected = "pii.ip" if version.count(":") > 1 or "10.17" in version else "schema.not_a_version"
    assert rejection.finding.reason == expected
    assert rejection.finding.field_path == "$.ui_version"


@pytest.mark.parametrize(
    "tz", ["Asia/870412300129/4111111111111111", "Asia/+77011234567", "Ivan/Petrovich_Sidorov"]
)
def test_time_zones_must_be_real_iana_zones(tz: str) -> None:
    admission = admit_body(body_of(event(tz=tz)))
    assert admission.stored[0].tz is None
    assert admission.redactions[0].findings[-1].field_path == "$.tz"
    assert admit_body(body_of(event(tz="Asia/Almaty"))).stored[0].tz == "Asia/Almaty"


# --- every string field of every kind is screened ----------------------------------------------


def _string_fields(kind: str) -> list[str]:
    """Found from the wire types independently of the guard's own layout."""
    fields = []
    for field in msgspec.inspect.type_info(KIND_TO_CLASS[kind]).fields:  # type: ignore[attr-defined]
        types = getattr(field.type, "types", (field.type,))
        if any(isinstance(t, msgspec.inspect.StrType) for t in types):
            fields.append(field.name)
    return fields


SPLIT_BY_IDENTIFIER_SEPARATORS = [
    f"{head}{sep}{tail}"
    for head, tail in (("870412", "300129"), ("9210", "29350851"), ("4111111", "111111111"))
    for sep in ("_", ":", "/", "x")
] + ["4111_1111_1111_1111", "2200:7000:0000:0009", "921_029_350_851", "case_870412_300129_open"]
"""A valid IIN and a Luhn-valid card split by the separators identifiers use (issue 8)."""

DOTTED_QUAD = re.compile(r"[0-9]+(?:\.[0-9]+){3}")
SECRETS = Path(tempfile.mkdtemp(prefix="stumble-admission-test-"))
ENRICHER = Enricher(SessionKeyRing(SECRETS), EventIdKey(SECRETS))
KEY = WriteKey(key_id="test", environment="prod", key_sha256="-")

FIELD_CASES = [(kind, f) for kind in KIND_TO_CLASS for f in _string_fields(kind)]


@pytest.mark.parametrize(("kind", "field"), FIELD_CASES)
def test_no_hostile_value_survives_in_any_string_field_of_any_kind(kind: str, field: str) -> None:
    if field == "event_id":
        pytest.skip("event_id must be a UUID (schema) and is re-keyed before storage")
    kept = []
    for value in [text for _, text in HOSTILE] + SPLIT_BY_IDENTIFIER_SEPARATORS:
        if field == "ui_version" and DOTTED_QUAD.fullmatch(value):
            continue  # a release number such as 10.0.0.1 (policy.DETECTOR_EXEMPTIONS)
        admission = admit_body(body_of(event(kind, **{field: value})))
        request = RequestContext(KEY, now_ms(), 0, None, None, None)
        lines = ENRICHER.stored_lines(admission, request).decode()  # what the spool gets
        if json.dumps(value)[1:-1] in lines:
            kept.append(value)
    assert kept == [], f"{kind}.{field} kept hostile values"


def test_only_the_rekeyed_fields_are_exempt_from_screening() -> None:
    assert set(REKEYED_FIELDS) == {"event_id", "session_id"}


def test_schema_failures_carry_our_own_codes() -> None:
    decoded = decode_body(body_of(event(), {"kind": "action", "ts": True}), 500)
    failure = decoded.events[1]
    assert isinstance(failure, SchemaFailure)
    assert failure.finding.reason in r.EVENT_REASONS
