"""Fixes that verify themselves: a record of what was changed and why, checked on its date.

A fix names the problem it addresses (as top problems words it), the hypothesis, the change (a
ui_version or a feature flag, and the day it shipped), the owner team, the metrics it should
move and in which direction (optionally by how much: ``field_error_share`` of
``service_request step 2 iin_bin format`` -20%), and the day to check it.

On that day ``verify_fix`` runs the compare report on **equal windows and the same audience**:
a new ui_version — the days before it shipped against as many days after it, in that version,
same environment; a flag — flag off against flag on over the same days since it shipped. The
verdict keeps its evidence (each metric before and after, the difference with its interval and
the adjusted p-value): *improved* when every expected metric moved significantly the expected
way (and reached its target, if one was set), *regressed* when any expected metric got
significantly worse, otherwise *no significant change*.

Records live in ``<data_dir>/review/fixes.json`` (0600, replaced atomically). Titles and
hypotheses are written by the team; they are screened with the privacy detectors anyway, and
one that holds anything personal is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditLog, Outcome
from stumble.analytics.compare import CompareResult, MetricComparison
from stumble.analytics.stats import IMPROVED, REGRESSED
from stumble.files import private_dir, replace_private_file
from stumble.plan.model import TrackingPlan
from stumble.privacy.detectors import detect
from stumble.reports.catalog import run_report
from stumble.review.messages import Message, Notifier
from stumble.storage.base import EventStore

FIXES_FILE: Final = "fixes.json"
FixOutcome = Literal["improved", "no significant change", "regressed"]
Direction = Literal["decrease", "increase"]
Identifier = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")]
Prose = Annotated[str, Meta(min_length=1, max_length=500)]
_EXPECTATION: Final = re.compile(
    r"(?P<metric>[a-z_0-9]+):(?P<subject>[^=]+?)\s*=\s*(?P<sign>[+-])(?P<size>[0-9]{1,3}(?:\.[0-9])?)?%?"
)
_FIX_ID: Final = re.compile(r"fix-[0-9]{4,}")
DURATION_METRICS: Final = ("step_p50", "step_p95")


class FixError(ValueError):
    """A fix that cannot be recorded or found; the message says why, never echoing prose."""


class Expectation(msgspec.Struct, frozen=True, kw_only=True):
    """A metric of the compare report the fix should move, and how."""

    metric: str
    subject: str
    direction: Direction
    target: float | None = None
    """The relative change aimed at (-0.2: a fifth less); None: any significant change."""

    @classmethod
    def parse(cls, text: str) -> Expectation:
        """``METRIC:SUBJECT=-20%`` (a fifth less), ``METRIC:SUBJECT=+`` (any increase)."""
        match = _EXPECTATION.fullmatch(text.strip())
        if match is None:
            raise FixError(
                "an expected metric is written METRIC:SUBJECT=-20% or METRIC:SUBJECT=+ "
                "(e.g. field_error_share:service_request step 2 iin_bin format=-20%)"
            )
        direction: Direction = "decrease" if match["sign"] == "-" else "increase"
        size = match["size"]
        target = (
            None if size is None else float(size) / 100 * (-1 if direction == "decrease" else 1)
        )
        return cls(
            metric=match["metric"],
            subject=match["subject"].strip(),
            direction=direction,
            target=target,
        )

    def describe(self) -> str:
        aim = f"{self.target:+.0%}" if self.target is not None else self.direction
        return f"{self.metric} of {self.subject}: {aim}"


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What shipped: a ui_version or a feature flag, on a day."""

    ui_version: Identifier | None = None
    flag: Identifier | None = None
    shipped_on: dt.date

    def describe(self) -> str:
        what = f"UI {self.ui_version}" if self.ui_version else f"flag {self.flag}"
        return f"{what} from {self.shipped_on.isoformat()}"


class MetricEvidence(msgspec.Struct, frozen=True, kw_only=True):
    metric: str
    subject: str
    expected: Direction
    target: float | None = None
    before: float | None = None
    after: float | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_adjusted: float | None = None
    verdict: str
    """The compare report's verdict for this metric, or ``no data`` (too few sessions)."""
    met: bool
    """Moved significantly the expected way, and reached the target if one was set."""

    @property
    def relative(self) -> float | None:
        if self.diff is None or not self.before:
            return None
        return self.diff / self.before


class FixVerdict(msgspec.Struct, frozen=True, kw_only=True):
    outcome: FixOutcome
    checked_at: dt.datetime
    before_from: dt.date
    before_to: dt.date
    after_from: dt.date
    after_to: dt.date
    sessions_before: int | None
    sessions_after: int | None
    """Sessions that started the scenario in each arm (None: fewer than k)."""
    evidence: list[MetricEvidence]


