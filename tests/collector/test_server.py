"""The HTTP server under hostile clients: slow or endless headers and too many connections
are cut off while ordinary requests and ``/healthz`` keep being answered.

One real ``stumble serve`` on loopback with a short header timeout and a small connection cap
serves the module; each test opens raw sockets to it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.collector.conftest import Server, batch, event, make_server

HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 12
REQUEST_START = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(
        tmp_path_factory.mktemp("server"),
        STUMBLE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        STUMBLE_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    server.start()
    yield server
    server.kill()


def rss_mb(server: Server) -> float:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


def healthy(server: Server) -> bool:
    return httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit_s)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received, time.monotonic() - started


def status_of(reply: bytes) -> int | None:
    line = reply.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def test_headers_never_finished_get_408_and_the_connection_is_closed(srv: Server) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(REQUEST_START + b"X-Slow: ")
        assert healthy(srv)  # the slow client blocks nobody meanwhile
        reply, waited = read_until_closed(sock, limit_s=10)
    assert status_of(reply) == 408
    assert HEADER_TIMEOUT_S * 0.8 < waited < HEADER_TIMEOUT_S + 3


def test_a_connection_that_sends_nothing_is_closed(srv: Server) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        reply, waited = read_until_closed(sock, limit_s=10)
    assert reply == b""
    assert waited < HEADER_TIMEOUT_S + 3


def test_dripping_header_bytes_does_not_extend_the_deadline(srv: Server) -> None:
    """Slowloris: a byte every few hundred milliseconds, never the end of the headers."""
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(REQUEST_START)
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < HEADER_TIMEOUT_S + 5:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
            assert healthy(srv)
        if not closed:
            closed = read_until_closed(sock, limit_s=1)[1] < 1
    assert closed
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_the_deadline_applies_to_each_request_on_a_kept_alive_connection(srv: Server) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(REQUEST_START + b"\r\n")
        sock.settimeout(5)
        assert status_of(sock.recv(65536)) == 200
        time.sleep(HEADER_TIMEOUT_S + 0.5)  # idle between requests: keep-alive, not headers
        sock.sendall(REQUEST_START)  # a second request that never finishes its headers
        reply, waited = read_until_closed(sock, limit_s=10)
    assert status_of(reply) == 408
    assert waited < HEADER_TIMEOUT_S + 3


def test_a_body_dripping_after_its_answer_does_not_hold_the_connection(srv: Server) -> None:
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.sendall(REQUEST_START + b"Content-Length: 100000\r\n\r\nabc")
        sock.settimeout(5)
        assert status_of(sock.recv(65536)) == 200  # answered without reading the body
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - started < HEADER_TIMEOUT_S + 5:
                sock.sendall(b"x")
                time.sleep(0.2)
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_64_mb_of_headers_are_refused_early_without_growing_the_server(srv: Server) -> None:
    before = rss_mb(srv)
    filler = b"a" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.settimeout(10)
        try:
            sock.sendall(REQUEST_START + b"X-Filler: ")
            while sent < 64 * 1024 * 1024:
                sock.sendall(filler)
                sent += len(filler)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply, _ = read_until_closed(sock, limit_s=10)
    assert sent < 32 * 1024 * 1024, "the server read every header byte"
    assert status_of(reply) in {431, None}  # None: reset before the answer could be read
    assert rss_mb(srv) - before < 8
    assert healthy(srv)


def test_many_small_headers_over_the_limit_get_431(srv: Server) -> None:
    headers = {f"x-header-{i}": "v" * 20 for i in range(800)}  # ~30 KB, over 16 KiB
    response = httpx.get(f"{srv.url}/healthz", headers=headers, timeout=10)
    assert response.status_code == 431
    assert healthy(srv)


def test_ordinary_requests_with_large_but_allowed_headers_work(srv: Server) -> None:
    cookie = "c" * 8000  # an intranet's cookies can be large; 8 KB is within the limit
    response = httpx.get(f"{srv.url}/healthz", headers={"Cookie": cookie}, timeout=10)
    assert response.status_code == 200
    posted = srv.post(batch(event()), headers={"X-Padding": "p" * 4000})
    assert posted.status_code == 202, posted.text


def test_connections_beyond_the_cap_are_turned_away_until_slots_free_up(srv: Server) -> None:
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        with socket.create_connection(("127.0.0.1", srv.port)) as extra:
            reply, waited = read_until_closed(extra, limit_s=10)
        assert status_of(reply) in {503, None}
        assert waited < HEADER_TIMEOUT_S / 2, "the extra connection was held, not turned away"
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if healthy(srv):
                break
        time.sleep(0.1)
    assert healthy(srv)
