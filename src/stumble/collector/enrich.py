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
        """The NDJSON spool lines of every event an admission keeps, encoded in one call."""
        trimmed = admission.redaction_counts()
        server = _server_fields(request)
        rows = [
            self._row(event, request, server, trimmed.get(position, 0))
            for position, event in enumerate(admission.stored)
        ]
        return _encoder.encode_lines(rows) if rows else b""

    def stored_line(self, event: Event, request: RequestContext, redactions: int) -> bytes:
        """One NDJSON line of ``StoredEvent`` shape for the spool."""
        return _encode(self.stored_row(event, request, redactions)) + b"\n"

    def stored_row(self, event: Event, request: RequestContext, redactions: int) -> dict[str, Any]:
        return self._row(event, request, _server_fields(request), redactions)

    def _row(
        self, event: Event, request: RequestContext, server: dict[str, Any], redactions: int
    ) -> dict[str, Any]:
        # asdict is one C call; unset optional fields stay as nulls, which load as NULL exactly
        # like absent keys (the loader reads with an explicit column map).
        row = msgspec.structs.asdict(event)
        row.update(server)
        role, division, device_type, browser, region = msgspec.structs.astuple(row.pop("context"))
        if not row["feature_flags"]:
            del row["feature_flags"]  # stored as NULL, as before, not as an empty list
        row["kind"] = _KINDS[type(event)]
        row["event_id"] = self._event_ids.stored_id(event.event_id)
        row["session_id"] = self._session_keys.pseudonym(event.session_id, request.received_at_ms)
        row["client_ts"] = event.ts
        row["ts"] = event.ts + request.skew_ms
        row["redactions"] = redactions
        row["role"] = role
        row["division"] = division
        row["region"] = region
        # The client may state its device and browser from the plan's lists; otherwise the
        # coarse classes derived from the User-Agent (never stored itself) fill them in.
        row["device_type"] = device_type or request.device_type
        row["browser"] = browser or request.browser
        if isinstance(event, CustomEvent):
            row["params"] = _encode(event.params).decode() if event.params else None
        return row


def _server_fields(request: RequestContext) -> dict[str, Any]:
    """What every row of one request shares: who sent it, when it arrived, the clock skew."""
    return {
        "environment": request.key.environment,
        "key_id": request.key.key_id,
        "sample_rate": request.key.sample_rate,
        "received_at": request.received_at_ms,
        "skew_ms": request.skew_ms,
    }
