"""The privacy guard: an event is accepted, accepted with redactions, or rejected, with reasons.

Order of checks, cheapest and most decisive first:

1. **Closed schema** (msgspec, in ``stumble.events``): unknown keys, wrong types, numbers out
   of bounds and over-long strings never get this far.
2. **Tracking plan**: the event name must be declared with this kind; fields the plan closes
   (``values``), context enums and custom parameters are checked against it.
3. **Identifier alphabet and detectors**: every string must be an identifier, and none may
   look like personal data or a secret after normalisation. Routes keep their path template.

What a finding does is ``policy.py``'s decision. Findings carry a reason code and a field path
made only of names the schema knows: never the offending text, which is exactly what may be
personal data.

For throughput, ``guard_batch`` first screens every string of the whole request body in one
regular-expression pass. When nothing in the body could be an identifier violation or a
detector hit, step 3 is skipped for the batch: the screen over-approximates every detector on
identifier-alphabet text, and a property test checks both paths agree.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from stumble.events import (
    IDENTIFIER_MAX_LENGTH,
    KIND_TO_CLASS,
    ROUTE_MAX_LENGTH,
    STORED_FIELDS,
    BaseEvent,
    Batch,
    Context,
    CustomEvent,
    Event,
    decode_batch,
    decode_event,
    decode_typed_batch,
)
from stumble.plan.model import ParamSpec, TrackingPlan
from stumble.privacy.detectors import Detector, detect
from stumble.privacy.policy import (
    DETECTOR_EXEMPTIONS,
    NOT_IDENTIFIER_ACTION,
    NOT_IN_PLAN_ACTION,
    Action,
    action_for,
)
from stumble.privacy.screen import screen_is_clean
from stumble.privacy.urls import template_route

IDENTIFIER_RE: Final = re.compile(rf"[A-Za-z0-9_.:/-]{{1,{IDENTIFIER_MAX_LENGTH}}}")
ROUTE_RE: Final = re.compile(rf"/[A-Za-z0-9_.:/-]{{0,{ROUTE_MAX_LENGTH - 1}}}")
UNKNOWN_EVENT_NAME: Final = "(unknown)"
MAX_SCAN_DEPTH: Final = 32


# msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 inside strings.
_DECODE_ERRORS: Final = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    RecursionError,
    UnicodeDecodeError,
)
_KNOWN_NAMES: Final[frozenset[str]] = frozenset(STORED_FIELDS) | {"context", "events", "sent_at"}


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REDACTED = "redacted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a value was dropped or an event refused: a reason code and a schema path."""

    reason: str
    field_path: str


@dataclass(frozen=True, slots=True)
class GuardResult:
    outcome: Outcome
    event: Event | None
    findings: tuple[Finding, ...] = ()
    event_name: str = UNKNOWN_EVENT_NAME
    """A name that is safe to record: declared in the plan, or ``(unknown)``."""
    event_id: str | None = None
    """The client's event id when it was a valid UUID (safe to echo back), else None."""

    @property
    def redactions(self) -> int:
        return len(self.findings) if self.outcome is Outcome.REDACTED else 0


