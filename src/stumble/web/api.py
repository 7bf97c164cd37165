"""The read API for reports: ``GET /api/v1/reports`` and ``GET /api/v1/reports/{name}``.

``report_routes(services, credentials)`` returns the routes to pass to
``create_app(extra_routes=...)``. Query parameters are those of ``stumble.reports.catalog``
(``?from=2026-03-01&to=2026-03-14&env=prod&by=role&scenario=...``), plus ``k``: the small-cell
threshold, which a caller may raise above ``DEFAULT_MIN_GROUP_SIZE`` but never lower (the
server enforces suppression whatever is asked). The answer is the report's JSON
(``{"meta": {...}, "data": {...}}``).

Who may read: every report needs ``read_aggregates`` (analyst, engineer, admin), except data
health, which needs ``read_health`` (engineer, auditor, admin) — it is about the pipeline, not
people (``web/access.py`` checks the token or session before a handler runs).

Answers: 200 the report; 400 a bad parameter (the message names it); 401 no credential; 403 a
role that may not read the report; 404 no such report; 503 the store failed. Error bodies are
``{"error": <code>, "status": <int>, "message"?: <text>}`` and carry no stored value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from stumble.access.roles import Permission
from stumble.analytics.queries import DEFAULT_MIN_GROUP_SIZE
from stumble.config import Settings
from stumble.plan.model import TrackingPlan
from stumble.reports.catalog import REPORTS, ReportDefaults, ReportParamError, run_report
from stumble.storage.base import EventStore, StorageError
from stumble.web.access import Credentials, requires, secured

log = logging.getLogger("stumble.api")

NO_STORE: Final = {"cache-control": "no-store"}
REPORT_PERMISSIONS: Final[Mapping[str, Permission]] = {
    **dict.fromkeys(REPORTS, Permission.READ_AGGREGATES),
    "health": Permission.READ_HEALTH,
}
MAX_MIN_GROUP_SIZE: Final = 1000


class ReportServices(Protocol):
    """What the routes need from the running server (``CollectorServices`` has them)."""

    @property
    def store(self) -> EventStore: ...

    @property
    def plan(self) -> TrackingPlan: ...

    @property
    def settings(self) -> Settings: ...


def report_routes(services: ReportServices, credentials: Credentials) -> list[BaseRoute]:
    """The report routes, reading ``services.store`` and ``services.plan`` per request."""

    async def index(request: Request) -> Response:
        role = request.state.principal.role
        reports = [
            {"name": spec.name, "summary": spec.summary, "params": [*spec.params, "k"]}
            for spec in REPORTS.values()
            if role.grants(REPORT_PERMISSIONS[spec.name])
        ]
        return JSONResponse({"reports": reports}, headers=NO_STORE)

    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in REPORTS:
            return _error(404, "report.unknown")
        if not request.state.principal.role.grants(REPORT_PERMISSIONS[name]):
            return _error(403, "access.forbidden")
        params = {key: ",".join(request.query_params.getlist(key)) for key in request.query_params}
        try:
            k = _min_group_size(params.pop("k", None))
            result = await asyncio.to_thread(
                run_report,
                services.store,
                services.plan,
                name,
                params,
                min_group_size=k,
                check_environment=True,
                defaults=ReportDefaults.from_settings(services.settings),
            )
        except ReportParamError as error:
            return _error(400, "report.bad_param", str(error))
        except StorageError as error:
            log.warning("report %s failed: %s", name, type(error).__name__)
            return _error(503, "storage.unavailable")
        return Response(
            msgspec.json.encode(result), media_type="application/json", headers=NO_STORE
        )

    # Listing and reading need only *some* report permission; the handler checks the one the
    # named report needs (data health is readable by auditors, who read no other report).
    readable = requires(*set(REPORT_PERMISSIONS.values()))
    return [
        secured("/api/v1/reports", index, readable, ["GET"], credentials),
        secured("/api/v1/reports/{name}", report, readable, ["GET"], credentials),
    ]


def _min_group_size(asked: str | None) -> int:
    """``k`` may raise the small-cell threshold, never lower it."""
    if asked is None:
        return DEFAULT_MIN_GROUP_SIZE
    if not asked.isdigit() or not DEFAULT_MIN_GROUP_SIZE <= int(asked) <= MAX_MIN_GROUP_SIZE:
        raise ReportParamError(
            f"k must be a whole number from {DEFAULT_MIN_GROUP_SIZE} to {MAX_MIN_GROUP_SIZE}"
        )
    return int(asked)


def _error(status: int, code: str, message: str | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": code, "status": status}
    if message is not None:
        body["message"] = message
    return JSONResponse(body, status, headers=NO_STORE)
