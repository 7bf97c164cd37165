"""Delivery against real receivers: an SMTP server on loopback (aiosmtpd, with and without
STARTTLS) and an HTTP server (uvicorn) for both webhook kinds. Sends are counted where they
arrive; the ledger, the audit log and the logs are read back from disk."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route
from tests.collector.conftest import free_port
from tests.web.serving import served

from stumble.access.audit import AuditAction, AuditLog, Outcome, audit_paths, read_records
from stumble.config import Settings
from stumble.review.delivery import Channel as DeliveryChannel
from stumble.review.delivery import Deliverer, Ledger, LedgerError, message_id, recipient_id
from stumble.review.messages import Message

TEAM = "team_service_desk"
ADDRESSES = ["desk-review@example.org", "desk-leads@example.org"]
KEY = "digest:2026-W10:prod"
MESSAGE = Message(
    key=KEY,
    subject="stumble digest 2026-W10 (prod)",
    text="Top problems\n1. Field errors: iin_bin",
    markdown="*Top problems*\n1. Field errors: iin_bin",
    html="<!doctype html><html><body><h1>Top problems</h1></body></html>",
    data={"week": "2026-W10", "problems": 1},
)


# --- a real SMTP server ---------------------------------------------------------------------


@dataclass
class Mailbox:
    """aiosmtpd handler: keeps what it accepted; can refuse a recipient or kill a sender."""

    accepted: list[tuple[str, bytes]] = field(default_factory=list)
    refuse_once: set[str] = field(default_factory=set)
    kill_on: str | None = None
    """Kill this process id when a message for ``kill_on`` arrives (before answering)."""
    victim: int | None = None

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse_once:
            self.refuse_once.discard(address)
            return "550 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        recipient = envelope.rcpt_tos[0]
        if self.kill_on == recipient and self.victim is not None:
            os.kill(self.victim, signal.SIGKILL)
            self.kill_on = None
            return "451 not accepted"  # the sender is dead: this copy was never delivered
        self.accepted.append((recipient, envelope.content))
        return "250 OK"

    def count(self, address: str) -> int:
        return sum(1 for to, _ in self.accepted if to == address)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stumble test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


PASSWORD = "s3cret-for-tests"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"stumble", PASSWORD.encode())
    return AuthResult(success=ok)


@pytest.fixture
def tls_mailbox(tmp_path: Path) -> Iterator[tuple[Mailbox, int, ssl.SSLContext]]:
    """An SMTP server that requires STARTTLS (self-signed) and then a login."""
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield box, controller.port, ssl.create_default_context(cafile=str(cert))
    finally:
        controller.stop()


# --- a real HTTP receiver -------------------------------------------------------------------


@dataclass
class Receiver:
    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    flaky_failures: int = 1

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            name = request.path_params["name"]
            if name == "flaky" and self.flaky_failures > 0:
                self.flaky_failures -= 1
                return JSONResponse({"error": "busy"}, status_code=503)
            self.bodies.append((name, json.loads(await request.body())))
            return JSONResponse({"ok": True})

        async def moved(request: Request) -> RedirectResponse:
            return RedirectResponse("/hook/elsewhere", status_code=307)

        return Starlette(
            routes=[
                Route("/hook/moved", moved, methods=["POST"]),
                Route("/hook/{name}", hook, methods=["POST"]),
            ]
        )


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    box = Receiver()
    with served(box.app()) as url:
        yield box, url


# --- helpers --------------------------------------------------------------------------------


def settings(data_dir: Path, port: int = 1, **given: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": str(data_dir),
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_sender": "stumble@example.org",
        "smtp_timeout_s": 10.0,
        "team_emails": {TEAM: list(ADDRESSES)},
    }
    values.update(given)
    return msgspec.convert(values, Settings)


def deliverer(config: Settings, **given: Any) -> Deliverer:
    audit = AuditLog.in_data_dir(Path(config.data_dir))
    return Deliverer(config, audit=audit, **given)


def audit_records(data_dir: Path) -> list[Any]:
    records = read_records(audit_paths(data_dir).log).records
    return [r for r in records if r.action != AuditAction.AUDIT_DIGEST]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """What this process logged, without the test SMTP server's own session log."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail."))


