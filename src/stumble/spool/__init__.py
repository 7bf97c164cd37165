"""The durable, append-only spool between the HTTP collector and the loader.

The collector appends guarded events as NDJSON lines and answers 202 only once ``append``
returns: by then the bytes are fsynced. One writer thread commits everything queued with a
single ``fdatasync`` (group commit), so concurrent requests share the cost of durability.

On disk (``<data>/spool/``)::

    seg-000000000041.ndjson   sealed: complete, durable, waiting for the loader
    seg-000000000042.open     active: the writer appends here
    spool.lock                flock held by the process that owns the spool

The active segment is sealed (renamed) by size and by age, so the loader sees data within
about a second. The loader loads a sealed segment, records its name in the database in the
same transaction as its rows, then calls ``Spool.remove``. Sequence numbers only grow, also
across restarts, so a segment name is never reused. ``Spool.open`` cuts a torn tail left by a
killed process back to the last whole line and seals what it kept.

With a data key (encryption at rest, ``stumble.encryption``) each appended payload is written
as one AES-GCM frame instead of plain lines; group commit, sealing and the torn-tail cut are
the same, a whole frame that authenticates playing the part of a whole line.

Failures surface as ``SpoolUnavailable`` (answer 503 with ``Retry-After``), never as a partial
line on disk: a failed write is cut back and the next append tries again for real.
"""

from stumble.spool.segments import RecoveryReport, sealed_segment_paths
from stumble.spool.writer import Spool, SpoolConfig, SpoolStats, SpoolUnavailable

__all__ = [
    "RecoveryReport",
    "Spool",
    "SpoolConfig",
    "SpoolStats",
    "SpoolUnavailable",
    "sealed_segment_paths",
]
