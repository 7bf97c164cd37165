"""Pseudonyms: stable within a day, unlinkable across days, keys destroyed after 48 hours."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stumble.access.pseudonyms import (
    DAY_MS,
    EventIdKey,
    SessionKeyRing,
    server_time_zone,
    time_zone,
)

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


# --- the day of a time zone ---------------------------------------------------------------

CHICAGO = ZoneInfo("America/Chicago")


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_a_working_evening_west_of_europe_stays_one_session(tmp_path: Path) -> None:
    # 17:30 and 18:30 in Chicago on 21 Nov are 23:30 and 00:30 UTC: one local day.
    ring = SessionKeyRing(tmp_path, CHICAGO)
    before = ring.pseudonym("s_abc", ms(dt.datetime(2025, 11, 21, 17, 30, tzinfo=CHICAGO)))
    after = ring.pseudonym("s_abc", ms(dt.datetime(2025, 11, 21, 18, 30, tzinfo=CHICAGO)))
    assert before == after
    utc = SessionKeyRing(tmp_path / "utc")  # the old rule cut it in two
    assert utc.pseudonym("s_abc", ms(dt.datetime(2025, 11, 21, 17, 30, tzinfo=CHICAGO))) != (
        utc.pseudonym("s_abc", ms(dt.datetime(2025, 11, 21, 18, 30, tzinfo=CHICAGO)))
    )


def test_the_key_changes_at_local_midnight(tmp_path: Path) -> None:
    ring = SessionKeyRing(tmp_path, CHICAGO)
    midnight = ms(dt.datetime(2025, 11, 22, tzinfo=CHICAGO))
    assert ring.pseudonym("s", midnight - 1) != ring.pseudonym("s", midnight)
    assert ring.pseudonym("s", midnight) == ring.pseudonym("s", midnight + DAY_MS - 1)
    assert sorted(p.name for p in tmp_path.glob("session-*.key")) == [
        "session-2025-11-21.key",
        "session-2025-11-22.key",
    ]


def test_local_keys_are_destroyed_48_hours_after_local_midnight(tmp_path: Path) -> None:
    ring = SessionKeyRing(tmp_path, CHICAGO)
    start = ms(dt.datetime(2025, 11, 22, tzinfo=CHICAGO))
    ring.pseudonym("s", start + 3_600_000)
    assert ring.destroy_expired(start + 2 * DAY_MS - 1) == []
    assert ring.destroy_expired(start + 2 * DAY_MS) == ["session-2025-11-22.key"]


def test_a_day_that_loses_an_hour_to_daylight_saving(tmp_path: Path) -> None:
    # 9 March 2025 in Chicago has 23 hours; its key still ends at the next local midnight.
    ring = SessionKeyRing(tmp_path, CHICAGO)
    day = dt.date(2025, 3, 9)
    assert ring.day_start_ms(day + dt.timedelta(days=1)) - ring.day_start_ms(day) == 23 * 3_600_000
    late = ms(dt.datetime(2025, 3, 9, 23, 59, tzinfo=CHICAGO))
    assert ring.pseudonym("s", late) == ring.pseudonym(
        "s", ms(dt.datetime(2025, 3, 9, 1, tzinfo=CHICAGO))
    )
    assert ring.pseudonym("s", late) != ring.pseudonym(
        "s", ms(dt.datetime(2025, 3, 10, tzinfo=CHICAGO))
    )


def test_the_time_zone_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert time_zone("Asia/Almaty") == ZoneInfo("Asia/Almaty")
    monkeypatch.setenv("TZ", "America/Chicago")
    assert time_zone("") == CHICAGO  # empty: the server's
    monkeypatch.setenv("TZ", "Not/AZone")
    assert isinstance(server_time_zone(), ZoneInfo)  # falls back, never raises
    with pytest.raises(ValueError, match="IANA"):
        time_zone("Mars/Olympus")
