"""Failures and performance equal the simulation; scenario attribution matches a recount."""

from __future__ import annotations

from collections import defaultdict

import pytest
from tests.analytics.conftest import Dataset, by_session, matches, whole

from stumble.analytics.failures import rate, run_failures
from stumble.analytics.queries import FailureQuery
from stumble.analytics.stats import quantile


def test_errors_and_api_times_equal_the_ground_truth(seed_story: Dataset) -> None:
    report = run_failures(seed_story.store, FailureQuery.from_plan(seed_story.plan, whole())).data
    truth = seed_story.truth.all
    assert report.sessions == truth.sessions
    for kind, events in truth.errors_by_kind.items():
        row = report.kind(kind)
        assert row is not None and row.events == events
    for fingerprint, js in truth.js_errors.items():
        row = report.fingerprint(fingerprint)
        assert row is not None and (row.events, row.sessions) == (js.events, js.sessions)
    for route, summary in truth.api_routes.items():
        timing = report.route(route)
        assert timing is not None
        assert timing.duration.n == summary.n
        assert timing.duration.p50 == summary.median
        assert timing.duration.p95 == summary.p95


def test_vitals_per_screen_equal_an_independent_recount(seed_story: Dataset) -> None:
    report = run_failures(seed_story.store, FailureQuery.from_plan(seed_story.plan, whole())).data
    values: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    for event in seed_story.events():
        if event.kind == "vital" and event.metric not in ("api", "long_task"):
            assert event.metric is not None and event.value is not None
            values[event.screen_id, event.metric].append(event.value)
    assert {(v.screen_id, v.metric) for v in report.vitals} == set(values)
    for vital in report.vitals:
        sample = values[vital.screen_id, vital.metric]
        assert vital.n == len(sample)
        assert vital.p75 == quantile(sample, 0.75)
        ratings = [rate(vital.metric, v) for v in sample]
        for name, share in vital.ratings.items():
            assert share == pytest.approx(ratings.count(name) / len(sample))
        assert sum(vital.ratings.values()) == pytest.approx(1.0)


def test_errors_belong_to_the_scenario_started_last(seed_story: Dataset) -> None:
    query = FailureQuery.from_plan(seed_story.plan, whole())
    report = run_failures(seed_story.store, query).data
    started: defaultdict[str, int] = defaultdict(int)
    hit: defaultdict[str, set[str]] = defaultdict(set)
    for session, rows in by_session(seed_story.events()).items():
        anchors = []
        for scenario in query.scenarios:
            t0 = next((e.ts for e in rows if matches(e, scenario.steps[0])), None)
            if t0 is not None:
                started[scenario.name] += 1
                anchors.append((t0, scenario))
        for error in (e for e in rows if e.kind == "error"):
            owners = [(t0, s) for t0, s in anchors if t0 <= error.ts <= t0 + s.window_ms]
            if owners:
                hit[max(owners, key=lambda pair: pair[0])[1].name].add(session)
    for row in report.by_scenario:
        assert row.started == started[row.scenario]
        assert row.with_error.value == len(hit[row.scenario]) / started[row.scenario]
    login = report.scenario("login")
    assert login is not None and login.with_error.value == 0.0  # login calls never fail
