"""Admission: the one step between a request body and the spool, shared by every way in.

``decode_body`` turns a request body into typed events (or classified schema failures) once,
at the edge, after the cheap limits: a body with more JSON objects than ``max_events`` events
can hold is refused before anything is allocated per element. ``admit`` then judges every
decoded event against the tracking plan, the privacy policy and the time rules, and returns
typed verdicts: events to store (accepted or trimmed), and rejections with a reason code and a
schema path, never a submitted value. It is pure: no I/O, no clock of its own (the caller
passes the ``Arrival``), so live ingest, offline ingest and the demo history get the same
answers for the same bytes.

A clean event costs no allocation of its own here: it is appended to ``Admission.stored`` as
decoded. Only trimmed and refused events get records.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Final

import msgspec

from stumble import reasons as r
from stumble.events import (
    EVENT_ID_SHAPE,
    Batch,
    Event,
    bare_batch_decoder,
    batch_decoder,
    decode_typed_batch,
    event_decoder,
    is_bare_array,
)
from stumble.plan.model import TrackingPlan
from stumble.privacy.detectors import detect
from stumble.privacy.guard import (
    KNOWN_NAMES,
    UNKNOWN_EVENT_NAME,
    Finding,
    Outcome,
    PlanRules,
    judge_event,
    safe_path,
)
from stumble.privacy.screen import screen_is_clean
from stumble.validation import envelope_shape_problem, explain_envelope, explain_event

MIN_PLAUSIBLE_MS: Final = 946_684_800_000
"""2000-01-01: anything earlier is a clock that was never set, or seconds sent as ms."""
SECONDS_NOT_MS_BELOW: Final = 100_000_000_000
SENT_AT_TOLERANCE_MS: Final = 1_000
WHOLE_BODY_SCREEN_BYTES: Final = 64 * 1024
"""Bodies up to this size are screened in one pass; larger ones event by event, so that no
single C call (a regex over a megabyte) holds the interpreter lock for long."""
OBJECTS_PER_EVENT: Final = 3
"""An event, its ``context`` and its ``params``: the most JSON objects one valid event holds."""
MAX_PII_SCAN_DEPTH: Final = 32

_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)
_encode: Final = msgspec.json.Encoder().encode


class BatchRefusedError(Exception):
    """The body is not a usable batch: answer ``status`` (400 or 413) with ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- time ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeRules:
    max_age_ms: int
    max_future_ms: int


@dataclass(frozen=True, slots=True)
class Arrival:
    """When the server received a batch and how far the client's clock is off.

    Clock skew: the client stamps each event (``ts``) and the batch (``sent_at``) with its own
    clock; ``received_at - sent_at`` is its offset (plus a little network time), and adding it
    to ``ts`` puts the event on server time. Retention uses ``received_at_ms``, which the
    client cannot influence.
    """

    received_at_ms: int
    sent_at: int | None
    skew_ms: int

    @classmethod
    def at(cls, received_at_ms: int, sent_at: int | None) -> Arrival:
        return cls(received_at_ms, sent_at, clock_skew_ms(sent_at, received_at_ms))


def clock_skew_ms(sent_at: int | None, received_at_ms: int) -> int:
    """The client's clock offset; zero when ``sent_at`` is missing or itself implausible."""
    if sent_at is None or sent_at < MIN_PLAUSIBLE_MS:
        return 0
    return received_at_ms - sent_at


def time_problem(ts: int, arrival: Arrival, rules: TimeRules) -> str | None:
    """A reason code when an event's time cannot be trusted, else None."""
    if ts < MIN_PLAUSIBLE_MS:
        if ts >= MIN_PLAUSIBLE_MS // 1000 and ts < SECONDS_NOT_MS_BELOW:
            return r.TIME_SECONDS_NOT_MS
        return r.TIME_IMPLAUSIBLE
    sent_at = arrival.sent_at
    if sent_at is not None and sent_at >= MIN_PLAUSIBLE_MS and ts > sent_at + SENT_AT_TOLERANCE_MS:
        return r.TIME_AFTER_SENT_AT
    corrected = ts + arrival.skew_ms
    if corrected < arrival.received_at_ms - rules.max_age_ms:
        return r.TIME_TOO_OLD
    if corrected > arrival.received_at_ms + rules.max_future_ms:
        return r.TIME_IN_FUTURE
    return None


