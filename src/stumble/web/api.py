"""The read API for reports: ``GET /api/v1/reports`` and ``GET /api/v1/reports/{name}``.

``report_routes(services, access=...)`` returns the routes to pass to
``create_app(extra_routes=...)``. Query parameters are those of ``stumble.reports.catalog``
(``?from=2026-03-01&to=2026-03-14&env=prod&by=role&scenario=...``); the answer is the report's
JSON (``{"meta": {...}, "data": {...}}``).

Access is a seam: ``access(request)`` returns the ``Viewer`` a request acts as, or None for
401. It decides the role (which reports it may read, ``REPORT_ROLES``) and the small-cell
threshold its aggregates get. Until the dashboard brings tokens and roles, every caller is
an analyst: aggregates only, suppressed below ``DEFAULT_MIN_GROUP_SIZE`` sessions. The
dashboard issue replaces ``every_caller_is_analyst`` with a policy that reads a token, and
adds the audit record of who read what; the handlers do not change.

Answers: 200 the report; 400 a bad parameter (the message names it); 401 no viewer; 403 a
role that may not read the report; 404 no such report; 503 the store failed. Error bodies are
``{"error": <code>, "status": <int>, "message"?: <text>}`` and carry no stored value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stumble.analytics.queries import DEFAULT_MIN_GROUP_SIZE
from stumble.plan.model import TrackingPlan
from stumble.reports.catalog import REPORTS, ReportParamError, run_report
from stumble.storage.base import EventStore, StorageError

log = logging.getLogger("stumble.api")

Role = Literal["analyst", "engineer", "auditor", "admin"]
AGGREGATE_READERS: Final[frozenset[Role]] = frozenset({"analyst", "engineer", "admin"})
REPORT_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    **dict.fromkeys(REPORTS, AGGREGATE_READERS),
    # Data health is about the pipeline, not people: auditors check it too.
    "health": frozenset({"analyst", "engineer", "auditor", "admin"}),
}
NO_STORE: Final = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a request acts as: the role decides which reports, ``min_group_size`` the k of
    small-cell suppression applied to every aggregate it receives."""

    role: Role = "analyst"
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE


ANALYST: Final = Viewer()

AccessPolicy = Callable[[Request], Viewer | Awaitable[Viewer | None] | None]


def every_caller_is_analyst(_: Request) -> Viewer:
    """The policy until the dashboard adds tokens: aggregates only, with suppression."""
    return ANALYST


class ReportServices(Protocol):
    """What the routes need from the running server (``CollectorServices`` has both)."""

    @property
    def store(self) -> EventStore: ...

    @property
    def plan(self) -> TrackingPlan: ...


def report_routes(
    services: ReportServices, *, access: AccessPolicy = every_caller_is_analyst
) -> list[BaseRoute]:
    """The report routes, reading ``services.store`` and ``services.plan`` per request."""

    async def index(request: Request) -> Response:
        viewer = await _viewer(access, request)
        if viewer is None:
            return _error(401, "access.unauthenticated")
        reports = [
            {"name": spec.name, "summary": spec.summary, "params": list(spec.params)}
            for spec in REPORTS.values()
            if viewer.role in REPORT_ROLES.get(spec.name, frozenset())
        ]
        return JSONResponse({"reports": reports}, headers=NO_STORE)

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in REPORTS:
            return _error(404, "report.unknown")
        viewer = await _viewer(access, request)
        if viewer is None:
            return _error(401, "access.unauthenticated")
        if viewer.role not in REPORT_ROLES.get(name, frozenset()):
            return _error(403, "access.forbidden")
        params = {key: ",".join(request.query_params.getlist(key)) for key in request.query_params}
        try:
            result = await asyncio.to_thread(
                run_report,
                services.store,
                services.plan,
                name,
                params,
                min_group_size=viewer.min_group_size,
            )
        except ReportParamError as error:
            return _error(400, "report.bad_param", str(error))
        except StorageError as error:
            log.warning("report %s failed: %s", name, type(error).__name__)
            return _error(503, "storage.unavailable")
        return Response(
            msgspec.json.encode(result), media_type="application/json", headers=NO_STORE
        )

    return [
        Route("/api/v1/reports", index, methods=["GET"]),
        Route("/api/v1/reports/{name}", report, methods=["GET"]),
    ]


async def _viewer(access: AccessPolicy, request: Request) -> Viewer | None:
    decided = access(request)
    if isinstance(decided, Viewer) or decided is None:
        return decided
    return await decided


def _error(status: int, code: str, message: str | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": code, "status": status}
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status, headers=NO_STORE)
