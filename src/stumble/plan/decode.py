"""From YAML text to a ``TrackingPlan``, with every structural problem reported by place.

Two steps. ``parse_yaml`` reads the text with a SafeLoader that rejects duplicate keys (PyYAML
silently keeps the last one, which would quietly drop half of an event's definition).
``decode_leniently`` then walks the parsed data alongside the model's type annotations and
converts each leaf with msgspec on its own. msgspec stops at the first error and hides
mapping keys as ``[...]`` in its paths; walking ourselves gives every error, each with a full
path such as ``events.report_exported.params.rows.max``. Events and scenarios that fail are
left out so the semantic checks can still run on the rest.
"""

from __future__ import annotations

import difflib
import functools
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from stumble.events import KINDS
from stumble.plan.issues import LintIssue, PlanError, error
from stumble.plan.model import (
    PARAM_TYPES,
    EventSpec,
    FunnelStep,
    Name,
    ParamSpec,
    Scenario,
    TrackingPlan,
)

# libyaml's parser makes a lint run about 8x faster; a PyYAML built without libyaml only has
# the pure-Python one, which behaves the same.
try:
    from yaml import CSafeLoader as BaseSafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as BaseSafeLoader  # type: ignore[assignment]

ROOT: Final = "plan"
"""The location reported for problems with the document as a whole."""

# --- YAML ---------------------------------------------------------------------------------


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice; ``first_line`` is where it was first defined."""

    def __init__(self, key: object, first: yaml.Mark, second: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key `{key}`", second)
        self.first_line = first.line + 1


class UniqueKeyLoader(BaseSafeLoader):
    """A SafeLoader that refuses a mapping with a repeated key instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self._reject_duplicate_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _reject_duplicate_keys(self, node: yaml.MappingNode) -> None:
        first_seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            # `<<: *anchor` merges may legitimately be overridden by explicit keys.
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first_seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if earlier is not key_node.start_mark:
                raise DuplicateKeyError(key, earlier, key_node.start_mark)


