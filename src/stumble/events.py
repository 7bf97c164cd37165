"""The wire format: a batch envelope, the event kinds, and the stored row.

Everything a client may send is declared here, closed: an unknown key is an error, every
string is an identifier (or a route, which the privacy guard turns into a path template),
every number is bounded. There is no free-text type, so a name, a comment or a field's value
has nowhere to go. ``environment`` is deliberately absent: it comes from the write key.

A batch is decoded in two steps so that one bad event never fails its batch: the envelope is
decoded with each event left as raw JSON (``msgspec.Raw``, a zero-copy slice), then every
event is decoded and validated on its own by one typed msgspec decoder (tagged by ``kind``).

``StoredEvent`` is the flat row the spool writes and the storage layer loads: one wide record
with a typed column per kind-specific field. It only ever holds guarded values.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

# --- scalar types -------------------------------------------------------------------------

IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9_.:/-]{1,64}$"
ROUTE_MAX_LENGTH: Final = 200
MAX_FEATURE_FLAGS: Final = 32
MAX_CUSTOM_PARAMS: Final = 16

IDENTIFIER_MAX_LENGTH: Final = 64

# The character class of an identifier is checked by the privacy guard, not here: a regex
# per string inside msgspec costs 5x the whole decode, while the guard screens every string
# of a batch in one pass. msgspec still enforces type and length, which are cheap.
Identifier = Annotated[str, Meta(min_length=1, max_length=IDENTIFIER_MAX_LENGTH)]
"""A code-list value: letters, digits and ``_ . : / -``, at most 64 characters (see the guard)."""

Fingerprint = Identifier
"""A hash of normalised stack frames made by the SDK. It is screened like any identifier:
a hex hash could carry a card number's digits, so the SDK encodes hashes in base 36."""

EVENT_ID_SHAPE: Final = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
EventId = Annotated[str, Meta(pattern=f"^{EVENT_ID_SHAPE}$")]
"""A client-made UUID, stable across retries; the storage layer deduplicates on it."""

RawRoute = Annotated[str, Meta(min_length=1, max_length=2048)]
"""A route or URL as the client saw it; the guard keeps the path template only."""

TimeZoneName = Identifier
"""An IANA zone name such as ``Asia/Almaty``: the guard keeps only real zone names (a pattern
would admit ``Asia/870412300129``), so here it is screened like any identifier."""

UUID_SHAPE: Final = (
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
ULID_SHAPE: Final = r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}"
SDK_SESSION_SHAPE: Final = r"s_[a-z]{20}"
SESSION_ID_SHAPES: Final = f"(?:{UUID_SHAPE}|{ULID_SHAPE}|{SDK_SESSION_SHAPE})"
"""Session ids other clients make, accepted as sent: a UUID (any case, with or without
dashes, as PostHog, Snowplow and OpenTelemetry send), a ULID, or the browser SDK's own
``s_`` + 20 letters. Random hex or base32 trips the digit-run, phone, card and token
detectors by chance (16% of UUIDs, every 32-hex id), yet a session id is never stored as
sent: it is re-keyed with the daily key first. Any other session id is screened as usual."""

REKEYED_FIELDS: Final[dict[str, re.Pattern[str]]] = {
    "event_id": re.compile(EVENT_ID_SHAPE),
    "session_id": re.compile(SESSION_ID_SHAPES),
}
"""Fields storage never keeps as sent (each is replaced by an HMAC under a server key), so a
value of the declared shape is not screened by the detectors. Nothing else is exempt."""

EpochMs = Annotated[int, Meta(ge=0, le=2**53)]
"""Client epoch milliseconds; plausibility (seconds sent as ms, year 2100) is the guard's job."""

Step = Annotated[int, Meta(ge=1, le=100)]
Attempt = Annotated[int, Meta(ge=1, le=1000)]
SchemaVersion = Annotated[int, Meta(ge=1, le=100_000)]
DurationMs = Annotated[float, Meta(ge=0, le=7 * 24 * 3600 * 1000)]
HttpStatus = Annotated[int, Meta(ge=100, le=599)]
VitalValue = Annotated[float, Meta(ge=0, le=3_600_000)]
ParamNumber = Annotated[float, Meta(ge=-1e15, le=1e15)]
ParamInt = Annotated[int, Meta(ge=-(2**53), le=2**53)]

