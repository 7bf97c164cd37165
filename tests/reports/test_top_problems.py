"""Top problems: the broken IIN/BIN field comes first, the fix removes it, a slow release shows."""

from __future__ import annotations

import itertools

from tests.analytics.conftest import WINDOW, Dataset

from stumble.analytics.queries import Filters, Scope
from stumble.reports.top_problems import Problem, TopProblemsQuery, run_top_problems, severity


def top(data: Dataset, scope: Scope | None = None) -> list[Problem]:
    query = TopProblemsQuery.from_plan(data.plan, scope or Scope(WINDOW))
    return run_top_problems(data.store, query).data.problems


def test_the_iin_bin_field_is_the_top_problem_before_the_fix(broken_form: Dataset) -> None:
    problems = top(broken_form)
    first = problems[0]
    assert first.kind == "field_error"
    assert first.subject == "iin_bin (format) on service_request step 2"
    assert "input mask" in first.action and "iin_bin" in first.action
    assert "70%" in first.finding or "69%" in first.finding or "71%" in first.finding
    truth = broken_form.truth.all.field_error("iin_bin", "format")
    assert truth is not None and first.sessions_affected == truth.sessions
    # The drop-off it causes is listed too, pointing back at the field.
    drop = next(p for p in problems if p.kind == "drop_off")
    assert "step_2_done" in drop.subject and "iin_bin" in drop.action
    assert [p.rank for p in problems] == list(range(1, len(problems) + 1))
    assert all(a.impact >= b.impact for a, b in itertools.pairwise(problems))


def test_after_the_fix_the_field_is_no_longer_a_problem(fixed_form: Dataset) -> None:
    problems = top(fixed_form, Scope(WINDOW, Filters(ui_version=("2.0.0",))))
    assert not any(p.kind == "field_error" and "iin_bin" in p.subject for p in problems)
    assert not any(p.kind == "drop_off" for p in problems)


def test_a_p95_jump_after_a_release_names_the_release_and_the_step(slow_release: Dataset) -> None:
    problems = top(slow_release)
    regressions = [p for p in problems if p.kind == "regression"]
    subjects = {p.subject for p in regressions}
    assert "step_p95 of create_service_request: submitted after 2.0.0" in subjects
    jump = next(p for p in regressions if p.subject.startswith("step_p95"))
    assert "2.0.0" in jump.finding and "1.4.2" in jump.finding
    assert "release 2.0.0" in jump.action.lower() and "submitted" in jump.action
    # Nothing else about the form changed between the versions.
    assert not any("iin_bin" in p.subject for p in regressions)


def test_severity_grows_with_the_distance_past_the_threshold_up_to_a_cap() -> None:
    assert severity("drop_off", 0.5) == severity("drop_off", 1.0) == 1.0
    assert severity("drop_off", 1.5) == 1.5
    assert severity("drop_off", 10.0) == 2.0
    assert severity("slow_step", 1.0) < severity("field_error", 1.0) < severity("drop_off", 1.0)


def test_problems_only_come_from_cells_an_analyst_may_see(broken_form: Dataset) -> None:
    query = TopProblemsQuery.from_plan(broken_form.plan, Scope(WINDOW))
    assert run_top_problems(broken_form.store, query, min_group_size=100_000).data.problems == []
