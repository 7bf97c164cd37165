"""What a finding does: the one table of privacy policy, kept apart from the code that applies it.

Two actions exist. ``REJECT`` drops the whole event (it goes to the quarantine as a count).
``DROP_FIELD`` removes only the offending value and counts a redaction; the rest of the
event is still useful. A finding in a field the event cannot do without (one with no default
in ``stumble.events``) always rejects. Secrets reject outright: a client sending credentials
is misconfigured and nothing else in that event deserves trust.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from stumble.privacy.detectors import Detector


class Action(enum.Enum):
    REJECT = "reject"
    DROP_FIELD = "drop_field"


DETECTOR_ACTIONS: Final[dict[Detector, Action]] = {
    Detector.BEARER: Action.REJECT,
    Detector.JWT: Action.REJECT,
    Detector.PEM: Action.REJECT,
    Detector.URL_CREDENTIALS: Action.REJECT,
    Detector.EMAIL: Action.DROP_FIELD,
    Detector.CARD: Action.DROP_FIELD,
    Detector.KZ_IIN: Action.DROP_FIELD,
    Detector.KZ_BIN: Action.DROP_FIELD,
    Detector.RU_INN: Action.DROP_FIELD,
    Detector.RU_SNILS: Action.DROP_FIELD,
    Detector.PHONE: Action.DROP_FIELD,
    Detector.IBAN: Action.DROP_FIELD,
    Detector.IP: Action.DROP_FIELD,
    Detector.SENSITIVE_KEY: Action.DROP_FIELD,
    Detector.DIGIT_RUN: Action.DROP_FIELD,
    Detector.TOKEN: Action.DROP_FIELD,
    Detector.PERSON_NAME: Action.DROP_FIELD,
}
"""Per detector, what a hit in an optional field does."""

NOT_IDENTIFIER_ACTION: Final = Action.DROP_FIELD
"""A value outside the identifier alphabet (element text, Cyrillic, spaces) in an optional field."""

NOT_IN_PLAN_ACTION: Final = Action.DROP_FIELD
"""An optional value the tracking plan does not list (a context enum, a target)."""

DETECTOR_EXEMPTIONS: Final[dict[str, tuple[Detector, re.Pattern[str]]]] = {
    # A four-part release number such as 10.0.0.1 parses as an IPv4 address: in a version
    # field, a value that is nothing but four dotted numbers is taken as a release. An
    # address with anything around it (``client_ip_203.0.113.7``) is still an address.
    "ui_version": (Detector.IP, re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,5}){3}")),
}
"""Per field, a detector that does not apply to values of the whole given shape, and why."""


def action_for(detector: Detector, *, droppable: bool) -> Action:
    """A field without a default cannot be dropped, so any finding there rejects the event."""
    return DETECTOR_ACTIONS[detector] if droppable else Action.REJECT
