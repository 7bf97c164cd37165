"""Every reason code stumble gives for refusing or trimming input: our own constants.

A reason code is what a client reads in a 4xx or 202 answer, what the quarantine counts and what
a metrics label carries, so it must not change when a dependency rewords an error message:
no code is ever derived from a library's message text. ``tests/test_reasons.py`` pins the full
list; adding a code is a deliberate change to that test.

Families: ``batch.*`` the envelope is unusable (400/413), ``schema.*`` an event breaks the closed
wire schema, ``plan.*`` it breaks the tracking plan, ``pii.*`` a detector found personal data or
a secret (one code per detector), ``time.*`` its time cannot be trusted.
"""

from __future__ import annotations

from typing import Final

from stumble.privacy.detectors import Detector

# --- the envelope (the whole request is refused) ------------------------------------------
BATCH_MALFORMED_JSON: Final = "batch.malformed_json"
BATCH_TRUNCATED_JSON: Final = "batch.truncated_json"
BATCH_INVALID_UTF8: Final = "batch.invalid_utf8"
BATCH_TOO_DEEP: Final = "batch.too_deep"
BATCH_NOT_AN_OBJECT_OR_ARRAY: Final = "batch.not_an_object_or_array"
BATCH_MISSING_EVENTS: Final = "batch.missing_events"
BATCH_UNKNOWN_FIELD: Final = "batch.unknown_field"
BATCH_INVALID_ENVELOPE: Final = "batch.invalid_envelope"
BATCH_EVENT_NOT_AN_OBJECT: Final = "batch.event_not_an_object"
BATCH_TOO_MANY_EVENTS: Final = "batch.too_many_events"
BATCH_TOO_MANY_OBJECTS: Final = "batch.too_many_objects"

# --- the request (HTTP refusals before any event is read) --------------------------------
METHOD_NOT_ALLOWED: Final = "method.not_allowed"
HEADERS_TOO_LARGE: Final = "headers.too_large"
KEY_MISSING: Final = "key.missing"
KEY_UNKNOWN_OR_REVOKED: Final = "key.unknown_or_revoked"
KEY_DISABLED: Final = "key.disabled"
ORIGIN_NOT_ALLOWED: Final = "origin.not_allowed"
BODY_UNSUPPORTED_CONTENT_TYPE: Final = "body.unsupported_content_type"
BODY_UNSUPPORTED_CONTENT_ENCODING: Final = "body.unsupported_content_encoding"
BODY_TOO_LARGE: Final = "body.too_large"
BODY_TOO_LARGE_AFTER_DECOMPRESSION: Final = "body.too_large_after_decompression"
BODY_BAD_GZIP: Final = "body.bad_gzip"
BODY_READ_TIMEOUT: Final = "body.read_timeout"
BODY_CLIENT_DISCONNECTED: Final = "body.client_disconnected"
BATCH_EMPTY_BODY: Final = "batch.empty_body"
RATE_LIMITED: Final = "rate.limited"

# --- one event against the closed schema --------------------------------------------------
SCHEMA_TYPE: Final = "schema.type"
SCHEMA_UNKNOWN_KIND: Final = "schema.unknown_kind"
SCHEMA_UNKNOWN_FIELD: Final = "schema.unknown_field"
SCHEMA_MISSING_FIELD: Final = "schema.missing_field"
SCHEMA_NOT_ALLOWED: Final = "schema.not_allowed"
SCHEMA_LENGTH: Final = "schema.length"
SCHEMA_OUT_OF_RANGE: Final = "schema.out_of_range"
SCHEMA_PATTERN: Final = "schema.pattern"
SCHEMA_INVALID: Final = "schema.invalid"
SCHEMA_INVALID_STRING: Final = "schema.invalid_string"
SCHEMA_NOT_IDENTIFIER: Final = "schema.not_identifier"
SCHEMA_NOT_A_ROUTE: Final = "schema.not_a_route"
SCHEMA_NOT_A_TIME_ZONE: Final = "schema.not_a_time_zone"
SCHEMA_NOT_A_VERSION: Final = "schema.not_a_version"

# --- one event against the tracking plan ---------------------------------------------------
PLAN_UNKNOWN_EVENT: Final = "plan.unknown_event"
PLAN_KIND_MISMATCH: Final = "plan.kind_mismatch"
PLAN_VALUE_NOT_ALLOWED: Final = "plan.value_not_allowed"
PLAN_CONTEXT_NOT_ALLOWED: Final = "plan.context_not_allowed"
PLAN_UNKNOWN_PARAM: Final = "plan.unknown_param"
PLAN_PARAM_INVALID: Final = "plan.param_invalid"
PLAN_MISSING_PARAM: Final = "plan.missing_param"
PLAN_ROUTE_NOT_DECLARED: Final = "plan.route_not_declared"

# --- time -----------------------------------------------------------------------------------
TIME_SECONDS_NOT_MS: Final = "time.seconds_not_ms"
TIME_IMPLAUSIBLE: Final = "time.implausible"
TIME_AFTER_SENT_AT: Final = "time.after_sent_at"
TIME_TOO_OLD: Final = "time.too_old"
TIME_IN_FUTURE: Final = "time.in_future"


def pii_reason(detector: Detector) -> str:
    """``pii.<detector>``: the reason code of a detector hit."""
    return _PII_REASONS[detector]


_PII_REASONS: Final[dict[Detector, str]] = {d: f"pii.{d.value}" for d in Detector}

EVENT_REASONS: Final[frozenset[str]] = frozenset(
    value
    for name, value in dict(globals()).items()
    if name.startswith(("SCHEMA_", "PLAN_", "TIME_")) and isinstance(value, str)
) | frozenset(_PII_REASONS.values())
"""Every reason an event can be rejected or trimmed for (per event in a 202, in the quarantine)."""

BATCH_REASONS: Final[frozenset[str]] = frozenset(
    value for name, value in dict(globals()).items() if name.startswith("BATCH_")
)
"""Every reason a whole batch can be refused for (a 400 or 413 answer)."""

REQUEST_REASONS: Final[frozenset[str]] = frozenset(
    value
    for name, value in dict(globals()).items()
    if name.startswith(("METHOD_", "HEADERS_", "KEY_", "ORIGIN_", "BODY_", "RATE_"))
    and isinstance(value, str)
)
"""Every reason a request is refused for before its events are read (401-431)."""
