"""JSON Schema (2020-12) for the batches a tracking plan accepts, for SDKs and tests.

The base comes from msgspec's own schema of the wire Structs in ``stumble.events``, so types,
bounds and required fields cannot drift from what the collector decodes. The plan then
narrows it: one branch per declared event name (``oneOf`` on a constant ``event_name``), the
``values`` lists as enums, declared custom parameters with their types and bounds, context
enums, and the identifier pattern on every identifier string (the collector checks that
pattern in its privacy guard rather than in msgspec, so msgspec's schema does not carry it).
"""

from __future__ import annotations

import copy
from typing import Any, Final

import msgspec

from stumble.events import (
    EVENT_CLASSES,
    IDENTIFIER_MAX_LENGTH,
    IDENTIFIER_PATTERN,
    KIND_TO_CLASS,
    MAX_CUSTOM_PARAMS,
    Batch,
)
from stumble.plan.model import EventSpec, ParamSpec, TrackingPlan

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

JsonSchema = dict[str, Any]

# The JSON type each plan parameter type travels as on the wire.
PARAM_JSON_TYPES: Final = {
    "identifier": "string",
    "enum": "string",
    "int": "integer",
    "number": "number",
    "bool": "boolean",
    "duration_ms": "number",
    "count": "integer",
    "bytes": "integer",
}
NON_NEGATIVE: Final = frozenset({"duration_ms", "count", "bytes"})


def plan_json_schema(plan: TrackingPlan) -> JsonSchema:
    """The schema of ``{"sent_at": ..., "events": [...]}`` for ``plan``.

    ``$defs/event`` is the schema of one event, for validating events one by one. The plan
    must be valid (``validate_plan``): an event of an unknown kind raises ``KeyError``.
    """
    components = _wire_components()
    defs: dict[str, JsonSchema] = {"context": _context_schema(components["Context"], plan)}
    for name, spec in plan.events.items():
        defs[_event_def_name(name)] = _event_schema(plan, name, spec, components)
    defs["event"] = {"oneOf": [{"$ref": _ref(_event_def_name(name))} for name in plan.events]}
    envelope = components["Batch"]
    envelope["properties"]["events"]["items"] = {"$ref": _ref("event")}
    _add_identifier_pattern(defs)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "stumble event batch",
        "description": f"A batch of events accepted by tracking plan schema_version "
        f"{plan.schema_version}.",
        **{key: value for key, value in envelope.items() if key not in ("title", "description")},
        "$defs": defs,
    }


def _wire_components() -> dict[str, JsonSchema]:
    _, components = msgspec.json.schema_components([Batch, *EVENT_CLASSES])
    return copy.deepcopy(components)  # narrowed in place below


def _ref(def_name: str) -> str:
    # JSON Pointer escaping: identifiers may contain `/` (never `~`).
    return "#/$defs/" + def_name.replace("/", "~1")


def _event_def_name(name: str) -> str:
    return f"event.{name}"


def _context_schema(base: JsonSchema, plan: TrackingPlan) -> JsonSchema:
    schema = {key: value for key, value in base.items() if key != "title"}
    for dimension, values in plan.context.items():
        if dimension in schema["properties"]:
            schema["properties"][dimension] = _closed(schema["properties"][dimension], values)
    return schema


def _event_schema(
    plan: TrackingPlan, name: str, spec: EventSpec, components: dict[str, JsonSchema]
) -> JsonSchema:
    schema = copy.deepcopy(components[KIND_TO_CLASS[spec.kind].__name__])
    schema["title"] = name
    schema["description"] = spec.description or f"A `{spec.kind}` event."
    if spec.deprecated:
        schema["deprecated"] = True
    properties = schema["properties"]
    properties["kind"] = {"const": spec.kind}
    properties["event_name"] = {"const": name}
    properties["context"] = {"$ref": _ref("context")}
    if plan.min_schema_version is not None:
        # Not a constraint: the collector keeps events from older clients during a rollout and
        # data health reports them as stale, which is more useful than losing them.
        properties["schema_version"]["description"] = (
            f"Below {plan.min_schema_version} is accepted but reported as stale."
        )
    for field_name, values in spec.values.items():
        properties[field_name] = _closed(properties[field_name], values)
    if "params" in properties:
        properties["params"] = _params_schema(spec, properties["params"])
    return schema


def _closed(field_schema: JsonSchema, values: tuple[str, ...]) -> JsonSchema:
    """The same field, with its identifier strings restricted to ``values``."""
    if "anyOf" in field_schema:  # optional: keep the `null` branch msgspec accepts
        return {**field_schema, "anyOf": [_closed(s, values) for s in field_schema["anyOf"]]}
    if field_schema.get("type") == "array":
        return {**field_schema, "items": _closed(field_schema["items"], values)}
    if field_schema.get("type") == "string":
        return {"enum": list(values)}
    return field_schema


def _params_schema(spec: EventSpec, wire_params: JsonSchema) -> JsonSchema:
    # The wire accepts a union of scalar types per value; the plan picks one per parameter.
    base_by_type = {
        branch["type"]: branch for branch in wire_params["additionalProperties"]["anyOf"]
    }
    return {
        "type": "object",
        "properties": {
            name: _param_schema(param, base_by_type) for name, param in spec.params.items()
        },
        "required": [name for name, param in spec.params.items() if param.required],
        "additionalProperties": False,
        "maxProperties": MAX_CUSTOM_PARAMS,
    }


def _param_schema(param: ParamSpec, base_by_type: dict[str, JsonSchema]) -> JsonSchema:
    if param.type == "enum":
        schema: JsonSchema = {"enum": list(param.values)}
    else:
        schema = dict(base_by_type[PARAM_JSON_TYPES[param.type]])
    if param.type in NON_NEGATIVE:
        schema["minimum"] = max(schema.get("minimum", 0), 0)
    # The plan's bounds can only tighten the wire's, never widen them.
    if param.min is not None:
        schema["minimum"] = _tidy_number(max(schema.get("minimum", param.min), param.min))
    if param.max is not None:
        schema["maximum"] = _tidy_number(min(schema.get("maximum", param.max), param.max))
    if param.description:
        schema["description"] = param.description
    return schema


def _tidy_number(value: float) -> float | int:
    """``10000000.0`` as ``10000000``: the plan's YAML bounds arrive as floats."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _add_identifier_pattern(node: object) -> None:
    """Add the identifier pattern to every identifier-shaped string schema under ``node``."""
    if isinstance(node, dict):
        is_identifier = (
            node.get("type") == "string"
            and "pattern" not in node
            and node.get("maxLength") == IDENTIFIER_MAX_LENGTH
        )
        if is_identifier:
            node["pattern"] = IDENTIFIER_PATTERN
        for child in node.values():
            _add_identifier_pattern(child)
    elif isinstance(node, list):
        for child in node:
            _add_identifier_pattern(child)