def parse_yaml(text: str) -> object:
    """Parse YAML text; raises ``PlanError`` located at a line for syntax or duplicate keys."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        assert mark is not None
        raise PlanError.at(
            f"line {mark.line + 1}",
            f"{exc.problem} (first defined on line {exc.first_line}); "
            "YAML would silently keep only the last one, so remove or rename one of them",
        ) from None
    except yaml.YAMLError as exc:
        raise PlanError.at(*_describe_yaml_error(exc)) from None


def _describe_yaml_error(exc: yaml.YAMLError) -> tuple[str, str]:
    mark = getattr(exc, "problem_mark", None)
    location = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ROOT
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"YAML syntax: {problem}" + (f" ({context})" if context else "")
    return location, message


def read_source(source: Path | str) -> str:
    """The plan's text. A ``Path`` is read; a ``str`` is YAML text when it spans lines, is
    blank or starts with ``{``, and a path otherwise (a real plan never fits on one line of
    block YAML)."""
    if isinstance(source, str) and (
        "\n" in source or not source.strip() or source.lstrip().startswith("{")
    ):
        return source
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PlanError.at(str(path), "the file is not UTF-8 text") from None
    except OSError as exc:
        raise PlanError.at(str(path), f"cannot read the file: {exc.strerror}") from None


# --- decoding -----------------------------------------------------------------------------


class Decoded(msgspec.Struct, frozen=True):
    """What could be decoded: the plan (``None`` if the top level is broken), the problems,
    and the event names that were declared but left out because their entry was broken."""

    plan: TrackingPlan | None
    issues: tuple[LintIssue, ...]
    broken_events: frozenset[str]


def decode_plan(data: object) -> TrackingPlan:
    """Decode parsed YAML into a plan, raising ``PlanError`` with every structural error."""
    decoded = decode_leniently(data)
    if decoded.issues or decoded.plan is None:
        raise PlanError(decoded.issues)
    return decoded.plan


def decode_leniently(data: object) -> Decoded:
    """Decode what can be decoded; broken events, parameters and scenarios are reported and
    left out, so one typo does not hide every other problem in the file."""
    if not isinstance(data, Mapping):
        return Decoded(None, (_not_a_plan(data),), frozenset())
    data = _expand_step_shorthand(data)
    issues: list[LintIssue] = []
    pruned = dict(data)
    broken_events: set[str] = set()
    for section, spec_type in (("events", EventSpec), ("scenarios", Scenario)):
        entries = data.get(section)
        if isinstance(entries, Mapping):
            pruned[section], dropped = _prune_entries(section, entries, spec_type, issues)
            broken_events |= dropped if spec_type is EventSpec else set()
    top_issues = _check(pruned, TrackingPlan, "")
    issues += top_issues
    plan = None if top_issues else msgspec.convert(pruned, TrackingPlan)
    return Decoded(plan, tuple(issues), frozenset(broken_events))


def _not_a_plan(data: object) -> LintIssue:
    if data is None:
        return error(ROOT, "the plan is empty; it needs at least `schema_version` and `events`")
    return error(
        ROOT,
        f"the plan must be a mapping of keys such as `schema_version` and `events`, "
        f"not {_describe_python_value(data)}",
    )


def _expand_step_shorthand(data: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """Turn a step written as a bare event name into ``{event: name}``, without mutating."""
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, Mapping):
        return data
    expanded = {name: _expand_steps(scenario) for name, scenario in scenarios.items()}
    return {**data, "scenarios": expanded}


def _expand_steps(scenario: object) -> object:
    steps = scenario.get("steps") if isinstance(scenario, Mapping) else None
    if not isinstance(scenario, Mapping) or not isinstance(steps, list):
        return scenario
    return {
        **scenario,
        "steps": [{"event": step} if isinstance(step, str) else step for step in steps],
    }


def _prune_entries(
    path: str, entries: Mapping[Any, Any], spec_type: type[msgspec.Struct], issues: list[LintIssue]
) -> tuple[dict[Any, Any], set[str]]:
    """The entries that decode cleanly, and the names of those that do not (reported)."""
    kept: dict[Any, Any] = {}
    dropped: set[str] = set()
    for key, value in entries.items():
        entry_path = _join(path, str(key))
        entry = _prune_params(entry_path, value, issues) if spec_type is EventSpec else value
        entry_issues = _check_key(key, Name, path) + _check(entry, spec_type, entry_path)
        if entry_issues:
            issues += entry_issues
            dropped.add(str(key))
        else:
            kept[key] = entry
    return kept, dropped


def _prune_params(path: str, event: object, issues: list[LintIssue]) -> object:
    params = event.get("params") if isinstance(event, Mapping) else None
    if not isinstance(event, Mapping) or not isinstance(params, Mapping):
        return event
    kept, _ = _prune_entries(_join(path, "params"), params, ParamSpec, issues)
    return {**event, "params": kept}


# --- the walker ---------------------------------------------------------------------------


def _check(value: object, annotation: Any, path: str) -> list[LintIssue]:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return _check_struct(value, annotation, path)
    origin = typing.get_origin(annotation)
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        return _check_dict(value, key_type, value_type, path)
    if origin is tuple:
        return _check_list(value, typing.get_args(annotation)[0], path)
    return _check_leaf(value, annotation, path)


def _check_struct(value: object, cls: type[msgspec.Struct], path: str) -> list[LintIssue]:
    if not isinstance(value, Mapping):
        return [
            error(path or ROOT, f"expected a mapping of keys, got {_describe_python_value(value)}")
        ]
    fields = _struct_fields(cls)
    issues = [
        error(_join(path, str(key)), _unknown_key_message(str(key), list(fields)))
        for key in value
        if key not in fields
    ]
    for name, field in fields.items():
        if name in value:
            issues += _check(value[name], field.type, _join(path, name))
        elif field.required:
            issues.append(error(_join(path, name), _missing_key_message(cls, name)))
    return issues


@functools.cache
def _struct_fields(cls: type[msgspec.Struct]) -> dict[str, msgspec.structs.FieldInfo]:
    # Resolving a Struct's annotations is slow enough to dominate a lint run if repeated.
    return {field.encode_name: field for field in msgspec.structs.fields(cls)}


def _check_dict(value: object, key_type: Any, value_type: Any, path: str) -> list[LintIssue]:
    if not isinstance(value, Mapping):
        return [error(path, f"expected a mapping of names, got {_describe_python_value(value)}")]
    issues: list[LintIssue] = []
    for key, item in value.items():
        issues += _check_key(key, key_type, path)
        issues += _check(item, value_type, _join(path, str(key)))
    return issues


def _check_key(key: object, key_type: Any, path: str) -> list[LintIssue]:
    try:
        msgspec.convert(key, key_type)
    except msgspec.ValidationError as exc:
        return [error(_join(path, str(key)), "as a name: " + humanize_validation_error(exc, key))]
    return []


def _check_list(value: object, item_type: Any, path: str) -> list[LintIssue]:
    if not isinstance(value, list):
        return [error(path, f"expected a list, got {_describe_python_value(value)}")]
    issues: list[LintIssue] = []
    for index, item in enumerate(value):
        issues += _check(item, item_type, f"{path}[{index}]")
    return issues


def _check_leaf(value: object, annotation: Any, path: str) -> list[LintIssue]:
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError as exc:
        return [error(path, humanize_validation_error(exc, value))]
    return []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- messages -----------------------------------------------------------------------------

_TYPE_WORDS: Final = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "null": "nothing",
    "object": "a mapping",
    "array": "a list",
}
_CONSTRAINT_WORDS: Final = {
    "<=": "at most",
    ">=": "at least",
    "<": "less than",
    ">": "greater than",
}
_EXPECTED = re.compile(r"^Expected `(?P<expected>[^`]+)`(?P<rest>.*?)(?:, got `(?P<got>[^`]+)`)?$")
_BOUND = re.compile(r"^ (?P<op>[<>]=?) (?P<bound>\S+)$")
_LENGTH = re.compile(r"^ of length (?P<op>[<>]=?) (?P<bound>\d+)$")

# Why a missing key matters, said where it is missing.
_MISSING_HINTS: Final[dict[tuple[str, str], str]] = {
    ("TrackingPlan", "schema_version"): "add `schema_version: 1` (raise it when a parameter's "
    "meaning or unit changes)",
    ("TrackingPlan", "events"): "add `events:` with at least one event",
    ("EventSpec", "kind"): f"every event needs a kind, one of: {', '.join(KINDS)}",
    ("ParamSpec", "type"): f"every parameter needs a type, one of: {', '.join(PARAM_TYPES)}",
    ("Scenario", "steps"): "a scenario is an ordered list of at least 2 steps",
    ("FunnelStep", "event"): "each step names a declared event, e.g. `{event: form_submit}`",
}
_STRUCT_NOUNS: Final[dict[type[msgspec.Struct], str]] = {
    TrackingPlan: "the plan",
    EventSpec: "an event",
    ParamSpec: "a parameter",
    Scenario: "a scenario",
    FunnelStep: "a step",
}


def humanize_validation_error(exc: msgspec.ValidationError, value: object) -> str:
    """Turn msgspec's ``Expected `float`, got `str` - at `$.x``` into plain words."""
    raw = str(exc).split(" - at `", 1)[0]
    match = _EXPECTED.match(raw)
    if match is None:
        return raw[:1].lower() + raw[1:]
    expected = _words(match["expected"])
    if match["got"]:
        return f"expected {expected}, got {_TYPE_WORDS.get(match['got'], match['got'])}" + (
            _quote_hint(value) if "str" in match["expected"] else ""
        )
    return f"must be {expected} {_constraint(match['rest'])}".rstrip()


def _words(union: str) -> str:
    members = [m for m in union.split(" | ") if m != "null"] or ["null"]
    return " or ".join(_TYPE_WORDS.get(m, f"`{m}`") for m in members)


def _constraint(rest: str) -> str:
    if match := _LENGTH.match(rest):
        if match["op"] == ">=" and match["bound"] == "1":
            return "that is not empty"
        return f"of {_CONSTRAINT_WORDS[match['op']]} {match['bound']} characters"
    if match := _BOUND.match(rest):
        return f"{_CONSTRAINT_WORDS[match['op']]} {match['bound']}"
    return rest.strip()


def _quote_hint(value: object) -> str:
    if isinstance(value, bool):
        return "; YAML reads yes/no/on/off/true/false as true or false, so put the word in quotes"
    if value is None or isinstance(value, Mapping | list):
        return ""
    # Numbers, dates and times: YAML typed them, quoting keeps them as written.
    return "; put it in quotes if it is meant as text"


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean `{guess[0]}`? " if guess else ""
    return f"unknown key `{key}`; {hint}the keys allowed here are: {', '.join(allowed)}"


def _missing_key_message(cls: type[msgspec.Struct], name: str) -> str:
    hint = _MISSING_HINTS.get((cls.__name__, name))
    noun = _STRUCT_NOUNS.get(cls, cls.__name__)
    return f"missing: {noun} requires `{name}`" + (f"; {hint}" if hint else "")


def _describe_python_value(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
