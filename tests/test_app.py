"""The collector app's own answers and the data directory it makes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.collector.conftest import ORIGIN, Server, make_server

from stumble.app import CollectorServices
from stumble.config import Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path)
    srv.start()
    yield srv
    srv.kill()


def test_the_config_answer_may_be_cached_by_the_browser_only(server: Server) -> None:
    response = httpx.get(
        f"{server.url}/v1/config", params={"key": server.keys["prod"]}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 200
    # the URL carries a write key: a shared cache must neither keep nor serve it
    assert response.headers["cache-control"] == "private, max-age=300"


def test_services_make_private_directories_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        services = CollectorServices(Settings(data_dir=str(tmp_path / "data")))
        services.store.migrate()
        services.store.close()
    finally:
        os.umask(previous)
    for directory in (tmp_path / "data", tmp_path / "data" / "secrets"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
