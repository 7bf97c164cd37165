"""Admit, enrich and load events without HTTP: the simulator's bulk mode and the demo history.

Each batch is encoded into the body a client would send and goes through the same
``decode_body`` → ``admit`` → enrichment as ``POST /v1/batch``, and the same loading path as the
in-process loader (an NDJSON segment loaded with ``EventStore.load_segment``), so rows written
this way cannot be told apart from rows that came over the wire. Only the transport and the
fsync'd spool are skipped: a bulk load that fails is simply run again (event ids dedupe).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stumble.access.keys import WriteKey
from stumble.admission import AdmissionRules, Arrival, admit_events
from stumble.collector.enrich import Enricher, RequestContext
from stumble.collector.quarantine import Quarantine, utc_day
from stumble.collector.useragent import classify_user_agent
from stumble.encryption import SPOOL, DataKeyRing, FrameSealer
from stumble.events import Event
from stumble.storage import EventStore

ROWS_PER_SEGMENT = 200_000


@dataclass
class OfflineResult:
    accepted: int = 0
    redacted: int = 0
    rejected: int = 0
    duplicates: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class OfflineIngest:
    """Feed batches with ``add``; rows are loaded every ``ROWS_PER_SEGMENT`` and on ``close``."""

    def __init__(
        self,
        *,
        rules: AdmissionRules,
        key: WriteKey,
        enricher: Enricher,
        store: EventStore,
        work_dir: Path,
        max_events: int,
        quarantine: Quarantine | None = None,
        data_keys: DataKeyRing | None = None,
    ) -> None:
        """With ``data_keys`` the segment written for loading is encrypted like the spool's."""
        self.rules = rules
        self.key = key
        self.enricher = enricher
        self.store = store
        self.work_dir = work_dir
        self.max_events = max_events
        self.quarantine = quarantine
        self.result = OfflineResult()
        self._lines: list[bytes] = []
        self._rows = 0
        self._sealer = None if data_keys is None else FrameSealer(data_keys, SPOOL)
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def add(
        self,
        events: Sequence[Event],
        *,
        sent_at: int | None,
        received_at_ms: int,
        user_agent: str = "",
    ) -> None:
        """One batch as a client would send it, received at ``received_at_ms`` (server time).

        A batch larger than the collector's limit is split as a client would split it."""
        for start in range(0, len(events), self.max_events):
            self._add_batch(
                events[start : start + self.max_events], sent_at, received_at_ms, user_agent
            )
        if self._rows >= ROWS_PER_SEGMENT:
            self.flush()

    def _add_batch(
        self, events: Sequence[Event], sent_at: int | None, received_at_ms: int, user_agent: str
    ) -> None:
        arrival = Arrival.at(received_at_ms, sent_at)
        admission = admit_events(list(events), self.rules, arrival, self.max_events)
        device_type, browser = classify_user_agent(user_agent)
        request = RequestContext(
            self.key, received_at_ms, arrival.skew_ms, device_type, browser, None
        )
        self._lines.append(self.enricher.stored_lines(admission, request))
        self._rows += len(admission.stored)
        self.result.accepted += len(admission.stored)
        self.result.redacted += len(admission.redactions)
        self.result.rejected += len(admission.rejections)
        self.result.reasons.update(item.finding.reason for item in admission.rejections)
        if self.quarantine is not None:
            self.quarantine.add_admission(admission, utc_day(received_at_ms), self.key.environment)

    def flush(self) -> None:
        if not self._rows:
            return
        segment = self.work_dir / f"offline-{uuid.uuid4().hex}.ndjson"
        if self._sealer is None:
            segment.write_bytes(b"".join(self._lines))
        else:  # one frame per batch, as the spool writes them
            segment.write_bytes(b"".join(self._sealer.seal(lines) for lines in self._lines))
        self._lines, self._rows = [], 0
        try:
            loaded = self.store.load_segment(segment)
        finally:
            segment.unlink(missing_ok=True)
        self.result.duplicates += loaded.duplicates

    def close(self) -> OfflineResult:
        self.flush()
        return self.result
