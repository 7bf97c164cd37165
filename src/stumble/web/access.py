"""Who may call each route: every route declares it, and the default is nobody.

A route is made with ``secured(path, endpoint, access, methods)``, which records its
``RouteAccess`` on the route and wraps the endpoint with the check. ``undeclared_routes(app)``
lists routes made any other way; ``create_app`` refuses to start with one, and a test walks the
route table against every kind of caller.

Three kinds of access:

- ``PUBLIC``: liveness, readiness, the SDK files (and the demo's own pages);
- ``WRITE_KEY``: ingest and ``/v1/config``, which authenticate their write key themselves;
- ``requires(permission)``: an API token (``Authorization: Bearer sta_…``) or a browser session
  cookie whose role grants the permission (``stumble.access.roles``). A session must also send
  its CSRF token (``X-CSRF-Token``) on anything but GET and HEAD. A write key is not a token:
  it reads nothing.

Answers: 401 ``access.unauthenticated`` (no valid credential), 403 ``access.forbidden`` (the role
does not grant it, or a missing CSRF token). The resolved ``Principal`` is in
``request.state.principal`` for handlers (audit records name it; reports read its k).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from stumble.access.audit import Actor
from stumble.access.roles import Permission, Role
from stumble.access.sessions import CSRF_HEADER_NAME, SESSION_COOKIE_NAME, SessionStore
from stumble.access.tokens import TokenRing
from stumble.config import Settings

Endpoint = Callable[[Request], Awaitable[Response]]
Refuse = Callable[[Request, int, str], Response]
"""How a route answers a refused request: JSON for the API, a page for the dashboard."""
SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
SSO_REQUEST_HEADER: Final = "X-Stumble-Request"
NO_STORE: Final = {"cache-control": "no-store"}


@dataclass(frozen=True, slots=True)
class RouteAccess:
    """What a route needs: nothing (public), a write key, or any one of some permissions."""

    kind: str  # "public" | "write_key" | "permission"
    permissions: tuple[Permission, ...] = ()

    def describe(self) -> str:
        return " or ".join(self.permissions) if self.permissions else self.kind

    def granted_to(self, role: Role) -> bool:
        return any(role.grants(permission) for permission in self.permissions)


PUBLIC: Final = RouteAccess("public")
WRITE_KEY: Final = RouteAccess("write_key")


def requires(*permissions: Permission) -> RouteAccess:
    """A route for callers whose role grants at least one of ``permissions``."""
    assert permissions
    return RouteAccess("permission", permissions)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a token's name (or a browser session of that token) and role."""

    name: str
    role: Role
    via: str  # "token" | "session" | "sso"
    csrf_token: str | None = None


@dataclass(frozen=True, slots=True)
class ProxySignOn:
    """Corporate single sign-on through a reverse proxy (Grafana's auth-proxy model).

    The user and groups headers are believed **only** from a TCP peer inside
    ``trusted``; from anyone else they are ignored, as if absent (settings refuse header
    sign-on without trusted proxies). Groups map to roles; the role granting most wins.
    """

    user_header: str
    groups_header: str
    group_roles: dict[str, Role]
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxySignOn | None:
        if not settings.sso_user_header:
            return None
        return cls(
            settings.sso_user_header,
            settings.sso_groups_header,
            {group: Role(role) for group, role in settings.sso_group_roles.items()},
            tuple(ipaddress.ip_network(cidr, strict=False) for cidr in settings.trusted_proxies),
        )

    def principal(self, request: Request) -> Principal | None:
        if not self._from_trusted_proxy(request):
            return None
        user = request.headers.get(self.user_header, "").strip()
        if not user:
            return None
        groups = request.headers.get(self.groups_header, "").split(",")
        roles = [self.group_roles[g.strip()] for g in groups if g.strip() in self.group_roles]
        if not roles:
            return None
        role = max(roles, key=lambda candidate: len(candidate.permissions))
        return Principal(_login_for_records(user), role, "sso")

    def _from_trusted_proxy(self, request: Request) -> bool:
        peer = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)


_LOGIN: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _login_for_records(user: str) -> str:
    """The login as the audit log may hold it: an identifier, never an e-mail address; other
    forms are replaced by a stable digest (``sso_`` + 16 hex digits) the proxy's logs resolve."""
    if _LOGIN.fullmatch(user):
        return user
    return "sso_" + hashlib.sha256(user.encode()).hexdigest()[:16]


