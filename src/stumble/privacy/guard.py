"""The privacy guard: an event is accepted, accepted with redactions, or rejected, with reasons.

Order of checks, cheapest and most decisive first:

1. **Closed schema** (msgspec, in ``stumble.events``): unknown keys, wrong types, numbers out
   of bounds and over-long strings never get this far.
2. **Tracking plan**: the event name must be declared with this kind; fields the plan closes
   (``values``), context enums, custom parameters and route templates are checked against it.
3. **Identifier alphabet and detectors**: every string field of every kind is screened, none
   is exempt because it has a pattern. The only exceptions are the fields in
   ``REKEYED_FIELDS``, which storage never keeps as sent (they are re-keyed with an HMAC), and
   only when the value has the declared shape. Shaped fields are checked on top: ``tz`` must
   be a real IANA zone, ``ui_version`` must look like a version.

What a finding does is ``policy.py``'s decision. Findings carry a reason code and a field path
made only of names the schema knows: never the offending text, which is exactly what may be
personal data.

For throughput, admission first screens every string of the whole request body in one pass
(``privacy/screen.py``). When nothing in the body could be an identifier violation or a
detector hit, step 3 is skipped for the batch: the screen over-approximates every detector on
identifier-alphabet text, and a property test checks both paths agree.
"""

from __future__ import annotations

