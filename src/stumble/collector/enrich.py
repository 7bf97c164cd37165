"""From a guarded wire event to the spool line: server time, clock skew, pseudonyms, flat row.

Clock skew: the client stamps each event (``ts``) and the batch (``sent_at``) with its own
clock; the server knows when it received the batch. ``received_at - sent_at`` is the client's
offset (plus a little network time), and adding it to ``ts`` puts the event on server time.
Retention always uses ``received_at``, which the client cannot influence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from stumble.access.keys import WriteKey
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.events import CONTEXT_FIELDS, EVENT_CLASSES, BaseEvent, CustomEvent, Event

MIN_PLAUSIBLE_MS: Final = 946_684_800_000
"""2000-01-01: anything earlier is a clock that was never set, or seconds sent as ms."""
SECONDS_NOT_MS_BELOW: Final = 100_000_000_000
SENT_AT_TOLERANCE_MS: Final = 1_000

_encode: Final = msgspec.json.Encoder().encode
_FIELDS: Final[dict[type[BaseEvent], tuple[str, ...]]] = {
    cls: cls.__struct_fields__ for cls in EVENT_CLASSES
}
_KINDS: Final[dict[type[BaseEvent], str]] = {
    cls: str(cls.__struct_config__.tag) for cls in EVENT_CLASSES
}
assert CONTEXT_FIELDS == ("role", "division", "device_type", "browser", "region")


@dataclass(frozen=True, slots=True)
class TimeRules:
    max_age_ms: int
    max_future_ms: int


def clock_skew_ms(sent_at: int | None, received_at_ms: int) -> int:
    """The client's clock offset; zero when ``sent_at`` is missing or itself implausible."""
    if sent_at is None or sent_at < MIN_PLAUSIBLE_MS:
        return 0
    return received_at_ms - sent_at


def time_problem(
    ts: int, sent_at: int | None, skew_ms: int, received_at_ms: int, rules: TimeRules
) -> str | None:
    """A reason code when an event's time cannot be trusted, else None."""
    if ts < MIN_PLAUSIBLE_MS:
        if ts >= MIN_PLAUSIBLE_MS // 1000 and ts < SECONDS_NOT_MS_BELOW:
            return "time.seconds_not_ms"
        return "time.implausible"
    if sent_at is not None and sent_at >= MIN_PLAUSIBLE_MS and ts > sent_at + SENT_AT_TOLERANCE_MS:
        return "time.after_sent_at"
    corrected = ts + skew_ms
    if corrected < received_at_ms - rules.max_age_ms:
        return "time.too_old"
    if corrected > received_at_ms + rules.max_future_ms:
        return "time.in_future"
    return None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the server knows about one request, shared by all its events."""

    key: WriteKey
    received_at_ms: int
    skew_ms: int
    device_type: str | None
    browser: str | None
    origin: str | None


class Enricher:
    def __init__(self, session_keys: SessionKeyRing, event_ids: EventIdKey) -> None:
        self._session_keys = session_keys
        self._event_ids = event_ids

    def stored_line(self, event: Event, request: RequestContext, redactions: int) -> bytes:
        """One NDJSON line of ``StoredEvent`` shape for the spool."""
        return _encode(self.stored_row(event, request, redactions)) + b"\n"

    def stored_row(self, event: Event, request: RequestContext, redactions: int) -> dict[str, Any]:
        # One pass over the struct's values, skipping unset ones (StoredEvent omits defaults).
        cls = type(event)
        row = {
            name: value
            for name, value in zip(_FIELDS[cls], msgspec.structs.astuple(event), strict=True)
            if value is not None and value != []
        }
        context = row.pop("context")
        row["kind"] = _KINDS[cls]
        row["event_id"] = self._event_ids.stored_id(event.event_id)
        row["session_id"] = self._session_keys.pseudonym(event.session_id, request.received_at_ms)
        row["client_ts"] = event.ts
        row["ts"] = event.ts + request.skew_ms
        row["skew_ms"] = request.skew_ms
        row["received_at"] = request.received_at_ms
        row["environment"] = request.key.environment
        row["key_id"] = request.key.key_id
        row["sample_rate"] = request.key.sample_rate
        row["redactions"] = redactions
        role, division, device_type, browser, region = msgspec.structs.astuple(context)
        if role is not None:
            row["role"] = role
        if division is not None:
            row["division"] = division
        if region is not None:
            row["region"] = region
        # The client may state its device and browser from the plan's lists; otherwise the
        # coarse classes derived from the User-Agent (never stored itself) fill them in.
        device_type = device_type or request.device_type
        if device_type is not None:
            row["device_type"] = device_type
        browser = browser or request.browser
        if browser is not None:
            row["browser"] = browser
        if isinstance(event, CustomEvent):
            row.pop("params", None)
            if event.params:
                row["params"] = _encode(event.params).decode()
        return row
