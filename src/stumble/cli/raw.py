"""``stumble events`` and ``stumble session PSEUDONYM``: the engineers' raw window.

``--server URL`` asks a running server (``GET /api/v1/events``, ``/api/v1/sessions/…``) with the
API token in ``STUMBLE_TOKEN`` (an engineer's or an admin's); the server audits the read.
``--data DIR`` opens the database file itself (only while no server holds it) and writes the
audit record itself, as ``cli``, before it shows anything: when it cannot, the command fails
with one line and shows nothing, as the server would refuse with 503.

Either way the window, the parameters and the answers are those of ``stumble.raw_events``:
events newest first (``--after`` takes the cursor printed under a full page), a session as a
timeline in time order. ``--json`` prints the API's JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

import msgspec

from stumble.cli.common import (
    CommandError,
    add_data_options,
    refused_by_server,
    require_data_dir,
    server_headers,
    settings_from,
)
from stumble.encryption import load_data_keys

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from stumble.config import Settings
    from stumble.events import StoredEvent
    from stumble.raw_events import (
        EventsPage,
        RawRequest,
        RawWindow,
        SessionTimeline,
        TimelineEntry,
    )
    from stumble.storage.base import EventStore

_T = TypeVar("_T")
_Answer = TypeVar("_Answer", bound="EventsPage | SessionTimeline | None")
SERVER_TIMEOUT_S: Final = 60.0
# (flag, query parameter) of `stumble events`; the parameter names are the API's
EVENT_FILTERS: Final = (
    ("from_", "from"),
    ("to", "to"),
    ("env", "env"),
    ("event", "event"),
    ("screen", "screen"),
    ("session", "session"),
    ("limit", "limit"),
    ("after", "after"),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = sub.add_parser(
        "events",
        help="raw stored events of the last days, newest first (engineer, admin; audited)",
        description="Raw events within the raw window (7 days by default); every read is "
        "written to the audit log with the filter names used, never their values.",
    )
    events.add_argument("--from", dest="from_", metavar="DATE", help="first day or datetime")
    events.add_argument("--to", metavar="DATE", help="last day (inclusive) or end datetime")
    events.add_argument("--env", help="environment (default prod)")
    events.add_argument("--event", metavar="NAME", help="event name")
    events.add_argument("--screen", metavar="ID", help="screen id")
    events.add_argument("--session", metavar="PSEUDONYM", help="stored session pseudonym")
    events.add_argument("--limit", help="rows per page, 1 to 1000 (default 100)")
    events.add_argument("--after", metavar="CURSOR", help="the cursor printed under a page")
    _add_source_options(events)
    events.set_defaults(func=_events)

    session = sub.add_parser(
        "session",
        help="one session's events as a timeline (engineer, admin; audited)",
        description="A session's events in time order within the raw window.",
    )
    session.add_argument("pseudonym", help="the stored session pseudonym (h_ and 16 letters)")
    session.add_argument("--env", help="environment (default: any)")
    _add_source_options(session)
    session.set_defaults(func=_session)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    add_data_options(parser)
    parser.add_argument("--server", help="ask a running server, e.g. http://127.0.0.1:8710")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")


# --- the two commands ---------------------------------------------------------------------


def _events(args: argparse.Namespace) -> int:
    from stumble.raw_events import (  # noqa: PLC0415 - keep `stumble --help` fast
        EVENTS_ROUTE,
        EventsPage,
        events_request,
        read_events_page,
    )

    pairs = [(name, str(value)) for flag, name in EVENT_FILTERS if (value := getattr(args, flag))]
    if args.server:
        page = _from_server(args.server, "/api/v1/events", pairs, EventsPage)
    else:
        page = _from_files(
            args, lambda window: events_request(pairs, window), read_events_page, EVENTS_ROUTE
        )
    _print(page, args.json, _events_text)
    if page.next is not None and not args.json:
        print(f"more rows: add --after {page.next}", file=sys.stderr)
    return 0


def _session(args: argparse.Namespace) -> int:
    from stumble.raw_events import (  # noqa: PLC0415
        SESSION_ROUTE,
        SessionTimeline,
        read_session,
        session_request,
    )

    pairs = [("env", args.env)] if args.env else []
    if args.server:
        # quoted: whatever was typed stays one path segment of this route
        path = f"/api/v1/sessions/{urllib.parse.quote(args.pseudonym, safe='')}"
        timeline: SessionTimeline | None = _from_server(args.server, path, pairs, SessionTimeline)
    else:
        timeline = _from_files(
            args,
            lambda window: session_request(args.pseudonym, pairs, window),
            read_session,
            SESSION_ROUTE,
        )
    if timeline is None:
        raise CommandError("no such session in the raw window")
    _print(timeline, args.json, _timeline_text)
    return 0


def _print(answer: _T, as_json: bool, as_text: Callable[[_T], str]) -> None:
    if as_json:
        print(msgspec.json.encode(answer).decode())
    else:
        print(as_text(answer))


# --- reading the files, audited -----------------------------------------------------------


def _from_files(
    args: argparse.Namespace,
    parse: Callable[[RawWindow], RawRequest],
    read: Callable[[EventStore, RawRequest], _Answer],
    route: str,
) -> _Answer:
    """Read from the data directory, then write the audit record; only then is the answer
    shown (``CommandError`` and nothing shown when the record cannot be written)."""
    from stumble.raw_events import RawParamError, RawWindow, rows_answered  # noqa: PLC0415

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    try:
        request = parse(RawWindow.ending_now(_window_days(settings)))
    except RawParamError as error:
        raise CommandError(str(error), 2) from None
    answer = _read_store(data_dir, settings, read, request)
    _audit(data_dir, settings, route, request, rows_answered(answer))
    return answer


def _window_days(settings: Settings) -> int:
    return settings.raw_access_days


def _read_store(
    data_dir: Path,
    settings: Settings,
    read: Callable[[EventStore, RawRequest], _Answer],
    request: RawRequest,
) -> _Answer:
    from stumble.storage import DuckDBStore, database_path  # noqa: PLC0415

    path = database_path(data_dir)
    if not path.exists():
        raise CommandError(f"no database at {path}; run `stumble serve` or `stumble simulate`")
    # DatabaseInUseError (a server holds the file) becomes one line in `main`
    store = DuckDBStore(
        path,
        threads=settings.duckdb_threads,
        migrate=False,
        data_keys=load_data_keys(settings.data_key_file, data_dir),
    )
    try:
        return read(store, request)
    finally:
        store.close()


def _audit(data_dir: Path, settings: Settings, route: str, request: RawRequest, rows: int) -> None:
    from stumble.access.audit import Actor, AuditError, AuditLog  # noqa: PLC0415
    from stumble.raw_events import record_raw_read  # noqa: PLC0415

    audit = AuditLog.in_data_dir(
        data_dir,
        digest_interval_s=settings.audit_digest_interval_s,
        data_keys=load_data_keys(settings.data_key_file, data_dir),
    )
    try:
        record_raw_read(audit, Actor.cli(), route, request, rows)
    except AuditError as error:
        raise CommandError(f"{error}; the read is refused, nothing is shown") from None
    finally:
        # The closing digest signs this record; the record itself is already fsynced.
        with contextlib.suppress(AuditError):
            audit.close()


# --- asking a server ----------------------------------------------------------------------


def _from_server(url: str, path: str, pairs: list[tuple[str, str]], answer_type: type[_T]) -> _T:
    import httpx  # noqa: PLC0415

    try:
        response = httpx.get(
            url.rstrip("/") + path,
            params=tuple(pairs),
            headers=server_headers(),
            timeout=SERVER_TIMEOUT_S,
        )
    except httpx.HTTPError as error:
        raise CommandError(f"cannot reach {url} ({type(error).__name__})") from None
    if response.status_code in (401, 403):
        raise CommandError(refused_by_server(response.status_code), 2)
    if response.status_code != 200:
        raise CommandError(_server_refusal(response), 2 if response.status_code < 500 else 1)
    try:
        return msgspec.json.decode(response.content, type=answer_type)
    except msgspec.DecodeError:
        raise CommandError(f"{url} answered something that is not a raw read") from None


class _ErrorBody(msgspec.Struct):
    error: str = "no detail"
    message: str | None = None


def _server_refusal(response: httpx.Response) -> str:
    try:
        body = msgspec.json.decode(response.content, type=_ErrorBody)
    except msgspec.DecodeError:
        body = _ErrorBody()
    detail = body.message or body.error
    return f"the server answered {response.status_code}: {detail}"


# --- for people ---------------------------------------------------------------------------


def _events_text(page: EventsPage) -> str:
    from stumble.analytics.rendering import text_table  # noqa: PLC0415
    from stumble.analytics.results import Column, Table  # noqa: PLC0415

    columns = tuple(
        Column(name) for name in ("time (UTC)", "env", "session", "screen", "event", "kind")
    )
    rows = [
        (_utc(e.ts), e.environment, e.session_id, e.screen_id, e.event_name, e.kind, _details(e))
        for e in page.events
    ]
    title = f"{len(rows)} events, newest first"
    return text_table(Table(title, (*columns, Column("details")), rows))


def _timeline_text(timeline: SessionTimeline) -> str:
    from stumble.analytics.rendering import text_table  # noqa: PLC0415
    from stumble.analytics.results import Column, Table  # noqa: PLC0415

    device = " / ".join(part for part in (timeline.device_type, timeline.browser) if part)
    header = (
        f"session {timeline.session} ({timeline.environment}), "
        f"{_utc(timeline.started_at_ms)} to {_utc(timeline.ended_at_ms)} UTC, "
        f"{_duration(timeline.duration_ms)}, ui {timeline.ui_version}"
        + (f", {device}" if device else "")
        + (f", role {timeline.role}" if timeline.role else "")
    )
    columns = (Column("+time"), Column("screen"), Column("event"), Column("kind"))
    rows = [
        (f"+{_duration(e.since_start_ms)}", e.screen_id, e.event_name, e.kind, _details(e))
        for e in timeline.events
    ]
    note = "more events than shown (the timeline is cut)" if timeline.truncated else ""
    table = Table(f"{len(rows)} events", (*columns, Column("details")), rows, note)
    return header + "\n" + text_table(table)


def _details(event: StoredEvent | TimelineEntry) -> str:
    """The kind-specific fields that are set, as ``name=value``."""
    from stumble.raw_events import ENTRY_DETAIL_FIELDS  # noqa: PLC0415

    parts = []
    for name in ENTRY_DETAIL_FIELDS:
        value = getattr(event, name)
        if value is None:
            continue
        text = _duration(value) if name == "duration_ms" else str(value)
        parts.append(f"{name}={text}")
    return " ".join(parts)


def _utc(epoch_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{epoch_ms % 1000:03d}"


def _duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"
