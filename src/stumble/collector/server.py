"""The HTTP server: uvicorn with httptools and uvloop, bounded against hostile connections.

uvicorn limits neither how long a client may take to send its request headers nor how large
they may be: a connection that never finishes its headers is kept forever (slowloris), and
llhttp buffers a header until its line ends, so one request can make the server hold
megabytes. ``BoundedHttpToolsProtocol`` adds both bounds and turns connections beyond a cap
away at once; ``serve(app, settings)`` runs an app with them (``stumble serve`` and ``demo``).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from stumble.config import Settings

log = logging.getLogger("stumble.server")

STARTUP_FAILURE: Final = 3  # what uvicorn.run exits with when the server cannot start
SPARE_FILES: Final = 256  # descriptors beyond connections: DuckDB, spool segments, logs
# What the parser does not hand over: the space after the method, " HTTP/1.1\r\n" and the
# empty line that ends the headers
REQUEST_LINE_FRAMING: Final = 14
HEADER_FRAMING: Final = 4  # ": " and "\r\n" around each header's name and value


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout_s: float = 10.0
    max_header_bytes: int = 16_384
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.header_timeout_s, settings.max_header_bytes, settings.max_connections)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline, a header size limit and a
    connection cap (``limits``; ``bounded_protocol`` makes a subclass with other limits).

    Header bytes are counted as they arrive, before the parser has to buffer them, and checked
    exactly once the parser has them all. The deadline (``header_timeout_s``) runs from the
    connection's start and from the first byte of each later request until its headers are
    complete, and from an answer sent before its request's body ended until that body ends."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._awaiting_headers = True
        self._request_begun = False
        self._header_bytes = 0
        self._refused = False

    # --- asyncio.Protocol ---------------------------------------------------------------

    # uvicorn narrows the transport type the same way (and silences mypy the same way)
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) >= self.limits.max_connections:
            # uvicorn's own limit answers 503 only once headers arrive: idle connections
            # would still pile up, each holding a descriptor and a header buffer.
            self._refuse(503, "Too many connections")
            return
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers:
            self._start_deadline()  # bare CRLFs between requests begin no message
            self._header_bytes += len(data)
        super().data_received(data)
        if self._awaiting_headers and self._header_bytes > self.limits.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")

    # --- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._request_begun = True
        self._start_deadline()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._stop_deadline()
        self._awaiting_headers = False
        if self._exact_header_bytes() > self.limits.max_header_bytes:
            self._refuse(431, "Request Header Fields Too Large")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._stop_deadline()  # a body that outlived its answer has ended in time
        super().on_message_complete()
        self._awaiting_headers = True
        self._request_begun = False
        self._header_bytes = 0

    def on_response_complete(self) -> None:
        # Without pipelined requests, ``cycle`` is the request just answered.
        body_unread = not self.pipeline and self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if body_unread:
            # Answered before its body ended (413, 408, a GET with a body): the rest is read
            # and dropped, so the client sees the answer, but only until the deadline.
            self._start_deadline()

    # --- the bounds ---------------------------------------------------------------------

    def _exact_header_bytes(self) -> int:
        headers = sum(len(name) + len(value) + HEADER_FRAMING for name, value in self.headers)
        return len(self.parser.get_method()) + len(self.url) + REQUEST_LINE_FRAMING + headers

    def _start_deadline(self) -> None:
        if self._deadline is None and not self._refused:
            self._deadline = self.loop.call_later(self.limits.header_timeout_s, self._on_deadline)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        responding = self.cycle is not None and not self.cycle.response_complete
        if self._awaiting_headers and self._request_begun and not responding:
            self._refuse(408, "Request Timeout")
        else:  # nothing asked, or already answered (or being answered): nothing to say
            self._refused = True
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` and close: nothing more this client sends is read."""
        self._refused = True
        self._stop_deadline()
        if self.transport.is_closing():
            return
        body = reason.encode("ascii")
        head = [STATUS_LINE[status]]
        defaults = self.server_state.default_headers  # date and server, as on every answer
        head.extend(name + b": " + value + b"\r\n" for name, value in defaults)
        head.append(b"content-type: text/plain; charset=utf-8\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_protocol(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class for uvicorn's ``http=`` with these limits (uvicorn builds it itself)."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})


def serve(app: ASGIApp, settings: Settings) -> None:
    """Serve ``app`` on ``settings.host:settings.port`` until a signal stops it.

    Exits like ``uvicorn.run`` (status 3, reason already logged) when it cannot start."""
    _raise_open_file_limit(settings.max_connections + SPARE_FILES)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,  # request lines would carry ?key= query strings
        http=bounded_protocol(ConnectionLimits.from_settings(settings)),
        loop="uvloop",
        timeout_keep_alive=30,
        limit_concurrency=settings.max_connections,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    warn_if_exposed(settings)
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


WILDCARD_BINDS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names, not a bind


def warn_if_exposed(settings: Settings) -> None:
    """Serving every interface in plain HTTP with no proxy in front sends tokens and cookies
    in clear across the network: say so (it may be a lab; it must not be a surprise)."""
    if settings.host in WILDCARD_BINDS and not settings.tls_cert and not settings.trusted_proxies:
        log.warning(
            "listening on all interfaces without TLS or a trusted proxy: API tokens and session "
            "cookies would cross the network in clear; use --tls-cert/--tls-key or a proxy"
        )


def _raise_open_file_limit(wanted: int) -> None:
    """Connections are descriptors: a cap above the soft limit would fail as EMFILE instead."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning(
            "the open-file limit (%d) is below max_connections plus %d spare", hard, SPARE_FILES
        )
