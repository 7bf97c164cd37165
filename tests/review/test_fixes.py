"""Fix records and their verification, on simulated traffic stored through the real path.

The seed's story end to end: the request form's IIN/BIN field fails its format check (UI 1.4.2,
first week); the problem is found, a fix is recorded (UI 2.0.0 with a mask, a hint and a
concrete message, shipped on day 7), and on the verification day the server's job compares
equal windows before and after and says "improved", with the numbers."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import msgspec
import pytest
from tests.dashboard.conftest import START

from stumble.access.audit import AuditAction, AuditLog, read_records
from stumble.plan.model import TrackingPlan
from stumble.reports.catalog import run_report
from stumble.review.fixes import (
    Change,
    Expectation,
    FixBook,
    FixError,
    FixJob,
    FixRecord,
    compare_params,
    verify_fix,
    windows,
)
from stumble.review.messages import DeliveryReport, Message
from stumble.storage import DuckDBStore

SHIPPED = START + dt.timedelta(days=7)  # UI 2.0.0 from day 7 of the simulation
VERIFY_ON = SHIPPED + dt.timedelta(days=7)
IIN_FORMAT = "field_error_share:service_request step 2 iin_bin format"
NOW = dt.datetime(2026, 3, 16, 9, 0, tzinfo=dt.UTC)


class RecordingNotifier:
    """Stands in for the delivery channels (tested on their own with a real SMTP server)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    def notify(self, team: str, message: Message) -> DeliveryReport:
        self.sent.append((team, message))
        return DeliveryReport(sent=(team,))


def draft(**changes: object) -> FixRecord:
    fix = FixRecord(
        fix_id="",
        title="Mask and hint on the IIN/BIN field",
        problem="field_error: iin_bin (format) on service_request step 2",
        scenario="create_service_request",
        hypothesis="The strict field rejects spaces and dashes and says only Invalid: a mask and "
        "a concrete message will halve format errors.",
        change=Change(ui_version="2.0.0", shipped_on=SHIPPED),
        owner="team_service_desk",
        expectations=[Expectation.parse(f"{IIN_FORMAT}=-20%")],
        verify_on=VERIFY_ON,
        created_at=NOW - dt.timedelta(days=7),
        created_by="cli",
    )
    return msgspec.structs.replace(fix, **changes)


def test_an_expectation_reads_metric_subject_direction_and_target() -> None:
    expectation = Expectation.parse(f"{IIN_FORMAT}=-20%")
    assert (expectation.metric, expectation.subject) == (
        "field_error_share",
        "service_request step 2 iin_bin format",
    )
    assert (expectation.direction, expectation.target) == ("decrease", pytest.approx(-0.2))
    rise = Expectation.parse("step_conversion:step_1_done=+")
    assert (rise.direction, rise.target) == ("increase", None)
    with pytest.raises(FixError, match="METRIC:SUBJECT"):
        Expectation.parse("fewer errors please")


