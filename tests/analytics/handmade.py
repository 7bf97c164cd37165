"""Hand-built sessions for report tests: one call per event, stored through ``write_rows``."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from stumble.analytics.queries import Scope, TimeRange
from stumble.events import StoredEvent

DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
T0_MS = int((DAY + dt.timedelta(hours=9)).timestamp() * 1000)
SCOPE = Scope(TimeRange(DAY, DAY + dt.timedelta(days=1)))
_ids = itertools.count(10**6)


def event(
    session: int | str, kind: str, seconds: float, screen: str = "s", **fields: Any
) -> StoredEvent:
    """An event of ``kind`` on ``screen``, ``seconds`` after 09:00 of ``DAY`` (a session given
    as a number is written as a pseudonym-like id; as text, as it is)."""
    ms = T0_MS + round(seconds * 1000)
    return StoredEvent(
        event_id=str(uuid.UUID(int=next(_ids))),
        environment="prod",
        key_id="k",
        sample_rate=1.0,
        received_at=ms,
        ts=ms,
        client_ts=ms,
        skew_ms=0,
        event_name=fields.pop("event_name", kind),
        kind=kind,
        session_id=session if isinstance(session, str) else f"s_{session:020d}",
        screen_id=screen,
        schema_version=1,
        ui_version="1",
        **fields,
    )


def click(session: int, seconds: float, screen: str, target: str, **fields: Any) -> StoredEvent:
    return event(session, "action", seconds, screen, action_id="press", target=target, **fields)


def view(session: int, seconds: float, screen: str, **fields: Any) -> StoredEvent:
    return event(session, "screen_view", seconds, screen, **fields)
