"""The ingest pipeline's state as people read it: the loader and the spool, now.

A neutral type, so the read API, the dashboard and the CLI show one shape; ``app.py`` fills it
from the running loader and spool."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PipelineStatus:
    loader_alive: bool
    segments_loaded: int
    rows_loaded: int
    duplicates_dropped: int
    last_error: str | None
    """A reason type, never a message with data in it."""
    unloaded_bytes: int
    sealed_segments: int
    oldest_sealed_age_s: float | None
    """How long the oldest segment waiting to be loaded has waited (None: none waits)."""
