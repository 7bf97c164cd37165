"""Headers and host checks on every answer of the server, ingest included.

- ``Host`` must be one of ``allowed_hosts``: a page on another site that rebinds its DNS name to
  127.0.0.1 sends its own name, and is refused before any route runs (400).
- Security headers on every response: a CSP without inline script, ``nosniff``, no framing,
  no referrer. The read API sends no CORS headers at all (only ingest and ``/v1/config`` do,
  for the origins a write key allows).
"""

from __future__ import annotations

from typing import Final

from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stumble.config import Settings

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1", "[::1]")
WILDCARD_BINDS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind
SECURITY_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (
        b"content-security-policy",
        (
            b"default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
            b"form-action 'self'; frame-ancestors 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def allowed_hosts(settings: Settings) -> list[str]:
    """``settings.allowed_hosts``, or loopback names plus the bind address when it is one."""
    if settings.allowed_hosts:
        return list(settings.allowed_hosts)
    hosts = list(LOOPBACK_HOSTS)
    if settings.host not in WILDCARD_BINDS and settings.host not in hosts:
        hosts.append(settings.host)
    return hosts


def add_security(app: Starlette, hosts: list[str]) -> None:
    # Added last, runs first: the host is checked before anything else reads the request.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every HTTP response start, unless the route set one of them
    itself (raw ASGI: ingest stays fast)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                # A route that sets its own (a page's stricter CSP) keeps it.
                headers += [item for item in SECURITY_HEADERS if item[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