# --- the rules admission applies ----------------------------------------------------------------


class AdmissionRules:
    """The tracking plan compiled for lookups, plus the time rules; built once per plan."""

    def __init__(self, plan: TrackingPlan, time_rules: TimeRules) -> None:
        self.plan = plan
        self.privacy = PlanRules(plan)
        self.time = time_rules


# --- decoding, once, with the cheap limits first ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaFailure:
    """An element of the batch that is not a valid event: why, where, and its id if safe."""

    event_id: str | None
    finding: Finding


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    sent_at: int | None
    events: list[Event | SchemaFailure]
    screened_clean: bool
    """True when the body screen proved no string of the body can hit a detector."""


class _AnyObject(msgspec.Struct):
    """Any JSON object, its content skipped: checks a batch's shape without building it."""


_shape_decoder: Final = msgspec.json.Decoder(list[_AnyObject])
_enveloped_shape_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])


def decode_body(body: bytes, max_events: int) -> DecodedBatch:
    """Decode a request body (``{"sent_at", "events"}`` or a bare array) into typed events.

    Raises ``BatchRefusedError``: 413 when it holds more than ``max_events`` events (checked
    before the per-element work), 400 when the envelope is unusable.
    """
    body = body.removeprefix(b"\xef\xbb\xbf")  # RFC 8259 lets parsers ignore a BOM
    _refuse_if_too_many_objects(body, max_events)
    try:
        typed = decode_typed_batch(body)
    except (*_DECODE_ERRORS, msgspec.ValidationError):
        return _decode_event_by_event(body, max_events)
    if len(typed.events) > max_events:
        raise BatchRefusedError(413, r.BATCH_TOO_MANY_EVENTS)
    events: list[Event | SchemaFailure] = list(typed.events)
    clean = len(body) <= WHOLE_BODY_SCREEN_BYTES and screen_is_clean(body)
    return DecodedBatch(typed.sent_at, events, clean)


def _refuse_if_too_many_objects(body: bytes, max_events: int) -> None:
    """Decoding costs time per element, so count first: ``bytes.count`` runs at memory speed.

    Every object outside strings is an event, a context or a parameter map (or garbage), so a
    body with more than ``OBJECTS_PER_EVENT`` per allowed event cannot be a valid batch.
    Braces inside strings are only ever discounted when the quick count is over the limit:
    split at quotes (no escapes, so every other piece is a string's content) and count again.
    """
    limit = OBJECTS_PER_EVENT * max_events + 1
    if body.count(b"{") <= limit:
        return
    if _objects_outside_strings(body) > limit:
        raise BatchRefusedError(413, r.BATCH_TOO_MANY_OBJECTS)


def _objects_outside_strings(body: bytes) -> int:
    if b"\\" in body:  # escaped quotes: the exact, slower way
        return _JSON_STRING.sub(b"", body).count(b"{")
    return b"".join(body.split(b'"')[0::2]).count(b"{")


_JSON_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"')


def _decode_event_by_event(body: bytes, max_events: int) -> DecodedBatch:
    """The path for a batch with at least one invalid event: decode each event on its own."""
    _refuse_if_not_all_objects(body)
    try:
        batch = _envelope(body)
    except msgspec.DecodeError as error:
        if isinstance(error, msgspec.ValidationError):
            raise BatchRefusedError(400, explain_envelope(body)) from error
        batch = _decode_leniently(body)
    except (RecursionError, UnicodeDecodeError) as error:
        raise BatchRefusedError(400, explain_envelope(body)) from error
    if len(batch.events) > max_events:
        raise BatchRefusedError(413, r.BATCH_TOO_MANY_EVENTS)
    return DecodedBatch(batch.sent_at, [_decode_one(raw) for raw in batch.events], False)


def _envelope(body: bytes) -> Batch:
    if is_bare_array(body):
        return Batch(events=bare_batch_decoder.decode(body))
    return batch_decoder.decode(body)


