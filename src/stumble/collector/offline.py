"""Guard, enrich and load events without HTTP: the simulator's bulk mode and the demo history.

The same guard and enrichment as ``POST /v1/batch``, and the same loading path as the
in-process loader (an NDJSON segment loaded with ``EventStore.load_segment``), so rows written
this way cannot be told apart from rows that came over the wire. Only the transport and the
fsync'd spool are skipped: a bulk load that fails is simply run again (event ids dedupe).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stumble.access.keys import WriteKey
from stumble.collector.enrich import (
    Enricher,
    RequestContext,
    TimeRules,
    clock_skew_ms,
    time_problem,
)
from stumble.collector.quarantine import CountKey, Quarantine, utc_day
from stumble.collector.useragent import classify_user_agent
from stumble.events import Event
from stumble.plan.model import TrackingPlan
from stumble.privacy.guard import Finding, Outcome, guard
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
        plan: TrackingPlan,
        key: WriteKey,
        enricher: Enricher,
        store: EventStore,
        work_dir: Path,
        time_rules: TimeRules,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.plan = plan
        self.key = key
        self.enricher = enricher
        self.store = store
        self.work_dir = work_dir
        self.time_rules = time_rules
        self.quarantine = quarantine
        self.result = OfflineResult()
        self._lines: list[bytes] = []
        work_dir.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        events: Iterable[Event],
        *,
        sent_at: int | None,
        received_at_ms: int,
        user_agent: str = "",
    ) -> None:
        """One batch as a client would send it, received at ``received_at_ms`` (server time)."""
        device_type, browser = classify_user_agent(user_agent)
        request = RequestContext(
            self.key,
            received_at_ms,
            clock_skew_ms(sent_at, received_at_ms),
            device_type,
            browser,
            None,
        )
        for event in events:
            self._add_one(event, sent_at, request)
        if len(self._lines) >= ROWS_PER_SEGMENT:
            self.flush()

    def _add_one(self, event: Event, sent_at: int | None, request: RequestContext) -> None:
        result = guard(event, self.plan)
        reason = result.findings[0].reason if result.findings else None
        if result.event is not None:
            reason = time_problem(
                event.ts, sent_at, request.skew_ms, request.received_at_ms, self.time_rules
            )
            if reason is None:
                self._lines.append(
                    self.enricher.stored_line(result.event, request, result.redactions)
                )
                self.result.accepted += 1
                self.result.redacted += result.outcome is Outcome.REDACTED
                self._count(result.event_name, "redacted", result.findings, request)
                return
        self.result.rejected += 1
        self.result.reasons[reason or "schema.invalid"] += 1
        if self.quarantine is not None and reason is not None:
            key = CountKey(
                utc_day(request.received_at_ms),
                self.key.environment,
                result.event_name,
                "rejected",
                reason,
                "",
            )
            self.quarantine.add(key)

    def _count(
        self, name: str, outcome: str, findings: Iterable[Finding], request: RequestContext
    ) -> None:
        if self.quarantine is None:
            return
        day = utc_day(request.received_at_ms)
        env = self.key.environment
        for finding in findings:
            self.quarantine.add(
                CountKey(day, env, name, outcome, finding.reason, finding.field_path)
            )

    def flush(self) -> None:
        if not self._lines:
            return
        segment = self.work_dir / f"offline-{uuid.uuid4().hex}.ndjson"
        segment.write_bytes(b"".join(self._lines))
        self._lines = []
        try:
            loaded = self.store.load_segment(segment)
        finally:
            segment.unlink(missing_ok=True)
        self.result.duplicates += loaded.duplicates

    def close(self) -> OfflineResult:
        self.flush()
        return self.result
