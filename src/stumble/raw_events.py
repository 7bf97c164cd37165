"""Raw reads for engineers: the raw window, the parameters of a read, the page cursor and a
session's timeline. The read API (``web/raw.py``) and ``stumble events|session`` share it.

The raw window. ``READ_RAW`` reaches ``raw_access_days`` back from now (7 by default),
whatever retention keeps: an event is in the window when both its time (``ts``, skew
corrected) and its server receive time are. A ``from`` or ``to`` before the window is refused
(``RawParamError`` naming the parameter) rather than quietly cut, so nobody takes an empty or
partial page for "nothing happened".

Parameters of ``/api/v1/events`` (``EVENTS_PARAMS``): ``from``, ``to`` (a date — ``to``
inclusive — or an ISO datetime, UTC unless it says otherwise), ``env`` (default ``prod``),
``event`` (event name), ``screen`` (screen id), ``session`` (a stored pseudonym, ``h_`` + 16
letters), ``limit`` (1 to 1000, default 100) and ``after`` (the ``next`` cursor of the previous
page). Rows come newest first: an engineer asks "what just happened", and the first page of an
open-ended read answers it. The cursor is the last row's (``ts``, ``event_id``), so pages never
repeat or skip a row, even while new events arrive (they land before the first page).

A session (``/api/v1/sessions/{pseudonym}``, ``SESSION_PARAMS``: ``env``, default any) is
answered as a timeline in time order: screen, event, kind and the fields that say what
happened, with the time since the session's first event. At most ``TIMELINE_LIMIT`` events
(``truncated`` says when there were more).

Filter values are identifiers only; one that looks like personal data is refused (stored
events hold none, so it could match nothing). Error messages name the parameter, never the
value. The audit record of a read (``record_raw_read``) names the filters a caller used,
never their values, and the number of rows answered.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Final

import msgspec

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditLog, Outcome
from stumble.access.roles import RAW_WINDOW_DEFAULT
from stumble.events import IDENTIFIER_MAX_LENGTH, StoredEvent
from stumble.privacy.detectors import Detector, detect
from stumble.storage.base import EventPosition, EventStore, RawEventQuery

EVENTS_ROUTE: Final = "/api/v1/events"
SESSION_ROUTE: Final = "/api/v1/sessions/:pseudonym"
"""Route templates as the audit log names them (``:name`` segments, as plan routes are)."""
EVENTS_PARAMS: Final = ("from", "to", "env", "event", "screen", "session", "limit", "after")
SESSION_PARAMS: Final = ("env",)
DEFAULT_ENVIRONMENT: Final = "prod"
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
TIMELINE_LIMIT: Final = 5000
DEFAULT_WINDOW_DAYS: Final = RAW_WINDOW_DEFAULT.days
MAX_EPOCH_MS: Final = 2**53
_IDENTIFIER: Final = re.compile(rf"[A-Za-z0-9_.:/-]{{1,{IDENTIFIER_MAX_LENGTH}}}")
_PSEUDONYM: Final = re.compile(r"h_[a-z]{16}")
"""What ``SessionKeyRing.pseudonym`` stores: a browser's own session id never matches."""
_CURSOR: Final = re.compile(r"(?P<ts>[0-9]{1,16})\.(?P<event_id>[0-9a-f-]{36})")


class RawParamError(ValueError):
    """A parameter the read does not take, or a value it cannot use; the message names the
    parameter (fit for a 400), never the value."""


# --- the window ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawWindow:
    """How far back raw reads reach: ``days`` before ``now``."""

    days: int
    now: dt.datetime

    @classmethod
    def ending_now(cls, days: int) -> RawWindow:
        return cls(days, dt.datetime.now(dt.UTC))

    @property
    def start(self) -> dt.datetime:
        return self.now - dt.timedelta(days=self.days)

    @property
    def start_ms(self) -> int:
        return _epoch_ms(self.start)

    def describe(self) -> str:
        start = self.start.isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"the raw window: at most {self.days} days back (since {start})"