def _refuse_if_not_all_objects(body: bytes) -> None:
    """Elements that are not objects fail here at the first one, before any is decoded.

    The reasons are found from the shape decoders alone: re-reading a 1 MB body with the
    standard library to explain it would cost more than the attack it answers."""
    try:
        if is_bare_array(body):
            _decode_shape(body)
            return
        envelope = _enveloped_shape_decoder.decode(body)
    except msgspec.ValidationError as error:
        raise BatchRefusedError(400, r.BATCH_NOT_AN_OBJECT_OR_ARRAY) from error
    except _DECODE_ERRORS:
        return  # not JSON msgspec reads: the lenient path decides
    if "events" not in envelope:
        raise BatchRefusedError(400, r.BATCH_MISSING_EVENTS)
    if not envelope.keys() <= _ENVELOPE_KEYS:
        raise BatchRefusedError(400, r.BATCH_UNKNOWN_FIELD)
    if not is_bare_array(bytes(envelope["events"])):
        raise BatchRefusedError(400, r.BATCH_INVALID_ENVELOPE)
    _decode_shape(envelope["events"])


_ENVELOPE_KEYS: Final = frozenset({"events", "sent_at"})


def _decode_shape(events: bytes | msgspec.Raw) -> None:
    try:
        _shape_decoder.decode(events)
    except msgspec.ValidationError as error:
        raise BatchRefusedError(400, r.BATCH_EVENT_NOT_AN_OBJECT) from error


def _decode_leniently(body: bytes) -> Batch:
    """A second chance for JSON that msgspec refuses but the standard library reads.

    A lone surrogate escape (``"\\ud800"``) in one event makes msgspec refuse the whole body;
    the standard library reads it, so the other events of the batch can still be judged (the
    broken one is then refused on its own). NaN and Infinity stay refused: they are not JSON.
    """
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BatchRefusedError(400, explain_envelope(body)) from None
    problem = envelope_shape_problem(value)
    if problem is not None:
        raise BatchRefusedError(400, problem)
    events = value if isinstance(value, list) else value["events"]
    sent_at = value.get("sent_at") if isinstance(value, dict) else None
    raws = [msgspec.Raw(json.dumps(event).encode()) for event in events]
    return Batch(events=raws, sent_at=sent_at if isinstance(sent_at, int) else None)


def _refuse_constant(name: str) -> None:
    raise ValueError(name)


def _decode_one(raw: msgspec.Raw) -> Event | SchemaFailure:
    try:
        event: Event = event_decoder.decode(raw)
    except (*_DECODE_ERRORS, msgspec.ValidationError):
        return _schema_failure(bytes(raw))
    return event


_EVENT_ID_IN_JSON: Final = re.compile(rf'"event_id"\s*:\s*"({EVENT_ID_SHAPE})"'.encode())


def _schema_failure(raw: bytes) -> SchemaFailure:
    """Why one element is not a valid event; a detector hit anywhere in it takes precedence."""
    match = _EVENT_ID_IN_JSON.search(raw)
    event_id = match.group(1).decode() if match else None
    try:
        value = msgspec.json.decode(raw)
    except _DECODE_ERRORS:
        return SchemaFailure(event_id, Finding(r.SCHEMA_INVALID_STRING, "$"))
    problem = explain_event(value)
    finding = _first_pii_hit(value) or Finding(problem.reason, problem.path)
    return SchemaFailure(event_id, finding)


_EVENT_ID: Final = re.compile(EVENT_ID_SHAPE)


def _first_pii_hit(value: object) -> Finding | None:
    """For a refused event, whether it tried to carry personal data, and where."""
    for path, text in _strings_with_paths(value, "$", 0):
        detector = detect(text)
        if detector is not None:
            return Finding(r.pii_reason(detector), safe_path(path))
    return None


