"""From an admitted wire event to the spool line: server time, pseudonyms, one flat row.

The client's clock is corrected with the batch's skew (see ``admission.Arrival``); session and
event ids are replaced by keyed pseudonyms; context is flattened; the device class and
browser family derived from the User-Agent fill in what the client did not state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from stumble.access.keys import WriteKey
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.admission import Admission
from stumble.events import CONTEXT_FIELDS, EVENT_CLASSES, BaseEvent, CustomEvent, Event

_encoder: Final = msgspec.json.Encoder()
_encode: Final = _encoder.encode
_FIELDS: Final[dict[type[BaseEvent], tuple[str, ...]]] = {
    cls: cls.__struct_fields__ for cls in EVENT_CLASSES
}
_KINDS: Final[dict[type[BaseEvent], str]] = {
    cls: str(cls.__struct_config__.tag) for cls in EVENT_CLASSES
}
assert CONTEXT_FIELDS == ("role", "division", "device_type", "browser", "region")


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

    def stored_lines(self, admission: Admission, request: RequestContext) -> bytes:
        """The NDJSON spool lines of every event an admission keeps."""
        trimmed = admission.redaction_counts()
        rows = [
            self.stored_row(event, request, trimmed.get(position, 0))
            for position, event in enumerate(admission.stored)
        ]
        return _encoder.encode_lines(rows) if rows else b""

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