# --- what a read asks and answers ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A checked read: the store query, and the names of the filters the caller gave (what
    the audit record names)."""

    query: RawEventQuery
    filters: tuple[str, ...]


class EventsPage(msgspec.Struct, kw_only=True):
    """The answer of ``/api/v1/events``: stored rows, newest first, and the cursor of the next
    page (``None`` on the last)."""

    events: list[StoredEvent]
    next: str | None


class TimelineEntry(msgspec.Struct, omit_defaults=True, kw_only=True):
    """One event of a session: where, what, and the fields that say how it went."""

    since_start_ms: int
    ts: int
    screen_id: str
    event_name: str
    kind: str
    action_id: str | None = None
    target: str | None = None
    position: str | None = None
    route: str | None = None
    referrer_screen: str | None = None
    form_id: str | None = None
    step: int | None = None
    attempt: int | None = None
    field_id: str | None = None
    error_type: str | None = None
    operation_id: str | None = None
    operation: str | None = None
    step_name: str | None = None
    duration_ms: float | None = None
    status: str | None = None
    nav: str | None = None
    error_kind: str | None = None
    fingerprint: str | None = None
    module: str | None = None
    http_status: int | None = None
    metric: str | None = None
    value: float | None = None
    rating: str | None = None
    params: str | None = None


_ENTRY_HEAD: Final = ("since_start_ms", "ts", "screen_id", "event_name", "kind")
ENTRY_DETAIL_FIELDS: Final = tuple(
    name for name in TimelineEntry.__struct_fields__ if name not in _ENTRY_HEAD
)
"""The kind-specific fields a timeline entry copies from its stored row, when set."""


class SessionTimeline(msgspec.Struct, kw_only=True):
    """The answer of ``/api/v1/sessions/{pseudonym}``: one session's events in time order."""

    session: str
    environment: str
    started_at_ms: int
    ended_at_ms: int
    duration_ms: int
    ui_version: str
    device_type: str | None
    browser: str | None
    role: str | None
    events: list[TimelineEntry]
    truncated: bool


# --- parsing ------------------------------------------------------------------------------


Pairs = Iterable[tuple[str, str]]
"""Query parameters as (name, value) pairs, repeats kept (``request.query_params.multi_items``)."""


def events_request(pairs: Pairs, window: RawWindow) -> RawRequest:
    """The checked read of ``/api/v1/events`` (see the module docstring)."""
    given = _single_values(pairs, EVENTS_PARAMS)
    since, until = _time_bounds(given.get("from"), given.get("to"), window)
    query = RawEventQuery(
        since_ms=since,
        received_since_ms=window.start_ms,
        until_ms=until,
        environment=_identifier(given, "env") or DEFAULT_ENVIRONMENT,
        event_name=_identifier(given, "event"),
        screen_id=_identifier(given, "screen"),
        session_id=_pseudonym(given.get("session"), "session"),
        after=decode_cursor(given["after"]) if "after" in given else None,
        limit=_limit(given.get("limit")),
    )
    return RawRequest(query, tuple(given))


def session_request(pseudonym: str, pairs: Pairs, window: RawWindow) -> RawRequest:
    """The checked read of one session's timeline, oldest first, within the window."""
    given = _single_values(pairs, SESSION_PARAMS)
    query = RawEventQuery(
        since_ms=window.start_ms,
        received_since_ms=window.start_ms,
        environment=_identifier(given, "env"),
        session_id=_pseudonym(pseudonym, "session"),
        limit=TIMELINE_LIMIT + 1,  # one more than shown tells whether there were more
        newest_first=False,
    )
    return RawRequest(query, ("session", *given))


def _single_values(pairs: Pairs, known: tuple[str, ...]) -> dict[str, str]:
    """Name → value of the non-empty parameters given, in ``known`` order."""
    values: dict[str, str] = {}
    unknown = 0
    for name, value in pairs:
        if name not in known:
            unknown += 1
        elif name in values:
            raise RawParamError(f"{name} may be given once")
        elif value:
            values[name] = value
    if unknown:
        # Names are not echoed either: a caller may have pasted a value where a name goes.
        raise RawParamError(f"{unknown} unknown parameter(s); this read takes {', '.join(known)}")
    return {name: values[name] for name in known if name in values}


def _time_bounds(start: str | None, end: str | None, window: RawWindow) -> tuple[int, int | None]:
    """``[since, until)`` in epoch ms on ``ts``; ``until`` is ``None`` when open-ended."""
    since = _moment(start, "from", end_of_day=False) if start else window.start
    until = _moment(end, "to", end_of_day=True) if end else None
    if since < window.start:
        raise RawParamError(f"from must be within {window.describe()}")
    if until is not None and until <= window.start:
        raise RawParamError(f"to must be within {window.describe()}")
    if until is not None and until <= since:
        raise RawParamError("from must be before to")
    return _epoch_ms(since), None if until is None else _epoch_ms(until)


