"""Pseudonyms: stable within a day, unlinkable across days, keys destroyed after 48 hours."""

from __future__ import annotations

import re
from pathlib import Path

from stumble.access.pseudonyms import DAY_MS, EventIdKey, SessionKeyRing

NOON = 1_763_812_800_000  # 2025-11-22T12:00:00Z


def test_session_pseudonym_is_stable_within_a_day_and_differs_across_days(tmp_path: Path) -> None:
    ring = SessionKeyRing(tmp_path)
    same_day = ring.pseudonym("s_abc", NOON), ring.pseudonym("s_abc", NOON + 3_600_000)
    assert same_day[0] == same_day[1]
    assert ring.pseudonym("s_abc", NOON + DAY_MS) != same_day[0]
    assert ring.pseudonym("s_abd", NOON) != same_day[0]
    assert re.fullmatch(r"h_[a-z]{16}", same_day[0])  # letters only: never looks like a number


def test_keys_survive_restart_until_destroyed(tmp_path: Path) -> None:
    first = SessionKeyRing(tmp_path).pseudonym("s_abc", NOON)
    assert SessionKeyRing(tmp_path).pseudonym("s_abc", NOON) == first


def test_daily_keys_are_destroyed_48_hours_after_their_day_began(tmp_path: Path) -> None:
    ring = SessionKeyRing(tmp_path)
    ring.pseudonym("s", NOON)
    ring.pseudonym("s", NOON + DAY_MS)
    day_start = NOON - 12 * 3_600_000
    assert ring.destroy_expired(day_start + 2 * DAY_MS - 1) == []
    removed = ring.destroy_expired(day_start + 2 * DAY_MS)
    assert removed == ["session-2025-11-22.key"]
    assert sorted(p.name for p in tmp_path.glob("session-*.key")) == ["session-2025-11-23.key"]
    assert ring.destroy_expired(day_start + 2 * DAY_MS) == []  # idempotent


def test_event_ids_are_rekeyed_stably_and_hide_smuggled_digits(tmp_path: Path) -> None:
    key = EventIdKey(tmp_path)
    smuggled = "92102935-0851-4000-8000-000000000000"  # an IIN shaped like a UUID
    stored = key.stored_id(smuggled)
    assert stored == EventIdKey(tmp_path).stored_id(smuggled.upper())
    assert "921029350851" not in stored.replace("-", "")
    assert stored != key.stored_id("92102935-0851-4000-8000-000000000001")
