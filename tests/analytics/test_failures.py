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


def test_http_errors_by_status_class_and_code_equal_a_recount(seed_story: Dataset) -> None:
    report = run_failures(seed_story.store, FailureQuery.from_plan(seed_story.plan, whole())).data
    codes: defaultdict[int, list[str]] = defaultdict(list)
    for event in seed_story.events():
        if event.kind == "error" and event.http_status is not None:
            codes[event.http_status].append(event.session_id)
    assert codes  # the simulation fails some requests with 5xx
    shown = {
        (c.key["status_class"], c.key["http_status"]): (c.events, c.sessions)
        for c in report.by_status
        if c.group is None and not c.hidden
    }
    for code, sessions in codes.items():
        if len(set(sessions)) >= 5:
            assert shown[f"{code // 100}xx", code] == (len(sessions), len(set(sessions)))
    classes = {c.key["status_class"]: c.events for c in report.by_status_class if c.group is None}
    assert classes == {"5xx": sum(len(s) for s in codes.values())}
    events = [c.events or 0 for c in report.by_status if c.group is None]
    assert events == sorted(events, reverse=True)  # most frequent first


def test_long_tasks_per_screen_equal_a_recount(seed_story: Dataset) -> None:
    report = run_failures(seed_story.store, FailureQuery.from_plan(seed_story.plan, whole())).data
    per_screen: defaultdict[str, list[float]] = defaultdict(list)
    sessions: defaultdict[str, set[str]] = defaultdict(set)
    for event in seed_story.events():
        if event.metric == "long_task":
            per_screen[event.screen_id].append(float(event.value or 0))
            sessions[event.screen_id].add(event.session_id)
    assert per_screen
    for screen, values in per_screen.items():
        row = next(t for t in report.long_tasks if t.screen_id == screen and t.group is None)
        if len(sessions[screen]) < 5:
            assert row.hidden
            continue
        assert (row.tasks, row.sessions) == (len(values), len(sessions[screen]))
        assert row.duration.p50 == quantile(values, 0.5)
        assert row.duration.p95 == quantile(values, 0.95)
    assert any(t.screen_id for t in report.long_tasks if not t.hidden)
    assert any(table.title == "Long tasks per screen" for table in report.tables())