def _strings_with_paths(value: object, path: str, depth: int) -> list[tuple[str, str]]:
    if depth > MAX_PII_SCAN_DEPTH:
        return []
    if isinstance(value, str):
        return [(path, value)]
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "event_id" and isinstance(item, str) and _EVENT_ID.fullmatch(item):
                continue  # a well-formed UUID's hex digits are not a finding (see the screen)
            child = f"{path}.{key}" if key in KNOWN_NAMES else f"{path}.*"
            found.append((child + "#key", str(key)))
            found.extend(_strings_with_paths(item, child, depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value[:1000]):
            found.extend(_strings_with_paths(item, f"{path}[{index}]", depth + 1))
    return found


# --- admission ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event that is not stored: its position in the batch, its id if safe, and why."""

    index: int
    event_id: str | None
    event_name: str
    """Declared in the plan, or ``(unknown)``: safe to count and show."""
    finding: Finding


@dataclass(frozen=True, slots=True)
class Redaction:
    """An event stored with values removed: its position in ``Admission.stored`` and why."""

    position: int
    event_name: str
    findings: tuple[Finding, ...]


@dataclass(slots=True)
class Admission:
    """What to store and what to report for one batch."""

    count: int
    stored: list[Event] = field(default_factory=list)
    """Accepted and trimmed events, in batch order, ready to enrich."""
    redactions: list[Redaction] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def redaction_counts(self) -> dict[int, int]:
        """Position in ``stored`` → number of values removed, for the trimmed events only."""
        return {item.position: len(item.findings) for item in self.redactions}

    def verdicts(self) -> list[Verdict]:
        """One verdict per event of the batch, in order (for tools and tests, not the hot path).

        Stored events keep batch order, so the events not rejected map to ``stored`` in turn."""
        rejected = {item.index: item for item in self.rejections}
        trimmed = {item.position: item.findings for item in self.redactions}
        verdicts: list[Verdict] = []
        position = 0
        for index in range(self.count):
            if index in rejected:
                refusal = rejected[index]
                verdicts.append(Verdict(index, Outcome.REJECTED, None, (refusal.finding,)))
                continue
            findings = trimmed.get(position, ())
            outcome = Outcome.REDACTED if findings else Outcome.ACCEPTED
            verdicts.append(Verdict(index, outcome, self.stored[position], findings))
            position += 1
        return verdicts


@dataclass(frozen=True, slots=True)
class Verdict:
    """What admission decided for one event of a batch."""

    index: int
    outcome: Outcome
    event: Event | None
    """The event as stored (values removed), or None when rejected."""
    findings: tuple[Finding, ...]


def admit(batch: DecodedBatch, rules: AdmissionRules, arrival: Arrival) -> Admission:
    """Judge every event of a decoded batch; pure and total (never raises on any batch)."""
    admission = Admission(count=len(batch.events))
    stored, privacy, time_rules = admission.stored, rules.privacy, rules.time
    for index, item in enumerate(batch.events):
        if isinstance(item, SchemaFailure):
            admission.rejections.append(
                Rejection(index, item.event_id, UNKNOWN_EVENT_NAME, item.finding)
            )
            continue
        clean = batch.screened_clean or screen_is_clean(_encode(item))
        judgement = judge_event(item, privacy, screened_clean=clean)
        if judgement is not None and judgement.outcome is Outcome.REJECTED:
            finding = judgement.findings[0]
            admission.rejections.append(
                Rejection(index, item.event_id, judgement.event_name, finding)
            )
            continue
        problem = time_problem(item.ts, arrival, time_rules)
        if problem is not None:  # the judge passed, so the event's name is a declared one
            admission.rejections.append(
                Rejection(index, item.event_id, item.event_name, Finding(problem, "$.ts"))
            )
            continue
        if judgement is None:
            stored.append(item)
            continue
        if judgement.outcome is Outcome.REDACTED:
            admission.redactions.append(
                Redaction(len(stored), judgement.event_name, judgement.findings)
            )
        assert judgement.event is not None
        stored.append(judgement.event)
    return admission


def admit_events(
    events: list[Event], rules: AdmissionRules, arrival: Arrival, max_events: int
) -> Admission:
    """Admit events a program made (the simulator, the demo) exactly as if they came over HTTP:
    encoded into the same body a client would send, then decoded and admitted."""
    body = _encode({"sent_at": arrival.sent_at, "events": events})
    return admit(decode_body(body, max_events), rules, arrival)
