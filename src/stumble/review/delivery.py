"""Delivery: e-mail over SMTP, plain JSON webhooks and Slack/Mattermost chat webhooks, each
(message key, recipient) sent once however often a job runs or the server restarts.

Idempotence. ``<data_dir>/review/deliveries.log`` is an append-only ledger (0600, in a 0700
directory, fsynced: ``stumble.files``) with one line per (key, recipient) that a server
*accepted*. The line is written right after the recipient's send succeeded and before the next
recipient is tried, so a crash between two recipients costs nothing: after the restart the
first is found in the ledger and skipped, the second is sent. One window remains: a crash after
the server accepted a send but before its ledger line reached the disk (a few milliseconds)
sends that one recipient the message a second time on the next run. So delivery is *at most
one duplicate per crash*, not exactly-once; e-mail copies carry a Message-ID derived from the
key, so mail clients that de-duplicate by it show one. A recipient that failed is not in the
ledger and is tried again on the next run. A lock file (``flock``) keeps the server's job and a
``stumble digest --send`` from sending the same message at the same time.

Recipients are named by ids: an e-mail address as configured (a team's own alias) and, for
webhooks, ``webhook:`` / ``chat:`` plus 16 hex digits of the URL's SHA-256 (chat webhook URLs
are secrets); the ledger keeps only the SHA-256 of an id. Logs name the channel and a reason
code only; the audit log gets one record per (team, channel) that was tried: ``target`` =
``<team>/<key>``, ``route`` = the channel kind, ``rows`` = recipients, ``reason`` = the reason
code when it failed. Never a body, an address or a URL.
"""

from __future__ import annotations

import contextlib
import email.utils
import enum
import fcntl
import hashlib
import logging
import os
import smtplib
import ssl
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Final

import httpx
import msgspec

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditLog, Outcome
from stumble.config import Settings
from stumble.files import append_private_lines, private_dir, read_lines
from stumble.review.messages import DeliveryReport, Message

log = logging.getLogger("stumble.review")
LEDGER_FILE: Final = "deliveries.log"
LOCK_FILE: Final = "deliveries.lock"
WEBHOOK_TIMEOUT_S: Final = 10.0
LEDGER_UNWRITABLE: Final = "ledger_unwritable"
KEY_ACTIONS: Final[Mapping[str, AuditAction]] = {
    "digest": AuditAction.DIGEST_SEND,
    "alert": AuditAction.ALERT_NOTIFY,
    "fix": AuditAction.FIX_VERIFY,
}
"""The audit action of a message, by its key's first part (``digest:2026-W49:prod``)."""
_Send = Callable[["Recipient", str, Message], None]
REASONS: Final[Mapping[str, str]] = {
    "smtp_no_starttls": "the SMTP server offers no STARTTLS while smtp_starttls is on; "
    "nothing is sent in clear",
    "smtp_tls_failed": "the STARTTLS handshake failed (is the SMTP server's certificate trusted?)",
    "smtp_auth_failed": "the SMTP server refused smtp_username and the password",
    "smtp_password_file_missing": "smtp_username is set but smtp_password_file is not",
    "smtp_password_file_not_0600": "smtp_password_file may be read by others; chmod 600 it",
    "smtp_password_file_unreadable": "smtp_password_file cannot be read",
    "smtp_unreachable": "the SMTP server cannot be reached (smtp_host, smtp_port)",
    "smtp_timeout": "the SMTP server did not answer within smtp_timeout_s",
    "smtp_refused": "the SMTP server refused the sender or a recipient",
    "smtp_recipient_refused": "the SMTP server refused a recipient",
    "smtp_data_refused": "the SMTP server refused the message",
    "http_timeout": "the webhook did not answer in time",
    "http_unreachable": "the webhook cannot be reached",
    LEDGER_UNWRITABLE: "the delivery ledger cannot be written",
}
"""What a reason code means, for the log line a person reads (the audit log keeps the code)."""


