"""The vocabulary of rollup cells, shared by the build (``rollup_build``) and the readers
(``rollup_read``): families, the dimensions kept per day, definition hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from stumble.analytics.queries import Dimension

ROLLED_DIMENSIONS: Final[tuple[Dimension, ...]] = (
    "role",
    "division",
    "device_type",
    "browser",
    "region",
    "ui_version",
    "experiment",
)
"""Breakdown dimensions kept per day; ``day`` and ``week`` come from the cell's day."""


class Family(StrEnum):
    VOLUME = "volume"
    FUNNEL = "funnel"
    BUILT = "built"
    SAMPLING = "sampling"
    ACTIVE = "active"
    FAILURES = "failures"
    USAGE = "usage"
    HEALTH = "health"
    FIELD_ERROR = "field_error"
    FORM_STEP = "form_step"
    TIMING = "timing"
    TIMING_PHASE = "timing_phase"
    AUDIENCE = "audience"
    LOOPS = "loops"
    LAST_ACTION = "last_action"
    CLICKS = "clicks"
    FRUSTRATION = "frustration"
    PATHS = "paths"


AUDIENCE_DIMENSIONS: Final[tuple[Dimension, ...]] = (
    "role",
    "division",
    "device_type",
    "browser",
    "region",
)
"""Who uses a release: compare warns when their mix moved between its arms."""
TOTAL_STEP: Final = "total"
SESSION_ERROR_KINDS: Final = ("js", "network", "unavailable")
"""Error kinds whose sessions the volume cells count (compare's session error rates)."""
VOLUME_DEFINITION: Final = "v2"
"""The volume family does not depend on the plan; its definition changes with this code."""


def definition_hash(definition: object) -> str:
    """A short stable hash of a frozen query part (its ``repr`` is built from literals)."""
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CellSpec:
    """What a report's cells are: their family, the key of their ``built`` marker, and the
    definition they were built by (a reader asks for exactly that one)."""

    family: Family
    key: str
    definition: str

    @classmethod
    def versioned(cls, family: Family, version: str, *decided_by: object) -> CellSpec:
        """A family keyed by its own name, defined by ``version`` (raised whenever its cells
        change meaning) and what the plan or the settings decide about it (``decided_by``)."""
        return cls(family, str(family), definition_hash((version, str(family), *decided_by)))


def dimensions_struct(prefix: str = "") -> str:
    """Every rolled dimension of an event row as one struct, the ``grp`` of a source that
    builds all of them at once (``rollup_build.CellSource.all_dimensions``)."""
    return "{" + ", ".join(f"'{d}': {prefix}{d}" for d in ROLLED_DIMENSIONS) + "}"


def dimensions_unnest(group: str) -> str:
    """A list with one (dim, value) struct per cell level: none (``''``), then each rolled
    dimension's value read from the struct ``group``."""
    levels = ["{'dim': '', 'v': CAST(NULL AS VARCHAR)}"]
    levels += [f"{{'dim': '{d}', 'v': CAST({group}.{d} AS VARCHAR)}}" for d in ROLLED_DIMENSIONS]
    return "[" + ", ".join(levels) + "]"
