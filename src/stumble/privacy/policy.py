"""What a finding does: the one table of privacy policy, kept apart from the code that applies it.

Two actions exist. ``REJECT`` drops the whole event (it goes to the quarantine as a count).
``DROP_FIELD`` removes only the offending value and counts a redaction; the rest of the
event is still useful. A finding in a field the event cannot do without (one with no default
in ``stumble.events``) always rejects. Secrets reject outright: a client sending credentials
is misconfigured and nothing else in that event deserves trust.
"""

from __future__ import annotations

import enum
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

DETECTOR_EXEMPTIONS: Final[dict[str, frozenset[Detector]]] = {
    # A four-part release number such as 10.0.0.1 parses as an IPv4 address; a version field
    # holds versions by definition, and an address there would be the client's own bug.
    "ui_version": frozenset({Detector.IP}),
}
"""Detectors that do not apply to a field, with the reason next to each entry."""


def action_for(detector: Detector, *, droppable: bool) -> Action:
    """A field without a default cannot be dropped, so any finding there rejects the event."""
    return DETECTOR_ACTIONS[detector] if droppable else Action.REJECT