class BatchError(Exception):
    """The envelope itself is unusable; ``reason`` is a code for a 400 answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BatchResult:
    sent_at: int | None
    results: list[GuardResult]


class _Reject(Exception):  # noqa: N818 - internal control flow, never escapes this module
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


# --- field layout of each kind, derived from the msgspec types ------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    identifiers: tuple[tuple[str, bool], ...]  # (field, droppable)
    routes: tuple[str, ...]

    @property
    def droppable(self) -> dict[str, bool]:
        return dict(self.identifiers)


def _layout(cls: type[BaseEvent]) -> _Layout:
    identifiers: list[tuple[str, bool]] = []
    routes: list[str] = []
    for field in msgspec.inspect.type_info(cls).fields:  # type: ignore[attr-defined]
        string_type = _string_type(field.type)
        if string_type is None or string_type.pattern is not None:
            continue  # not a string, or fully constrained by a pattern (event_id, tz)
        if string_type.max_length == IDENTIFIER_MAX_LENGTH:
            identifiers.append((field.name, not field.required))
        else:
            routes.append(field.name)
    return _Layout(tuple(identifiers), tuple(routes))


def _string_type(info: Any) -> Any:
    if isinstance(info, msgspec.inspect.UnionType):
        info = next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
    return info if isinstance(info, msgspec.inspect.StrType) else None


_LAYOUTS: Final[dict[str, _Layout]] = {kind: _layout(cls) for kind, cls in KIND_TO_CLASS.items()}
_CONTEXT_FIELDS: Final = Context.__struct_fields__


# --- the plan, compiled for lookups -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EventRules:
    kind: str
    event_class: type[BaseEvent] | None
    closed_fields: tuple[tuple[str, frozenset[str]], ...]
    params: dict[str, ParamSpec]
    required_params: frozenset[str]


class _PlanRules:
    def __init__(self, plan: TrackingPlan) -> None:
        self.plan = plan
        self.events = {
            name: _EventRules(
                kind=spec.kind,
                event_class=KIND_TO_CLASS.get(spec.kind),
                closed_fields=tuple((f, frozenset(v)) for f, v in spec.values.items()),
                params=dict(spec.params),
                required_params=frozenset(p for p, s in spec.params.items() if s.required),
            )
            for name, spec in plan.events.items()
        }
        self.context = {dim: frozenset(values) for dim, values in plan.context.items()}


_RULES_CACHE: dict[int, _PlanRules] = {}


def _rules(plan: TrackingPlan) -> _PlanRules:
    rules = _RULES_CACHE.get(id(plan))
    if rules is None or rules.plan is not plan:
        rules = _PlanRules(plan)
        _RULES_CACHE.clear()  # one live plan at a time; a reload replaces it
        _RULES_CACHE[id(plan)] = rules
    return rules


# --- public entry points ---------------------------------------------------------------------


def guard(event: Event, plan: TrackingPlan) -> GuardResult:
    """Judge one decoded event with every check."""
    return _judge(event, _rules(plan), screened_clean=False)


def guard_raw(raw: bytes | msgspec.Raw, plan: TrackingPlan) -> GuardResult:
    """Decode one event's JSON and judge it; never raises on any input."""
    try:
        event = decode_event(raw)
    except _DECODE_ERRORS as error:
        return _schema_rejection(bytes(raw), error)
    return guard(event, plan)


def guard_batch(body: bytes, plan: TrackingPlan) -> BatchResult:
    """Judge every event of a request body; raises ``BatchError`` if the envelope is unusable."""
    rules = _rules(plan)
    body = body.removeprefix(b"\xef\xbb\xbf")  # RFC 8259 lets parsers ignore a BOM
    try:
        typed = decode_typed_batch(body)
    except _DECODE_ERRORS:
        return _guard_batch_event_by_event(body, plan)
    if screen_is_clean(body):
        results = [_judge(event, rules, screened_clean=True) for event in typed.events]
    else:
        # One flagged string should not send every event of the batch down the slow path:
        # screen each event on its own (re-encoding is far cheaper than the detectors).
        results = [
            _judge(event, rules, screened_clean=screen_is_clean(_encode(event)))
            for event in typed.events
        ]
    return BatchResult(typed.sent_at, results)


def _guard_batch_event_by_event(body: bytes, plan: TrackingPlan) -> BatchResult:
    try:
        batch = decode_batch(body)
    except msgspec.DecodeError as error:
        if isinstance(error, msgspec.ValidationError):
            raise BatchError(_envelope_reason(error)) from error
        batch = _decode_leniently(body, error)
    except RecursionError as error:
        raise BatchError("batch.too_deep") from error
    except UnicodeDecodeError as error:
        raise BatchError("batch.invalid_utf8") from error
    return BatchResult(batch.sent_at, [guard_raw(raw, plan) for raw in batch.events])


def _decode_leniently(body: bytes, error: msgspec.DecodeError) -> Batch:
    """A second chance for JSON that msgspec refuses but the standard library reads.

    A lone surrogate escape (``"\\ud800"``) in one event makes msgspec refuse the whole body;
    the standard library reads it, so the other events of the batch can still be judged (the
    broken one is then refused on its own). NaN and Infinity stay refused: they are not JSON.
    """
    try:
        obj = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise BatchError(_decode_error_reason(error)) from error
    events = obj if isinstance(obj, list) else obj.get("events") if isinstance(obj, dict) else None
    if not isinstance(events, list):
        raise BatchError(_decode_error_reason(error)) from error
    sent_at = obj.get("sent_at") if isinstance(obj, dict) else None
    raws = [msgspec.Raw(json.dumps(event).encode()) for event in events]
    return Batch(events=raws, sent_at=sent_at if isinstance(sent_at, int) else None)


def _refuse_constant(name: str) -> None:
    raise ValueError(name)


