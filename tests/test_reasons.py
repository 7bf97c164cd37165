"""The full list of reason codes is pinned: a client, a dashboard or an alert may depend on one,
so adding, renaming or removing a code must be a deliberate change to this test."""

from __future__ import annotations

import ast
from pathlib import Path

from stumble import reasons

SRC = Path(reasons.__file__).parent

EVENT_REASONS = {
    "pii.bearer", "pii.card", "pii.digit_run", "pii.email", "pii.iban", "pii.ip", "pii.jwt",
    "pii.kz_bin", "pii.kz_iin", "pii.pem", "pii.person_name", "pii.phone", "pii.ru_inn",
    "pii.ru_snils", "pii.sensitive_key", "pii.token", "pii.url_credentials",
    "plan.context_not_allowed", "plan.kind_mismatch", "plan.missing_param",
    "plan.param_invalid", "plan.route_not_declared", "plan.unknown_event",
    "plan.unknown_param", "plan.value_not_allowed",
    "schema.invalid", "schema.invalid_string", "schema.length", "schema.missing_field",
    "schema.not_a_route", "schema.not_a_time_zone", "schema.not_a_version",
    "schema.not_allowed", "schema.not_identifier", "schema.out_of_range", "schema.pattern",
    "schema.type", "schema.unknown_field", "schema.unknown_kind",
    "time.after_sent_at", "time.implausible", "time.in_future", "time.seconds_not_ms",
    "time.too_old",
}  # fmt: skip

BATCH_REASONS = {
    "batch.empty_body", "batch.event_not_an_object", "batch.invalid_envelope",
    "batch.invalid_utf8", "batch.malformed_json", "batch.missing_events",
    "batch.not_an_object_or_array", "batch.too_deep", "batch.too_many_events",
    "batch.too_many_objects", "batch.truncated_json", "batch.unknown_field",
}  # fmt: skip

REQUEST_REASONS = {
    "method.not_allowed", "headers.too_large", "key.missing", "key.unknown_or_revoked",
    "key.disabled", "origin.not_allowed", "body.unsupported_content_type",
    "body.unsupported_content_encoding", "body.too_large", "body.too_large_after_decompression",
    "body.bad_gzip", "body.read_timeout", "body.client_disconnected", "rate.limited",
}  # fmt: skip


def test_the_full_lists_are_pinned() -> None:
    assert reasons.EVENT_REASONS == EVENT_REASONS
    assert reasons.BATCH_REASONS == BATCH_REASONS
    assert reasons.REQUEST_REASONS == REQUEST_REASONS


def test_no_reason_is_derived_from_a_library_message() -> None:
    """msgspec's wording must never decide a code: nothing on the ingest path reads an
    exception's text (``str(error)``) to classify it."""
    for module in ("admission.py", "validation.py", "privacy/guard.py", "collector/ingest.py"):
        tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "str":
                argument = node.args[0] if node.args else None
                assert not (
                    isinstance(argument, ast.Name) and argument.id in {"error", "exc", "e"}
                ), f"{module} reads an exception's message"
