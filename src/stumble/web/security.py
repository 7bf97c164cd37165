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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stumble.config import Settings

LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
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
    bind = f"[{settings.host}]" if ":" in settings.host else settings.host
    if settings.host not in WILDCARD_BINDS and bind not in hosts:
        hosts.append(bind)
    return hosts


def add_security(app: Starlette, hosts: list[str]) -> None:
    app.add_middleware(SecurityMiddleware, allowed_hosts=hosts)


class SecurityMiddleware:
    """Refuses a ``Host`` outside ``allowed_hosts`` (400) before anything reads the request,
    and adds ``SECURITY_HEADERS`` to every response that did not set them itself. Raw ASGI,
    on raw header bytes: ingest pays about a microsecond for it."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed = frozenset(host.lower().encode() for host in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._host_allowed(scope):
            await _refuse_host(send)
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

    def _host_allowed(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"host":
                return _without_port(value.lower()) in self.allowed
        return False  # HTTP/1.1 requires a Host header; nothing is served without one


def _without_port(host: bytes) -> bytes:
    if host.startswith(b"["):  # [::1]:8710
        return host[: host.find(b"]") + 1]
    return host.rsplit(b":", 1)[0] if host.count(b":") == 1 else host


async def _refuse_host(send: Send) -> None:
    body = b'{"error":"host.not_allowed","status":400}'
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
