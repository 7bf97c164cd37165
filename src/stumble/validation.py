"""Why an event or an envelope failed the closed wire schema, in stumble's own reason codes.

msgspec decides *whether* an event is valid (``stumble.events``); this module decides *why*
not, by walking the same type declarations (``msgspec.inspect``) over the generic JSON value.
msgspec's message text is never read, so a new msgspec release cannot reclassify the
quarantine. Paths name only fields the schema declares; anything a client made up (an
unknown key, a parameter name) becomes ``*``, because it may be exactly the personal data
we refuse to keep.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from msgspec import inspect as mi

from stumble import reasons as r
from stumble.events import KIND_TO_CLASS, BaseEvent

MAX_WALK_DEPTH: Final = 16


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """A reason code and the schema path it applies to (``$.context.role``, ``$.*``)."""

    reason: str
    path: str


_STRUCT_INFO: Final[dict[type[BaseEvent], mi.StructType]] = {
    cls: mi.type_info(cls)  # type: ignore[misc]
    for cls in KIND_TO_CLASS.values()
}


def explain_event(value: object) -> SchemaProblem:
    """The first problem found in one event's generic JSON value (``schema.invalid`` if none)."""
    if not isinstance(value, dict):
        return SchemaProblem(r.SCHEMA_TYPE, "$")
    kind = value.get("kind")
    if kind is None:
        return SchemaProblem(r.SCHEMA_MISSING_FIELD, "$.kind")
    cls = KIND_TO_CLASS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return SchemaProblem(r.SCHEMA_UNKNOWN_KIND, "$.kind")
    fields = {k: v for k, v in value.items() if k != "kind"}
    return _struct_problem(fields, _STRUCT_INFO[cls], "$", 0) or SchemaProblem(
        r.SCHEMA_INVALID, "$"
    )


def _struct_problem(
    value: dict[Any, Any], info: mi.StructType, path: str, depth: int
) -> SchemaProblem | None:
    declared = {field.encode_name: field for field in info.fields}
    for key in value:
        if key not in declared:
            return SchemaProblem(r.SCHEMA_UNKNOWN_FIELD, f"{path}.*")
    for field in info.fields:
        if field.encode_name not in value:
            if field.required:
                return SchemaProblem(r.SCHEMA_MISSING_FIELD, f"{path}.{field.encode_name}")
            continue
        problem = _value_problem(
            value[field.encode_name], field.type, f"{path}.{field.encode_name}", depth + 1
        )
        if problem is not None:
            return problem
    return None


def _value_problem(value: object, info: mi.Type, path: str, depth: int) -> SchemaProblem | None:
    if depth > MAX_WALK_DEPTH:
        return SchemaProblem(r.SCHEMA_TYPE, path)
    checker = _CHECKERS.get(type(info))
    if checker is None:
        return None  # a type the wire format does not use; msgspec's verdict stands
    problem: SchemaProblem | None = checker(value, info, path, depth)
    return problem


def _union_problem(value: object, info: Any, path: str, depth: int) -> SchemaProblem | None:
    problems = [_value_problem(value, member, path, depth) for member in info.types]
    if any(problem is None for problem in problems):
        return None
    # The most specific complaint: a value of a right type that is out of bounds beats "type".
    specific = [p for p in problems if p is not None and p.reason != r.SCHEMA_TYPE]
    return specific[0] if specific else problems[0]


def _none_problem(value: object, _: Any, path: str, __: int) -> SchemaProblem | None:
    return None if value is None else SchemaProblem(r.SCHEMA_TYPE, path)


def _bool_problem(value: object, _: Any, path: str, __: int) -> SchemaProblem | None:
    return None if isinstance(value, bool) else SchemaProblem(r.SCHEMA_TYPE, path)


def _str_problem(value: object, info: Any, path: str, _: int) -> SchemaProblem | None:
    if not isinstance(value, str):
        return SchemaProblem(r.SCHEMA_TYPE, path)
    if (info.min_length is not None and len(value) < info.min_length) or (
        info.max_length is not None and len(value) > info.max_length
    ):
        return SchemaProblem(r.SCHEMA_LENGTH, path)
    if info.pattern is not None and re.search(info.pattern, value) is None:
        return SchemaProblem(r.SCHEMA_PATTERN, path)
    return None


