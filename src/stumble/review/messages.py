"""What the review loop sends and who sends it: one interface for the digest, alerts and fix
verdicts, whatever the channel (e-mail, plain JSON webhook, chat webhook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One notification. ``key`` makes sending idempotent: a (key, recipient) pair is sent at
    most once, however often a job runs or a server restarts (``digest:2026-W49``,
    ``alert:<rule>:<transition time>``, ``fix:<id>:verified``)."""

    key: str
    subject: str
    text: str
    """Plain text: the e-mail's text part and the webhooks' text."""
    markdown: str
    """For chat webhooks (Slack/Mattermost render it)."""
    html: str | None = None
    """A standalone HTML document (inline styles and SVG, no external asset) for e-mail."""
    data: Mapping[str, object] = field(default_factory=dict)
    """The structured content for the plain JSON webhook (identifiers and numbers only)."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one ``notify`` did, by recipient (an address or a webhook's id, never a body)."""

    sent: tuple[str, ...] = ()
    already_sent: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    """Recipients that could not be reached this time; a later run tries them again."""


class Notifier(Protocol):
    def notify(self, team: str, message: Message) -> DeliveryReport:
        """Send ``message`` to every channel configured for ``team`` (none: nothing sent)."""
        ...
