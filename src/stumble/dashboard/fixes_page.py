"""The fixes page and the review loop's own health (shown on the overview)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from stumble.analytics.results import Column, Format, Table
from stumble.dashboard.model import (
    BulletList,
    Callout,
    FixForm,
    Page,
    Section,
    TableBlock,
    Tone,
)
from stumble.plan.model import TrackingPlan
from stumble.reports.top_problems import Problem
from stumble.review.calendar import Week
from stumble.review.fixes import FixRecord, MetricEvidence

LOOP_WEEKS = 8
FIX_WINDOW_DAYS = 14
OUTCOME_TONES: dict[str, Tone] = {"improved": "good", "regressed": "bad"}


def fix_form(
    plan: TrackingPlan, environments: Sequence[str], today: dt.date, prefill: Mapping[str, str]
) -> FixForm:
    """The form to record a fix, begun from a problem when ``prefill`` names one."""
    owners = sorted({s.owner for s in plan.scenarios.values() if s.owner})
    return FixForm(
        scenarios=list(plan.scenarios),
        owners=owners,
        environments=list(environments) or ["prod"],
        problem=prefill.get("problem", ""),
        scenario=prefill.get("scenario", ""),
        owner=prefill.get("owner", ""),
        expectation=prefill.get("expect", ""),
        shipped_on=today.isoformat(),
        verify_on=(today + dt.timedelta(days=FIX_WINDOW_DAYS)).isoformat(),
    )


def fixes_page(fixes: Sequence[FixRecord], today: dt.date, form: FixForm | None = None) -> Page:
    open_fixes = [fix for fix in fixes if fix.verdict is None]
    verified = [fix for fix in fixes if fix.verdict is not None]
    overdue = [fix for fix in open_fixes if fix.overdue(today)]
    sections = [
        Section(
            "Open fixes",
            [_open_table(open_fixes, today)],
            intro="Each is compared on its day: the days since it shipped against as many days "
            "before (or its flag off against on), same environment and audience.",
            id="open",
        ),
        Section("Verified", [_verdicts(verified)]),
    ]
    if form is not None:
        intro = (
            "One fix per problem: what changed, why it should help, the metric it should move, "
            "and the day to check it (two weeks after shipping by default)."
        )
        sections.insert(0, Section("Record a fix", [form], intro=intro, id="record"))
    if overdue:
        text = f"{len(overdue)} open fixes are past their verification day: the server checks "
        text += "them at its next check time (or the server was not running on that day)."
        sections.insert(0, Section("Attention", [Callout(text, "warning")]))
    return Page(
        slug="fixes",
        question="Did our fixes work?",
        owner="the UX review: each fix names its owner team",
        sections=sections,
        uses_filters=False,
    )


def _open_table(fixes: Sequence[FixRecord], today: dt.date) -> TableBlock:
    table = Table(
        "Open fixes",
        (
            Column("fix"),
            Column("title"),
            Column("owner"),
            Column("change"),
            Column("expects"),
            Column("checked on"),
            Column("state"),
        ),
        [
            (
                fix.fix_id,
                fix.title,
                fix.owner,
                fix.change.describe(),
                "; ".join(e.describe() for e in fix.expectations),
                fix.verify_on.isoformat(),
                "overdue" if fix.overdue(today) else "waiting",
            )
            for fix in fixes
        ],
        "record one with `stumble fixes add` or POST /api/v1/fixes",
    )
    return TableBlock("open-fixes", table, empty="No open fix. Record one for a top problem.")


def _verdicts(fixes: Sequence[FixRecord]) -> TableBlock:
    rows = [
        (
            fix.fix_id,
            fix.title,
            verdict.outcome,
            f"{evidence.metric} of {evidence.subject}",
            evidence.before,
            evidence.after,
            evidence.diff,
            evidence.ci_low,
            evidence.ci_high,
            evidence.p_adjusted,
            "met" if evidence.met else "not met",
        )
        for fix in fixes
        if (verdict := fix.verdict) is not None
        for evidence in verdict.evidence
    ]
    fmt: Format = "ms" if fixes and all(_is_duration(f) for f in fixes) else "share"
    table = Table(
        "Verdicts with their evidence",
        (
            Column("fix"),
            Column("title"),
            Column("verdict"),
            Column("metric"),
            Column("before", fmt),
            Column("after", fmt),
            Column("difference", fmt),
            Column("low", fmt),
            Column("high", fmt),
            Column("p (adj.)", "p"),
            Column("expectation"),
        ),
        rows,
        "before/after: equal windows around the day the change shipped",
    )
    return TableBlock("verdicts", table, empty="No fix has reached its verification day yet.")


def _is_duration(fix: FixRecord) -> bool:
    assert fix.verdict is not None
    return all(_duration(e) for e in fix.verdict.evidence)


def _duration(evidence: MetricEvidence) -> bool:
    return evidence.metric.startswith("step_p")


# --- the loop's health on the overview ----------------------------------------------------


def loop_health(fixes: Sequence[FixRecord], problems: Sequence[Problem], today: dt.date) -> Section:
    """Fixes verified per week, open fixes past their date, problems with no fix."""
    this_week = Week.of(today)
    weeks = [this_week]
    for _ in range(LOOP_WEEKS - 1):
        weeks.append(weeks[-1].previous())
    verified_per_week = {str(week): 0 for week in reversed(weeks)}
    for fix in fixes:
        if fix.verdict is not None:
            week = str(Week.of(fix.verdict.checked_at.date()))
            if week in verified_per_week:
                verified_per_week[week] += 1
    overdue = [fix for fix in fixes if fix.overdue(today)]
    addressed = {fix.problem for fix in fixes if fix.verdict is None}
    unfixed = [p for p in problems if _problem_text(p) not in addressed]
    verified_text = (
        f"{verified_per_week[str(this_week)]} fixes verified this week, "
        f"{sum(verified_per_week.values())} in the last {LOOP_WEEKS} weeks"
    )
    items: list[tuple[str, Tone]] = [
        (verified_text, "info"),
        (f"{len(overdue)} open fixes past their verification day",
         "warning" if overdue else "good"),
        (f"{len(unfixed)} of {len(problems)} problems above a threshold have no open fix",
         "warning" if unfixed else "good"),
    ]  # fmt: skip
    table = Table(
        "Fixes verified per week",
        (Column("week"), Column("verified", "int")),
        list(verified_per_week.items()),
    )
    return Section(
        "The review loop",
        [BulletList(items), TableBlock("loop", table)],
        intro="Every review should end in at least one fix with a date on which it is checked.",
        id="loop",
    )


def _problem_text(problem: Problem) -> str:
    """How a fix names the problem it addresses: ``kind: subject``."""
    return f"{problem.kind}: {problem.subject}"
