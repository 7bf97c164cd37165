"""Why an event failed the closed schema, classified by walking our own type declarations."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from tests.collector.conftest import event

from stumble.events import decode_event
from stumble.validation import explain_envelope, explain_event


@pytest.mark.parametrize(
    ("changes", "reason", "path"),
    [
        ({"ts": "12"}, "schema.type", "$.ts"),
        ({"ts": True}, "schema.type", "$.ts"),  # a bool is not a number on the wire
        ({"ts": 1.5}, "schema.type", "$.ts"),
        ({"ts": -1}, "schema.out_of_range", "$.ts"),
        ({"schema_version": 0}, "schema.out_of_range", "$.schema_version"),
        ({"event_id": "not-a-uuid"}, "schema.pattern", "$.event_id"),
        ({"screen_id": ""}, "schema.length", "$.screen_id"),
        ({"screen_id": "x" * 65}, "schema.length", "$.screen_id"),
        ({"feature_flags": ["a"] * 33}, "schema.length", "$.feature_flags"),
        ({"feature_flags": [1]}, "schema.type", "$.feature_flags[]"),
        ({"context": {"role": 1}}, "schema.type", "$.context.role"),
        ({"context": {"name": "x"}}, "schema.unknown_field", "$.context.*"),
        ({"context": []}, "schema.type", "$.context"),
        ({"aigerim_nurlanova": 1}, "schema.unknown_field", "$.*"),
        ({"action_id": None}, "schema.missing_field", "$.action_id"),
        ({"kind": "teleport"}, "schema.unknown_kind", "$.kind"),
        ({"kind": None}, "schema.missing_field", "$.kind"),
    ],
)
def test_each_failure_gets_its_code_and_a_safe_path(
    changes: dict[str, Any], reason: str, path: str
) -> None:
    obj = {k: v for k, v in {**event(), **changes}.items() if v is not None}
    with pytest.raises(msgspec.ValidationError):
        decode_event(msgspec.json.encode(obj))  # msgspec decides whether...
    problem = explain_event(obj)  # ...we decide why
    assert (problem.reason, problem.path) == (reason, path)


@pytest.mark.parametrize(
    ("changes", "reason", "path"),
    [
        ({"status": "maybe"}, "schema.not_allowed", "$.status"),
        ({"step": 101}, "schema.out_of_range", "$.step"),
    ],
)
def test_enums_and_bounds_of_other_kinds(changes: dict[str, Any], reason: str, path: str) -> None:
    obj = {**event("form_submit"), **changes}
    problem = explain_event(obj)
    assert (problem.reason, problem.path) == (reason, path)


def test_parameter_names_are_never_in_a_path() -> None:
    obj = {**event("custom"), "params": {"ivan_petrov": [1]}}
    problem = explain_event(obj)
    assert (problem.reason, problem.path) == ("schema.type", "$.params.*")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "batch.truncated_json"),
        (b'{"events": [1', "batch.truncated_json"),
        (b"{'events': []}", "batch.malformed_json"),
        (b'{"events": [NaN]}', "batch.malformed_json"),
        (b"\xff", "batch.invalid_utf8"),
        (b"[" * 100_000, "batch.too_deep"),
        (b"null", "batch.not_an_object_or_array"),
        (b'{"sent_at": 1}', "batch.missing_events"),
        (b'{"events": [], "x": 1}', "batch.unknown_field"),
        (b'{"events": {}}', "batch.invalid_envelope"),
        (b'{"events": [], "sent_at": "now"}', "batch.invalid_envelope"),
        (b"[1]", "batch.event_not_an_object"),
    ],
)
def test_envelopes(body: bytes, reason: str) -> None:
    assert explain_envelope(body) == reason