FormStatus = Literal["success", "fail"]
OperationStatus = Literal["success", "fail", "timeout", "cancel"]
FieldErrorType = Literal[
    "required", "format", "range", "too_long", "too_short", "server", "conflict", "other"
]
NavigationKind = Literal["back", "cancel", "close", "retry", "reopen"]
ErrorKind = Literal["js", "network", "http", "timeout", "unavailable"]
VitalMetric = Literal["LCP", "INP", "CLS", "FCP", "TTFB", "long_task", "api"]
VitalRating = Literal["good", "needs-improvement", "poor"]

FIELD_ERROR_TYPES: Final[tuple[str, ...]] = FieldErrorType.__args__  # type: ignore[attr-defined]
OPERATION_STATUSES: Final[tuple[str, ...]] = OperationStatus.__args__  # type: ignore[attr-defined]
NAVIGATION_KINDS: Final[tuple[str, ...]] = NavigationKind.__args__  # type: ignore[attr-defined]


# --- context and the common envelope -----------------------------------------------------


class Context(
    msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True, gc=False
):
    """Coarse, non-identifying segments; the tracking plan may restrict each to an enum."""

    role: Identifier | None = None
    division: Identifier | None = None
    device_type: Identifier | None = None
    browser: Identifier | None = None
    region: Identifier | None = None


CONTEXT_FIELDS: Final[tuple[str, ...]] = Context.__struct_fields__


class BaseEvent(
    msgspec.Struct,
    tag_field="kind",
    forbid_unknown_fields=True,
    omit_defaults=True,
    frozen=True,
    kw_only=True,
    gc=False,
):
    """Fields every event carries."""

    event_id: EventId
    event_name: Identifier
    ts: EpochMs
    session_id: Identifier
    screen_id: Identifier
    schema_version: SchemaVersion
    ui_version: Identifier
    feature_flags: Annotated[list[Identifier], Meta(max_length=MAX_FEATURE_FLAGS)] = []
    experiment: Identifier | None = None
    tz: TimeZoneName | None = None
    context: Context = Context()

    @property
    def kind(self) -> str:
        """The tag this event was decoded with (``action``, ``field_error``...)."""
        return str(self.__struct_config__.tag)


# --- the kinds ----------------------------------------------------------------------------


class ActionEvent(BaseEvent, tag="action", frozen=True, gc=False):
    """A semantic action: what the person meant to do, never coordinates or element text."""

    action_id: Identifier
    target: Identifier | None = None
    position: Identifier | None = None


class ScreenViewEvent(BaseEvent, tag="screen_view", frozen=True, gc=False):
    route: RawRoute | None = None
    referrer_screen: Identifier | None = None


class FormSubmitEvent(BaseEvent, tag="form_submit", frozen=True, gc=False):
    form_id: Identifier
    step: Step
    attempt: Attempt
    status: FormStatus


class FieldErrorEvent(BaseEvent, tag="field_error", frozen=True, gc=False):
    """The fact of a validation error and its class; never the value that caused it."""

    form_id: Identifier
    field_id: Identifier
    error_type: FieldErrorType
    attempt: Attempt
    step: Step


class OperationStartEvent(BaseEvent, tag="operation_start", frozen=True, gc=False):
    operation_id: Identifier
    operation: Identifier


class OperationStepEvent(BaseEvent, tag="operation_step", frozen=True, gc=False):
    operation_id: Identifier
    operation: Identifier
    step_name: Identifier


class OperationEndEvent(BaseEvent, tag="operation_end", frozen=True, gc=False):
    operation_id: Identifier
    operation: Identifier
    status: OperationStatus
    duration_ms: DurationMs


class NavigationEvent(BaseEvent, tag="navigation", frozen=True, gc=False):
    nav: NavigationKind


class ErrorEvent(BaseEvent, tag="error", frozen=True, gc=False):
    """A failure by class: type and a fingerprint of normalised stack frames, never a message."""

    error_kind: ErrorKind
    error_type: Identifier | None = None
    fingerprint: Fingerprint | None = None
    module: Identifier | None = None
    http_status: HttpStatus | None = None
    route: RawRoute | None = None


class VitalEvent(BaseEvent, tag="vital", frozen=True, gc=False):
    """A Web Vital or timing: milliseconds, except CLS which is unitless."""

    metric: VitalMetric
    value: VitalValue
    rating: VitalRating | None = None
    route: RawRoute | None = None


ParamValue = Identifier | ParamInt | ParamNumber | bool


class CustomEvent(BaseEvent, tag="custom", frozen=True, gc=False):
    """A team-specific event; its parameters must be declared in the tracking plan."""

    params: Annotated[dict[Identifier, ParamValue], Meta(max_length=MAX_CUSTOM_PARAMS)] = {}


