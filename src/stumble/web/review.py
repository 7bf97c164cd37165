"""The review loop's API: fix records.

- ``GET /api/v1/fixes``: every fix, open and verified (``read_aggregates``);
- ``GET /api/v1/fixes/{fix_id}``: one fix with its verdict and evidence;
- ``POST /api/v1/fixes``: record a fix (``record_fixes``: analysts, engineers, admins; a
  browser session sends its CSRF token). The body is the fix without ``fix_id``,
  ``created_at`` and ``created_by``, which the server sets; expectations may be given as text
  (``"field_error_share:service_request step 2 iin_bin format=-20%"``). Audited before it is
  written (503 when the audit log cannot be written); 201 with the record.

Errors: 400 ``fix.invalid`` (the message names the field, never a value), 404 ``fix.unknown``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Final, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from stumble.access.audit import AuditAction, AuditDetail, AuditError, AuditLog, Outcome
from stumble.access.roles import Permission
from stumble.review.fixes import Expectation, FixBook, FixError, FixRecord, check_fix
from stumble.web.access import NO_STORE, Credentials, actor_of, requires, secured

MAX_FIX_BODY: Final = 16_384
SERVER_SET: Final = ("fix_id", "created_at", "created_by", "verdict")


class ReviewServices(Protocol):
    @property
    def fixes(self) -> FixBook: ...

    @property
    def audit(self) -> AuditLog: ...


def review_routes(services: ReviewServices, credentials: Credentials) -> list[BaseRoute]:
    async def listing(_: Request) -> Response:
        fixes = await asyncio.to_thread(services.fixes.all)
        return _json({"fixes": msgspec.to_builtins(fixes)})

    async def one(request: Request) -> Response:
        try:
            fix = await asyncio.to_thread(services.fixes.get, request.path_params["fix_id"])
        except FixError:
            return _error(404, "fix.unknown")
        return _json(msgspec.to_builtins(fix))

    async def create(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FIX_BODY:
            return _error(413, "fix.too_large")
        principal = request.state.principal
        try:
            draft = _draft(body, principal.name)
            check_fix(draft)
        except (FixError, msgspec.DecodeError) as error:
            return _error(400, "fix.invalid", str(error))
        detail = AuditDetail(route="/api/v1/fixes", target=services.fixes.next_id())
        try:
            await asyncio.to_thread(
                services.audit.record, actor_of(principal), AuditAction.FIX_CREATE, Outcome.OK,
                detail,
            )  # fmt: skip
        except AuditError:
            return _error(503, "audit.unavailable")
        fix = await asyncio.to_thread(services.fixes.add, draft)
        return _json(msgspec.to_builtins(fix), 201)

    read = requires(Permission.READ_AGGREGATES)
    return [
        secured("/api/v1/fixes", listing, read, ["GET"], credentials),
        secured("/api/v1/fixes", create, requires(Permission.RECORD_FIXES), ["POST"], credentials),
        secured("/api/v1/fixes/{fix_id}", one, read, ["GET"], credentials),
    ]


def _draft(body: bytes, author: str) -> FixRecord:
    given: Any = msgspec.json.decode(body)
    if not isinstance(given, dict):
        raise FixError("the body is a JSON object")
    for name in SERVER_SET:
        given.pop(name, None)  # the server says who and when, and verifies later itself
    given["expectations"] = [
        msgspec.to_builtins(Expectation.parse(e)) if isinstance(e, str) else e
        for e in given.get("expectations", [])
    ]
    fields = {"fix_id": "", "created_at": dt.datetime.now(dt.UTC).isoformat()}
    return msgspec.convert({**given, **fields, "created_by": author}, FixRecord)


def _json(body: object, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers=NO_STORE)


def _error(status: int, code: str, message: str | None = None) -> JSONResponse:
    answer: dict[str, object] = {"error": code, "status": status}
    if message is not None:
        answer["message"] = message
    return JSONResponse(answer, status, headers=NO_STORE)
