"""Feature usage per day equals an independent recount; unused and rare features are named."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from tests.analytics.conftest import Dataset, whole

from stumble.analytics.queries import UsageQuery
from stumble.analytics.usage import run_usage


def test_sessions_per_feature_and_day_equal_an_independent_recount(seed_story: Dataset) -> None:
    report = run_usage(seed_story.store, UsageQuery.from_plan(seed_story.plan, whole())).data
    per_day: defaultdict[tuple[str, dt.date], set[str]] = defaultdict(set)
    per_feature: defaultdict[str, set[str]] = defaultdict(set)
    active: set[str] = set()
    for event in seed_story.events():
        active.add(event.session_id)
        if event.kind in ("action", "custom"):
            day = dt.datetime.fromtimestamp(event.ts / 1000, dt.UTC).date()
            per_day[event.event_name, day].add(event.session_id)
            per_feature[event.event_name].add(event.session_id)
    assert report.active_sessions == len(active)
    assert {f.feature for f in report.features} == set(per_feature)
    for feature in report.features:
        assert feature.sessions == len(per_feature[feature.feature])
        assert feature.share.value == len(per_feature[feature.feature]) / len(active)
        for day in feature.days:
            if not day.hidden:
                assert day.sessions == len(per_day[feature.feature, day.day])


def test_declared_but_unused_and_rare_features_are_barely_touched(seed_story: Dataset) -> None:
    base = UsageQuery.from_plan(seed_story.plan, whole())
    query = UsageQuery(base.scope, (*base.declared, "bulk_close_clicked"), barely_used_share=0.1)
    report = run_usage(seed_story.store, query).data
    assert report.barely_used[0] == "bulk_close_clicked"  # nobody used it: least used first
    shares = {f.feature: f.share.value or 0.0 for f in report.features if f.group is None}
    assert set(report.barely_used[1:]) == {name for name, s in shares.items() if s < 0.1}
    assert "request_back_clicked" in report.barely_used


def test_a_breakdown_splits_the_totals(seed_story: Dataset) -> None:
    report = run_usage(
        seed_story.store, UsageQuery.from_plan(seed_story.plan, whole(by="role"))
    ).data
    total = report.feature("request_next_clicked")
    groups = [f for f in report.features if f.feature == "request_next_clicked" and f.group]
    assert total is not None and len(groups) == 5
    assert sum(g.sessions or 0 for g in groups) == total.sessions
    assert all(not g.days for g in groups)
