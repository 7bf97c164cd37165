"""Checks a person can act on: what is wrong in the tracking plan, where, and what to do.

``lint_plan`` reads a file (or YAML text) and returns every finding; ``check_plan`` runs the
semantic checks on an already decoded plan. Errors make a plan unusable (``load_plan``
refuses it); warnings are advice. The checks lean towards refusing anything that could carry
free text, because free text is where personal data gets in: there is no text parameter
type, names that suggest prose (``comment``, ``message``…) are refused for string-valued
parameters, and names the privacy detectors consider sensitive (``iin``, ``email``…) are
refused whatever their type, since a number can hold an IIN just as well as a string can.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from stumble.events import CONTEXT_FIELDS, IDENTIFIER_PATTERN, KINDS, MAX_CUSTOM_PARAMS
from stumble.plan.decode import decode_leniently, parse_yaml, read_source
from stumble.plan.fields import PER_INSTANCE_FIELDS, WireField, closable_fields, wire_fields
from stumble.plan.issues import LintIssue, PlanError, error, warning
from stumble.plan.model import (
    MAX_WINDOW_MS,
    PARAM_TYPES,
    EventSpec,
    FunnelStep,
    ParamSpec,
    Scenario,
    TrackingPlan,
)

__all__ = ["LintIssue", "check_plan", "lint_plan"]

IDENTIFIER: Final = re.compile(IDENTIFIER_PATTERN)
TEAM_IDENTIFIER: Final = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
FIRST_DOT_LAST: Final = re.compile(r"[A-Za-z]{2,}\.[A-Za-z]{2,}")

FREE_TEXT_TYPES: Final = frozenset({"string", "text", "str", "free_text", "textarea"})
FREE_TEXT_WORDS: Final = frozenset(
    {
        "comment", "comments", "note", "notes", "text", "message", "messages", "msg",
        "description", "details", "body", "content", "title", "subject", "remark", "remarks",
    }
)  # fmt: skip
# A name whose last word is one of these names a code (`message_id`, `content_type`), not prose.
CODE_SUFFIXES: Final = frozenset({"id", "ids", "type", "kind", "code", "format", "status"})
STRING_PARAM_TYPES: Final = frozenset({"identifier", "enum"})
NUMERIC_PARAM_TYPES: Final = frozenset({"int", "number", "duration_ms", "count", "bytes"})
NON_NEGATIVE_PARAM_TYPES: Final = frozenset({"duration_ms", "count", "bytes"})

OWNER_EXAMPLE: Final = "owners must be team identifiers like `team_forms`, never a person"


def lint_plan(source: Path | str) -> list[LintIssue]:
    """Every problem in the plan at ``source`` (a path, or YAML text), errors and warnings."""
    try:
        data = parse_yaml(read_source(source))
    except PlanError as exc:
        return list(exc.issues)
    decoded = decode_leniently(data)
    issues = list(decoded.issues)
    if decoded.plan is not None:
        issues += check_plan(decoded.plan, broken_events=decoded.broken_events)
    return issues


def check_plan(
    plan: TrackingPlan, *, broken_events: frozenset[str] = frozenset()
) -> list[LintIssue]:
    """The semantic checks on a decoded plan. ``broken_events`` were declared but failed to
    decode (already reported), so steps naming them are not reported a second time."""
    issues = _check_versions(plan) + _check_context(plan) + _check_routes(plan)
    for name, spec in plan.events.items():
        issues += _check_event(name, spec)
    for name, scenario in plan.scenarios.items():
        issues += _check_scenario(plan, name, scenario, broken_events)
    return issues + _check_aliases(plan)


# --- top level ----------------------------------------------------------------------------


def _check_versions(plan: TrackingPlan) -> list[LintIssue]:
    if plan.min_schema_version is not None and plan.min_schema_version > plan.schema_version:
        return [
            error(
                "min_schema_version",
                f"{plan.min_schema_version} is above schema_version {plan.schema_version}, "
                "so no event version is both current and still accepted; lower it or raise "
                "schema_version",
            )
        ]
    return []


def _check_context(plan: TrackingPlan) -> list[LintIssue]:
    issues: list[LintIssue] = []
    for dimension, values in plan.context.items():
        location = f"context.{dimension}"
        if dimension not in CONTEXT_FIELDS:
            issues.append(
                error(
                    location,
                    f"unknown context dimension `{dimension}`"
                    f"{_did_you_mean(dimension, CONTEXT_FIELDS)}; "
                    f"the SDK sends only: {', '.join(CONTEXT_FIELDS)}",
                )
            )
            continue
        issues += _check_closed_list(location, values)
    return issues


_ROUTE_SEGMENT: Final = re.compile(r":?[A-Za-z0-9_.-]{1,64}")
_KINDS_WITH_ROUTES: Final = frozenset({"screen_view", "error", "vital"})


def _check_routes(plan: TrackingPlan) -> list[LintIssue]:
    """Declared route templates: the only routes stored (``privacy.urls.DeclaredRoutes``)."""
    issues: list[LintIssue] = []
    for index, route in enumerate(plan.routes):
        segments = [segment for segment in route.split("/") if segment]
        if not route.startswith("/") or not all(map(_ROUTE_SEGMENT.fullmatch, segments)):
            issues.append(
                error(
                    f"routes[{index}]",
                    f"`{route}` is not a route template: write a path such as "
                    "`/requests/:id/edit` (letters, digits, `_ . -`; `:name` for a variable "
                    "segment; no query or fragment)",
                )
            )
    duplicates = sorted({route for route in plan.routes if plan.routes.count(route) > 1})
    if duplicates:
        issues.append(warning("routes", f"listed more than once: {', '.join(duplicates)}"))
    carries_routes = any(spec.kind in _KINDS_WITH_ROUTES for spec in plan.events.values())
    if carries_routes and not plan.routes:
        issues.append(
            warning(
                "routes",
                "no route templates: every route (page, failing request, slow API) is dropped "
                "before storage; list the app's routes, e.g. `routes: [/requests/:id]`",
            )
        )
    return issues


# --- events -------------------------------------------------------------------------------


def _check_event(name: str, spec: EventSpec) -> list[LintIssue]:
    location = f"events.{name}"
    issues = _identifier_issues(location, name, "event name")
    issues += _owner_issues(f"{location}.owner", spec.owner)
    if not spec.description.strip():
        issues.append(
            warning(
                f"{location}.description",
                "no description; add one sentence saying what happened, so the catalog explains it",
            )
        )
    if spec.kind not in KINDS:
        issues.append(
            error(
                f"{location}.kind",
                f"unknown kind `{spec.kind}`{_did_you_mean(spec.kind, KINDS)}; "
                f"the known kinds are: {', '.join(KINDS)}",
            )
        )
        return issues  # which fields and params are allowed depends on the kind
    issues += _check_event_values(location, spec)
    return issues + _check_event_params(location, spec)


def _check_event_values(location: str, spec: EventSpec) -> list[LintIssue]:
    issues: list[LintIssue] = []
    for field_name, values in spec.values.items():
        field_location = f"{location}.values.{field_name}"
        problem = _values_field_problem(field_name, spec.kind)
        if problem:
            issues.append(error(field_location, problem))
        else:
            issues += _check_closed_list(field_location, values)
    return issues


def _values_field_problem(field_name: str, kind: str) -> str | None:
    """Why ``values`` cannot close this field of ``kind``, or ``None`` if it can."""
    unsafe = _sensitive_name_problem(field_name) or _free_text_problem(field_name)
    if unsafe:
        return unsafe
    closable = ", ".join(closable_fields(kind))
    field = wire_fields(kind).get(field_name)
    if field is None:
        return (
            f"`{field_name}` is not a field of kind `{kind}`"
            f"{_did_you_mean(field_name, list(wire_fields(kind)))}; "
            f"`values` can close these fields: {closable}"
        )
    if field.shape == "choice":
        return f"`{field_name}` is already a fixed list ({', '.join(field.choices)}); remove it"
    if not field.closable:
        return (
            f"`{field_name}` cannot be closed with a list of values "
            f"({_shape_words(field)}); `values` can close these fields: {closable}"
        )
    return None


def _check_event_params(location: str, spec: EventSpec) -> list[LintIssue]:
    if not spec.params:
        return []
    if spec.kind != "custom":
        fields = ", ".join(name for name, f in wire_fields(spec.kind).items() if not f.common)
        return [
            error(
                f"{location}.params",
                f"only `custom` events take params; kind `{spec.kind}` has fixed fields "
                f"({fields}), so use `kind: custom` or remove `params`",
            )
        ]
    issues: list[LintIssue] = []
    if len(spec.params) > MAX_CUSTOM_PARAMS:
        issues.append(
            error(
                f"{location}.params",
                f"{len(spec.params)} parameters declared; an event carries at most "
                f"{MAX_CUSTOM_PARAMS}, so split it into more specific events",
            )
        )
    for param_name, param in spec.params.items():
        issues += _check_param(f"{location}.params.{param_name}", param_name, param)
    return issues


def _check_param(location: str, name: str, param: ParamSpec) -> list[LintIssue]:
    issues = _identifier_issues(location, name, "parameter name")
    if param.type.strip().lower() in FREE_TEXT_TYPES:
        return [
            *issues,
            error(
                f"{location}.type",
                f"there is no free-text type (`{param.type}`): free text is where personal data "
                "gets in; use `type: enum` with a list of codes, or `identifier` for a code "
                "your system already has",
            ),
        ]
    unsafe = _sensitive_name_problem(name)
    if param.type in STRING_PARAM_TYPES:
        unsafe = unsafe or _free_text_problem(name)
    if unsafe:
        issues.append(error(location, unsafe))
    if param.type not in PARAM_TYPES:
        issues.append(error(f"{location}.type", _unknown_type_message(param.type)))
        return issues
    return issues + _check_param_values(location, param) + _check_param_bounds(location, param)


def _unknown_type_message(param_type: str) -> str:
    known = ", ".join(PARAM_TYPES)
    if not param_type.strip():
        return f"the type is empty; every parameter needs a type, one of: {known}"
    guess = _did_you_mean(param_type, PARAM_TYPES)
    return f"unknown parameter type `{param_type}`{guess}; the known types are: {known}"


def _check_param_values(location: str, param: ParamSpec) -> list[LintIssue]:
    if param.type == "enum":
        if not param.values:
            return [
                error(
                    f"{location}.values",
                    "an enum needs its list of values, e.g. `values: [xlsx, pdf, csv]`",
                )
            ]
        return _check_closed_list(f"{location}.values", param.values)
    if param.values:
        return [
            error(
                f"{location}.values",
                f"`values` only applies to `type: enum`; this parameter is `{param.type}`",
            )
        ]
    return []


def _check_param_bounds(location: str, param: ParamSpec) -> list[LintIssue]:
    bounds = {"min": param.min, "max": param.max}
    given = {key: value for key, value in bounds.items() if value is not None}
    if not given:
        return []
    if param.type not in NUMERIC_PARAM_TYPES:
        return [
            error(
                f"{location}.{key}",
                f"`{key}` only applies to numeric types "
                f"({', '.join(sorted(NUMERIC_PARAM_TYPES))}); this parameter is `{param.type}`",
            )
            for key in given
        ]
    if not_finite := [key for key, value in given.items() if not math.isfinite(value)]:
        return [error(f"{location}.{key}", "must be a finite number") for key in not_finite]
    issues = [
        error(f"{location}.{key}", f"a `{param.type}` cannot be negative; use 0 or more")
        for key, value in given.items()
        if param.type in NON_NEGATIVE_PARAM_TYPES and value < 0
    ]
    if param.min is not None and param.max is not None and param.min > param.max:
        issues.append(
            error(
                f"{location}.min",
                f"min ({param.min:g}) is greater than max ({param.max:g}), so no value fits; "
                "swap them",
            )
        )
    return issues


# --- scenarios ----------------------------------------------------------------------------


def _check_scenario(
    plan: TrackingPlan, name: str, scenario: Scenario, broken_events: frozenset[str]
) -> list[LintIssue]:
    location = f"scenarios.{name}"
    issues = _identifier_issues(location, name, "scenario name")
    issues += _owner_issues(f"{location}.owner", scenario.owner)
    if len(scenario.steps) < 2:
        issues.append(
            error(
                f"{location}.steps",
                f"a funnel needs at least 2 steps to measure conversion; this one has "
                f"{len(scenario.steps)}",
            )
        )
    issues += _duplicate_label_issues(location, scenario.steps)
    for index, step in enumerate(scenario.steps):
        issues += _check_step(plan, f"{location}.steps[{index}]", step, broken_events)
    issues += _funnel_option_issues(location, scenario)
    for index, step in enumerate(scenario.exclusions):
        issues += _check_step(plan, f"{location}.exclusions[{index}]", step, broken_events)
    for key, value in (("form_id", scenario.form_id), ("operation", scenario.operation)):
        if value is not None:
            issues += _scenario_target_issues(plan, f"{location}.{key}", key, value)
    return issues


def _funnel_option_issues(location: str, scenario: Scenario) -> list[LintIssue]:
    """Window, order, optional steps and exclusions that cannot mean what they say."""
    issues: list[LintIssue] = []
    if scenario.conversion_window is not None and scenario.conversion_window_minutes is not None:
        issues.append(
            error(
                f"{location}.conversion_window_minutes",
                "give the window once: keep `conversion_window` (e.g. `60m`) and remove this",
            )
        )
    elif scenario.window_ms > MAX_WINDOW_MS:
        issues.append(
            error(f"{location}.conversion_window", "a conversion window is at most 90 days (90d)")
        )
    steps = scenario.steps
    issues += [
        error(
            f"{location}.steps[{index}].optional",
            "the first and the last step cannot be optional: they define the funnel",
        )
        for index in sorted({0, len(steps) - 1})
        if steps and steps[index].optional
    ]
    for index, step in enumerate(scenario.exclusions):
        if step.optional:
            issues.append(
                error(f"{location}.exclusions[{index}].optional", "an exclusion is never optional")
            )
        if any(step.event == s.event and step.where == s.where for s in steps):
            issues.append(
                error(
                    f"{location}.exclusions[{index}]",
                    "this exclusion is also a step, so every attempt would exclude itself",
                )
            )
    if scenario.order == "first_touch" and (scenario.exclusions or any(s.optional for s in steps)):
        issues.append(
            error(
                f"{location}.order",
                "first_touch follows one fixed chain: it takes no optional steps or exclusions; "
                "use `ordered` or `strict`",
            )
        )
    return issues


def _duplicate_label_issues(location: str, steps: Sequence[FunnelStep]) -> list[LintIssue]:
    counts = Counter(step.label for step in steps)
    return [
        error(
            f"{location}.steps",
            f"the step name `{label}` is used {count} times; give each step its own "
            "`name` so the funnel can tell them apart",
        )
        for label, count in counts.items()
        if count > 1
    ]


def _check_step(
    plan: TrackingPlan, location: str, step: FunnelStep, broken_events: frozenset[str]
) -> list[LintIssue]:
    issues = _identifier_issues(f"{location}.event", step.event, "event name")
    if step.name is not None:
        issues += _identifier_issues(f"{location}.name", step.name, "step name")
    spec = plan.event(step.event)
    if spec is None:
        if step.event not in broken_events:
            issues.append(
                error(
                    f"{location}.event",
                    f"`{step.event}` is not a declared event"
                    f"{_did_you_mean(step.event, list(plan.events))}; declare it under "
                    "`events:` or fix the name",
                )
            )
        return issues
    if spec.deprecated:
        issues.append(
            warning(
                f"{location}.event",
                f"`{step.event}` is deprecated but this funnel still counts it; "
                "switch the step to the event that replaces it",
            )
        )
    if spec.kind not in KINDS:
        return issues  # already reported on the event
    for key, value in step.where.items():
        issues += _check_where(f"{location}.where.{key}", step.event, spec, key, value)
    return issues


def _check_where(
    location: str, event: str, spec: EventSpec, key: str, value: str | int | bool
) -> list[LintIssue]:
    field = wire_fields(spec.kind).get(key)
    if field is None or not field.filterable:
        usable = [name for name, f in wire_fields(spec.kind).items() if f.filterable]
        reason = "is not a field of" if field is None else "cannot be used to filter"
        return [
            error(
                location,
                f"`{key}` {reason} `{event}` (kind `{spec.kind}`){_did_you_mean(key, usable)}; "
                f"the fields a step can filter on are: {', '.join(usable)}",
            )
        ]
    problem = _where_value_problem(field, spec.values.get(key), value)
    return [error(location, f"this step can never match: {problem}")] if problem else []


def _where_value_problem(
    field: WireField, closed: Sequence[str] | None, value: str | int | bool
) -> str | None:
    if field.shape == "choice":
        ok = isinstance(value, str) and value in field.choices
        return None if ok else f"`{field.name}` is one of {', '.join(field.choices)}"
    if field.shape in ("int", "number"):
        return _where_number_problem(field, value)
    if field.shape == "bool":
        return None if isinstance(value, bool) else f"`{field.name}` is true or false"
    return _where_text_problem(field, closed, value)


def _where_text_problem(
    field: WireField, closed: Sequence[str] | None, value: str | int | bool
) -> str | None:
    if not isinstance(value, str):
        return f"`{field.name}` is text; put the value in quotes"
    if closed is not None and value not in closed:
        return f"the event only accepts these `{field.name}` values: {', '.join(closed)}"
    if field.shape == "identifier" and not IDENTIFIER.match(value):
        return f"`{field.name}` only ever holds identifiers"
    return None


def _where_number_problem(field: WireField, value: str | int | bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"`{field.name}` is a number"
    if field.minimum is not None and value < field.minimum:
        return f"`{field.name}` is at least {field.minimum:g}"
    if field.maximum is not None and value > field.maximum:
        return f"`{field.name}` is at most {field.maximum:g}"
    return None


def _scenario_target_issues(
    plan: TrackingPlan, location: str, field_name: str, value: str
) -> list[LintIssue]:
    issues = _identifier_issues(location, value, field_name)
    declared = {v for spec in plan.events.values() for v in spec.values.get(field_name, ())}
    if declared and value not in declared:
        issues.append(
            warning(
                location,
                f"`{value}` is not among the `{field_name}` values any event declares, "
                "so this scenario's thresholds will find no data",
            )
        )
    return issues


# --- aliases ------------------------------------------------------------------------------


def _check_aliases(plan: TrackingPlan) -> list[LintIssue]:
    issues: list[LintIssue] = []
    for old, new in plan.aliases.items():
        location = f"aliases.{old}"
        issues += _identifier_issues(location, old, "old name")
        issues += _identifier_issues(location, new, "new name")
        if old == new:
            issues.append(error(location, f"`{old}` is an alias of itself; remove it"))
        elif new in plan.aliases:
            issues.append(error(location, _alias_chain_problem(plan.aliases, old)))
    return issues


def _alias_chain_problem(aliases: dict[str, str], start: str) -> str:
    chain = [start]
    while chain[-1] in aliases and aliases[chain[-1]] not in chain:
        chain.append(aliases[chain[-1]])
    if chain[-1] in aliases:  # the next hop is already in the chain: a cycle
        return (
            f"alias cycle: {' → '.join([*chain, aliases[chain[-1]]])}; "
            "a renamed target must end at its current name"
        )
    return (
        f"`{chain[1]}` is itself renamed to `{chain[2]}`; aliases are followed one step, "
        f"so point `{start}` straight at `{chain[-1]}`"
    )


# --- shared rules -------------------------------------------------------------------------


def _check_closed_list(location: str, values: Sequence[str]) -> list[LintIssue]:
    if not values:
        return [
            error(
                location,
                "an empty list would refuse every value; list the allowed values "
                "or remove the key to accept any identifier",
            )
        ]
    issues: list[LintIssue] = []
    for index, value in enumerate(values):
        issues += _identifier_issues(f"{location}[{index}]", value, "value")
    return issues + [
        error(location, f"`{value}` is listed {count} times; keep one")
        for value, count in Counter(values).items()
        if count > 1
    ]


def _identifier_issues(location: str, value: str, what: str) -> list[LintIssue]:
    if IDENTIFIER.match(value):
        return []
    # The offending text is not repeated: if it is not an identifier, it may be anything.
    return [
        error(
            location,
            f"this {what} is not an identifier: use 1 to 64 letters, digits and `_ . : / -`, "
            "with no spaces",
        )
    ]


def _owner_issues(location: str, owner: str) -> list[LintIssue]:
    if not owner.strip():
        return [
            error(
                location,
                "missing owner: name the team that answers for it, e.g. `owner: team_forms`",
            )
        ]
    # A person-like owner is not echoed back: it may be someone's name or address.
    reason = _person_like_reason(owner)
    if reason:
        return [error(location, f"the owner {reason}; {OWNER_EXAMPLE}")]
    if not TEAM_IDENTIFIER.match(owner):
        return [
            error(
                location,
                "the owner must be a team identifier: lower-case letters, digits, `_` and `-`, "
                "like `team_forms`",
            )
        ]
    return []


def _person_like_reason(owner: str) -> str | None:
    if "@" in owner:
        return "looks like an e-mail address"
    if any(char.isspace() for char in owner.strip()):
        return "has a space, like a person's name"
    if FIRST_DOT_LAST.search(owner):
        return "looks like first.last, a person's name"
    if any(char.isupper() for char in owner):
        return "has capital letters, like a person's name"
    return None


def _free_text_problem(name: str) -> str | None:
    words = _words(name)
    if words and words[-1] not in CODE_SUFFIXES and FREE_TEXT_WORDS.intersection(words):
        return (
            f"`{name}` sounds like it could hold free text, which is where personal data gets "
            "in; record a code instead (an enum of reasons, a category, a count)"
        )
    return None


def _sensitive_name_problem(name: str) -> str | None:
    # Imported on first use: the detectors pull in phonenumbers (about 90 ms to import),
    # which a lint run needs but not every module that imports the plan model.
    from stumble.privacy.detectors import is_sensitive_key  # noqa: PLC0415

    if is_sensitive_key(name):
        return (
            f"`{name}` names personal data, which stumble never collects; record that the "
            "field was filled or failed validation (a `field_error` with a `field_id`), "
            "not its value"
        )
    return None


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [word for word in re.split(r"[_.:/\-\s]+", spaced.lower()) if word]


def _did_you_mean(value: str, options: Iterable[str]) -> str:
    guess = difflib.get_close_matches(value, list(options), n=1)
    return f" (did you mean `{guess[0]}`?)" if guess else ""


def _shape_words(field: WireField) -> str:
    if field.name == "event_name":
        return "the event's name is its key in the plan"
    if field.name in PER_INSTANCE_FIELDS:
        return "its value is different for every event, session or operation"
    return f"it is {'a number' if field.shape in ('int', 'number') else 'not an identifier'}"
