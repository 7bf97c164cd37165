"""Time correction and the stored row."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from stumble.access.keys import KeyRing
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.collector.enrich import (
    Enricher,
    RequestContext,
    TimeRules,
    clock_skew_ms,
    time_problem,
)
from stumble.events import StoredEvent, decode_event

NOW = 1_763_812_800_000
RULES = TimeRules(max_age_ms=30 * 86_400_000, max_future_ms=300_000)


def test_skew_comes_from_sent_at() -> None:
    assert clock_skew_ms(NOW - 3_600_000, NOW) == 3_600_000  # client clock an hour slow
    assert clock_skew_ms(None, NOW) == 0
    assert clock_skew_ms(0, NOW) == 0  # an unset client clock does not define the skew


@pytest.mark.parametrize(
    ("ts", "sent_at", "expected"),
    [
        (NOW - 1000, NOW, None),
        (NOW - 2 * 3_600_000, NOW - 3_600_000, None),  # a slow clock is corrected, not refused
        (0, NOW, "time.implausible"),
        (NOW // 1000, NOW, "time.seconds_not_ms"),
        (NOW + 10_000, NOW, "time.after_sent_at"),
        (NOW - 40 * 86_400_000, NOW, "time.too_old"),
        (4_102_444_800_000 - 1000, 4_102_444_800_000, None),  # year 2100 on both: skew, corrected
        (4_102_444_800_000, NOW, "time.after_sent_at"),
    ],
)
def test_time_problems(ts: int, sent_at: int, expected: str | None) -> None:
    assert time_problem(ts, sent_at, clock_skew_ms(sent_at, NOW), NOW, RULES) == expected


def test_without_sent_at_nothing_can_be_corrected() -> None:
    assert time_problem(4_102_444_800_000, None, 0, NOW, RULES) == "time.in_future"
    assert time_problem(NOW - 1000, None, 0, NOW, RULES) is None


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
