"""``stumble digest``: printed from a simulated data directory (read-only), sent with ``--send``
to a real HTTP receiver (each recipient once, audited as ``cli``), and its one-line errors."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.collector.conftest import free_port
from tests.web.serving import served

from stumble.access.audit import ActorKind, AuditAction, audit_paths, read_records
from stumble.cli.main import main
from stumble.review.calendar import Week

TEAM = "team_service_desk"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("digest-cli") / "data"
    assert main(["simulate", "--sessions", "600", "--days", "8", "--data", str(directory)]) == 0
    return directory


def last_week() -> Week:
    return Week.of(dt.datetime.now().astimezone().date()).previous()


def files_of(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file but DuckDB's own (opening a database may touch its WAL), with size and
    modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith("stumble.duckdb")
    }


def test_the_last_full_week_as_markdown_and_html_writes_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_of(data_dir)

    assert main(["digest", "--data", str(data_dir)]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith(f"# Weekly UX review {last_week()} · prod\n")
    assert "## Top problems" in markdown

    assert main(["digest", "--data", str(data_dir), "--format", "html", "--team", TEAM]) == 0
    html = capsys.readouterr().out
    assert html.startswith("<!doctype html>")
    assert "<svg" in html
    assert f"For {TEAM}" in html

    assert files_of(data_dir) == before
    assert not (data_dir / "review").exists()


def test_a_week_and_an_environment_can_be_named(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = last_week().previous()
    assert main(["digest", "--data", str(data_dir), "--week", str(earlier), "--env", "dev"]) == 0
    assert capsys.readouterr().out.startswith(f"# Weekly UX review {earlier} · dev\n")


def test_mistakes_are_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["digest", "--data", str(data_dir), "--week", "2026-49"]) == 2
    err = capsys.readouterr().err
    assert err == "error: a week is written YYYY-Www, e.g. 2026-W49\n"
    assert main(["digest", "--data", str(data_dir), "--week", "2026-W54"]) == 2
    assert capsys.readouterr().err == "error: 2026 has no week 54\n"
    assert main(["digest", "--data", str(tmp_path / "none")]) == 1
    assert "no stumble data directory" in capsys.readouterr().err
    assert main(["digest", "--data", str(data_dir), "--send"]) == 2
    assert "no team has a channel" in capsys.readouterr().err


def test_a_database_held_by_a_server_is_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hold = (
        "import sys, time; from stumble.storage import DuckDBStore; "
        "store = DuckDBStore(sys.argv[1], migrate=False); print('held', flush=True); "
        "time.sleep(120)"
    )
    command = [sys.executable, "-c", hold, str(data_dir / "stumble.duckdb")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            assert main(["digest", "--data", str(data_dir)]) == 1
        finally:
            holder.kill()
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: the database is in use by a running server")
    assert "mondays at 09:00" in err


@pytest.fixture
def receiver() -> Iterator[tuple[list[dict[str, Any]], str]]:
    bodies: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        bodies.append(json.loads(await request.body()))
        return JSONResponse({})

    with served(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        yield bodies, url


def test_send_delivers_once_and_audits(
    tmp_path: Path,
    data_dir: Path,
    receiver: tuple[list[dict[str, Any]], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bodies, url = receiver
    config = tmp_path / "stumble.toml"
    config.write_text(f'team_chat_webhooks = {{{TEAM} = ["{url}/hook"]}}\n', encoding="utf-8")
    args = ["digest", "--data", str(data_dir), "--config", str(config), "--send"]

    assert main(args) == 0
    assert capsys.readouterr().out == f"{TEAM}: 1 sent, 0 already sent, 0 failed\n"
    assert main(args) == 0
    assert capsys.readouterr().out == f"{TEAM}: 0 sent, 1 already sent, 0 failed\n"

    assert len(bodies) == 1
    assert bodies[0]["text"].startswith(f"# Weekly UX review {last_week()} · prod")
    sends = [
        r
        for r in read_records(audit_paths(data_dir).log).records
        if r.action == AuditAction.DIGEST_SEND and r.detail is not None and r.detail.route == "chat"
    ]
    assert [(r.actor.kind, r.detail.route) for r in sends] == [(ActorKind.CLI, "chat")]
    assert url.encode() not in audit_paths(data_dir).log.read_bytes()


class Sink:
    """An SMTP server that accepts everything (and offers no STARTTLS)."""

    def __init__(self) -> None:
        self.messages = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages += 1
        return "250 OK"


def test_send_refuses_an_smtp_server_without_starttls_and_says_why(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config = tmp_path / "stumble.toml"
        config.write_text(
            f'smtp_host = "127.0.0.1"\nsmtp_port = {controller.port}\n'
            f'team_emails = {{{TEAM} = ["desk-review@example.org"]}}\n',
            encoding="utf-8",
        )
        args = ["digest", "--data", str(data_dir), "--config", str(config), "--send"]
        assert main(args) == 1
    finally:
        controller.stop()
    out, err = capsys.readouterr()
    assert out.startswith(f"{TEAM}: 0 sent, 0 already sent, 1 failed\n")
    assert "smtp_no_starttls: the SMTP server offers no STARTTLS" in out
    assert err == "error: 1 recipient(s) failed; run again to retry them\n"
    assert sink.messages == 0
