"""The engineers' raw window on a real server: simulated data in a DuckDB file, the raw routes
served by uvicorn in a thread with real API tokens and a real audit log, read over HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from tests.web.serving import served

from stumble.access.audit import Actor, AuditAction, AuditLog, AuditRecord, read_records
from stumble.access.roles import Role
from stumble.access.sessions import SessionStore
from stumble.access.tokens import TokenRing
from stumble.cli.main import main
from stumble.events import StoredEvent
from stumble.raw_events import EVENTS_ROUTE, SESSION_ROUTE, EventsPage, SessionTimeline
from stumble.storage import DuckDBStore, EventStore, MemoryStore, database_path
from stumble.web.access import Credentials
from stumble.web.raw import raw_routes

DAY_MS = 86_400_000
TODAY = dt.datetime.now(dt.UTC).date()
PLANTED = ("870412300129", "aigerim.nurlanova@example.kz", "+77012345678")
"""An IIN, an e-mail address and a phone number: none may reach an answer or the audit log."""


@dataclass(frozen=True)
class RawServer:
    """A served app: an HTTP client (engineer's token by default), a token per role, and
    the audit log's path."""

    http: httpx.Client
    tokens: dict[Role, str]
    names: dict[Role, str]
    audit_path: Path

    def as_role(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@dataclass(frozen=True)
class _Services:
    store: EventStore


_TOKEN_NUMBERS = itertools.count(1)


def token_name(role: Role) -> str:
    # Made, not random: a random run of letters now and then trips a detector (a token-like or
    # name-like run), which made this suite flaky; a short counter never does.
    return f"raw_{role}_{next(_TOKEN_NUMBERS)}"


@contextlib.contextmanager
def serving_raw(
    data_dir: Path, *, store: EventStore | None = None, audit: AuditLog | None = None
) -> Iterator[RawServer]:
    """``raw_routes`` in a Starlette app on a loopback port, with tokens made before it starts."""
    ring = TokenRing(data_dir)
    names = {role: token_name(role) for role in Role}
    tokens = {role: ring.create(role, names[role])[0] for role in Role}
    ring = TokenRing(data_dir)  # the server's own ring, which reads them back
    store = store or DuckDBStore(database_path(data_dir), threads=2)
    audit = audit or AuditLog.in_data_dir(data_dir)
    credentials = Credentials(ring, SessionStore(ring))
    app = Starlette(routes=raw_routes(_Services(store), credentials, audit))
    headers = {"Authorization": f"Bearer {tokens[Role.ENGINEER]}"}
    try:
        with served(app) as url, httpx.Client(base_url=url, timeout=60, headers=headers) as http:
            yield RawServer(http, tokens, names, audit.path)
    finally:
        store.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten days of traffic: the oldest three lie outside the 7-day raw window."""
    directory = tmp_path_factory.mktemp("raw") / "data"
    assert main(["simulate", "--sessions", "400", "--days", "10", "--data", str(directory)]) == 0
    return directory


@pytest.fixture(scope="module")
def stored(data_dir: Path) -> list[StoredEvent]:
    """Every stored row, read before the server takes the database file."""
    with DuckDBStore(database_path(data_dir), threads=2) as store:
        return store.read_events()


@pytest.fixture(scope="module")
def raw(data_dir: Path, stored: list[StoredEvent]) -> Iterator[RawServer]:
    with serving_raw(data_dir) as server:
        yield server


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).isoformat()


def all_pages(http: httpx.Client, params: dict[str, str]) -> list[StoredEvent]:
    rows: list[StoredEvent] = []
    after: dict[str, str] = {}
    while True:
        answer = http.get("/api/v1/events", params={**params, **after})
        assert answer.status_code == 200, answer.text
        page = msgspec.json.decode(answer.content, type=EventsPage)
        rows.extend(page.events)
        if page.next is None:
            return rows
        after = {"after": page.next}


def last_audit_record(server: RawServer) -> AuditRecord:
    return read_records(server.audit_path).records[-1]


# --- who may read --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.ANALYST, 403), (Role.AUDITOR, 403), (Role.ENGINEER, 200), (Role.ADMIN, 200)],
)
def test_only_engineers_and_admins_read_raw_events(
    raw: RawServer, stored: list[StoredEvent], role: Role, status: int
) -> None:
    session = stored[-1].session_id
    for path in ("/api/v1/events", f"/api/v1/sessions/{session}"):
        answer = raw.http.get(path, headers=raw.as_role(role))
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["cache-control"] == "no-store"
        if status == 403:
            assert answer.json() == {"error": "access.forbidden", "status": 403}


def test_no_token_is_401(raw: RawServer) -> None:
    answer = raw.http.get("/api/v1/events", headers={"Authorization": ""})
    assert (answer.status_code, answer.json()["error"]) == (401, "access.unauthenticated")


# --- the window ----------------------------------------------------------------------------


def test_nothing_older_than_the_window_even_where_retention_keeps_it(
    raw: RawServer, stored: list[StoredEvent]
) -> None:
    window_start = now_ms() - 7 * DAY_MS
    assert any(row.ts < window_start for row in stored), "the data must reach past the window"

    rows = all_pages(raw.http, {"limit": "1000"})

    assert rows and all(row.ts >= window_start and row.received_at >= window_start for row in rows)
    assert {row.environment for row in rows} == {"prod"}


@pytest.mark.parametrize("name", ["from", "to"])
def test_a_bound_before_the_window_is_refused_naming_it(raw: RawServer, name: str) -> None:
    eight_days_ago = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=8)
    answer = raw.http.get("/api/v1/events", params={name: eight_days_ago.isoformat()})

    assert (answer.status_code, answer.json()["error"]) == (400, "raw.bad_param")
    assert answer.json()["message"].startswith(f"{name} must be within the raw window")


# --- pages, filters, sessions ----------------------------------------------------------------


def test_pages_return_every_row_once_newest_first(
    raw: RawServer, stored: list[StoredEvent]
) -> None:
    since = now_ms() - 3 * DAY_MS
    expected = sorted(
        (row for row in stored if row.ts >= since and row.environment == "prod"),
        key=lambda row: (row.ts, row.event_id),
        reverse=True,
    )

    # A page size that makes at least three pages whatever the weekday (weekends are quiet).
    limit = min(400, max(1, len(expected) // 3))
    rows = all_pages(raw.http, {"from": iso(since), "limit": str(limit)})

    assert len(expected) > 2 * limit, "the test must span several pages"
    assert [row.event_id for row in rows] == [row.event_id for row in expected]
    assert rows == expected


def test_filters_narrow_the_rows(raw: RawServer, stored: list[StoredEvent]) -> None:
    recent = [row for row in stored if row.ts >= now_ms() - 6 * DAY_MS]
    sample = recent[len(recent) // 2]
    for name, value, field in (
        ("event", sample.event_name, "event_name"),
        ("screen", sample.screen_id, "screen_id"),
        ("session", sample.session_id, "session_id"),
    ):
        rows = all_pages(raw.http, {name: value, "limit": "1000"})
        assert rows and all(getattr(row, field) == value for row in rows), name
    assert all_pages(raw.http, {"env": "staging"}) == []


def test_a_session_is_a_timeline_in_time_order(raw: RawServer, stored: list[StoredEvent]) -> None:
    recent = [row for row in stored if row.ts >= now_ms() - 6 * DAY_MS]
    pseudonym = recent[len(recent) // 3].session_id
    own = sorted(
        (row for row in recent if row.session_id == pseudonym),
        key=lambda row: (row.ts, row.event_id),
    )

    answer = raw.http.get(f"/api/v1/sessions/{pseudonym}")

    assert answer.status_code == 200, answer.text
    timeline = msgspec.json.decode(answer.content, type=SessionTimeline)
    assert (timeline.session, timeline.environment, timeline.truncated) == (
        pseudonym,
        "prod",
        False,
    )
    assert [entry.ts for entry in timeline.events] == [row.ts for row in own]
    assert [entry.event_name for entry in timeline.events] == [row.event_name for row in own]
    start = own[0].ts
    assert [entry.since_start_ms for entry in timeline.events] == [row.ts - start for row in own]
    assert timeline.duration_ms == own[-1].ts - start
    failures = [entry for entry in timeline.events if entry.kind == "field_error"]
    assert all(entry.field_id and entry.error_type for entry in failures)


def test_a_session_outside_the_window_or_unknown_is_404(
    raw: RawServer, stored: list[StoredEvent]
) -> None:
    old = next(row for row in stored if row.ts < now_ms() - 8 * DAY_MS).session_id
    for pseudonym in (old, "h_" + "q" * 16):
        answer = raw.http.get(f"/api/v1/sessions/{pseudonym}")
        assert (answer.status_code, answer.json()["error"]) == (404, "session.unknown")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "²"}, "limit"),
        ({"after": "bm90IGEgY3Vyc29y"}, "after"),
        ({"from": "yesterday"}, "from"),
        (
            {"from": str(TODAY + dt.timedelta(days=2)), "to": str(TODAY + dt.timedelta(days=1))},
            "from",
        ),
        ({"session": "s_abcdefghijklmnopqrst"}, "session"),
        ({"screen": "search home"}, "screen"),
        ({"nosuch": "1"}, "1 unknown"),
        ({"env": "prod", "": "x"}, "1 unknown"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    raw: RawServer, params: dict[str, str], named: str
) -> None:
    answer = raw.http.get("/api/v1/events", params=params)
    assert (answer.status_code, answer.json()["error"]) == (400, "raw.bad_param")
    assert answer.json()["message"].startswith(named)


def test_a_parameter_given_twice_is_refused(raw: RawServer) -> None:
    answer = raw.http.get("/api/v1/events", params=[("event", "a"), ("event", "b")])
    assert (answer.status_code, answer.json()["message"]) == (400, "event may be given once")


# --- the audit log -----------------------------------------------------------------------------


def test_every_read_is_audited_by_filter_name_never_by_value(
    raw: RawServer, stored: list[StoredEvent]
) -> None:
    recent = [row for row in stored if row.ts >= now_ms() - 6 * DAY_MS]
    sample = recent[len(recent) // 4]
    params = {"screen": sample.screen_id, "event": sample.event_name, "limit": "7"}

    page = raw.http.get("/api/v1/events", params=params).json()
    events_record = last_audit_record(raw)
    timeline = raw.http.get(f"/api/v1/sessions/{sample.session_id}").json()
    session_record = last_audit_record(raw)

    assert events_record.actor == Actor.token(raw.names[Role.ENGINEER])
    assert events_record.action == AuditAction.RAW_READ
    assert events_record.detail is not None
    assert events_record.detail.route == EVENTS_ROUTE
    assert events_record.detail.filters == ("event", "screen", "limit")
    assert events_record.detail.rows == len(page["events"]) > 0
    assert session_record.detail is not None
    assert session_record.detail.route == SESSION_ROUTE
    assert session_record.detail.filters == ("session",)
    assert session_record.detail.rows == len(timeline["events"])
    log_text = raw.audit_path.read_text()
    for value in (sample.screen_id, sample.event_name, sample.session_id):
        assert value not in log_text


def test_an_admin_read_names_the_admin(raw: RawServer) -> None:
    raw.http.get("/api/v1/events", params={"limit": "1"}, headers=raw.as_role(Role.ADMIN))
    assert last_audit_record(raw).actor == Actor.token(raw.names[Role.ADMIN])


@pytest.mark.parametrize("planted", PLANTED)
def test_personal_data_in_a_filter_is_refused_and_never_logged(
    raw: RawServer, planted: str
) -> None:
    before = raw.audit_path.read_bytes()
    answers = [
        raw.http.get("/api/v1/events", params={name: planted})
        for name in ("env", "event", "screen", "session", "from", "to", "limit", "after")
    ]
    answers.append(raw.http.get(f"/api/v1/sessions/{planted}"))
    answers.append(raw.http.get("/api/v1/sessions/h_abcdefghijklmnop", params={"env": planted}))

    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert planted not in answer.text
    after = raw.audit_path.read_bytes()
    assert after == before  # a refused read reads nothing and records nothing
    assert planted.encode() not in after


def test_an_unwritable_audit_log_refuses_the_read_and_sends_no_row(tmp_path: Path) -> None:
    row = StoredEvent(
        event_id="0f0e0d0c-0b0a-4908-8706-050403020100",
        environment="prod",
        key_id="k",
        sample_rate=1.0,
        received_at=now_ms(),
        ts=now_ms(),
        client_ts=now_ms(),
        skew_ms=0,
        event_name="request_opened",
        kind="action",
        session_id="h_abcdefghijklmnop",
        screen_id="request_view",
        schema_version=3,
        ui_version="2.0.0",
        action_id="open",
    )
    store = MemoryStore()
    store.write_rows([row])
    not_a_directory = tmp_path / "audit"
    not_a_directory.write_text("a file where the audit directory should be")
    broken = AuditLog(not_a_directory / "audit.log", tmp_path / "audit.key")

    with serving_raw(tmp_path / "data", store=store, audit=broken) as server:
        answers = [
            server.http.get("/api/v1/events"),
            server.http.get("/api/v1/sessions/h_abcdefghijklmnop"),
        ]

    for answer in answers:
        assert answer.json() == {"error": "audit.unavailable", "status": 503}
        assert "request_opened" not in answer.text and "h_abcdefghijklmnop" not in answer.text
