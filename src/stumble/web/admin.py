"""Administration from the dashboard: revoke an API token, turn a write key off or on.

- ``POST /api/v1/tokens/{token_id}/revoke`` (``manage_tokens``): revoked at once (servers
  refuse the token within a second); the revocation is audited, and — being the safe
  direction — done even when the audit log cannot be written (then logged as a warning).
- ``POST /api/v1/keys/{key_id}`` with ``{"enabled": true|false}`` (``manage_keys``): the kill
  switch. Turning a key off is the safe direction like a revocation; turning one on is audited
  first and refused (503) when the record cannot be written.

A browser session sends its CSRF token with both. Answers: 200 with what changed, 400 a bad
body, 404 no such token or key. Secrets are never in an answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Final, Protocol

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from stumble.access.audit import AuditAction, AuditDetail, AuditError, AuditLog, Outcome
from stumble.access.keys import KeyRing, KeyRingError
from stumble.access.roles import Permission
from stumble.access.tokens import TokenError, TokenRing
from stumble.web.access import NO_STORE, Credentials, actor_of, requires, secured

log = logging.getLogger("stumble.admin")
MAX_BODY: Final = 1024


class KeySwitch(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool


class AdminServices(Protocol):
    @property
    def tokens(self) -> TokenRing: ...

    @property
    def keys(self) -> KeyRing: ...

    @property
    def audit(self) -> AuditLog: ...


def admin_routes(services: AdminServices, credentials: Credentials) -> list[BaseRoute]:
    async def audited(request: Request, action: AuditAction, route: str, target: str) -> bool:
        detail = AuditDetail(route=route, target=target)
        try:
            await asyncio.to_thread(
                services.audit.record,
                actor_of(request.state.principal),
                action,
                Outcome.OK,
                detail,
            )
        except AuditError as error:
            log.warning("admin change not recorded in the audit log: %s", type(error).__name__)
            return False
        return True

    async def revoke_token(request: Request) -> Response:
        token_id = request.path_params["token_id"]
        if not any(token.token_id == token_id for token in services.tokens.list()):
            return _error(404, "token.unknown")
        try:
            revoked = services.tokens.revoke(token_id, now=dt.datetime.now(dt.UTC))
        except TokenError:
            return _error(404, "token.unknown")
        # Recorded, but never held back for its record: a revocation is the safe direction.
        await audited(request, AuditAction.TOKEN_REVOKE, "/api/v1/tokens/:id/revoke", token_id)
        return _json({"revoked": [token.token_id for token in revoked]})

    async def switch_key(request: Request) -> Response:
        key_id = request.path_params["key_id"]
        try:
            asked = msgspec.json.decode((await request.body())[: MAX_BODY + 1], type=KeySwitch)
        except msgspec.DecodeError as error:
            return _error(400, "key.bad_request", str(error))
        if all(key.key_id != key_id for key in services.keys.all()):
            return _error(404, "key.unknown")
        recorded = await audited(request, AuditAction.WRITE_KEY_UPDATE, "/api/v1/keys/:id", key_id)
        if asked.enabled and not recorded:
            return _error(503, "audit.unavailable")  # turning a key on is never unrecorded
        try:
            key = services.keys.update(key_id, enabled=asked.enabled)
        except KeyRingError:
            return _error(404, "key.unknown")
        return _json({"key_id": key.key_id, "enabled": key.enabled})

    return [
        secured(
            "/api/v1/tokens/{token_id}/revoke",
            revoke_token,
            requires(Permission.MANAGE_TOKENS),
            ["POST"],
            credentials,
        ),
        secured(
            "/api/v1/keys/{key_id}",
            switch_key,
            requires(Permission.MANAGE_KEYS),
            ["POST"],
            credentials,
        ),
    ]


def _json(body: object) -> JSONResponse:
    return JSONResponse(body, headers=NO_STORE)


def _error(status: int, code: str, message: str | None = None) -> JSONResponse:
    answer: dict[str, object] = {"error": code, "status": status}
    if message is not None:
        answer["message"] = message
    return JSONResponse(answer, status, headers=NO_STORE)