def test_fixes_are_kept_privately_and_numbered(tmp_path: Path) -> None:
    book = FixBook(tmp_path)
    first, second = book.add(draft()), book.add(draft(title="Second"))
    assert (first.fix_id, second.fix_id) == ("fix-0001", "fix-0002")
    assert FixBook(tmp_path).get("fix-0002").title == "Second"
    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(book.path.parent.stat().st_mode) == 0o700
    assert [fix.fix_id for fix in book.due(VERIFY_ON)] == ["fix-0001", "fix-0002"]
    assert book.due(VERIFY_ON - dt.timedelta(days=1)) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hypothesis": "Ask aigerim.nurlanovna@example.kz why the form fails"}, "personal"),
        ({"title": "Call +7 701 234 5678 about it"}, "personal"),
        ({"change": Change(ui_version="2.0.0", flag="mask", shipped_on=SHIPPED)}, "one of"),
        ({"verify_on": SHIPPED}, "after the day"),
        ({"expectations": []}, "at least one metric"),
    ],
)
def test_a_fix_that_cannot_be_verified_or_holds_personal_data_is_refused(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(FixError, match=message) as error:
        FixBook(tmp_path).add(draft(**changes))
    assert "aigerim" not in str(error.value) and "701" not in str(error.value)
    assert not (tmp_path / "review" / "fixes.json").exists()


def test_the_windows_are_equal_and_meet_at_the_shipping_day() -> None:
    (before_from, before_to), (after_from, after_to) = windows(draft())
    assert (after_from, after_to) == (SHIPPED, VERIFY_ON - dt.timedelta(days=1))
    assert before_to == SHIPPED - dt.timedelta(days=1)
    assert (before_to - before_from) == (after_to - after_from)


def test_the_seed_story_found_fixed_and_verified_improved(
    store: DuckDBStore, plan: TrackingPlan, tmp_path: Path
) -> None:
    # 1. The problem is found in the first week (UI 1.4.2).
    first_week = {"from": START.isoformat(), "to": (SHIPPED - dt.timedelta(days=1)).isoformat()}
    problems = run_report(
        store, plan, "top-problems", {**first_week, "env": "prod"}, min_group_size=5
    )
    subjects = [p.subject for p in problems.data.problems]
    assert "iin_bin (format) on service_request step 2" in subjects
    # 2. A fix is recorded for it; 3. on its day the job verifies it.
    book = FixBook(tmp_path)
    fix = book.add(draft())
    notifier = RecordingNotifier()
    audit = AuditLog.in_data_dir(tmp_path)
    job = FixJob(
        book, store, plan, zone=dt.UTC, check_time=dt.time(8), notifier=notifier, audit=audit
    )
    assert not job.due(dt.datetime(2026, 3, 16, 7, 59, tzinfo=dt.UTC)), "before the check time"
    assert not job.due(dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)), "before its day"
    assert job.due(NOW)
    job.run(NOW)
    verified = book.get(fix.fix_id)
    assert verified.verdict is not None
    verdict = verified.verdict
    assert verdict.outcome == "improved"
    [evidence] = verdict.evidence
    assert evidence.met and evidence.verdict == "improved"
    assert evidence.before is not None and evidence.after is not None
    assert evidence.after < evidence.before * 0.8, "at least the fifth fewer the fix aimed at"
    assert evidence.ci_high is not None and evidence.ci_high < 0, "the whole interval is a drop"
    print(
        f"\nfix verified: format errors on iin_bin {evidence.before:.1%} -> {evidence.after:.1%} "
        f"(diff {evidence.diff:+.1%}, 95% {evidence.ci_low:+.1%} to {evidence.ci_high:+.1%}, "
        f"p adj {evidence.p_adjusted:.2g}), {verdict.sessions_before} and "
        f"{verdict.sessions_after} sessions"
    )
    # Reproducible: the stored evidence is what the compare report answers for its parameters.
    again = run_report(store, plan, "compare", compare_params(verified), min_group_size=5)
    metric = again.data.metric("field_error_share", "service_request step 2 iin_bin format")
    assert metric is not None and (metric.a, metric.b) == (evidence.before, evidence.after)
    # The owner team is told once, and the verification is in the audit log.
    [(team, message)] = notifier.sent
    assert team == "team_service_desk" and message.key == "fix:fix-0001:verified"
    assert "improved" in message.subject and "iin_bin" in message.text
    records = read_records(audit.path).records
    verify = [r for r in records if r.action == AuditAction.FIX_VERIFY]
    assert [(r.detail.target, r.detail.reason) for r in verify if r.detail] == [
        ("fix-0001", "improved")
    ]
    # Verified fixes are not verified again.
    assert not job.due(NOW + dt.timedelta(days=1))


def test_a_change_that_did_not_ship_is_no_significant_change(
    store: DuckDBStore, plan: TrackingPlan
) -> None:
    fix = draft(change=Change(flag="never_rolled_out", shipped_on=SHIPPED))
    verdict = verify_fix(store, plan, fix, NOW)
    assert verdict.outcome == "no significant change"
    assert [e.verdict for e in verdict.evidence] == ["no data"]