def actor_of(principal: Principal) -> Actor:
    """Who the audit log names for a request."""
    return Actor.sso(principal.name) if principal.via == "sso" else Actor.token(principal.name)


class Credentials:
    """Turns a request's credentials into a ``Principal``: an API token, a trusted proxy's
    sign-on headers, or a browser session, in that order."""

    def __init__(
        self, tokens: TokenRing, sessions: SessionStore, sign_on: ProxySignOn | None = None
    ) -> None:
        self.tokens = tokens
        self.sessions = sessions
        self.sign_on = sign_on

    def principal(self, request: Request, now: dt.datetime) -> Principal | None:
        scheme, _, text = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and text:
            token = self.tokens.authenticate(text.strip(), now)
            return Principal(token.name, token.role, "token") if token else None
        if self.sign_on is not None:
            signed_on = self.sign_on.principal(request)
            if signed_on is not None:
                return signed_on
        session_id = request.cookies.get(SESSION_COOKIE_NAME)
        session = self.sessions.lookup(session_id, now) if session_id else None
        if session is None:
            return None
        token = self.tokens.active(session.token_id, now)
        name = token.name if token else session.token_id
        return Principal(name, session.role, "session", session.csrf_token)


def secured(
    path: str,
    endpoint: Endpoint,
    access: RouteAccess,
    methods: Sequence[str],
    credentials: Credentials | None = None,
    *,
    name: str | None = None,
    refuse: Refuse | None = None,
) -> Route:
    """A route that declares who may call it; permission routes need ``credentials``.

    ``refuse`` shapes the 401/403 answer (default: the API's JSON ``refusal``)."""
    if access.kind == "permission":
        assert credentials is not None, f"{path} needs credentials to check {access.describe()}"
        endpoint = _checked(endpoint, access, credentials, refuse or _json_refusal)
    route = Route(path, endpoint, methods=list(methods), name=name)
    route.access = access  # type: ignore[attr-defined]  # read by undeclared_routes and tests
    return route


def declared(route: BaseRoute, access: RouteAccess) -> BaseRoute:
    """Declare the access of a route made elsewhere (a raw ASGI endpoint such as ingest)."""
    route.access = access  # type: ignore[attr-defined]
    return route


def access_of(route: BaseRoute) -> RouteAccess | None:
    found = getattr(route, "access", None)
    return found if isinstance(found, RouteAccess) else None


def undeclared_routes(app: Starlette) -> list[str]:
    """Paths of routes that say nothing about who may call them (mounts included)."""
    return [
        route.path if isinstance(route, Route | Mount) else repr(route)
        for route in app.routes
        if access_of(route) is None
    ]


def _checked(
    endpoint: Endpoint, access: RouteAccess, credentials: Credentials, refuse: Refuse
) -> Endpoint:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        principal = credentials.principal(request, dt.datetime.now(dt.UTC))
        if principal is None:
            return refuse(request, 401, "access.unauthenticated")
        # Known before the permission check: a refusal page shows who is signed in.
        request.state.principal = principal
        if not access.granted_to(principal.role):
            return refuse(request, 403, "access.forbidden")
        if request.method not in SAFE_METHODS and not _csrf_safe(principal, request):
            return refuse(request, 403, "access.csrf")
        return await endpoint(request)

    return guarded


def _csrf_safe(principal: Principal, request: Request) -> bool:
    """A change made with an ambient credential must prove it came from our own pages: a
    session sends its CSRF token; behind a sign-on proxy, a custom header (which no other
    site can add without a CORS preflight that stumble never answers)."""
    if principal.via == "session":
        presented = request.headers.get(CSRF_HEADER_NAME)
        return principal.csrf_token is not None and _same(principal.csrf_token, presented)
    if principal.via == "sso":
        return request.headers.get(SSO_REQUEST_HEADER) == "1"
    return True  # a bearer token is never sent by a browser on its own


def _same(expected: str, presented: str | None) -> bool:
    import hmac  # noqa: PLC0415 - only state-changing session requests need it

    return presented is not None and hmac.compare_digest(expected, presented)


def _json_refusal(_: Request, status: int, code: str) -> Response:
    return refusal(status, code)


def refusal(status: int, code: str) -> Response:
    headers = dict(NO_STORE)
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="stumble"'
    return JSONResponse({"error": code, "status": status}, status, headers=headers)
