"""Field errors: shares equal the simulation; the seed's IIN/BIN story is recovered."""

from __future__ import annotations

from collections import defaultdict

import pytest
from tests.analytics.conftest import AFTER, BEFORE, Dataset, by_session, matches, whole

from stumble.analytics.field_errors import run_field_errors
from stumble.analytics.queries import FieldErrorQuery
from stumble.analytics.stats import quantile


def report_for(data: Dataset, **scope: object):  # type: ignore[no-untyped-def]
    return run_field_errors(data.store, FieldErrorQuery.from_plan(data.plan, whole(**scope))).data  # type: ignore[arg-type]


@pytest.mark.parametrize("form_id", ["service_request", "login", "report_params"])
def test_counts_and_shares_equal_the_ground_truth(seed_story: Dataset, form_id: str) -> None:
    report = report_for(seed_story, by="ui_version")
    for version in (BEFORE, AFTER):
        for truth in seed_story.truth.version(version).field_errors:
            if truth.form_id != form_id:
                continue
            row = report.error(truth.field_id, truth.error_type, form_id=form_id, group=version)
            assert row is not None
            assert (row.events, row.sessions, row.entered) == (
                truth.events,
                truth.sessions,
                truth.sessions_entered,
            )
            assert row.share.value == truth.share


def test_the_seed_iin_bin_story(seed_story: Dataset) -> None:
    report = report_for(seed_story, by="ui_version")
    before = report.error("iin_bin", "format", group=BEFORE)
    after = report.error("iin_bin", "format", group=AFTER)
    assert before is not None and after is not None
    # 70% of the sessions on step 2 hit a format error on IIN/BIN before the fix, 10% after.
    assert before.share.value == pytest.approx(0.70, abs=0.03)
    assert after.share.value == pytest.approx(0.10, abs=0.025)
    # They fail 2-4 times, so the submit that works is attempt 3 to 5.
    assert before.attempts_median is not None and 3 <= before.attempts_median <= 5
    assert before.time_with_error.p50 > before.time_without_error.p50  # type: ignore[operator]
    step = report.step("service_request", 2, BEFORE)
    assert step is not None
    assert step.time_on_step.p50 == pytest.approx(90_000, rel=0.1)
    assert step.error_fixing_time.p50 is not None and step.error_fixing_time.p50 > 20_000
    fixed = report.step("service_request", 2, AFTER)
    assert fixed is not None and fixed.with_any_error.value < step.with_any_error.value  # type: ignore[operator]


def test_time_on_step_equals_an_independent_recount(seed_story: Dataset) -> None:
    report = report_for(seed_story)
    entry = next(f for f in FieldErrorQuery.from_plan(seed_story.plan, whole()).forms
                 if f.form_id == "service_request").entry  # fmt: skip
    assert entry is not None
    with_error: list[float] = []
    without: list[float] = []
    attempts: list[float] = []
    entered_step_2 = 0
    for rows in by_session(seed_story.events()).values():
        step_1 = next((e for e in rows if e.kind == "form_submit" and e.form_id == "service_request"
                       and e.step == 1 and e.status == "success"), None)  # fmt: skip
        if step_1 is None:
            continue
        entered_step_2 += 1
        done = next((e for e in rows if e.kind == "form_submit" and e.form_id == "service_request"
                     and e.step == 2 and e.status == "success" and e.ts >= step_1.ts), None)  # fmt: skip
        hit = any(e.kind == "field_error" and e.field_id == "iin_bin" and e.step == 2 for e in rows)
        if done is None:
            continue
        (with_error if hit else without).append(float(done.ts - step_1.ts))
        if hit:
            assert done.attempt is not None
            attempts.append(float(done.attempt))
    row = report.error("iin_bin", "format")
    assert row is not None and row.entered == entered_step_2
    assert row.time_with_error.p50 == quantile(with_error, 0.5)
    assert row.time_with_error.p95 == quantile(with_error, 0.95)
    assert row.time_without_error.p95 == quantile(without, 0.95)
    assert row.attempts_median == quantile(attempts, 0.5)
    assert row.attempts_mean == pytest.approx(sum(attempts) / len(attempts))
    assert any(matches(e, entry) for e in seed_story.events()[:5000])


def test_shares_are_reweighted_for_sampled_keys_but_stay_shares(seed_story: Dataset) -> None:
    report = report_for(seed_story, environment="staging")
    observed: defaultdict[str, set[str]] = defaultdict(set)
    for event in seed_story.events("staging"):
        if event.kind == "field_error" and event.form_id == "service_request":
            observed[f"{event.field_id}:{event.error_type}"].add(event.session_id)
    for row in report.errors:
        if row.form_id == "service_request" and not row.hidden:
            assert row.sessions == 2 * len(observed[f"{row.field_id}:{row.error_type}"])
            assert row.share.value is not None and 0 < row.share.value <= 1


def test_error_fixing_time_is_over_the_sessions_that_had_an_error(seed_story: Dataset) -> None:
    step = report_for(seed_story).step("service_request", 2)
    assert step is not None and step.completed is not None
    # Recount: sessions that completed step 2 after at least one error on it; their time
    # from the first submit of step 2 to the successful one.
    times = []
    for rows in by_session(seed_story.events()).values():
        form = [e for e in rows if e.form_id == "service_request" and e.step == 2]
        submits = [e for e in form if e.kind == "form_submit"]
        done = next((e.ts for e in submits if e.status == "success"), None)
        if done is not None and any(e.kind == "field_error" for e in form):
            times.append(float(done - submits[0].ts))
    assert 0 < step.error_fixing_time.n == len(times) < step.completed
    assert step.error_fixing_time.p50 == quantile(times, 0.5)
    assert step.error_fixing_time.p50 > 0  # over every completer it read 0 ms


def test_errors_are_ranked_by_sessions_affected(seed_story: Dataset) -> None:
    totals = [r for r in report_for(seed_story, by="role").errors if r.group is None]
    shown = [r.sessions for r in totals if not r.hidden]
    assert shown == sorted(shown, reverse=True)
    assert len(shown) > 3
    hidden_at = [i for i, r in enumerate(totals) if r.hidden]
    assert all(i >= len(shown) for i in hidden_at)  # a hidden total never ranks among them