class FixRecord(msgspec.Struct, frozen=True, kw_only=True):
    fix_id: str
    title: Prose
    problem: Prose
    """The problem addressed, as top problems words it (``field_error: iin_bin (format) …``)."""
    scenario: Identifier
    hypothesis: Prose
    change: Change
    owner: Identifier
    expectations: list[Expectation]
    verify_on: dt.date
    environment: Identifier = "prod"
    created_at: dt.datetime
    created_by: str
    """Who recorded it, as the audit log names actors (a token name, ``cli``)."""
    verdict: FixVerdict | None = None

    @property
    def status(self) -> Literal["open", "verified"]:
        return "open" if self.verdict is None else "verified"

    def overdue(self, today: dt.date) -> bool:
        return self.verdict is None and self.verify_on < today


class _FixFile(msgspec.Struct):
    fixes: list[FixRecord] = []


# --- the book of fixes --------------------------------------------------------------------


class FixBook:
    """Fix records in ``<data_dir>/review/fixes.json``. Changes are read-modify-write under an
    exclusive lock on ``fixes.lock`` (threads and processes: the server's job and API, and the
    CLI), and the file is replaced atomically, so readers never need the lock."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "review" / FIXES_FILE
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        private_dir(self.path.parent)
        with self._lock:
            fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def all(self) -> list[FixRecord]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            return msgspec.json.decode(data, type=_FixFile).fixes
        except msgspec.DecodeError as error:  # names the field, never a value
            raise FixError(f"{self.path} is damaged: {error}") from None

    def get(self, fix_id: str) -> FixRecord:
        found = next((fix for fix in self.all() if fix.fix_id == fix_id), None)
        if found is None:
            raise FixError(
                "no fix with that id" if not _FIX_ID.fullmatch(fix_id) else f"no fix {fix_id}"
            )
        return found

    def next_id(self) -> str:
        """The id the next ``add`` gives (for an audit record written before the change)."""
        return f"fix-{len(self.all()) + 1:04d}"

    def open_fixes(self) -> list[FixRecord]:
        return [fix for fix in self.all() if fix.verdict is None]

    def due(self, today: dt.date) -> list[FixRecord]:
        """Open fixes whose verification day has come."""
        return [fix for fix in self.open_fixes() if fix.verify_on <= today]

    def add(self, draft: FixRecord) -> FixRecord:
        """Record ``draft`` under the next free id (its own id is ignored)."""
        check_fix(draft)
        with self._locked():
            fixes = self.all()
            record = msgspec.structs.replace(draft, fix_id=self.next_id())
            self._save([*fixes, record])
        return record

    def record_verdict(self, fix_id: str, verdict: FixVerdict) -> FixRecord:
        with self._locked():
            fixes = self.all()
            updated = [
                msgspec.structs.replace(fix, verdict=verdict) if fix.fix_id == fix_id else fix
                for fix in fixes
            ]
            if updated == fixes:
                raise FixError(f"no fix {fix_id}" if _FIX_ID.fullmatch(fix_id) else "no such fix")
            self._save(updated)
        return next(fix for fix in updated if fix.fix_id == fix_id)

    def _save(self, fixes: Sequence[FixRecord]) -> None:
        replace_private_file(
            self.path, msgspec.json.format(msgspec.json.encode(_FixFile(list(fixes))))
        )


def check_fix(fix: FixRecord) -> None:
    """Refuse a record that cannot be verified or that holds personal data."""
    for what, text in (
        ("title", fix.title),
        ("problem", fix.problem),
        ("hypothesis", fix.hypothesis),
    ):
        finding = detect(text)
        if finding is not None:
            raise FixError(f"the {what} looks like it holds personal data ({finding}): reword it")
    if (fix.change.ui_version is None) == (fix.change.flag is None):
        raise FixError("a fix ships either a ui_version or a flag (one of the two)")
    if fix.verify_on <= fix.change.shipped_on:
        raise FixError("the verification day must come after the day the change shipped")
    if not fix.expectations:
        raise FixError("a fix names at least one metric it should move")


# --- verification -------------------------------------------------------------------------


def windows(fix: FixRecord) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
    """(before, after), each (first day, last day), of equal length: the days from shipping to
    the day before verification, and as many days before shipping."""
    days = (fix.verify_on - fix.change.shipped_on).days
    after = (fix.change.shipped_on, fix.verify_on - dt.timedelta(days=1))
    before = (
        fix.change.shipped_on - dt.timedelta(days=days),
        fix.change.shipped_on - dt.timedelta(days=1),
    )
    return before, after


def compare_params(fix: FixRecord) -> dict[str, str]:
    """The compare report's parameters that verify ``fix`` (what ``/api/v1/reports/compare``
    would be asked, so anyone can reproduce a verdict)."""
    (b_from, b_to), (a_from, a_to) = windows(fix)
    params = {"scenario": fix.scenario, "env": fix.environment}
    if fix.change.flag is not None:
        flag = fix.change.flag
        params |= {
            "from": a_from.isoformat(),
            "to": a_to.isoformat(),
            "a.flag": f"!{flag}",
            "a.label": f"{flag} off",
            "b.flag": flag,
            "b.label": f"{flag} on",
        }
        return params
    assert fix.change.ui_version is not None
    return params | {
        "a.from": b_from.isoformat(),
        "a.to": b_to.isoformat(),
        "a.label": "before",
        "b.from": a_from.isoformat(),
        "b.to": a_to.isoformat(),
        "b.label": fix.change.ui_version,
        "b.ui_version": fix.change.ui_version,
    }


def verify_fix(
    store: EventStore, plan: TrackingPlan, fix: FixRecord, now: dt.datetime, k: int = 5
) -> FixVerdict:
    result: CompareResult = run_report(
        store, plan, "compare", compare_params(fix), min_group_size=k
    ).data
    evidence = [_evidence(result, expectation) for expectation in fix.expectations]
    (b_from, b_to), (a_from, a_to) = windows(fix)
    if fix.change.flag is not None:
        b_from, b_to = a_from, a_to  # both arms cover the same days
    return FixVerdict(
        outcome=_outcome(evidence),
        checked_at=now,
        before_from=b_from,
        before_to=b_to,
        after_from=a_from,
        after_to=a_to,
        sessions_before=result.a.started,
        sessions_after=result.b.started,
        evidence=evidence,
    )


def _evidence(result: CompareResult, expectation: Expectation) -> MetricEvidence:
    metric = result.metric(expectation.metric, expectation.subject)
    base = MetricEvidence(
        metric=expectation.metric,
        subject=expectation.subject,
        expected=expectation.direction,
        target=expectation.target,
        verdict="no data",
        met=False,
    )
    if metric is None or metric.hidden or metric.diff is None:
        return base
    return msgspec.structs.replace(
        base,
        before=metric.a,
        after=metric.b,
        diff=metric.diff,
        ci_low=metric.ci_low,
        ci_high=metric.ci_high,
        p_adjusted=metric.p_adjusted,
        verdict=metric.verdict,
        met=_met(metric, expectation),
    )


def _met(metric: MetricComparison, expectation: Expectation) -> bool:
    """Significant, the expected way, and as far as the target (when one was set)."""
    moved = metric.diff or 0.0
    expected_way = moved < 0 if expectation.direction == "decrease" else moved > 0
    significant = metric.verdict in (IMPROVED, REGRESSED)
    if not (significant and expected_way):
        return False
    if expectation.target is None or not metric.a:
        return True
    relative = moved / metric.a
    return (
        relative <= expectation.target
        if expectation.direction == "decrease"
        else (relative >= expectation.target)
    )


def _outcome(evidence: Sequence[MetricEvidence]) -> FixOutcome:
    if any(e.verdict != "no data" and _worse(e) for e in evidence):
        return "regressed"
    if evidence and all(e.met for e in evidence):
        return "improved"
    return "no significant change"


def _worse(evidence: MetricEvidence) -> bool:
    """Significantly the wrong way."""
    if evidence.verdict not in (IMPROVED, REGRESSED) or evidence.diff is None:
        return False
    return evidence.diff > 0 if evidence.expected == "decrease" else evidence.diff < 0


# --- the job ------------------------------------------------------------------------------


class FixJob:
    """Verifies every open fix whose day has come, once the local time passes
    ``fix_check_time``: stores the verdict, audits it and tells the owner team."""

    name = "fixes"

    def __init__(
        self,
        book: FixBook,
        store: EventStore,
        plan: TrackingPlan,
        *,
        zone: dt.tzinfo,
        check_time: dt.time,
        notifier: Notifier,
        audit: AuditLog,
    ) -> None:
        self.book = book
        self.store = store
        self.plan = plan
        self.zone = zone
        self.check_time = check_time
        self.notifier = notifier
        self.audit = audit

    def _today(self, now: dt.datetime) -> dt.date | None:
        """The local day whose fixes may be checked at ``now`` (None before the check time)."""
        local = now.astimezone(self.zone)
        return local.date() if local.time() >= self.check_time else None

    def due(self, now: dt.datetime) -> bool:
        today = self._today(now)
        return today is not None and bool(self.book.due(today))

    def run(self, now: dt.datetime) -> None:
        today = self._today(now)
        if today is None:
            return
        for fix in self.book.due(today):
            verdict = verify_fix(self.store, self.plan, fix, now)
            # Audited before it is stored: a verdict nobody can trace is not kept.
            detail = AuditDetail(target=fix.fix_id, reason=verdict.outcome.replace(" ", "_"))
            self.audit.record(Actor.system(), AuditAction.FIX_VERIFY, Outcome.OK, detail)
            verified = self.book.record_verdict(fix.fix_id, verdict)
            self.notifier.notify(verified.owner, verdict_message(verified))


def verdict_message(fix: FixRecord) -> Message:
    assert fix.verdict is not None
    verdict = fix.verdict
    lines = [
        f"{fix.fix_id} ({fix.title}): {verdict.outcome}.",
        f"Change: {fix.change.describe()}. Problem: {fix.problem}.",
        (
            f"Compared {verdict.before_from} to {verdict.before_to} "
            f"({_sessions(verdict.sessions_before)}) with {verdict.after_from} to "
            f"{verdict.after_to} ({_sessions(verdict.sessions_after)})."
        ),
    ]
    lines += [f"- {_evidence_line(e)}" for e in verdict.evidence]
    text = "\n".join(lines)
    return Message(
        key=f"fix:{fix.fix_id}:verified",
        subject=f"stumble: {fix.fix_id} verified, {verdict.outcome}",
        text=text,
        markdown=text.replace(f"{fix.fix_id} ({fix.title})", f"**{fix.fix_id}** ({fix.title})", 1),
        data={
            "fix_id": fix.fix_id,
            "outcome": verdict.outcome,
            "scenario": fix.scenario,
            "metrics": [
                {
                    "metric": e.metric,
                    "subject": e.subject,
                    "before": e.before,
                    "after": e.after,
                    "diff": e.diff,
                    "ci_low": e.ci_low,
                    "ci_high": e.ci_high,
                    "met": e.met,
                }
                for e in verdict.evidence
            ],
        },
    )


def _sessions(count: int | None) -> str:
    return "fewer than k sessions" if count is None else f"{count:,} sessions"


def _evidence_line(evidence: MetricEvidence) -> str:
    what = f"{evidence.metric} of {evidence.subject}"
    if evidence.diff is None:
        return f"{what}: no data (fewer than k sessions)"
    fmt = _duration if evidence.metric in DURATION_METRICS else _share
    interval = f"simultaneous interval {fmt(evidence.ci_low)} to {fmt(evidence.ci_high)}"
    aim = "" if evidence.target is None else f", target {evidence.target:+.0%}"
    return (
        f"{what}: {fmt(evidence.before)} -> {fmt(evidence.after)} ({fmt(evidence.diff)}, "
        f"{interval}; {evidence.verdict}; expected {evidence.expected}{aim}: "
        f"{'met' if evidence.met else 'not met'})"
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _duration(value: float | None) -> str:
    return "-" if value is None else f"{value / 1000:.1f} s"


# --- from a problem to a fix --------------------------------------------------------------

_SUGGESTIONS: Final = (
    (
        "field_error",
        re.compile(r"(?P<field>\S+) \((?P<type>\S+)\) on (?P<form>\S+) step (?P<step>[0-9]+)"),
        "field_error_share:{form} step {step} {field} {type}=-20%",
    ),
    ("drop_off", re.compile(r"\S+ -> (?P<label>\S+) in \S+"), "step_conversion:{label}=+"),
    ("slow_step", re.compile(r"time to (?P<label>\S+) in \S+"), "step_p95:{label}=-20%"),
    (
        "regression",
        re.compile(r"(?P<metric>(?:step_)?conversion) of (?P<subject>.+) after \S+"),
        "{metric}:{subject}=+",
    ),
    (
        "regression",
        re.compile(r"(?P<metric>\S+) of (?P<subject>.+) after \S+"),
        "{metric}:{subject}=-",
    ),
)


def suggested_expectation(kind: str, subject: str, plan: TrackingPlan, scenario: str | None) -> str:
    """The compare metric a fix for this problem should move, written as ``--expect`` takes it
    (empty when the problem has no such metric: slow operations, error rates)."""
    if kind == "conversion" and scenario in plan.scenarios:
        steps = plan.scenarios[scenario].steps
        return f"conversion:{steps[0].label} -> {steps[-1].label}=+"
    for problem_kind, pattern, template in _SUGGESTIONS:
        match = pattern.fullmatch(subject) if problem_kind == kind else None
        if match is not None:
            return template.format(**match.groupdict())
    return ""
