"""The ingest edge: ``POST /v1/batch``, ``/v1/config``, health, metrics and the SDK files.

Request path: write key -> origin -> content type -> bounded body (gzip included) -> privacy
guard -> time correction and pseudonyms -> spool (group-commit fsync) -> 202 per-event result.
The in-process loader moves sealed spool segments into the ``EventStore``.
"""
