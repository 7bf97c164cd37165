"""The vocabulary of rollup cells, shared by the build (``rollup_build``) and the readers
(``rollup_read``): families, the dimensions kept per day, definition hashes."""

from __future__ import annotations

import hashlib
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
    FUNNEL = "funnel"
    BUILT = "built"
    SAMPLING = "sampling"
    FIELD_ERROR = "field_error"
    FORM_STEP = "form_step"
    TIMING = "timing"
    TIMING_PHASE = "timing_phase"


TOTAL_STEP: Final = "total"


def definition_hash(definition: object) -> str:
    """A short stable hash of a frozen query part (its ``repr`` is built from literals)."""
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:16]