def explain(reason: str) -> str:
    if reason.startswith("http_") and reason[5:].isdigit():
        return f"the webhook answered HTTP {reason[5:]} (redirects are not followed)"
    return REASONS.get(reason, reason)


class _WhileSending(logging.Filter):
    """Drops httpx's and httpcore's records on this thread while a webhook is being sent: at
    INFO httpx logs each request's full URL, and a chat webhook's URL is its credential."""

    def __init__(self) -> None:
        super().__init__()
        self.state = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.state, "sending", False)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        self.state.sending = True
        try:
            yield
        finally:
            self.state.sending = False


_quiet = _WhileSending()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_quiet)


class Channel(enum.StrEnum):
    EMAIL = "smtp"
    WEBHOOK = "webhook"
    CHAT = "chat"


class DeliveryError(Exception):
    """One send failed; ``reason`` is a code fit for logs and the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LedgerError(Exception):
    """A send succeeded but its ledger line could not be written (disk full, permissions):
    the notification stops there, and that recipient may get the message again next run."""


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    id: str
    """What reports, the ledger and errors name (never a webhook's URL)."""
    target: str
    """The address or URL itself: used to send, never logged."""


def recipient_id(channel: Channel, target: str) -> str:
    if channel is Channel.EMAIL:
        return target
    return f"{channel}:{hashlib.sha256(target.encode()).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class Delivery(DeliveryReport):
    """A ``DeliveryReport`` that also says why recipients failed (reason codes, see
    ``explain``), for the command line to tell a person."""

    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One channel's sends for one notification."""

    channel: Channel
    sent: list[str]
    failed: list[str]
    reason: str | None


class _Sent(msgspec.Struct, frozen=True):
    key: str
    recipient: str
    """SHA-256 of the recipient's id."""


def _hashed(recipient: str) -> str:
    return hashlib.sha256(recipient.encode()).hexdigest()


class Ledger:
    """The (key, recipient) pairs already delivered, in ``<data_dir>/review/``. Recipients are
    kept as hashes: the file needs to recognise an address, not to hold one."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "review"
        self.path = self.directory / LEDGER_FILE

    def delivered(self, key: str, recipients: Iterable[str]) -> set[str]:
        """Those of ``recipients`` (ids) that ``key`` was delivered to."""
        wanted = {_hashed(recipient): recipient for recipient in recipients}
        found: set[str] = set()
        for line in read_lines(self.path):
            try:
                entry = msgspec.json.decode(line, type=_Sent)
            except msgspec.DecodeError:
                continue  # a torn line from a crash: that send counts as not recorded
            if entry.key == key and entry.recipient in wanted:
                found.add(wanted[entry.recipient])
        return found

    def check(self) -> None:
        """Refuse (``LedgerError``) before anything is sent when the ledger cannot be written:
        every send would otherwise be repeated on every run."""
        try:
            private_dir(self.directory)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError as error:
            raise LedgerError(f"cannot write {self.path}") from error

    def record(self, key: str, recipient: str) -> None:
        private_dir(self.directory)
        line = msgspec.json.encode(_Sent(key, _hashed(recipient))) + b"\n"
        append_private_lines(self.path, [line])

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive across processes (the server and the CLI) for one message's sending."""
        private_dir(self.directory)
        fd = os.open(self.directory / LOCK_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


class Deliverer:
    """``Notifier`` over the settings' channels for each team.

    ``audit``: every attempt is recorded (``KEY_ACTIONS`` picks the action from the message
    key); when the record cannot be written, ``AuditUnavailableError`` stops the notification
    after that channel (its sends already happened and are in the ledger, so nothing repeats).
    ``tls_context``: the trust store for STARTTLS (default: the system's); tests pass one that
    trusts their own certificate."""

    def __init__(
        self,
        settings: Settings,
        *,
        audit: AuditLog | None,
        actor: Actor | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(Path(settings.data_dir))
        self.audit = audit
        self.actor = actor or Actor.system()
        self.tls_context = tls_context
        self._lock = threading.Lock()

    def teams(self) -> list[str]:
        """Teams with at least one channel configured (e-mail counts only with an SMTP host)."""
        s = self.settings
        routes = (s.team_emails if s.smtp_host else {}, s.team_webhooks, s.team_chat_webhooks)
        return sorted({team for route in routes for team, targets in route.items() if targets})

    def recipients(self, team: str) -> list[Recipient]:
        s = self.settings
        found: list[Recipient] = []
        if s.smtp_host:
            found += [Recipient(Channel.EMAIL, a, a) for a in s.team_emails.get(team, ())]
        hooks = ((Channel.WEBHOOK, s.team_webhooks), (Channel.CHAT, s.team_chat_webhooks))
        for channel, route in hooks:
            found += [Recipient(channel, recipient_id(channel, u), u) for u in route.get(team, ())]
        return list({r.id: r for r in found}.values())  # an address listed twice is sent once

    def pending(self, team: str, key: str) -> list[Recipient]:
        """The team's recipients that have not yet been sent ``key``."""
        recipients = self.recipients(team)
        sent = self.ledger.delivered(key, [r.id for r in recipients])
        return [r for r in recipients if r.id not in sent]

    def notify(self, team: str, message: Message) -> Delivery:
        recipients = self.recipients(team)
        if not recipients:
            return Delivery()
        with self._lock, self.ledger.locked():
            self.ledger.check()
            sent_before = self.ledger.delivered(message.key, [r.id for r in recipients])
            sent: list[str] = []
            failed: list[str] = []
            already: list[str] = []
            reasons: list[str] = []
            by_channel: dict[Channel, list[Recipient]] = {}
            for recipient in recipients:
                if recipient.id in sent_before:
                    already.append(recipient.id)
                else:
                    by_channel.setdefault(recipient.channel, []).append(recipient)
            for channel, recipients in by_channel.items():
                attempt = self._send_channel(channel, team, message, recipients)
                sent += attempt.sent
                failed += attempt.failed
                reasons += [attempt.reason] if attempt.reason else []
                self._audit(team, message.key, attempt)
                if attempt.reason == LEDGER_UNWRITABLE:
                    raise LedgerError(f"cannot write {self.ledger.path}")
            return Delivery(tuple(sent), tuple(already), tuple(failed), tuple(reasons))

    # --- channels -----------------------------------------------------------------------

    def _send_channel(
        self, channel: Channel, team: str, message: Message, recipients: Sequence[Recipient]
    ) -> _Attempt:
        """Send to each recipient in turn, recording each success in the ledger at once."""
        sent: list[str] = []
        reason: str | None = None
        try:
            with self._sender(channel) as send:
                for recipient in recipients:
                    send(recipient, team, message)
                    sent.append(recipient.id)  # accepted, whatever happens to its ledger line
                    try:
                        self.ledger.record(message.key, recipient.id)
                    except OSError as error:  # not a delivery failure: keep it out of those
                        raise LedgerError(f"cannot write {self.ledger.path}") from error
        except DeliveryError as error:
            reason = error.reason
            log.warning("%s delivery failed: %s (%s)", channel, reason, explain(reason))
        except LedgerError:
            reason = LEDGER_UNWRITABLE
            log.warning("%s delivery stopped: %s (%s)", channel, reason, explain(reason))
        failed = [r.id for r in recipients if r.id not in sent]
        return _Attempt(channel, sent, failed, reason)

    @contextlib.contextmanager
    def _sender(self, channel: Channel) -> Iterator[_Send]:
        if channel is Channel.EMAIL:
            with _smtp_errors(), self._smtp() as smtp:
                yield lambda r, team, m: self._send_mail(smtp, r, m)
        else:
            client = httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False)
            with _quiet.active(), client:
                body = _json_body if channel is Channel.WEBHOOK else _chat_body
                yield lambda r, team, m: _post(client, r.target, body(team, m))

    @contextlib.contextmanager
    def _smtp(self) -> Iterator[smtplib.SMTP]:
        s = self.settings
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s)
        try:
            smtp.ehlo()
            if s.smtp_starttls:
                if not smtp.has_extn("starttls"):
                    # Never fall back to clear text: the body and the password would travel open.
                    raise DeliveryError("smtp_no_starttls")
                smtp.starttls(context=self.tls_context or ssl.create_default_context())
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, read_password(s.smtp_password_file))
            yield smtp
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _send_mail(self, smtp: smtplib.SMTP, recipient: Recipient, message: Message) -> None:
        mail = build_email(message, self.settings.smtp_sender, recipient.target)
        refused = smtp.send_message(mail, self.settings.smtp_sender, [recipient.target])
        if refused:
            raise DeliveryError("smtp_recipient_refused")

    def _audit(self, team: str, key: str, attempt: _Attempt) -> None:
        if self.audit is None:
            return
        action = KEY_ACTIONS.get(key.partition(":")[0], AuditAction.DIGEST_SEND)
        detail = AuditDetail(
            target=audit_target(team, key),
            route=str(attempt.channel),
            rows=len(attempt.sent) + len(attempt.failed),
            reason=attempt.reason,
        )
        outcome = Outcome.ERROR if attempt.failed else Outcome.OK
        self.audit.record(self.actor, action, outcome, detail)