def _moment(text: str, name: str, *, end_of_day: bool) -> dt.datetime:
    """A date (its UTC start; the next day's start for an inclusive ``to``) or an ISO
    datetime, UTC unless it carries an offset."""
    try:
        if len(text) == len("2026-12-01"):
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            return moment + dt.timedelta(days=1) if end_of_day else moment
        parsed = dt.datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except ValueError:
        raise RawParamError(f"{name} must be a date (YYYY-MM-DD) or an ISO datetime") from None
    except OverflowError:  # 9999-12-31 plus a day
        raise RawParamError(f"{name} must be a date on the calendar") from None


def _identifier(given: dict[str, str], name: str) -> str | None:
    value = given.get(name)
    if value is None:
        return None
    if _IDENTIFIER.fullmatch(value) is None:
        raise RawParamError(
            f"{name} must be an identifier: letters, digits and _ . : / -, "
            f"at most {IDENTIFIER_MAX_LENGTH}"
        )
    found = detect(value)
    # Person names are left out as in the audit log's identifiers: that detector is tuned for
    # open text and hits ordinary ids of two capitalised words.
    if found is not None and found is not Detector.PERSON_NAME:
        raise RawParamError(f"{name} looks like personal data, which stored events never hold")
    return value


def _pseudonym(value: str | None, name: str) -> str | None:
    if value is not None and _PSEUDONYM.fullmatch(value) is None:
        raise RawParamError(
            f"{name} must be a stored session pseudonym (h_ and 16 letters), "
            "as raw events show it; a browser's own session id is never stored"
        )
    return value


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    # isascii: str.isdigit also takes "²" and other scripts' digits, which int() may refuse
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise RawParamError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def _epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- the cursor ---------------------------------------------------------------------------


def encode_cursor(row: StoredEvent) -> str:
    """An opaque token for "after this row": its ``ts`` and ``event_id``, base64url."""
    raw = f"{row.ts}.{row.event_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> EventPosition:
    """The position a cursor stands for; ``RawParamError`` for anything ``encode_cursor`` did
    not make."""
    refused = RawParamError("after must be the next cursor of a previous answer")
    if not text.isascii() or len(text) > 80:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise refused from None
    match = _CURSOR.fullmatch(raw)
    if match is None or int(match["ts"]) > MAX_EPOCH_MS:
        raise refused
    try:
        event_id = str(uuid.UUID(match["event_id"]))
    except ValueError:
        raise refused from None
    return EventPosition(int(match["ts"]), event_id)


# --- reading ------------------------------------------------------------------------------


def read_events_page(store: EventStore, request: RawRequest) -> EventsPage:
    """One page of rows; ``next`` is set when more rows follow."""
    limit = request.query.limit
    # one row more than asked says whether another page follows
    rows = store.read_raw(replace(request.query, limit=limit + 1))
    more = len(rows) > limit
    page = rows[:limit]
    return EventsPage(events=page, next=encode_cursor(page[-1]) if more else None)


def read_session(store: EventStore, request: RawRequest) -> SessionTimeline | None:
    """The session's timeline within the window; ``None`` when it has no event there."""
    rows = store.read_raw(request.query)
    if not rows:
        return None
    shown = rows[:TIMELINE_LIMIT]
    first, last = shown[0], shown[-1]
    return SessionTimeline(
        session=first.session_id,
        environment=first.environment,
        started_at_ms=first.ts,
        ended_at_ms=last.ts,
        duration_ms=last.ts - first.ts,
        ui_version=first.ui_version,
        device_type=first.device_type,
        browser=first.browser,
        role=first.role,
        events=[timeline_entry(row, first.ts) for row in shown],
        truncated=len(rows) > TIMELINE_LIMIT,
    )


def rows_answered(answer: EventsPage | SessionTimeline | None) -> int:
    """How many rows a read answered with: the count its audit record names."""
    return 0 if answer is None else len(answer.events)


def timeline_entry(row: StoredEvent, session_start_ms: int) -> TimelineEntry:
    details = {name: getattr(row, name) for name in ENTRY_DETAIL_FIELDS}
    return TimelineEntry(
        since_start_ms=row.ts - session_start_ms,
        ts=row.ts,
        screen_id=row.screen_id,
        event_name=row.event_name,
        kind=row.kind,
        **details,
    )


# --- auditing -----------------------------------------------------------------------------


def record_raw_read(
    audit: AuditLog, actor: Actor, route: str, request: RawRequest, rows: int
) -> None:
    """Append the read's audit record (filter names and the row count, no value) and return
    once it is fsynced; ``AuditUnavailableError`` when it cannot be: refuse the read. Blocks:
    call it from a worker thread on a server."""
    detail = AuditDetail(route=route, filters=request.filters, rows=rows)
    audit.record(actor, AuditAction.RAW_READ, Outcome.OK, detail)
