"""The tracking plan as typed data: what may be sent, who owns it, and what counts as a problem.

The YAML file the product team owns is decoded straight into these Structs by msgspec
(``load.py``), so a typo in a key is an error rather than a silently ignored setting.
There is no free-text parameter type on purpose: a parameter is an identifier, an enum, a
bounded number, a boolean, a duration, a count or a size.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from stumble.events import KINDS

ParamType = Literal["identifier", "enum", "int", "number", "bool", "duration_ms", "count", "bytes"]
PARAM_TYPES: Final[tuple[str, ...]] = ParamType.__args__  # type: ignore[attr-defined]

Name = Annotated[str, Meta(min_length=1, max_length=64)]


class ParamSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """One declared parameter of a custom event.

    ``min``/``max`` bound numbers; ``values`` lists an enum's members. ``duration_ms``,
    ``count`` and ``bytes`` are non-negative numbers whose unit is in the type's name.
    """

    type: str  # validated by the linter against PARAM_TYPES so its message can be friendly
    description: str = ""
    values: tuple[Name, ...] = ()
    min: float | None = None
    max: float | None = None
    required: bool = False


class EventSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """One event name: its kind, its owner (a team identifier, never a person) and its limits.

    ``values`` restricts built-in identifier fields of the kind to a closed list, for example
    ``field_id: [iin_bin, contract_number]`` for a ``field_error`` event; that is also what
    bounds cardinality. ``params`` declares a ``custom`` event's parameters.
    """

    kind: str
    owner: str = ""
    description: str = ""
    values: dict[Name, tuple[Name, ...]] = {}
    params: dict[Name, ParamSpec] = {}
    deprecated: bool = False


class FunnelStep(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A scenario step: an event name, optionally narrowed by field values.

    ``{event: request_form_submit, where: {step: 1, status: success}}`` means "step 1 of the
    form was submitted successfully". In YAML a plain event name is accepted as shorthand.
    ``optional: true`` lets a session skip the step (never the first or the last one).
    The same shape names a scenario's ``exclusions``.
    """

    event: Name
    name: Name | None = None
    where: dict[Name, str | int | bool] = {}
    optional: bool = False

    @property
    def label(self) -> str:
        return self.name or self.event


class Thresholds(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """What counts as a problem for a scenario; ``None`` means "not judged"."""

    min_conversion: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_step_drop_off: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_field_error_share: Annotated[float, Meta(ge=0, le=1)] | None = None
    max_step_p95_ms: Annotated[float, Meta(gt=0)] | None = None
    max_operation_p95_ms: Annotated[float, Meta(gt=0)] | None = None
    max_error_rate: Annotated[float, Meta(ge=0, le=1)] | None = None


WINDOW_UNITS_MS: Final[dict[str, int]] = {
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
}
DEFAULT_WINDOW_MS: Final = 14 * 86_400_000
MAX_WINDOW_MS: Final = 90 * 86_400_000
WindowText = Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,6}[smhd]$")]
"""A conversion window: a whole number and a unit, ``90s``, ``20m``, ``8h`` or ``14d``."""

FunnelOrder = Literal["ordered", "strict", "first_touch"]
FUNNEL_ORDERS: Final[tuple[str, ...]] = FunnelOrder.__args__  # type: ignore[attr-defined]


def window_text_ms(text: str) -> int:
    """Milliseconds of a ``WindowText`` (already validated by its pattern)."""
    return int(text[:-1]) * WINDOW_UNITS_MS[text[-1]]


def describe_window(ms: int) -> str:
    """A window for people: ``60 minutes``, ``14 days``, ``90 seconds``."""
    for unit, size in (("day", 86_400_000), ("minute", 60_000)):
        if ms % size == 0:
            count = ms // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{ms / 1000:g} seconds"


class Scenario(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """An ordered funnel: the steps, the window they must happen in, who owns it.

    ``conversion_window`` (``90s`` … ``90d``) replaces ``conversion_window_minutes``, which is
    still read; with neither the window is 14 days. ``order`` is how steps follow each other
    (README, "How funnels count"): ``ordered`` (the default), ``strict`` (back to back) or
    ``first_touch`` (one chain from the first step-1 event, the rule before attempts).
    ``exclusions`` are events that remove an attempt they fall inside of.
    """

    steps: tuple[FunnelStep, ...]
    owner: str = ""
    description: str = ""
    conversion_window_minutes: Annotated[int, Meta(ge=1, le=7 * 24 * 60)] | None = None
    conversion_window: WindowText | None = None
    order: FunnelOrder = "ordered"
    exclusions: tuple[FunnelStep, ...] = ()
    form_id: Name | None = None
    operation: Name | None = None
    thresholds: Thresholds = Thresholds()

    @property
    def window_ms(self) -> int:
        if self.conversion_window is not None:
            return window_text_ms(self.conversion_window)
        if self.conversion_window_minutes is not None:
            return self.conversion_window_minutes * 60_000
        return DEFAULT_WINDOW_MS


class TrackingPlan(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """The whole plan. ``context`` maps a context dimension (role, division, device_type,
    browser, region) to its allowed values; a dimension not listed accepts any identifier."""

    schema_version: Annotated[int, Meta(ge=1)]
    events: dict[Name, EventSpec]
    context: dict[Name, tuple[Name, ...]] = {}
    scenarios: dict[Name, Scenario] = {}
    aliases: dict[Name, Name] = {}
    routes: tuple[str, ...] = ()
    """Route templates (``/requests/:id/edit``): the only routes stored; see ``DeclaredRoutes``."""
    min_schema_version: Annotated[int, Meta(ge=1)] | None = None

    def event(self, name: str) -> EventSpec | None:
        return self.events.get(name)

    def canonical_target(self, target: str) -> str:
        """A renamed target reported under its current name, so trends survive a redesign."""
        return self.aliases.get(target, target)


KNOWN_KINDS: Final[frozenset[str]] = frozenset(KINDS)