def private_bytes(data_dir: Path) -> bytes:
    """Everything delivery wrote under the data directory (ledger and audit log)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


# --- e-mail ---------------------------------------------------------------------------------


def test_each_address_gets_one_multipart_mail_with_a_message_id_from_the_key(
    tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    report = deliverer(settings(tmp_path, port)).notify(TEAM, MESSAGE)

    assert report.sent == tuple(ADDRESSES)
    assert report.failed == report.already_sent == ()
    assert [to for to, _ in box.accepted] == ADDRESSES
    for to, raw in box.accepted:
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert mail["To"] == to
        assert mail["Message-ID"] == message_id(KEY, "stumble@example.org")
        assert mail.get_content_type() == "multipart/alternative"
        parts = {
            part.get_content_type(): part.get_content().replace("\r\n", "\n")
            for part in mail.iter_parts()
        }
        assert parts["text/plain"].strip() == MESSAGE.text
        assert parts["text/html"].strip() == MESSAGE.html


def test_a_second_run_sends_nothing_again(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> None:
    box, port = mailbox
    config = settings(tmp_path, port)
    deliverer(config).notify(TEAM, MESSAGE)
    again = deliverer(config).notify(TEAM, MESSAGE)

    assert again.sent == ()
    assert again.already_sent == tuple(ADDRESSES)
    assert [box.count(a) for a in ADDRESSES] == [1, 1]
    # Another message key is another message.
    other = Message(key="digest:2026-W11:prod", subject="s", text="t", markdown="m")
    assert deliverer(config).notify(TEAM, other).sent == tuple(ADDRESSES)


_SENDER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import msgspec
    from stumble.access.audit import AuditLog
    from stumble.config import Settings
    from stumble.review.delivery import Deliverer
    from stumble.review.messages import Message

    config = msgspec.convert(json.loads(sys.argv[1]), Settings)
    message = Message(**json.loads(sys.argv[2]))
    audit = AuditLog.in_data_dir(__import__("pathlib").Path(config.data_dir))
    print(Deliverer(config, audit=audit).notify(sys.argv[3], message))
    """
)


