"""Compare: the fix is "improved", an A/A split is "no significant change" everywhere."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from tests.analytics.conftest import AFTER, BEFORE, START, Dataset, whole

from stumble.analytics.compare import run_compare
from stumble.analytics.funnels import run_funnel
from stumble.analytics.queries import (
    Arm,
    CompareQuery,
    Filters,
    FlagFilter,
    FunnelQuery,
    Scope,
    TimeRange,
)
from stumble.events import StoredEvent
from stumble.plan.load import default_plan_path, load_plan
from stumble.storage import DuckDBStore

VERSIONS = (Arm(BEFORE, ui_version=(BEFORE,)), Arm(AFTER, ui_version=(AFTER,)))


def test_the_fix_is_an_improvement_and_nothing_regressed(seed_story: Dataset) -> None:
    query = CompareQuery.from_plan(seed_story.plan, whole(), "create_service_request", *VERSIONS)
    result = run_compare(seed_story.store, query).data
    assert result.overall == "improved"
    assert "regressed" not in result.verdicts()
    iin = result.metric("field_error_share", "service_request step 2 iin_bin format")
    assert iin is not None and iin.verdict == "improved"
    assert iin.ci_high is not None and iin.ci_high < -0.5
    for metric in ("step_p50", "step_p95"):
        step_2 = result.metric(metric, "step_2_done")
        assert step_2 is not None and step_2.verdict == "improved"
    conversion = result.metric("step_conversion", "step_2_done")
    assert conversion is not None and conversion.verdict == "improved"
    assert conversion.diff is not None and 0.15 < conversion.diff < 0.35
    for metric in result.metrics:
        if metric.p_value is not None:
            assert metric.p_adjusted is not None and metric.p_adjusted >= metric.p_value


def test_compare_numbers_are_the_funnels_numbers(seed_story: Dataset) -> None:
    query = CompareQuery.from_plan(seed_story.plan, whole(), "create_service_request", *VERSIONS)
    result = run_compare(seed_story.store, query).data
    funnel = run_funnel(
        seed_story.store,
        FunnelQuery.from_plan(seed_story.plan, whole(by="ui_version"), "create_service_request"),
    ).data
    before = next(g for g in funnel.groups if g.group == BEFORE)
    after = next(g for g in funnel.groups if g.group == AFTER)
    for i, label in enumerate(funnel.steps[1:], start=1):
        conversion = result.metric("step_conversion", label)
        p50 = result.metric("step_p50", label)
        assert conversion is not None and p50 is not None
        assert conversion.a == before.steps[i].step_conversion.value
        assert conversion.b == after.steps[i].step_conversion.value
        assert (p50.a, p50.b) == (
            before.steps[i].time_from_previous.p50,
            after.steps[i].time_from_previous.p50,
        )
    assert result.a.started == before.steps[0].sessions


def test_two_time_windows_tell_the_same_story(seed_story: Dataset) -> None:
    first = TimeRange.days(START, START + dt.timedelta(days=6))
    second = TimeRange.days(START + dt.timedelta(days=7), START + dt.timedelta(days=13))
    query = CompareQuery.from_plan(
        seed_story.plan,
        whole(),
        "create_service_request",
        Arm("week 1", time=first),
        Arm("week 2", time=second),
    )
    result = run_compare(seed_story.store, query).data
    assert result.overall == "improved"
    assert result.a.description.startswith("2026-03-02")


def test_an_aa_split_shows_no_significant_change_anywhere(aa_run: Dataset) -> None:
    for scenario in ("create_service_request", "search", "report_export"):
        query = CompareQuery.from_plan(
            aa_run.plan,
            whole(),
            scenario,
            Arm("control", feature_flag=FlagFilter("aa_split", enabled=False)),
            Arm("treatment", feature_flag=FlagFilter("aa_split")),
        )
        result = run_compare(aa_run.store, query).data
        assert result.overall == "no significant change", scenario
        assert set(result.verdicts()) == {"no significant change"}, scenario
        arms = aa_run.truth.segments
        assert result.a.started == arms["aa:control"].funnels[scenario].reached[0]
        assert result.b.started == arms["aa:treatment"].funnels[scenario].reached[0]


def test_metrics_with_too_few_sessions_are_hidden(seed_story: Dataset) -> None:
    # The two days around the release: a handful of sessions of each version.
    release = TimeRange.days(START + dt.timedelta(days=6), START + dt.timedelta(days=7))
    scope = Scope(release, Filters(role=("admin",), region=("aktobe",)))
    query = CompareQuery.from_plan(seed_story.plan, scope, "create_service_request", *VERSIONS)
    result = run_compare(seed_story.store, query).data
    assert result.metrics and all(m.hidden or m.n_a is None for m in result.metrics)
    assert all(m.verdict == "no significant change" for m in result.metrics)


# --- intervals that agree with the verdicts; comparability warnings ------------------------


def test_intervals_are_simultaneous_and_agree_with_the_verdicts(seed_story: Dataset) -> None:
    query = CompareQuery.from_plan(
        seed_story.plan,
        whole(),
        "create_service_request",
        Arm(BEFORE, ui_version=(BEFORE,)),
        Arm(AFTER, ui_version=(AFTER,)),
    )
    result = run_compare(seed_story.store, query).data
    shown = [m for m in result.metrics if not m.hidden]
    levels = {m.confidence for m in shown}
    assert len(levels) == 1
    (level,) = levels
    assert level is not None and level == pytest.approx(1 - 0.05 / len(result.metrics))
    for m in shown:
        assert m.ci_low is not None and m.ci_high is not None
        excludes_zero = m.ci_low > 0 or m.ci_high < 0
        assert excludes_zero == (m.verdict != "no significant change"), m
    assert any(m.verdict != "no significant change" for m in shown)


def test_windows_of_different_lengths_are_warned_about(seed_story: Dataset) -> None:
    week = TimeRange.days(START, START + dt.timedelta(days=6))
    fortnight = TimeRange.days(START, START + dt.timedelta(days=13))
    query = CompareQuery.from_plan(
        seed_story.plan, whole(), "login", Arm("a", time=week), Arm("b", time=fortnight)
    )
    warnings = run_compare(seed_story.store, query).data.warnings
    assert any("differ in length (7 vs 14 days)" in w for w in warnings)
    same = CompareQuery.from_plan(
        seed_story.plan,
        whole(),
        "login",
        Arm("a", time=week),
        Arm("b", time=TimeRange.days(START + dt.timedelta(days=7), START + dt.timedelta(days=13))),
    )
    assert run_compare(seed_story.store, same).data.warnings == []  # same mix, same length


def test_audiences_that_differ_are_warned_about(tmp_path: Path) -> None:
    # Week 1: operators on desktops; week 2: managers, half on tablets.
    rows = [
        audience_row(f"s_{i:020d}", day, role, device)
        for i, (day, role, device) in enumerate(
            [(0, "operator", "desktop")] * 20
            + [(7, "manager", "desktop")] * 10
            + [(7, "manager", "tablet")] * 10
        )
    ]
    with DuckDBStore(":memory:") as store:
        store.write_rows(rows)
        plan = load_plan(default_plan_path())
        query = CompareQuery.from_plan(
            plan,
            whole(),
            "login",
            Arm("a", time=TimeRange.days(START, START + dt.timedelta(days=6))),
            Arm(
                "b",
                time=TimeRange.days(START + dt.timedelta(days=7), START + dt.timedelta(days=13)),
            ),
        )
        warnings = run_compare(store, query).data.warnings
    assert [w.split(" (")[0] for w in warnings] == [
        "the audiences differ by role",
        "the audiences differ by device_type",
    ]
    assert "moved 100%" in warnings[0] and "moved 50%" in warnings[1]


def audience_row(session: str, day: int, role: str, device: str) -> StoredEvent:
    ms = int(
        dt.datetime.combine(START + dt.timedelta(days=day), dt.time(10), dt.UTC).timestamp() * 1000
    )
    return StoredEvent(
        event_id=str(uuid.uuid4()), environment="prod", key_id="k", sample_rate=1.0,
        received_at=ms, ts=ms, client_ts=ms, skew_ms=0, event_name="screen_view",
        kind="screen_view", session_id=session, screen_id="login", schema_version=3,
        ui_version="1", role=role, device_type=device,
    )  # fmt: skip