def audit_target(team: str, key: str) -> str:
    """``<team>/<key>`` when the audit log takes it as a target; a key it would refuse (too
    long, or a long digit run such as a timestamp) is named by its kind and a digest instead,
    so a send is never left unrecorded for the shape of its key."""
    target = f"{team}/{key}"
    try:
        AuditDetail(target=target)
    except ValueError:
        kind = key.partition(":")[0]
        return f"{team}/{kind}:sha256:{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    return target


@contextlib.contextmanager
def _smtp_errors() -> Iterator[None]:
    """smtplib's exceptions as reason codes (their messages may quote addresses)."""
    try:
        yield
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError:
        raise DeliveryError("smtp_auth_failed") from None
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused):
        raise DeliveryError("smtp_refused") from None
    except smtplib.SMTPDataError:
        raise DeliveryError("smtp_data_refused") from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError("smtp_not_supported") from None
    except smtplib.SMTPException:
        raise DeliveryError("smtp_error") from None
    except ssl.SSLError:
        raise DeliveryError("smtp_tls_failed") from None
    except TimeoutError:
        raise DeliveryError("smtp_timeout") from None
    except OSError:
        raise DeliveryError("smtp_unreachable") from None


def read_password(path_text: str) -> str:
    """The SMTP password from its file, which only its owner may read (as ssh insists)."""
    if not path_text:
        raise DeliveryError("smtp_password_file_missing")
    path = Path(path_text)
    try:
        mode = path.stat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise DeliveryError("smtp_password_file_not_0600")
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        raise DeliveryError("smtp_password_file_unreadable") from None