def _number_problem(value: object, info: Any, path: str, _: int) -> SchemaProblem | None:
    integer_only = isinstance(info, mi.IntType)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return SchemaProblem(r.SCHEMA_TYPE, path)
    if integer_only and not isinstance(value, int):
        return SchemaProblem(r.SCHEMA_TYPE, path)
    low_ok = (info.ge is None or value >= info.ge) and (info.gt is None or value > info.gt)
    high_ok = (info.le is None or value <= info.le) and (info.lt is None or value < info.lt)
    return None if low_ok and high_ok else SchemaProblem(r.SCHEMA_OUT_OF_RANGE, path)


def _literal_problem(value: object, info: Any, path: str, _: int) -> SchemaProblem | None:
    if value in info.values and isinstance(value, str):
        return None
    return SchemaProblem(r.SCHEMA_NOT_ALLOWED, path)


def _list_problem(value: object, info: Any, path: str, depth: int) -> SchemaProblem | None:
    if not isinstance(value, list):
        return SchemaProblem(r.SCHEMA_TYPE, path)
    if info.max_length is not None and len(value) > info.max_length:
        return SchemaProblem(r.SCHEMA_LENGTH, path)
    for item in value:
        problem = _value_problem(item, info.item_type, f"{path}[]", depth + 1)
        if problem is not None:
            return problem
    return None


def _dict_problem(value: object, info: Any, path: str, depth: int) -> SchemaProblem | None:
    if not isinstance(value, dict):
        return SchemaProblem(r.SCHEMA_TYPE, path)
    if info.max_length is not None and len(value) > info.max_length:
        return SchemaProblem(r.SCHEMA_LENGTH, path)
    for key, item in value.items():
        # Keys of an open mapping (custom parameters) are client-made: the path says ``*``.
        problem = _value_problem(key, info.key_type, f"{path}.*", depth + 1) or _value_problem(
            item, info.value_type, f"{path}.*", depth + 1
        )
        if problem is not None:
            return problem
    return None


def _nested_struct_problem(value: object, info: Any, path: str, depth: int) -> SchemaProblem | None:
    if not isinstance(value, dict):
        return SchemaProblem(r.SCHEMA_TYPE, path)
    return _struct_problem(value, info, path, depth)


_CHECKERS: Final[dict[type[Any], Any]] = {
    mi.UnionType: _union_problem,
    mi.NoneType: _none_problem,
    mi.BoolType: _bool_problem,
    mi.StrType: _str_problem,
    mi.IntType: _number_problem,
    mi.FloatType: _number_problem,
    mi.LiteralType: _literal_problem,
    mi.ListType: _list_problem,
    mi.DictType: _dict_problem,
    mi.StructType: _nested_struct_problem,
}


# --- the envelope ----------------------------------------------------------------------------

_ENVELOPE_FIELDS: Final = frozenset({"events", "sent_at"})


def explain_envelope(body: bytes) -> str:
    """The reason a request body is not a usable batch envelope (a ``batch.*`` code)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return r.BATCH_INVALID_UTF8
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        return r.BATCH_TOO_DEEP
    except json.JSONDecodeError as error:
        # The standard library's own position, not message text: an error at the very end
        # of the document means the document stopped early.
        return r.BATCH_TRUNCATED_JSON if error.pos >= len(text.rstrip()) else r.BATCH_MALFORMED_JSON
    except ValueError:
        return r.BATCH_MALFORMED_JSON  # NaN / Infinity: not JSON
    return envelope_shape_problem(value) or r.BATCH_INVALID_ENVELOPE


def envelope_shape_problem(value: object) -> str | None:
    """What is wrong with a decoded envelope's shape, or None when it has a usable one."""
    if isinstance(value, list):
        return _events_problem(value)
    if not isinstance(value, dict):
        return r.BATCH_NOT_AN_OBJECT_OR_ARRAY
    if "events" not in value:
        return r.BATCH_MISSING_EVENTS
    if any(key not in _ENVELOPE_FIELDS for key in value):
        return r.BATCH_UNKNOWN_FIELD
    events, sent_at = value["events"], value.get("sent_at")
    sent_at_ok = sent_at is None or (isinstance(sent_at, int) and not isinstance(sent_at, bool))
    if not isinstance(events, list) or not sent_at_ok:
        return r.BATCH_INVALID_ENVELOPE
    return _events_problem(events)


def _events_problem(events: list[object]) -> str | None:
    return None if all(isinstance(item, dict) for item in events) else r.BATCH_EVENT_NOT_AN_OBJECT


def _refuse_constant(name: str) -> None:
    raise ValueError(name)
