"""Operation timings equal the simulation: outcomes, durations, server wait, retries."""

from __future__ import annotations

from collections import defaultdict

import pytest
from tests.analytics.conftest import Dataset, by_session, whole

from stumble.analytics.queries import TimingQuery
from stumble.analytics.stats import quantile
from stumble.analytics.timings import run_timings


def test_outcomes_and_durations_equal_the_ground_truth(seed_story: Dataset) -> None:
    report = run_timings(seed_story.store, TimingQuery(whole())).data
    for name, truth in seed_story.truth.all.operations.items():
        row = report.operation(name)
        assert row is not None
        assert row.ended == truth.ended
        counts = {s: round((share.value or 0) * truth.ended) for s, share in row.rates.items()}
        assert {s: n for s, n in counts.items() if n} == truth.by_status
        assert row.duration_success.p50 == truth.duration_success.median
        assert row.duration_success.p95 == truth.duration_success.p95
        assert row.duration_all.p50 == truth.duration_all.median


@pytest.mark.parametrize(
    ("operation", "route"), [("request_submit", "/api/requests"), ("search", "/api/search")]
)
def test_server_wait_is_the_api_time_plus_the_one_ms_between_checkpoints(
    seed_story: Dataset, operation: str, route: str
) -> None:
    report = run_timings(seed_story.store, TimingQuery(whole(), (operation,))).data
    wait = report.phase(operation, "server_wait")
    api = seed_story.truth.all.api_routes[route]
    assert wait is not None and api.median is not None and api.p95 is not None
    # The simulator stamps request_sent 1 ms after the start and the response right after
    # the server time: every gap is exactly server time + 1 ms.
    assert wait.duration.p50 == api.median + 1
    assert wait.duration.p95 == pytest.approx(api.p95 + 1)
    assert wait.share_of_time is not None and wait.share_of_time > 0.5


def test_retries_equal_an_independent_recount(seed_story: Dataset) -> None:
    report = run_timings(seed_story.store, TimingQuery(whole(by="ui_version"))).data
    started: defaultdict[tuple[str, str | None], int] = defaultdict(int)
    retried: defaultdict[tuple[str, str | None], int] = defaultdict(int)
    for rows in by_session(seed_story.events()).values():
        last_end: dict[str, str] = {}
        for event in rows:
            if event.kind == "operation_end":
                assert event.operation is not None and event.status is not None
                last_end[event.operation] = event.status
            elif event.kind == "operation_start":
                assert event.operation is not None
                for group in (None, event.ui_version):
                    started[event.operation, group] += 1
                    if last_end.get(event.operation) in ("fail", "timeout"):
                        retried[event.operation, group] += 1
    for row in report.operations:
        assert row.started == started[row.operation, row.group]
        assert row.retries == retried[row.operation, row.group]
    export = report.operation("report_export")
    assert export is not None and export.retries and export.retries > 0


def test_unanswered_waits_are_told_apart_from_finishing(seed_story: Dataset) -> None:
    report = run_timings(seed_story.store, TimingQuery(whole(), ("report_export",))).data
    unanswered = report.phase("report_export", "unanswered_wait")
    finishing = report.phase("report_export", "finishing")
    assert unanswered is not None and finishing is not None
    assert unanswered.duration.p50 is not None and unanswered.duration.p50 > 1_000
    assert finishing.duration.p95 == 1.0
    truth = seed_story.truth.all.operations["report_export"].by_status
    assert unanswered.duration.n == truth["timeout"] + truth["cancel"]


def test_phase_quantiles_equal_an_independent_recount(seed_story: Dataset) -> None:
    report = run_timings(seed_story.store, TimingQuery(whole(), ("search",))).data
    gaps: defaultdict[str, list[float]] = defaultdict(list)
    for rows in by_session(seed_story.events()).values():
        previous: dict[str, tuple[int, str]] = {}
        for event in rows:
            if event.operation != "search" or event.operation_id is None:
                continue
            if event.kind == "operation_start":
                previous[event.operation_id] = (event.ts, "(start)")
                continue
            before_ts, before_name = previous[event.operation_id]
            name = event.step_name if event.kind == "operation_step" else "(end)"
            if name == "(end)" and before_name == "request_sent":
                name = "(end, no response)"
            assert name is not None
            gaps[name].append(float(event.ts - before_ts))
            previous[event.operation_id] = (event.ts, name)
    for phase in report.phases:
        values = gaps[phase.checkpoint]
        assert phase.duration.n == len(values)
        assert phase.duration.p50 == quantile(values, 0.5)
        assert phase.duration.p95 == quantile(values, 0.95)