import enum
import functools
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from stumble import reasons as r
from stumble.events import (
    IDENTIFIER_MAX_LENGTH,
    KIND_TO_CLASS,
    REKEYED_FIELDS,
    ROUTE_MAX_LENGTH,
    STORED_FIELDS,
    BaseEvent,
    Context,
    CustomEvent,
    Event,
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
from stumble.privacy.urls import DeclaredRoutes, template_route

IDENTIFIER_RE: Final = re.compile(rf"[A-Za-z0-9_.:/-]{{1,{IDENTIFIER_MAX_LENGTH}}}")
ROUTE_RE: Final = re.compile(rf"/[A-Za-z0-9_.:/-]{{0,{ROUTE_MAX_LENGTH - 1}}}")
VERSION_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""A release's shape: SemVer-like (``2.3.1-rc.1``), a date (``2026.12.07``) or a build id;
never a path or an address (no ``/`` or ``:``)."""
TIME_ZONES: Final[frozenset[str]] = frozenset(zoneinfo.available_timezones()) | {"UTC"}
"""IANA zone names (from the ``tzdata`` package when the system has none)."""
UNKNOWN_EVENT_NAME: Final = "(unknown)"

KNOWN_NAMES: Final[frozenset[str]] = frozenset(STORED_FIELDS) | {"context", "events", "sent_at"}


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
    """Every string field of a kind: routes (longer, templated) or identifiers (screened)."""
    identifiers: list[tuple[str, bool]] = []
    routes: list[str] = []
    for field in msgspec.inspect.type_info(cls).fields:  # type: ignore[attr-defined]
        string_type = _string_type(field.type)
        if string_type is None:
            continue  # numbers, enums, lists and structs are walked on their own
        if string_type.max_length is not None and string_type.max_length > IDENTIFIER_MAX_LENGTH:
            routes.append(field.name)
        else:
            identifiers.append((field.name, not field.required))
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


class PlanRules:
    """The tracking plan compiled for lookups; built once per plan."""

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
        self.routes = DeclaredRoutes(plan.routes)
        # Memos of pure judgements: real traffic repeats a few routes and context combinations
        # endlessly. Bounded: cleared when full, so no stream of values can grow them.
        self.route_verdicts: dict[str, _RouteVerdict] = {}
        self.clean_contexts: dict[Context, tuple[Context, tuple[Finding, ...]]] = {}


MEMO_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class _RouteVerdict:
    stored: str | None
    detectors: tuple[Detector, ...]
    reasons: tuple[str, ...]  # schema.not_a_route / plan.route_not_declared, when they apply


_RULES_CACHE: dict[int, PlanRules] = {}


def _rules(plan: TrackingPlan) -> PlanRules:
    rules = _RULES_CACHE.get(id(plan))
    if rules is None or rules.plan is not plan:
        rules = PlanRules(plan)
        _RULES_CACHE.clear()  # one live plan at a time; a reload replaces it
        _RULES_CACHE[id(plan)] = rules
    return rules


# --- public entry points ---------------------------------------------------------------------


def judge_event(event: Event, rules: PlanRules, *, screened_clean: bool) -> GuardResult | None:
    """Judge one decoded event; None means accepted exactly as sent (nothing allocated).

    ``screened_clean`` says the body screen proved no string of the event can hit a detector,
    so the per-field detectors are skipped.
    """
    return _judge(event, rules, screened_clean=screened_clean)


def guard(event: Event, plan: TrackingPlan) -> GuardResult:
    """Judge one decoded event with every check (a result even when it is accepted as is)."""
    name = event.event_name
    result = _judge(event, _rules(plan), screened_clean=False)
    return result or GuardResult(Outcome.ACCEPTED, event, (), name, event.event_id)


# --- judging one event ----------------------------------------------------------------------


def _judge(event: Event, rules: PlanRules, *, screened_clean: bool) -> GuardResult | None:
    event_rules = rules.events.get(event.event_name)
    if event_rules is None:
        reason = r.PLAN_UNKNOWN_EVENT
        if not screened_clean:
            reason = _string_reason(event.event_name, "event_name") or reason
        return _rejected(event, Finding(reason, "$.event_name"), UNKNOWN_EVENT_NAME)
    name = event.event_name
    if event_rules.event_class is not type(event):
        return _rejected(event, Finding(r.PLAN_KIND_MISMATCH, "$.kind"), name)
    findings: list[Finding] = []
    changes: dict[str, Any] = {}
    try:
        if not screened_clean:
            _check_strings(event, findings, changes)
        _check_shapes(event, findings, changes)
        _template_routes(event, rules, findings, changes)
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
        return None
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
    verdict = _judge_string(value, field)
    return None if verdict is None else verdict[0]


def _detect(value: str, field: str) -> Detector | None:
    detector = detect(value)
    exemption = DETECTOR_EXEMPTIONS.get(field)
    if exemption is not None and detector is exemption[0] and exemption[1].fullmatch(value):
        return None
    return detector


def _judge_string(value: str, field: str) -> tuple[str, Action] | None:
    detector = _detect(value, field)
    if detector is not None:
        return r.pii_reason(detector), action_for(detector, droppable=True)
    if IDENTIFIER_RE.fullmatch(value) is None:
        return r.SCHEMA_NOT_IDENTIFIER, NOT_IDENTIFIER_ACTION
    return None


def _check_strings(event: Event, findings: list[Finding], changes: dict[str, Any]) -> None:
    for field, droppable in _LAYOUTS[event.kind].identifiers:
        value = getattr(event, field)
        if value is None:
            continue
        shape = REKEYED_FIELDS.get(field)
        if shape is not None and shape.fullmatch(value):
            continue  # re-keyed before storage: the value as sent is never kept
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


def _check_shapes(event: Event, findings: list[Finding], changes: dict[str, Any]) -> None:
    """Fields with a meaning beyond the identifier alphabet: a release and a time zone."""
    if VERSION_RE.fullmatch(event.ui_version) is None:
        raise _Reject(Finding(r.SCHEMA_NOT_A_VERSION, "$.ui_version"))
    tz = changes.get("tz", event.tz)
    if tz is not None and tz not in TIME_ZONES:
        findings.append(Finding(r.SCHEMA_NOT_A_TIME_ZONE, "$.tz"))
        changes["tz"] = None


def _template_routes(
    event: Event, rules: PlanRules, findings: list[Finding], changes: dict[str, Any]
) -> None:
    """A route is kept only as a template the plan declares (or the longest declared prefix)."""
    for field in _LAYOUTS[event.kind].routes:
        raw = getattr(event, field)
        if raw is None:
            continue
        verdict = _route_verdict(raw, rules)
        for detector in verdict.detectors:
            _drop_or_reject(
                Finding(r.pii_reason(detector), f"$.{field}"),
                action_for(detector, droppable=True),
                findings,
                droppable=True,
            )
        findings.extend(Finding(reason, f"$.{field}") for reason in verdict.reasons)
        if verdict.stored != raw:
            changes[field] = verdict.stored


def _route_verdict(raw: str, rules: PlanRules) -> _RouteVerdict:
    verdict = rules.route_verdicts.get(raw)
    if verdict is None:
        template, detectors = _template(raw)
        if template is None:
            verdict = _RouteVerdict(None, detectors, (r.SCHEMA_NOT_A_ROUTE,))
        else:
            resolved = rules.routes.resolve(template)
            undeclared = () if resolved.exact else (r.PLAN_ROUTE_NOT_DECLARED,)
            verdict = _RouteVerdict(resolved.route, detectors, undeclared)
        if len(rules.route_verdicts) >= MEMO_MAX:
            rules.route_verdicts.clear()
        rules.route_verdicts[raw] = verdict
    return verdict


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
            Finding(r.PLAN_VALUE_NOT_ALLOWED, f"$.{field}"),
            NOT_IN_PLAN_ACTION,
            findings,
            droppable=droppable,
        )
        changes[field] = None


def _check_context(
    context: Context, rules: PlanRules, findings: list[Finding], *, screened_clean: bool
) -> Context:
    if not screened_clean:
        return _judge_context(context, rules, findings, screened_clean=False)
    known = rules.clean_contexts.get(context)
    if known is None:
        found: list[Finding] = []
        known = (_judge_context(context, rules, found, screened_clean=True), tuple(found))
        if len(rules.clean_contexts) >= MEMO_MAX:
            rules.clean_contexts.clear()
        rules.clean_contexts[context] = known
    findings.extend(known[1])
    return known[0]


def _judge_context(
    context: Context, rules: PlanRules, findings: list[Finding], *, screened_clean: bool
) -> Context:
    dropped: dict[str, None] = {}
    for field, value in zip(_CONTEXT_FIELDS, msgspec.structs.astuple(context), strict=True):
        if value is None:
            continue
        reason = None if screened_clean else _string_reason(value, field)
        allowed = rules.context.get(field)
        if reason is None and allowed is not None and value not in allowed:
            reason = r.PLAN_CONTEXT_NOT_ALLOWED
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
        raise _Reject(Finding(r.PLAN_MISSING_PARAM, f"$.params.{sorted(missing)[0]}"))
    return event.params if len(kept) == len(event.params) else kept


def _param_reason(
    name: str, value: Any, spec: ParamSpec | None, *, screened_clean: bool
) -> str | None:
    if spec is None:
        return r.PLAN_UNKNOWN_PARAM
    if isinstance(value, str) and not screened_clean:
        reason = _string_reason(value, name)
        if reason is not None:
            return reason
    return None if _param_value_ok(value, spec) else r.PLAN_PARAM_INVALID


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


# --- paths that are safe to report ------------------------------------------------------------


def safe_path(path: str) -> str:
    """Keep only schema-known names and list indexes; anything client-made becomes ``*``."""
    parts = re.split(r"(\.[^.\[]*|\[[^\]]*\])", path.removeprefix("$"))
    safe = ["$"]
    for part in filter(None, parts):
        known = part.startswith(".") and part[1:] in KNOWN_NAMES
        if known or re.fullmatch(r"\[\d+\]", part):
            safe.append(part)
        else:
            safe.append(".*")
    return "".join(safe)
