"""The stored row."""

from __future__ import annotations

from pathlib import Path

import msgspec

from stumble.access.keys import KeyRing
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.collector.enrich import Enricher, RequestContext
from stumble.events import StoredEvent, decode_event

NOW = 1_763_812_800_000


def test_stored_row_is_a_valid_stored_event_with_server_side_fields(tmp_path: Path) -> None:
    _, key = KeyRing(tmp_path).create("prod", [])
    enricher = Enricher(SessionKeyRing(tmp_path), EventIdKey(tmp_path))
    event = decode_event(
        b'{"kind":"field_error","event_id":"3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f",'
        b'"event_name":"field_error","ts":1763812790000,"session_id":"s_abc","screen_id":"request_create",'
        b'"schema_version":3,"ui_version":"1.4.2","context":{"role":"operator"},'
        b'"form_id":"service_request","field_id":"iin_bin","error_type":"format","attempt":2,"step":2}'
    )
    request = RequestContext(key, NOW, 5000, "desktop", "chrome", None)
    row = msgspec.json.decode(enricher.stored_line(event, request, 0), type=StoredEvent)
    assert row.environment == "prod" and row.key_id == key.key_id
    assert row.ts == 1763812795000 and row.client_ts == 1763812790000 and row.skew_ms == 5000
    assert row.session_id.startswith("h_") and row.session_id != "s_abc"
    assert row.event_id != "3f2b8c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f"
    assert (row.role, row.device_type, row.browser) == ("operator", "desktop", "chrome")
    assert (row.field_id, row.error_type, row.attempt, row.step) == ("iin_bin", "format", 2, 2)
