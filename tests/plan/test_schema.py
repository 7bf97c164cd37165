"""The JSON Schema export: a real validator accepts what the plan allows and nothing else.

Example events are built from the plan and the wire Structs' field information, validated
against the exported schema with ``jsonschema`` and decoded by the collector's own msgspec
decoder, so the schema and the wire format are checked against each other.
"""

from __future__ import annotations

import copy
import json
import textwrap
import uuid
from typing import Any

import jsonschema
import msgspec
import pytest

from stumble.events import decode_event
from stumble.plan import TrackingPlan, default_plan_path, load_plan, plan_json_schema
from stumble.plan.fields import WireField, wire_fields

PARAM_SAMPLES: dict[str, Any] = {
    "identifier": "code_1",
    "int": -3,
    "number": 2.5,
    "bool": True,
    "duration_ms": 1500.5,
    "count": 42,
    "bytes": 2048,
}


@pytest.fixture(scope="module")
def plan() -> TrackingPlan:
    return load_plan(default_plan_path())


@pytest.fixture(scope="module")
def validator(plan: TrackingPlan) -> jsonschema.Draft202012Validator:
    schema = plan_json_schema(plan)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def example_event(plan: TrackingPlan, name: str) -> dict[str, Any]:
    """A valid event for ``name``: every required field, plus every closed optional one."""
    spec = plan.events[name]
    event: dict[str, Any] = {
        "kind": spec.kind,
        "event_name": name,
        "event_id": str(uuid.uuid4()),
        "ts": 1_700_000_000_000,
        "session_id": "s_01",
        "schema_version": plan.schema_version,
        "context": {dimension: values[-1] for dimension, values in plan.context.items()},
    }
    for field in wire_fields(spec.kind).values():
        if field.name not in event and (field.required or field.name in spec.values):
            event[field.name] = sample_value(field, spec.values.get(field.name))
    if spec.params:
        event["params"] = {
            param_name: param.values[0] if param.type == "enum" else PARAM_SAMPLES[param.type]
            for param_name, param in spec.params.items()
        }
    return event


def sample_value(field: WireField, closed: tuple[str, ...] | None) -> Any:
    if closed:
        return [closed[-1]] if field.shape == "identifier_list" else closed[-1]
    if field.shape == "choice":
        return field.choices[0]
    if field.shape in ("int", "number"):
        return field.minimum
    return "v1.2.3" if field.shape == "identifier" else "unexpected"


def batch_of(*events: dict[str, Any]) -> dict[str, Any]:
    return {"sent_at": 1_700_000_000_500, "events": list(events)}


def test_the_schema_is_valid_json_schema_2020_12(plan: TrackingPlan) -> None:
    schema = plan_json_schema(plan)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert json.loads(json.dumps(schema)) == schema


def test_an_example_of_every_declared_event_is_valid_and_decodes(plan, validator) -> None:
    events = [example_event(plan, name) for name in plan.events]
    errors = [error.message for error in validator.iter_errors(batch_of(*events))]
    assert errors == []
    for event in events:  # the schema never allows what the wire would refuse
        decode_event(msgspec.json.encode(event))


def test_a_bare_event_validates_against_the_event_definition(plan, validator) -> None:
    event_schema = {"$ref": "#/$defs/event", "$defs": plan_json_schema(plan)["$defs"]}
    jsonschema.validate(example_event(plan, "screen_view"), event_schema)


def mutated(plan: TrackingPlan, name: str, path: list[str], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(example_event(plan, name))
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("screen_view", ["colour"], "red"),  # unknown key
        ("screen_view", ["screen_id"], "settings"),  # not among the declared values
        ("screen_view", ["event_name"], "page_view"),  # not a declared event
        ("screen_view", ["kind"], "action"),  # the name belongs to another kind
        ("navigation", ["screen_id"], "has a space"),  # not an identifier
        ("navigation", ["screen_id"], "x" * 65),  # too long
        ("navigation", ["nav"], "forward"),  # not one of the fixed choices
        ("form_submit", ["step"], 0),  # below the wire's bound
        ("request_next_clicked", ["target"], "btn_back"),  # a closed optional field
        ("report_exported", ["params", "rows"], 10_000_001),  # above the plan's bound
        ("report_exported", ["params", "rows"], -1),  # a count is never negative
        ("report_exported", ["params", "rows"], 1.5),  # a count is whole
        ("report_exported", ["params", "report_format"], "docx"),  # not in the enum
        ("report_exported", ["params", "comment"], "free text"),  # undeclared parameter
        ("report_exported", ["params", "scheduled"], "yes"),  # wrong type
        ("vital", ["context", "role"], "ceo"),  # not among the context values
        ("vital", ["context", "mood"], "happy"),  # not a context dimension
    ],
)
def test_an_event_outside_the_plan_is_invalid(plan, validator, name, path, value) -> None:
    assert validator.is_valid(batch_of(example_event(plan, name)))
    assert not validator.is_valid(batch_of(mutated(plan, name, path, value)))


def test_a_required_parameter_is_required(plan, validator) -> None:
    event = example_event(plan, "report_exported")
    del event["params"]["report_format"]
    assert not validator.is_valid(batch_of(event))


def test_the_envelope_is_closed(plan, validator) -> None:
    batch = batch_of(example_event(plan, "vital"))
    assert validator.is_valid(batch)
    assert not validator.is_valid({**batch, "user": "someone"})
    assert not validator.is_valid({"sent_at": 1})


def test_identifier_strings_carry_the_pattern_and_max_length(plan: TrackingPlan) -> None:
    screen_view = plan_json_schema(plan)["$defs"]["event.screen_view"]["properties"]
    assert screen_view["ui_version"]["pattern"] == "^[A-Za-z0-9_.:/-]{1,64}$"
    assert screen_view["ui_version"]["maxLength"] == 64
    assert screen_view["screen_id"]["enum"] == list(plan.events["screen_view"].values["screen_id"])


def test_closed_feature_flags_restrict_each_flag() -> None:
    plan = load_plan(
        textwrap.dedent("""
            schema_version: 1
            events:
              opened:
                kind: screen_view
                owner: team_forms
                description: Opened.
                values: {feature_flags: [new_form, dark_mode]}
        """)
    )
    validator = jsonschema.Draft202012Validator(plan_json_schema(plan))
    event = example_event(plan, "opened")
    assert validator.is_valid(batch_of({**event, "feature_flags": ["new_form", "dark_mode"]}))
    assert not validator.is_valid(batch_of({**event, "feature_flags": ["new_form", "beta"]}))


def test_event_names_with_a_slash_get_a_working_reference() -> None:
    plan = load_plan(
        textwrap.dedent("""
            schema_version: 1
            events:
              forms/opened: {kind: screen_view, owner: team_forms, description: Opened.}
        """)
    )
    validator = jsonschema.Draft202012Validator(plan_json_schema(plan))
    event = example_event(plan, "forms/opened")
    assert validator.is_valid(batch_of(event))
    assert not validator.is_valid(batch_of({**event, "event_name": "forms/closed"}))
