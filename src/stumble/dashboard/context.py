"""What a page builder reads: the store, the plan, the filters, and a cached report runner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stumble.analytics.results import Report, ReportMeta
from stumble.dashboard.cache import ResultCache
from stumble.dashboard.filters import ViewFilters
from stumble.dashboard.inventory import Inventory
from stumble.pipeline import PipelineStatus
from stumble.plan.model import TrackingPlan
from stumble.reports.catalog import ReportDefaults, run_report
from stumble.review.fixes import FixRecord
from stumble.storage.base import EventStore


class PageParamError(ValueError):
    """A page parameter that cannot be used; the message names it (fit for a 400 page)."""


@dataclass(frozen=True, slots=True)
class PageContext:
    store: EventStore
    plan: TrackingPlan
    filters: ViewFilters
    """With its environment chosen (``inventory.default_environment`` when none was asked)."""
    inventory: Inventory
    query: Mapping[str, str]
    """The page's own parameters (scenario, by, form…), unparsed."""
    min_group_size: int
    cache: ResultCache
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    fixes: Sequence[FixRecord] = ()
    """The fix records, for the review loop's health on the overview."""
    pipeline: PipelineStatus | None = None
    defaults: ReportDefaults = field(default_factory=ReportDefaults)
    """The server's report defaults (frustration thresholds), as the read API uses them."""
    """The loader and spool now, for the data health page (None elsewhere)."""

    def report(
        self,
        name: str,
        extra: Mapping[str, str] | None = None,
        filters: ViewFilters | None = None,
    ) -> Report[Any]:
        """Report ``name`` for ``filters`` (the page's by default) plus ``extra`` parameters:
        exactly what ``GET /api/v1/reports/{name}`` answers for the same parameters."""
        params = (filters or self.filters).report_params() | dict(extra or {})
        key = (name, tuple(sorted(params.items())), self.min_group_size)
        return self.cache.get_or_compute(
            key,
            lambda: run_report(
                self.store,
                self.plan,
                name,
                params,
                min_group_size=self.min_group_size,
                defaults=self.defaults,
            ),
        )

    def param(self, name: str, choices: Mapping[str, str], default: str) -> str:
        """A page parameter that must be one of ``choices`` (value → label)."""
        value = self.query.get(name) or default
        if value not in choices:
            raise PageParamError(f"{name} must be one of: {', '.join(choices)}")
        return value


def notes_of(*metas: ReportMeta) -> list[str]:
    """How to read the numbers, once per distinct note, from the reports' meta."""
    notes: list[str] = []
    for meta in metas:
        if meta.hidden:
            notes.append(
                f"{meta.hidden} cells hidden in {meta.report}: fewer than {meta.min_group_size} "
                "sessions, or hidden so that a total cannot reveal such a group."
            )
        if meta.estimated:
            rates = ", ".join(f"{rate:g}" for rate in meta.sample_rates)
            notes.append(
                f"{meta.report}: counts are estimates re-weighted from sampled sessions "
                f"(sample rates {rates})."
            )
    return list(dict.fromkeys(notes)) + _shared_notes(metas)


def _shared_notes(metas: Sequence[ReportMeta]) -> list[str]:
    """The reports' own notes, each prefixed with the report that gives it; a note several
    reports give is written once, prefixed with all of their names ("usage, loops: ...")."""
    reports_by_note: dict[str, list[str]] = {}
    for meta in metas:
        for note in meta.notes:
            reports = reports_by_note.setdefault(note, [])
            if meta.report not in reports:
                reports.append(meta.report)
    return [f"{', '.join(reports)}: {note}" for note, reports in reports_by_note.items()]
