"""Browser sign-in: an API token exchanged for a session cookie, sign-out, one-time links.

- ``POST /api/v1/session`` with ``{"token": "sta_…"}``: sets the session cookie (HttpOnly,
  SameSite=Strict, Secure under TLS) and answers ``{"name", "role", "csrf_token"}``; pages send
  the CSRF token back in ``X-CSRF-Token`` with every change.
- ``DELETE /api/v1/session``: signs out (a session only, with its CSRF token).
- ``GET /signin/{code}``: redeems a one-time link (``stumble demo`` prints one), sets the cookie
  and sends the browser on to the dashboard.

Wrong tokens get one generic 401: nothing says whether a token exists, expired or was revoked.
Every sign-in, successful or not, is in the audit log before the answer is sent; when the log
cannot be written, signing in is refused with 503 (fail closed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Final

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditError, AuditLog, Outcome
from stumble.access.roles import Permission
from stumble.access.sessions import SESSION_COOKIE_NAME, BrowserSession, SessionError
from stumble.web.access import NO_STORE, PUBLIC, Credentials, refusal, requires, secured

MAX_SIGNIN_BODY: Final = 4096
SIGNIN_ROUTE: Final = "/api/v1/session"
LINK_ROUTE: Final = "/signin/:code"
SIGNED_IN: Final = (AuditAction.SIGNIN_SUCCESS, Outcome.OK, SIGNIN_ROUTE)
AFTER_SIGNIN: Final = "/"
"""The dashboard's overview (roles without reports are sent on to their first page)."""


class SignInRequest(msgspec.Struct, forbid_unknown_fields=True):
    token: str


def session_routes(
    credentials: Credentials, audit: AuditLog, *, secure_cookies: bool
) -> list[BaseRoute]:
    sessions, tokens = credentials.sessions, credentials.tokens

    async def audited(actor: Actor, action: AuditAction, outcome: Outcome, route: str) -> bool:
        """Whether the record was written (fsynced) and the action may go ahead."""
        detail = AuditDetail(route=route)
        try:
            await asyncio.to_thread(audit.record, actor, action, outcome, detail)
        except AuditError:
            return False
        return True

    def with_cookie(response: Response, session: BrowserSession) -> Response:
        cookie = sessions.cookie_for(session, secure=secure_cookies)
        response.set_cookie(
            SESSION_COOKIE_NAME,
            cookie.value,
            max_age=cookie.max_age_s,
            path=cookie.path,
            secure=cookie.secure,
            httponly=True,
            samesite="strict",
        )
        return response

    async def sign_in(request: Request) -> Response:
        body = await request.body()
        try:
            asked = msgspec.json.decode(body[: MAX_SIGNIN_BODY + 1], type=SignInRequest)
        except msgspec.DecodeError:
            return refusal(400, "signin.bad_request")
        now = dt.datetime.now(dt.UTC)
        token = tokens.authenticate(asked.token, now)
        if token is None:
            # Who failed is unknown (the text offered is never recorded): the system notes it.
            denied = AuditAction.SIGNIN_FAILURE, Outcome.DENIED, SIGNIN_ROUTE
            if not await audited(Actor.system(), *denied):
                return refusal(503, "audit.unavailable")
            return refusal(401, "access.unauthenticated")
        if not await audited(Actor.token(token.name), *SIGNED_IN):
            return refusal(503, "audit.unavailable")
        try:
            session = sessions.sign_in(token, now)
        except SessionError:
            return refusal(401, "access.unauthenticated")
        answer = {"name": token.name, "role": token.role, "csrf_token": session.csrf_token}
        return with_cookie(JSONResponse(answer, headers=NO_STORE), session)

    async def sign_out(request: Request) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE_NAME)
        if request.state.principal.via != "session" or session_id is None:
            return refusal(400, "signin.not_a_session")
        sessions.sign_out(session_id)
        response = JSONResponse({"signed_out": True}, headers=NO_STORE)
        response.delete_cookie(SESSION_COOKIE_NAME, path="/", httponly=True, samesite="strict")
        return response

    async def redeem(request: Request) -> Response:
        session = sessions.redeem(request.path_params["code"], dt.datetime.now(dt.UTC))
        if session is None:
            denied = AuditAction.SIGNIN_FAILURE, Outcome.DENIED, LINK_ROUTE
            await audited(Actor.system(), *denied)  # a spent link gives nothing either way
            return refusal(401, "signin.link_used_or_expired")
        token = tokens.active(session.token_id, dt.datetime.now(dt.UTC))
        who = Actor.token(token.name) if token else Actor.system()
        if not await audited(who, AuditAction.SIGNIN_SUCCESS, Outcome.OK, LINK_ROUTE):
            sessions.sign_out(session.session_id)
            return refusal(503, "audit.unavailable")
        return with_cookie(RedirectResponse(AFTER_SIGNIN, 303, headers=NO_STORE), session)

    anyone_signed_in = requires(*Permission)
    return [
        secured("/api/v1/session", sign_in, PUBLIC, ["POST"]),
        secured("/api/v1/session", sign_out, anyone_signed_in, ["DELETE"], credentials),
        secured("/signin/{code}", redeem, PUBLIC, ["GET"]),
    ]