def _decode_error_reason(error: msgspec.DecodeError) -> str:
    text = str(error)
    if "truncated" in text:
        return "batch.truncated_json"
    if "UTF-8" in text or "utf-8" in text:
        return "batch.invalid_utf8"
    return "batch.malformed_json"


def _envelope_reason(error: msgspec.ValidationError) -> str:
    text = str(error)
    if "missing required field" in text:
        return "batch.missing_events"
    if "unknown field" in text:
        return "batch.unknown_field"
    if "Expected `object`" in text or "Expected `array`" in text:
        return "batch.not_an_object_or_array"
    return "batch.invalid_envelope"


# --- judging one event ----------------------------------------------------------------------


def _judge(event: Event, rules: _PlanRules, *, screened_clean: bool) -> GuardResult:
    event_rules = rules.events.get(event.event_name)
    if event_rules is None:
        reason = "plan.unknown_event"
        if not screened_clean:
            reason = _string_reason(event.event_name, "event_name") or reason
        return _rejected(event, Finding(reason, "$.event_name"), UNKNOWN_EVENT_NAME)
    name = event.event_name
    if event_rules.event_class is not type(event):
        return _rejected(event, Finding("plan.kind_mismatch", "$.kind"), name)
    findings: list[Finding] = []
    changes: dict[str, Any] = {}
    try:
        if not screened_clean:
            _check_strings(event, findings, changes)
        _template_routes(event, findings, changes)
        _check_closed_fields(event, event_rules, findings, changes)
        context = _check_context(event.context, rules, findings, screened_clean=screened_clean)
        if context is not event.context:
            changes["context"] = context
        if isinstance(event, CustomEvent):
            params = _check_params(event, event_rules, findings, screened_clean=screened_clean)
            if params is not event.params:
                changes["params"] = params
    except _Reject as rejection:
        return _rejected(event, rejection.finding, name)
    if not findings and not changes:
        return GuardResult(Outcome.ACCEPTED, event, (), name, event.event_id)
    cleaned = msgspec.structs.replace(event, **changes) if changes else event
    outcome = Outcome.REDACTED if findings else Outcome.ACCEPTED
    return GuardResult(outcome, cleaned, tuple(findings), name, event.event_id)


def _rejected(event: Event, finding: Finding, name: str) -> GuardResult:
    return GuardResult(Outcome.REJECTED, None, (finding,), name, event.event_id)


def _drop_or_reject(
    finding: Finding, action: Action, findings: list[Finding], *, droppable: bool
) -> None:
    if action is Action.REJECT or not droppable:
        raise _Reject(finding)
    findings.append(finding)


def _string_reason(value: str, field: str) -> str | None:
    """The reason code for an unacceptable string, or None when it is a clean identifier."""
    detector = _detect(value, field)
    if detector is not None:
        return f"pii.{detector.value}"
    if IDENTIFIER_RE.fullmatch(value) is None:
        return "schema.not_identifier"
    return None


def _detect(value: str, field: str) -> Detector | None:
    detector = detect(value)
    if detector is not None and detector in DETECTOR_EXEMPTIONS.get(field, ()):
        return None
    return detector


def _judge_string(value: str, field: str) -> tuple[str, Action] | None:
    detector = _detect(value, field)
    if detector is not None:
        return f"pii.{detector.value}", action_for(detector, droppable=True)
    if IDENTIFIER_RE.fullmatch(value) is None:
        return "schema.not_identifier", NOT_IDENTIFIER_ACTION
    return None


def _check_strings(event: Event, findings: list[Finding], changes: dict[str, Any]) -> None:
    for field, droppable in _LAYOUTS[event.kind].identifiers:
        value = getattr(event, field)
        if value is None:
            continue
        verdict = _judge_string(value, field)
        if verdict is not None:
            _drop_or_reject(
                Finding(verdict[0], f"$.{field}"), verdict[1], findings, droppable=droppable
            )
            changes[field] = None
    flags = [f for f in event.feature_flags if _flag_ok(f, findings)]
    if len(flags) != len(event.feature_flags):
        changes["feature_flags"] = flags


def _flag_ok(flag: str, findings: list[Finding]) -> bool:
    verdict = _judge_string(flag, "feature_flags")
    if verdict is None:
        return True
    _drop_or_reject(Finding(verdict[0], "$.feature_flags[]"), verdict[1], findings, droppable=True)
    return False


