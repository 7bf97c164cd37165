"""The privacy guard: golden corpus through real events, and the properties a sceptic asks for.

- the guard never raises, whatever JSON-like input it gets;
- an accepted event never holds a string any detector matches (event and session ids of
  their declared shapes excepted: storage replaces both with keyed hashes, which
  tests/test_admission.py checks on the spool lines);
- guarding twice equals guarding once;
- the batch fast path (one screen over the whole body) agrees with judging field by field.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.privacy.corpus import HOSTILE, LEGIT

from stumble.admission import (
    AdmissionRules,
    Arrival,
    BatchRefusedError,
    SchemaFailure,
    TimeRules,
    Verdict,
    admit,
    decode_body,
)
from stumble.events import REKEYED_FIELDS, BaseEvent, Event, decode_event
from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.privacy.detectors import detect
from stumble.privacy.guard import UNKNOWN_EVENT_NAME, GuardResult, Outcome, guard
from stumble.privacy.screen import screen_is_clean

PLAN: TrackingPlan = load_plan(default_plan_path())
# Time is admission's other concern, tested in tests/test_admission.py: here any time passes.
RULES = AdmissionRules(PLAN, TimeRules(max_age_ms=10**14, max_future_ms=10**14))
ARRIVAL = Arrival.at(1_763_812_800_000, None)


class BatchError(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def guard_raw(raw: bytes) -> GuardResult:
    """One event's JSON through the edge's decoding, then every check of the guard."""
    try:
        item = decode_body(b"[" + raw + b"]", 500).events[0]
    except (BatchRefusedError, IndexError):  # not one event: the whole body is refused
        return GuardResult(Outcome.REJECTED, None, (), UNKNOWN_EVENT_NAME, None)
    if isinstance(item, SchemaFailure):
        return GuardResult(
            Outcome.REJECTED, None, (item.finding,), UNKNOWN_EVENT_NAME, item.event_id
        )
    return guard(item, PLAN)


def guard_batch(body: bytes) -> list[Verdict]:
    """A whole body through decoding and admission, as the collector runs it."""
    try:
        decoded = decode_body(body, 500)
    except BatchRefusedError as refusal:
        raise BatchError(refusal.reason) from refusal
    return admit(decoded, RULES, ARRIVAL).verdicts()


def action(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "action",
        "event_id": str(uuid.uuid4()),
        "event_name": "request_back_clicked",
        "ts": 1_763_812_800_000,
        "session_id": "s_qwertyuiopasdfghjklz",
        "screen_id": "request_create",
        "schema_version": 3,
        "ui_version": "1.4.2",
        "action_id": "request_back_clicked",
    }
    base.update(fields)
    return base


def judge(obj: dict[str, Any]) -> GuardResult:
    return guard_raw(json.dumps(obj).encode())


def strings_of(event: Event) -> list[tuple[str, str]]:
    """Every string an accepted event carries, with its field name (event_id left out)."""
    found: list[tuple[str, str]] = []

    def walk(value: object, name: str) -> None:
        if isinstance(value, str):
            found.append((name, value))
        elif isinstance(value, list):
            for item in value:
                walk(item, name)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key, name)
                walk(item, name)
        elif isinstance(value, msgspec.Struct):
            for field in value.__struct_fields__:
                walk(getattr(value, field), field)

    for field in event.__struct_fields__:
        if field != "event_id":
            walk(getattr(event, field), field)
    return found


# --- the golden corpus, through real events --------------------------------------------------


def test_hostile_corpus_never_survives_in_an_optional_field() -> None:
    missed = []
    for detector, text in HOSTILE:
        result = judge(action(target=text))
        assert result.outcome is not Outcome.ACCEPTED or result.findings, (
            detector,
            "accepted clean",
        )
        if result.event is not None and result.event.target is not None:  # type: ignore[union-attr]
            missed.append(detector)
    rate = len(missed) / len(HOSTILE)
    print(f"\nguard miss rate on the hostile corpus: {rate:.1%} ({len(missed)}/{len(HOSTILE)})")
    assert missed == []


def test_hostile_corpus_in_a_required_field_rejects_the_event() -> None:
    for _, text in HOSTILE:
        assert judge(action(action_id=text)).outcome is Outcome.REJECTED


def test_legitimate_identifiers_pass_untouched() -> None:
    false_positives = []
    for text in LEGIT:
        if len(text) > 64 or text.startswith("/"):
            continue
        result = judge(action(target=text, position=text))
        if result.outcome is not Outcome.ACCEPTED:
            false_positives.append(result.findings)
    checked = sum(1 for t in LEGIT if len(t) <= 64 and not t.startswith("/"))
    print(
        f"\nguard false-positive rate on the legitimate corpus: {len(false_positives) / checked:.1%}"
    )
    assert false_positives == []


@pytest.mark.parametrize(
    ("fields", "reason", "path"),
    [
        ({"target": "921029350851"}, "pii.kz_iin", "$.target"),
        ({"target": "Айгерим"}, "schema.not_identifier", "$.target"),
        ({"position": "a b"}, "schema.not_identifier", "$.position"),
        ({"feature_flags": ["ok_flag", "+77012345678"]}, "pii.phone", "$.feature_flags[]"),
        ({"context": {"role": "superuser"}}, "plan.context_not_allowed", "$.context.role"),
        ({"context": {"region": "john@mail.kz"}}, "pii.email", "$.context.region"),
    ],
)
def test_optional_findings_drop_the_field_and_name_it(
    fields: dict[str, Any], reason: str, path: str
) -> None:
    result = judge(action(**fields))
    assert result.outcome is Outcome.REDACTED
    assert [(f.reason, f.field_path) for f in result.findings] == [(reason, path)]
    assert result.event is not None
    assert all(detect(text) is None for _, text in strings_of(result.event))


@pytest.mark.parametrize(
    ("obj", "reason", "path"),
    [
        (action(event_name="no_such_event"), "plan.unknown_event", "$.event_name"),
        (action(event_name="navigation"), "plan.kind_mismatch", "$.kind"),
        (action(environment="prod"), "schema.unknown_field", "$.*"),
        (action(ts="12"), "schema.type", "$.ts"),
        (action(ts=-1), "schema.out_of_range", "$.ts"),
        (action(action_id="ivan@mail.kz"), "pii.email", "$.action_id"),
        (action(**{"ivan.petrov@mail.kz": 1}), "pii.email", "$.*"),
        (action(session_id="Bearer abc.def.ghi"), "pii.bearer", "$.session_id"),
        ({"kind": "action"}, "schema.missing_field", "$.action_id"),
        ({"kind": "teleport"}, "schema.unknown_kind", "$.kind"),
    ],
)
def test_rejections_carry_a_code_and_a_safe_path(
    obj: dict[str, Any], reason: str, path: str
) -> None:
    result = judge(obj)
    assert result.outcome is Outcome.REJECTED
    assert (result.findings[0].reason, result.findings[0].field_path) == (reason, path)
    assert "ivan" not in repr(result) and "abc.def" not in repr(result)


def test_routes_keep_only_their_template() -> None:
    result = judge(
        {
            **action(),
            "kind": "screen_view",
            "event_name": "screen_view",
            "route": "https://app.example.kz/requests/12345/edit?iin=921029350851#top",
        }
        | {"action_id": None}
    )
    # action_id is not a screen_view field: the closed schema refuses it
    assert result.outcome is Outcome.REJECTED
    obj = action(
        kind="screen_view", event_name="screen_view", route="/requests/12345/edit?iin=921029350851"
    )
    del obj["action_id"]
    result = judge(obj)
    assert result.event is not None
    # /requests/:id/edit is not declared by the plan: cut to the declared /requests/:id
    assert result.event.route == "/requests/:id"  # type: ignore[union-attr]
    reasons = [(f.reason, f.field_path) for f in result.findings]
    assert ("pii.kz_iin", "$.route") in reasons
    assert ("plan.route_not_declared", "$.route") in reasons


@pytest.mark.parametrize(
    ("route", "stored", "declared"),
    [
        ("/requests/ivan-petrov", "/requests/:id", True),  # a placeholder takes any segment
        ("/approvals/Aidos_Nurlanov?x=1", "/approvals/:id", True),
        ("/requests/new", "/requests/new", True),  # literal beats placeholder
        ("/users/ivan-petrov/edit", None, False),  # nothing declared under /users
        ("/search/ivan-petrov", "/search", False),  # the longest declared prefix
    ],
)
def test_routes_are_kept_only_as_declared_templates(
    route: str, stored: str | None, declared: bool
) -> None:
    obj = action(kind="screen_view", event_name="screen_view", route=route)
    del obj["action_id"]
    result = judge(obj)
    assert result.event is not None
    assert result.event.route == stored  # type: ignore[union-attr]
    undeclared = ("plan.route_not_declared", "$.route") in [
        (f.reason, f.field_path) for f in result.findings
    ]
    assert undeclared is not declared


def test_custom_event_parameters_are_checked_against_the_plan() -> None:
    def custom(params: dict[str, Any]) -> GuardResult:
        obj = action(kind="custom", event_name="report_exported", params=params)
        del obj["action_id"]
        return judge(obj)

    assert custom({"report_format": "pdf", "rows": 10}).outcome is Outcome.ACCEPTED
    assert custom({"rows": 10}).findings[0].reason == "plan.missing_param"
    dropped = custom({"report_format": "pdf", "rows": -3, "comment": "free"})
    assert sorted(f.reason for f in dropped.findings) == [
        "plan.param_invalid",
        "plan.unknown_param",
    ]
    assert dropped.event.params == {"report_format": "pdf"}  # type: ignore[union-attr]


# --- batches ---------------------------------------------------------------------------------


def test_batch_keeps_good_events_next_to_bad_ones() -> None:
    body = json.dumps(
        {"sent_at": 1, "events": [action(), {"kind": "x"}, action(target="ivan@x.kz")]}
    )
    results = guard_batch(body.encode())
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.REJECTED, Outcome.REDACTED]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "batch.truncated_json"),
        (b"null", "batch.not_an_object_or_array"),
        (b'{"events": 1}', "batch.invalid_envelope"),
        (b"[1, 2]", "batch.event_not_an_object"),
        (b'{"sent_at": 1}', "batch.missing_events"),
        (b"[" * 100_000, "batch.event_not_an_object"),
        (b'{"events": [{"kind": ' + b"[" * 100_000, "batch.too_deep"),
        (b'{"events":[]}\xff', "batch.invalid_utf8"),
        (b'{"events":[]} x', "batch.malformed_json"),
    ],
)
def test_unusable_envelopes(body: bytes, reason: str) -> None:
    with pytest.raises(BatchError) as error:
        guard_batch(body)
    assert error.value.reason == reason


# --- properties ------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_like = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=25,
)
hostile_text = (
    st.sampled_from([t for _, t in HOSTILE]) | st.sampled_from(LEGIT) | st.text(max_size=30)
)
FIELDS = ["target", "position", "action_id", "screen_id", "ui_version", "session_id", "experiment"]


@st.composite
def near_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """Valid actions with some fields replaced by hostile or random text, or random JSON."""
    obj = action()
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        obj[field] = draw(hostile_text)
    if draw(st.booleans()):
        obj["context"] = {
            "role": draw(hostile_text),
            "region": draw(st.sampled_from(["almaty", "x y"])),
        }
    if draw(st.booleans()):
        obj["feature_flags"] = draw(st.lists(hostile_text, max_size=3))
    if draw(st.integers(0, 9)) == 0:
        obj[draw(st.text(max_size=10))] = draw(json_like)
    return obj


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_never_raises_on_any_json(obj: object) -> None:
    body = msgspec.json.encode(obj)
    result = guard_raw(body)
    assert isinstance(result, GuardResult)
    reason = "accepted"
    try:
        guard_batch(body)
    except BatchError as error:
        reason = error.reason
    assert reason == "accepted" or reason.startswith("batch.")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_never_raises_on_any_bytes(body: bytes) -> None:
    guard_raw(body)
    with contextlib.suppress(BatchError):  # a refusal is an answer; any other exception fails
        guard_batch(body)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_events())
def test_accepted_output_never_matches_a_detector_and_is_a_fixed_point(obj: dict[str, Any]) -> None:
    result = judge(obj)
    if result.event is None:
        return
    for field, text in strings_of(result.event):
        rekeyed = field in REKEYED_FIELDS and REKEYED_FIELDS[field].fullmatch(text)
        assert detect(text) is None or field == "ui_version" or rekeyed, (field, detect(text))
    again = guard(result.event, PLAN)
    assert again.event == result.event
    assert again.outcome is Outcome.ACCEPTED and again.findings == ()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(near_valid_events(), min_size=1, max_size=6))
def test_fast_screen_agrees_with_judging_each_event(objs: list[dict[str, Any]]) -> None:
    body = json.dumps({"sent_at": 1, "events": objs}, separators=(",", ":")).encode()
    batch = guard_batch(body)
    one_by_one = [judge(obj) for obj in objs]
    assert [(r.outcome, r.event, r.findings) for r in batch] == [
        (r.outcome, r.event, r.findings) for r in one_by_one
    ]


def test_screen_flags_every_hostile_string_and_passes_legit_ones() -> None:
    def body(text: str) -> bytes:
        return json.dumps({"events": [action(target=text)]}, separators=(",", ":")).encode()

    assert all(not screen_is_clean(body(text)) for _, text in HOSTILE)
    clean = [t for t in LEGIT if screen_is_clean(body(t))]
    print(f"\nscreen passes {len(clean)}/{len(LEGIT)} legitimate identifiers without the slow path")


def test_decoded_events_are_the_wire_classes() -> None:
    result = judge(action())
    assert isinstance(result.event, BaseEvent)
    assert decode_event(msgspec.json.encode(result.event)) == result.event


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["requests", "edit", ":id", "api", "deadbeefcafe", "x"])
        | st.integers(0, 10**9).map(str)
        | st.text(alphabet="abc019_-:.", min_size=0, max_size=8),
        max_size=6,
    ).map(lambda parts: "/" + "/".join(parts))
)
def test_quick_route_templating_agrees_with_the_url_parser(route: str) -> None:
    from stumble.privacy.guard import _template, _template_fully

    assert _template(route) == _template_fully(route)