def message_id(key: str, sender: str) -> str:
    """The same for every copy of one message: a client that saw it once hides a duplicate."""
    domain = sender.rpartition("@")[2] or "stumble.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_email(message: Message, sender: str, to: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = message.subject
    mail["Message-ID"] = message_id(message.key, sender)
    mail["Date"] = email.utils.formatdate(usegmt=True)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to stumble
    mail.set_content(message.text)
    if message.html is not None:
        mail.add_alternative(message.html, subtype="html")
    return mail


def _json_body(team: str, message: Message) -> dict[str, object]:
    return {"key": message.key, "team": team, "subject": message.subject, "data": message.data}


def _chat_body(team: str, message: Message) -> dict[str, object]:
    return {"text": message.markdown}


def _post(client: httpx.Client, url: str, body: Mapping[str, object]) -> None:
    try:
        response = client.post(url, content=msgspec.json.encode(body), headers=_JSON)
    except httpx.TimeoutException:
        raise DeliveryError("http_timeout") from None
    except httpx.HTTPError:
        raise DeliveryError("http_unreachable") from None
    if not 200 <= response.status_code < 300:
        # A redirect is a failure too: following it could hand the body to another host.
        raise DeliveryError(f"http_{response.status_code}")


_JSON: Final = {"Content-Type": "application/json"}