def _template_routes(event: Event, findings: list[Finding], changes: dict[str, Any]) -> None:
    for field in _LAYOUTS[event.kind].routes:
        raw = getattr(event, field)
        if raw is None:
            continue
        template, detectors = _template(raw)
        for detector in detectors:
            _drop_or_reject(
                Finding(f"pii.{detector.value}", f"$.{field}"),
                action_for(detector, droppable=True),
                findings,
                droppable=True,
            )
        if template is None:
            findings.append(Finding("schema.not_a_route", f"$.{field}"))
        if template != raw:
            changes[field] = template


def _template(raw: str) -> tuple[str | None, tuple[Detector, ...]]:
    """Most routes are plain paths whose only variable parts are numeric ids: replace those
    cheaply and keep the full URL parser for everything else."""
    if len(raw) <= ROUTE_MAX_LENGTH and _PLAIN_PATH.fullmatch(raw):
        quick = _NUMERIC_SEGMENT.sub(":id", raw)
        if not any(char.isdigit() for char in quick) and not _HEX_WORD.search(quick):
            return quick, ()
    return _template_fully(raw)


# Non-empty segments of word characters, no trailing slash: what ``template_route`` returns
# unchanged once numeric segments are ``:id``. Anything else takes the full parser.
_PLAIN_PATH: Final = re.compile(r"(?:/:?[A-Za-z0-9_-]{1,63})+")  # ":" only opens a segment
_NUMERIC_SEGMENT: Final = re.compile(r"(?<=/)[0-9]{1,8}(?=/|$)")  # 9+ digits: detectors decide
_HEX_WORD: Final = re.compile(r"[0-9A-Fa-f]{12}")
_encode: Final = msgspec.json.Encoder().encode


@functools.lru_cache(maxsize=4096)
def _template_fully(raw: str) -> tuple[str | None, tuple[Detector, ...]]:
    """Routes repeat endlessly in real traffic; templating each distinct one once is enough."""
    result = template_route(raw)
    template = result.template
    if template is not None and ROUTE_RE.fullmatch(template) is None:
        template = None
    return template, tuple(result.detectors)


def _check_closed_fields(
    event: Event, rules: _EventRules, findings: list[Finding], changes: dict[str, Any]
) -> None:
    for field, allowed in rules.closed_fields:
        value = changes.get(field, getattr(event, field, None))
        if value is None or value in allowed:
            continue
        droppable = _LAYOUTS[event.kind].droppable.get(field, False)
        _drop_or_reject(
            Finding("plan.value_not_allowed", f"$.{field}"),
            NOT_IN_PLAN_ACTION,
            findings,
            droppable=droppable,
        )
        changes[field] = None


def _check_context(
    context: Context, rules: _PlanRules, findings: list[Finding], *, screened_clean: bool
) -> Context:
    dropped: dict[str, None] = {}
    for field, value in zip(_CONTEXT_FIELDS, msgspec.structs.astuple(context), strict=True):
        if value is None:
            continue
        reason = None if screened_clean else _string_reason(value, field)
        allowed = rules.context.get(field)
        if reason is None and allowed is not None and value not in allowed:
            reason = "plan.context_not_allowed"
        if reason is not None:
            findings.append(Finding(reason, f"$.context.{field}"))
            dropped[field] = None
    return msgspec.structs.replace(context, **dropped) if dropped else context


def _check_params(
    event: CustomEvent, rules: _EventRules, findings: list[Finding], *, screened_clean: bool
) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in event.params.items():
        spec = rules.params.get(name)
        path = f"$.params.{name}" if spec is not None else "$.params.*"
        reason = _param_reason(name, value, spec, screened_clean=screened_clean)
        if reason is None:
            kept[name] = value
        else:
            findings.append(Finding(reason, path))
    missing = rules.required_params - kept.keys()
    if missing:
        raise _Reject(Finding("plan.missing_param", f"$.params.{sorted(missing)[0]}"))
    return event.params if len(kept) == len(event.params) else kept


def _param_reason(
    name: str, value: Any, spec: ParamSpec | None, *, screened_clean: bool
) -> str | None:
    if spec is None:
        return "plan.unknown_param"
    if isinstance(value, str) and not screened_clean:
        reason = _string_reason(value, name)
        if reason is not None:
            return reason
    return None if _param_value_ok(value, spec) else "plan.param_invalid"


_NUMERIC_PARAM_TYPES: Final = frozenset({"int", "number", "duration_ms", "count", "bytes"})
_INTEGER_PARAM_TYPES: Final = frozenset({"int", "count", "bytes"})
_UNIT_PARAM_TYPES: Final = frozenset({"duration_ms", "count", "bytes"})


