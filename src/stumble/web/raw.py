"""The engineers' raw window: ``GET /api/v1/events`` and ``GET /api/v1/sessions/{pseudonym}``.

``raw_routes(services, credentials, audit, raw_access_days=7)`` returns the routes to mount.
Both need ``read_raw`` (engineer, admin); the parameters, the window, the cursor and the
shapes of the answers are ``stumble.raw_events``'s:

- ``/api/v1/events?from=&to=&env=&event=&screen=&session=&limit=&after=``: stored rows,
  newest first: ``{"events": [StoredEvent…], "next": <cursor> | null}``;
- ``/api/v1/sessions/{pseudonym}?env=``: one session's timeline in time order
  (``SessionTimeline``); 404 ``session.unknown`` when it has no event in the window.

Every read is audited before it is answered (``raw.read``: the caller, the route template,
the names of the filters given and the row count, never a value). When that record cannot
be written the read is refused with 503 ``audit.unavailable`` and no row leaves (fail closed).
A refused parameter (400) reads nothing, so it writes no record.

Answers: 200; 400 ``raw.bad_param`` (the message names the parameter, never the value); 401
and 403 from ``web/access.py``; 404 ``session.unknown``; 503 ``storage.unavailable`` or
``audit.unavailable``. Error bodies are ``{"error", "status", "message"?}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from stumble.access.audit import AuditLog, AuditUnavailableError
from stumble.access.roles import Permission
from stumble.raw_events import (
    DEFAULT_WINDOW_DAYS,
    EVENTS_ROUTE,
    SESSION_ROUTE,
    RawParamError,
    RawRequest,
    RawWindow,
    events_request,
    read_events_page,
    read_session,
    record_raw_read,
    rows_answered,
    session_request,
)
from stumble.storage.base import EventStore, StorageError
from stumble.web.access import Credentials, actor_of, requires, secured

log = logging.getLogger("stumble.raw")

_T = TypeVar("_T")

NO_STORE: Final = {"cache-control": "no-store"}
BAD_PARAM: Final = "raw.bad_param"
SESSION_UNKNOWN: Final = "session.unknown"
STORAGE_UNAVAILABLE: Final = "storage.unavailable"
AUDIT_UNAVAILABLE: Final = "audit.unavailable"


class RawServices(Protocol):
    """What the routes need from the running server (``CollectorServices`` has it)."""

    @property
    def store(self) -> EventStore: ...


class _RefusedError(Exception):
    """Ends a read early with an error answer."""

    def __init__(self, answer: Response) -> None:
        super().__init__(answer.status_code)
        self.answer = answer


def raw_routes(
    services: RawServices,
    credentials: Credentials,
    audit: AuditLog,
    *,
    raw_access_days: int = DEFAULT_WINDOW_DAYS,
) -> list[BaseRoute]:
    """The raw-read routes, reading ``services.store`` per request."""

    async def events(request: Request) -> Response:
        try:
            raw = _checked(lambda window: events_request(_pairs(request), window))
            page = await _read(read_events_page, services.store, raw)
            await _audited(audit, request, EVENTS_ROUTE, raw, rows_answered(page))
        except _RefusedError as refused:
            return refused.answer
        return _json(page)

    async def session(request: Request) -> Response:
        pseudonym = request.path_params["pseudonym"]
        try:
            raw = _checked(lambda window: session_request(pseudonym, _pairs(request), window))
            timeline = await _read(read_session, services.store, raw)
            # Asking for a session that is not there is a read too: it says whether it was.
            await _audited(audit, request, SESSION_ROUTE, raw, rows_answered(timeline))
        except _RefusedError as refused:
            return refused.answer
        if timeline is None:
            return _error(404, SESSION_UNKNOWN, "no such session in the raw window")
        return _json(timeline)

    def _checked(parse: Callable[[RawWindow], RawRequest]) -> RawRequest:
        try:
            return parse(RawWindow.ending_now(raw_access_days))
        except RawParamError as error:
            raise _RefusedError(_error(400, BAD_PARAM, str(error))) from None

    readable = requires(Permission.READ_RAW)
    return [
        secured("/api/v1/events", events, readable, ["GET"], credentials),
        secured("/api/v1/sessions/{pseudonym}", session, readable, ["GET"], credentials),
    ]


async def _read(
    reader: Callable[[EventStore, RawRequest], _T], store: EventStore, raw: RawRequest
) -> _T:
    try:
        return await asyncio.to_thread(reader, store, raw)
    except StorageError as error:
        log.warning("raw read failed: %s", type(error).__name__)
        raise _RefusedError(_error(503, STORAGE_UNAVAILABLE)) from None


async def _audited(
    audit: AuditLog, request: Request, route: str, raw: RawRequest, rows: int
) -> None:
    """Record the read, fsynced, before anything of it is sent; refuse it when that fails."""
    actor = actor_of(request.state.principal)  # a token's name, or an SSO login
    try:
        await asyncio.to_thread(record_raw_read, audit, actor, route, raw, rows)
    except AuditUnavailableError as error:
        log.warning("raw read refused, the audit log cannot be written: %s", error)
        raise _RefusedError(_error(503, AUDIT_UNAVAILABLE)) from None


def _pairs(request: Request) -> list[tuple[str, str]]:
    return request.query_params.multi_items()


def _json(answer: msgspec.Struct) -> Response:
    return Response(msgspec.json.encode(answer), media_type="application/json", headers=NO_STORE)


def _error(status: int, code: str, message: str | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": code, "status": status}
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status, headers=NO_STORE)