Event = (
    ActionEvent
    | ScreenViewEvent
    | FormSubmitEvent
    | FieldErrorEvent
    | OperationStartEvent
    | OperationStepEvent
    | OperationEndEvent
    | NavigationEvent
    | ErrorEvent
    | VitalEvent
    | CustomEvent
)

EVENT_CLASSES: Final[tuple[type[BaseEvent], ...]] = Event.__args__
KIND_TO_CLASS: Final[dict[str, type[BaseEvent]]] = {
    str(cls.__struct_config__.tag): cls for cls in EVENT_CLASSES
}
KINDS: Final[tuple[str, ...]] = tuple(KIND_TO_CLASS)
COMMON_FIELDS: Final[tuple[str, ...]] = BaseEvent.__struct_fields__


def kind_fields(kind: str) -> tuple[str, ...]:
    """The fields a kind adds to the common envelope, in declaration order."""
    cls = KIND_TO_CLASS[kind]
    return tuple(f for f in cls.__struct_fields__ if f not in COMMON_FIELDS)


# --- the batch envelope -------------------------------------------------------------------


class Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """``{"sent_at": <client epoch ms>, "events": [...]}``, events left raw to decode one by one."""

    events: list[msgspec.Raw]
    sent_at: EpochMs | None = None


class TypedBatch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The same envelope decoded in one go: the fast path when every event is well-formed."""

    events: list[Event]
    sent_at: EpochMs | None = None


event_decoder: Final = msgspec.json.Decoder(Event)
batch_decoder: Final = msgspec.json.Decoder(Batch)
typed_batch_decoder: Final = msgspec.json.Decoder(TypedBatch)
bare_batch_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
bare_typed_batch_decoder: Final = msgspec.json.Decoder(list[Event])


def is_bare_array(body: bytes) -> bool:
    return body.lstrip()[:1] == b"["


def decode_batch(body: bytes) -> Batch:
    """Decode the envelope (object or bare array) leaving events raw.

    Raises ``msgspec.DecodeError`` / ``msgspec.ValidationError`` when the envelope is malformed
    and ``RecursionError`` on absurd nesting.
    """
    if is_bare_array(body):
        return Batch(events=bare_batch_decoder.decode(body))
    return batch_decoder.decode(body)


def decode_typed_batch(body: bytes) -> TypedBatch:
    """Decode envelope and events in one pass; raises if any single event is invalid."""
    if is_bare_array(body):
        return TypedBatch(events=bare_typed_batch_decoder.decode(body))
    return typed_batch_decoder.decode(body)


def decode_event(raw: bytes | msgspec.Raw) -> Event:
    """Decode and validate one event; raises ``msgspec.ValidationError`` / ``DecodeError``."""
    event: Event = event_decoder.decode(raw)
    return event


# --- the stored row -----------------------------------------------------------------------


class StoredEvent(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """One guarded event as the spool writes it and storage loads it: flat, typed, no raw input.

    Times are epoch milliseconds. ``ts`` is the client time corrected for clock skew with the
    batch's ``sent_at``; ``client_ts`` is what the client said; ``received_at`` is server time
    (retention uses it). ``session_id`` is already re-keyed with the daily HMAC key.
    """

    event_id: str
    environment: str
    key_id: str
    sample_rate: float
    received_at: int
    ts: int
    client_ts: int
    skew_ms: int
    event_name: str
    kind: str
    session_id: str
    screen_id: str
    schema_version: int
    ui_version: str
    feature_flags: list[str] = []
    experiment: str | None = None
    tz: str | None = None
    role: str | None = None
    division: str | None = None
    device_type: str | None = None
    browser: str | None = None
    region: str | None = None
    redactions: int = 0
    # action
    action_id: str | None = None
    target: str | None = None
    position: str | None = None
    # screen_view / error / vital
    route: str | None = None
    referrer_screen: str | None = None
    # form_submit / field_error
    form_id: str | None = None
    step: int | None = None
    attempt: int | None = None
    status: str | None = None
    field_id: str | None = None
    error_type: str | None = None
    # operations
    operation_id: str | None = None
    operation: str | None = None
    step_name: str | None = None
    duration_ms: float | None = None
    # navigation
    nav: str | None = None
    # error
    error_kind: str | None = None
    fingerprint: str | None = None
    module: str | None = None
    http_status: int | None = None
    # vital
    metric: str | None = None
    value: float | None = None
    rating: str | None = None
    # custom: declared parameters only, as a JSON object text
    params: str | None = None


STORED_FIELDS: Final[tuple[str, ...]] = StoredEvent.__struct_fields__