def test_a_crash_between_two_recipients_sends_each_exactly_once(
    tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    config = settings(tmp_path, port)
    first, second = ADDRESSES
    box.kill_on = second  # the process dies while the second copy is on its way
    message = {k: getattr(MESSAGE, k) for k in ("key", "subject", "text", "markdown", "html")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SENDER_SCRIPT,
            json.dumps(msgspec.to_builtins(config)),
            json.dumps(message),
            TEAM,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    box.victim = process.pid
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    assert box.count(first) == 1
    assert box.count(second) == 0
    assert Ledger(tmp_path).delivered(KEY, ADDRESSES) == {first}

    report = deliverer(config).notify(TEAM, MESSAGE)  # the restarted server's run

    assert report.already_sent == (first,)
    assert report.sent == (second,)
    assert box.count(first) == 1
    assert box.count(second) == 1


def test_a_refused_recipient_is_reported_and_sent_on_the_next_run(
    tmp_path: Path, mailbox: tuple[Mailbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    box, port = mailbox
    config = settings(tmp_path, port)
    first, second = ADDRESSES
    box.refuse_once.add(second)

    with caplog.at_level(logging.DEBUG):
        report = deliverer(config).notify(TEAM, MESSAGE)
    assert report.sent == (first,)
    assert report.failed == (second,)
    assert "smtp_refused" in caplog.text

    retry = deliverer(config).notify(TEAM, MESSAGE)
    assert retry.sent == (second,)
    assert retry.already_sent == (first,)
    assert [box.count(a) for a in ADDRESSES] == [1, 1]

    records = audit_records(tmp_path)
    assert [(r.action, r.outcome) for r in records] == [
        (AuditAction.DIGEST_SEND, Outcome.ERROR),
        (AuditAction.DIGEST_SEND, Outcome.OK),
    ]
    failed, ok = records
    assert failed.detail.target == f"{TEAM}/{KEY}"
    assert failed.detail.route == "smtp"
    assert failed.detail.reason == "smtp_refused"
    assert failed.detail.rows == 2
    assert ok.detail.rows == 1
    # Nothing personal: no address in the logs, the audit log or the ledger (hashes only).
    for address in ADDRESSES:
        assert address not in logged(caplog)
        assert address.encode() not in private_bytes(tmp_path)


def test_starttls_is_required_and_never_skipped(
    tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox  # this server offers no STARTTLS
    report = deliverer(settings(tmp_path, port, smtp_starttls=True)).notify(TEAM, MESSAGE)

    assert report.failed == tuple(ADDRESSES)
    assert report.reasons == ("smtp_no_starttls",)
    assert box.accepted == []
    assert [r.detail.reason for r in audit_records(tmp_path)] == ["smtp_no_starttls"]


def _password_file(directory: Path, mode: int) -> Path:
    path = directory / "smtp-password"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def test_starttls_then_login_from_a_0600_file(
    tmp_path: Path, tls_mailbox: tuple[Mailbox, int, ssl.SSLContext]
) -> None:
    box, port, trust = tls_mailbox
    config = settings(
        tmp_path / "data",
        port,
        smtp_starttls=True,
        smtp_username="stumble",
        smtp_password_file=str(_password_file(tmp_path, 0o600)),
    )
    report = deliverer(config, tls_context=trust).notify(TEAM, MESSAGE)

    assert report.sent == tuple(ADDRESSES)
    assert len(box.accepted) == 2


def test_a_password_file_others_may_read_is_refused(
    tmp_path: Path, tls_mailbox: tuple[Mailbox, int, ssl.SSLContext]
) -> None:
    box, port, trust = tls_mailbox
    config = settings(
        tmp_path / "data",
        port,
        smtp_starttls=True,
        smtp_username="stumble",
        smtp_password_file=str(_password_file(tmp_path, 0o644)),
    )
    report = deliverer(config, tls_context=trust).notify(TEAM, MESSAGE)

    assert report.failed == tuple(ADDRESSES)
    assert box.accepted == []
    reasons = [r.detail.reason for r in audit_records(tmp_path / "data")]
    assert reasons == ["smtp_password_file_not_0600"]


def test_an_untrusted_certificate_is_a_failure(
    tmp_path: Path, tls_mailbox: tuple[Mailbox, int, ssl.SSLContext]
) -> None:
    box, port, _ = tls_mailbox
    config = settings(tmp_path, port, smtp_starttls=True)
    report = deliverer(config).notify(TEAM, MESSAGE)  # the system's trust store

    assert report.failed == tuple(ADDRESSES)
    assert box.accepted == []
    assert [r.detail.reason for r in audit_records(tmp_path)] == ["smtp_tls_failed"]


# --- webhooks -------------------------------------------------------------------------------


def test_plain_and_chat_webhooks_get_their_bodies_once(
    tmp_path: Path, receiver: tuple[Receiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    box, url = receiver
    plain, chat = f"{url}/hook/plain", f"{url}/hook/chat"
    config = settings(
        tmp_path, smtp_host="", team_webhooks={TEAM: [plain]}, team_chat_webhooks={TEAM: [chat]}
    )
    with caplog.at_level(logging.DEBUG):
        report = deliverer(config).notify(TEAM, MESSAGE)
        again = deliverer(config).notify(TEAM, MESSAGE)

    ids = (recipient_id(DeliveryChannel.WEBHOOK, plain), recipient_id(DeliveryChannel.CHAT, chat))
    assert report.sent == ids
    assert again.already_sent == ids
    assert again.sent == ()
    assert box.bodies == [
        (
            "plain",
            {"key": KEY, "team": TEAM, "subject": MESSAGE.subject, "data": dict(MESSAGE.data)},
        ),
        ("chat", {"text": MESSAGE.markdown}),
    ]
    routes = sorted(r.detail.route for r in audit_records(tmp_path))
    assert routes == ["chat", "webhook"]
    # A webhook URL is a secret: no URL in the ledger, the audit log or the logs.
    assert url.encode() not in private_bytes(tmp_path)
    assert caplog.records  # the filter hides httpx's request lines, not everything
    assert url not in logged(caplog)


def test_a_failing_webhook_is_tried_again_on_the_next_run(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    box, url = receiver
    config = settings(tmp_path, smtp_host="", team_webhooks={TEAM: [f"{url}/hook/flaky"]})

    first = deliverer(config).notify(TEAM, MESSAGE)
    assert first.sent == ()
    assert len(first.failed) == 1
    assert [r.detail.reason for r in audit_records(tmp_path)] == ["http_503"]

    second = deliverer(config).notify(TEAM, MESSAGE)
    assert second.sent == first.failed
    assert [name for name, _ in box.bodies] == ["flaky"]


def test_a_redirect_is_not_followed(tmp_path: Path, receiver: tuple[Receiver, str]) -> None:
    box, url = receiver
    config = settings(tmp_path, smtp_host="", team_webhooks={TEAM: [f"{url}/hook/moved"]})

    report = deliverer(config).notify(TEAM, MESSAGE)

    assert len(report.failed) == 1
    assert box.bodies == []  # /hook/elsewhere never got the body
    assert [r.detail.reason for r in audit_records(tmp_path)] == ["http_307"]


def test_no_channel_means_nothing_sent_and_nothing_audited(tmp_path: Path) -> None:
    config = settings(tmp_path, smtp_host="")  # e-mail needs an SMTP host
    target = deliverer(config)

    assert target.teams() == []
    assert target.notify(TEAM, MESSAGE) == target.notify("team_other", MESSAGE)
    assert target.notify(TEAM, MESSAGE).sent == ()
    assert not audit_paths(tmp_path).log.exists()
    assert not Ledger(tmp_path).directory.exists()


def test_the_ledger_is_private(tmp_path: Path, mailbox: tuple[Mailbox, int]) -> None:
    _, port = mailbox
    deliverer(settings(tmp_path, port)).notify(TEAM, MESSAGE)

    ledger = Ledger(tmp_path)
    assert ledger.directory.stat().st_mode & 0o777 == 0o700
    assert ledger.path.stat().st_mode & 0o777 == 0o600


def test_nothing_is_sent_while_the_ledger_cannot_be_written(
    tmp_path: Path, mailbox: tuple[Mailbox, int]
) -> None:
    box, port = mailbox
    Ledger(tmp_path).path.mkdir(parents=True)  # a directory where the ledger file belongs

    with pytest.raises(LedgerError):
        deliverer(settings(tmp_path, port)).notify(TEAM, MESSAGE)
    assert box.accepted == []  # otherwise every run would send them again


def test_a_key_the_audit_log_would_refuse_is_recorded_by_its_digest() -> None:
    from stumble.review.delivery import audit_target

    assert audit_target("team_search", "digest:2026-W49:prod") == "team_search/digest:2026-W49:prod"
    stamped = audit_target("team_search", "alert:max_op_p95:search:firing:1764123456789")
    assert stamped.startswith("team_search/alert:sha256:") and "1764123456789" not in stamped
    long = audit_target("team_search", "fix:" + "x" * 200)
    assert len(long) < 64 and long.startswith("team_search/fix:sha256:")