def _param_value_ok(value: Any, spec: ParamSpec) -> bool:
    if spec.type == "bool":
        return isinstance(value, bool)
    if spec.type == "enum":
        return isinstance(value, str) and value in spec.values
    if spec.type == "identifier":
        return isinstance(value, str)
    if spec.type not in _NUMERIC_PARAM_TYPES or isinstance(value, bool | str):
        return False
    if spec.type in _INTEGER_PARAM_TYPES and not float(value).is_integer():
        return False
    low = spec.min
    if low is None and spec.type in _UNIT_PARAM_TYPES:
        low = 0.0  # durations, counts and sizes are never negative
    return (low is None or value >= low) and (spec.max is None or value <= spec.max)


# --- rejections from the schema, classified without keeping the text --------------------------


def _schema_rejection(raw: bytes, error: Exception) -> GuardResult:
    event_id, name = _safe_identity(raw)
    reason, path = _schema_reason(error)
    pii = _first_pii_hit(raw)
    if pii is not None:
        reason, path = pii
    return GuardResult(Outcome.REJECTED, None, (Finding(reason, path),), name, event_id)


def _safe_identity(raw: bytes) -> tuple[str | None, str]:
    """The event id, if it is a valid UUID; the name is never echoed for a rejected event.

    Read with a pattern rather than a decoder, so that an event that does not decode at all
    (a number out of range, a broken string) still gets its id back in the answer.
    """
    match = _EVENT_ID_IN_JSON.search(raw)
    return (match.group(1).decode() if match else None), UNKNOWN_EVENT_NAME


_UUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_EVENT_ID_IN_JSON: Final = re.compile(
    rb'"event_id"\s*:\s*"([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"'
)
_PATH_RE: Final = re.compile(r" - at `(\$[^`]*)`")
_SCHEMA_REASONS: Final[tuple[tuple[str, str], ...]] = (
    ("unknown field", "schema.unknown_field"),
    ("missing required field", "schema.missing_field"),
    ("Invalid enum value", "schema.not_allowed"),
    ("Invalid value", "schema.unknown_kind"),
    ("of length", "schema.length"),
    ("length <=", "schema.length"),
    ("out of range", "schema.out_of_range"),
    (">=", "schema.out_of_range"),
    ("<=", "schema.out_of_range"),
    ("matching regex", "schema.pattern"),
    ("Expected `", "schema.type"),
    ("truncated", "schema.malformed_json"),
    ("utf-8", "schema.invalid_utf8"),
    ("maximum recursion", "schema.too_deep"),
)


def _schema_reason(error: Exception) -> tuple[str, str]:
    text = str(error)
    reason = next((code for needle, code in _SCHEMA_REASONS if needle in text), "schema.invalid")
    match = _PATH_RE.search(text)
    path = _safe_path(match.group(1)) if match else "$"
    if reason == "schema.missing_field":
        missing = re.search(r"field `([a-z_]+)`", text)
        if missing and missing.group(1) in _KNOWN_NAMES:
            path = f"{path}.{missing.group(1)}"
    return reason, path


def _safe_path(path: str) -> str:
    """Keep only schema-known names and list indexes; anything client-made becomes ``*``."""
    parts = re.split(r"(\.[^.\[]*|\[[^\]]*\])", path.removeprefix("$"))
    safe = ["$"]
    for part in filter(None, parts):
        known = part.startswith(".") and part[1:] in _KNOWN_NAMES
        if known or re.fullmatch(r"\[\d+\]", part):
            safe.append(part)
        else:
            safe.append(".*")
    return "".join(safe)


def _first_pii_hit(raw: bytes) -> tuple[str, str] | None:
    """For a refused event, whether it tried to carry personal data, and where."""
    try:
        obj = msgspec.json.decode(raw)
    except _DECODE_ERRORS:
        return None
    for path, text in _strings_with_paths(obj, "$", 0):
        detector = detect(text)
        if detector is not None:
            return f"pii.{detector.value}", _safe_path(path)
    return None


def _strings_with_paths(obj: object, path: str, depth: int) -> Iterator[tuple[str, str]]:
    if depth > MAX_SCAN_DEPTH:
        return
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if key == "event_id" and isinstance(value, str) and _UUID_RE.fullmatch(value):
                continue  # a well-formed UUID's hex digits are not a finding (see the screen)
            child = f"{path}.{key}" if key in _KNOWN_NAMES else f"{path}.*"
            yield child + "#key", str(key)
            yield from _strings_with_paths(value, child, depth + 1)
    elif isinstance(obj, list):
        for index, value in enumerate(obj[:1000]):
            yield from _strings_with_paths(value, f"{path}[{index}]", depth + 1)
