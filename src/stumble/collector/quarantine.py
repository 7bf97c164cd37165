"""Rejected events and redactions become counts, never payloads (DESIGN decision 4).

Counts accumulate in memory per (day, environment, event name, outcome, reason, field path)
and the loader thread drains them into storage every cycle. Every component of the key is a
schema-known name or a reason code: the guard never lets client text into any of them.
Counts since the last drain are lost on a crash; the clients got their answers, so nothing a
client relies on is lost, only a few seconds of health statistics.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import NamedTuple

from stumble.admission import Admission


class CountKey(NamedTuple):
    day: str  # YYYY-MM-DD, UTC, of server receipt
    environment: str
    event_name: str
    outcome: str  # "rejected" | "redacted"
    reason: str
    field_path: str


class Quarantine:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[CountKey] = Counter()
        self._totals: Counter[tuple[str, str]] = Counter()  # (outcome, reason) since start

    def add(self, key: CountKey, count: int = 1) -> None:
        with self._lock:
            self._pending[key] += count
            self._totals[(key.outcome, key.reason)] += count

    def add_admission(self, admission: Admission, day: str, environment: str) -> None:
        """Count every rejection and every removed value of one admitted batch."""
        with self._lock:
            for key in findings_of(admission, day, environment):
                self._pending[key] += 1
                self._totals[(key.outcome, key.reason)] += 1

    def drain(self) -> dict[CountKey, int]:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        return dict(pending)

    def restore(self, counts: dict[CountKey, int]) -> None:
        """Put counts back after a failed write to storage, so they are tried again."""
        with self._lock:
            self._pending.update(counts)

    def totals(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._totals)


def utc_day(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_ms // 1000))


REJECTED = "rejected"
REDACTED = "redacted"


def findings_of(admission: Admission, day: str, environment: str) -> Iterator[CountKey]:
    """One count key per finding: rejections first, then the values removed from stored events."""
    for rejection in admission.rejections:
        finding = rejection.finding
        yield CountKey(
            day, environment, rejection.event_name, REJECTED, finding.reason, finding.field_path
        )
    for redaction in admission.redactions:
        for finding in redaction.findings:
            yield CountKey(
                day, environment, redaction.event_name, REDACTED, finding.reason, finding.field_path
            )
