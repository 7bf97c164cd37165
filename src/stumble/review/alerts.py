"""Alerts that do not cry wolf: the rules of ``alert_rules`` evaluated on a schedule, each
with Grafana's states, notified on transitions only, with a cool-down and silences.

States per rule: ``normal`` -> ``pending`` (breaching for less than ``alert_pending_s``) ->
``firing`` (breaching for at least that long) -> ``resolved`` (no longer breaching) ->
``normal``. A rule without enough sessions keeps its state (no data is no news: a quiet
weekend does not resolve a firing alert).

Notifications: a ``firing`` transition notifies the owner team unless the rule is silenced or
a firing notification went out for it less than ``alert_cooldown_s`` ago (a flapping rule pages
once per cool-down); a ``resolved`` transition notifies only when its firing was notified. A
notification is first written to the rule's outbox in the state file, then sent, then
cleared: a crash in between resends it with the same ``Message.key`` after a restart, and the
deliverer sends a (key, recipient) pair once, so nobody hears of a transition twice.

Files under ``<data_dir>/review/`` (0700; files 0600): ``alerts.json`` (the state per rule,
replaced atomically), ``alerts-history.jsonl`` (transitions, breaching evaluations,
notifications and silences; fsynced lines) and ``alert-silences.json``. Everything in them is
an identifier, a count or a number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec

from stumble.access.audit import Actor, AuditAction, AuditDetail, AuditLog, Outcome
from stumble.analytics.queries import DEFAULT_ENVIRONMENT
from stumble.config import Settings
from stumble.files import append_private_lines, private_dir, read_lines, replace_private_file
from stumble.plan.model import TrackingPlan
from stumble.review.alert_rules import (
    Against,
    Evaluated,
    Evaluation,
    Measurer,
    Metric,
    Rule,
    evaluate,
)
from stumble.review.messages import DeliveryReport, Message, Notifier
from stumble.storage.base import EventStore

log = logging.getLogger("stumble.review")
State = Literal["normal", "pending", "firing", "resolved"]
Notified = Literal["firing", "resolved"]
HistoryEvent = Literal[
    "transition", "evaluation", "notified", "suppressed", "delivery_failed", "silenced",
    "unsilenced",
]  # fmt: skip

REVIEW_DIR: Final = "review"
STATE_FILE: Final = "alerts.json"
HISTORY_FILE: Final = "alerts-history.jsonl"
SILENCES_FILE: Final = "alert-silences.json"
LOCK_FILE: Final = "alerts.lock"
OUTBOX_TTL_MS: Final = 24 * 3600 * 1000
"""A notification not delivered within a day is dropped (recorded as ``undeliverable``)."""


def now_ms_of(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


# --- records -------------------------------------------------------------------------------


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """A notification decided but not yet delivered to every recipient."""

    state: Notified
    at_ms: int
    evaluation: Evaluation


class RuleState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A rule's current state, what it last measured, and its notification bookkeeping."""

    rule: str
    kind: str
    metric: Metric
    against: Against
    scenario: str
    subject: str
    owner: str
    threshold: float | None = None
    state: State = "normal"
    since_ms: int = 0
    """When the current state began."""
    breaching_since_ms: int | None = None
    """The first evaluation of the current breaching streak (pending and firing)."""
    last: Evaluation | None = None
    evaluated_ms: int | None = None
    notified_ms: int | None = None
    """The latest firing notification: the cool-down runs from it."""
    episode_notified: bool = False
    """The current (or just resolved) firing was notified, so its resolution will be."""
    outbox: tuple[Outgoing, ...] = ()

    @classmethod
    def new(cls, rule: Rule, now_ms: int) -> RuleState:
        return cls(
            rule=rule.id,
            kind=rule.kind,
            metric=rule.metric,
            against=rule.against,
            scenario=rule.scenario,
            subject=rule.subject,
            owner=rule.owner,
            threshold=rule.threshold,
            since_ms=now_ms,
        )


class StateFile(msgspec.Struct, kw_only=True):
    evaluated_ms: int | None = None
    rules: dict[str, RuleState] = {}


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    rule: str
    until_ms: int
    created_ms: int


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One line of the history: identifiers, states, counts and numbers only."""

    at_ms: int
    rule: str
    event: HistoryEvent
    from_state: State | None = None
    to_state: State | None = None
    reason: str | None = None
    """``silenced``, ``cooldown``, ``no_owner``, ``not_notified``, ``undeliverable``
    (suppressed) or the notified state (``firing``/``resolved``)."""
    evaluation: Evaluation | None = None
    until_ms: int | None = None
    sent: int | None = None
    failed: int | None = None


@dataclass(frozen=True, slots=True)
class AlertHistory:
    """History entries, oldest first."""

    entries: tuple[HistoryEntry, ...]

    def transitions(self) -> list[HistoryEntry]:
        return [e for e in self.entries if e.event == "transition"]

    def of(self, rule: str) -> AlertHistory:
        return AlertHistory(tuple(e for e in self.entries if e.rule == rule))

    def count(self, event: HistoryEvent, *, to_state: State | None = None) -> int:
        return sum(
            1
            for e in self.entries
            if e.event == event and (to_state is None or e.to_state == to_state)
        )


_state_decoder: Final = msgspec.json.Decoder(StateFile)
_silences_decoder: Final = msgspec.json.Decoder(dict[str, Silence])
_entry_decoder: Final = msgspec.json.Decoder(HistoryEntry)
_encoder: Final = msgspec.json.Encoder()


# --- files ---------------------------------------------------------------------------------


class AlertFiles:
    """The alert files of one data directory. Readers never create anything; writers create
    the private ``review`` directory on first write."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / REVIEW_DIR
        self._lock = threading.Lock()

    def read_state(self) -> StateFile:
        try:
            return _state_decoder.decode((self.dir / STATE_FILE).read_bytes())
        except FileNotFoundError:
            return StateFile()

    def write_state(self, state: StateFile) -> None:
        private_dir(self.dir)
        replace_private_file(self.dir / STATE_FILE, _encoder.encode(state))

    def append_history(self, entries: Sequence[HistoryEntry]) -> None:
        if entries:
            private_dir(self.dir)
            append_private_lines(
                self.dir / HISTORY_FILE, (_encoder.encode(e) + b"\n" for e in entries)
            )

    def read_history(
        self, *, rule: str | None = None, since_ms: int | None = None, limit: int | None = None
    ) -> AlertHistory:
        entries = []
        for line in read_lines(self.dir / HISTORY_FILE):
            try:
                entry = _entry_decoder.decode(line)
            except msgspec.DecodeError:
                continue  # a line this version cannot read is skipped, not fatal
            if (rule is None or entry.rule == rule) and (
                since_ms is None or entry.at_ms >= since_ms
            ):
                entries.append(entry)
        return AlertHistory(tuple(entries[-limit:] if limit else entries))

    def read_silences(self) -> dict[str, Silence]:
        try:
            return _silences_decoder.decode((self.dir / SILENCES_FILE).read_bytes())
        except FileNotFoundError:
            return {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise writers across processes (the server's job, ``stumble alerts silence``)."""
        with self._lock:
            private_dir(self.dir)
            with (self.dir / LOCK_FILE).open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def write_silences(self, silences: dict[str, Silence]) -> None:
        private_dir(self.dir)
        replace_private_file(self.dir / SILENCES_FILE, _encoder.encode(silences))


def current_states(data_dir: Path) -> list[RuleState]:
    """Every rule's state, firing first, then pending, then by id (for the dashboard)."""
    order = {"firing": 0, "pending": 1, "resolved": 2, "normal": 3}
    states = AlertFiles(data_dir).read_state().rules.values()
    return sorted(states, key=lambda s: (order[s.state], s.rule))


def read_history(
    data_dir: Path, *, rule: str | None = None, since_ms: int | None = None, limit: int | None = 500
) -> AlertHistory:
    """The latest ``limit`` history entries (all when None), oldest first."""
    return AlertFiles(data_dir).read_history(rule=rule, since_ms=since_ms, limit=limit)


def active_silences(data_dir: Path, now: dt.datetime) -> dict[str, Silence]:
    now_ms = now_ms_of(now)
    return {k: s for k, s in AlertFiles(data_dir).read_silences().items() if s.until_ms > now_ms}


def set_silence(
    data_dir: Path,
    rule: str,
    *,
    until: dt.datetime | None,
    now: dt.datetime,
    audit: AuditLog,
    actor: Actor,
) -> Silence | None:
    """Silence ``rule`` until ``until`` (None: lift its silence). Audited first: when the audit
    log cannot be written nothing changes (``AuditUnavailableError``). Returns the silence
    lifted or set."""
    files = AlertFiles(data_dir)
    now_ms = now_ms_of(now)
    with files.locked():
        silences = files.read_silences()
        audit.record(
            actor,
            AuditAction.ALERT_SILENCE,
            Outcome.OK,
            AuditDetail(target=rule, reason="silence" if until else "unsilence"),
        )
        if until is None:
            lifted = silences.pop(rule, None)
            entry = HistoryEntry(at_ms=now_ms, rule=rule, event="unsilenced")
        else:
            lifted = silences[rule] = Silence(
                rule=rule, until_ms=now_ms_of(until), created_ms=now_ms
            )
            entry = HistoryEntry(
                at_ms=now_ms, rule=rule, event="silenced", until_ms=lifted.until_ms
            )
        # expired silences are dropped on every change, so the file stays small
        files.write_silences({k: s for k, s in silences.items() if s.until_ms > now_ms})
        files.append_history([entry])
    return lifted


# --- the state machine ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    pending_ms: int
    cooldown_ms: int

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(round(settings.alert_pending_s * 1000), round(settings.alert_cooldown_s * 1000))


@dataclass(frozen=True, slots=True)
class Step:
    """What one evaluation did to one rule."""

    state: RuleState
    history: tuple[HistoryEntry, ...]
    outgoing: Outgoing | None = None


def advance(
    state: RuleState, evaluation: Evaluation, now_ms: int, policy: Policy, silenced: bool
) -> Step:
    """The rule's next state after ``evaluation``, its history lines and what to notify."""
    checked = msgspec.structs.replace(state, last=evaluation, evaluated_ms=now_ms)
    if evaluation.status == "no_data":
        return Step(checked, ())
    breaching = evaluation.status == "breaching"
    new, streak = _next_state(state, breaching, now_ms, policy)
    history: list[HistoryEntry] = []
    if breaching:
        history.append(
            HistoryEntry(at_ms=now_ms, rule=state.rule, event="evaluation", evaluation=evaluation)
        )
    if new == state.state:
        return Step(msgspec.structs.replace(checked, breaching_since_ms=streak), tuple(history))
    history.append(
        HistoryEntry(
            at_ms=now_ms,
            rule=state.rule,
            event="transition",
            from_state=state.state,
            to_state=new,
            evaluation=evaluation,
        )
    )
    moved = msgspec.structs.replace(checked, state=new, since_ms=now_ms, breaching_since_ms=streak)
    if new == "firing":
        return _on_firing(moved, evaluation, now_ms, policy, silenced=silenced, history=history)
    if new == "resolved":
        return _on_resolved(moved, evaluation, now_ms, silenced, history)
    return Step(moved, tuple(history))


def _next_state(
    state: RuleState, breaching: bool, now_ms: int, policy: Policy
) -> tuple[State, int | None]:
    if not breaching:
        return ("resolved" if state.state == "firing" else "normal"), None
    ongoing = state.state in ("pending", "firing") and state.breaching_since_ms is not None
    streak = (
        state.breaching_since_ms if ongoing and state.breaching_since_ms is not None else now_ms
    )
    if state.state == "firing" or now_ms - streak >= policy.pending_ms:
        return "firing", streak
    return "pending", streak


def _on_firing(
    state: RuleState,
    evaluation: Evaluation,
    now_ms: int,
    policy: Policy,
    *,
    silenced: bool,
    history: list[HistoryEntry],
) -> Step:
    cooling = state.notified_ms is not None and now_ms - state.notified_ms < policy.cooldown_ms
    reason = (
        "silenced" if silenced else "cooldown" if cooling else None if state.owner else "no_owner"
    )
    if reason is not None:
        history.append(_suppressed(state, now_ms, reason))
        return Step(msgspec.structs.replace(state, episode_notified=False), tuple(history))
    outgoing = Outgoing(state="firing", at_ms=now_ms, evaluation=evaluation)
    notified = msgspec.structs.replace(
        state, notified_ms=now_ms, episode_notified=True, outbox=(*state.outbox, outgoing)
    )
    return Step(notified, tuple(history), outgoing)


def _on_resolved(
    state: RuleState,
    evaluation: Evaluation,
    now_ms: int,
    silenced: bool,
    history: list[HistoryEntry],
) -> Step:
    if silenced or not state.episode_notified:
        history.append(_suppressed(state, now_ms, "silenced" if silenced else "not_notified"))
        return Step(msgspec.structs.replace(state, episode_notified=False), tuple(history))
    outgoing = Outgoing(state="resolved", at_ms=now_ms, evaluation=evaluation)
    resolved = msgspec.structs.replace(
        state, episode_notified=False, outbox=(*state.outbox, outgoing)
    )
    return Step(resolved, tuple(history), outgoing)


def _suppressed(state: RuleState, now_ms: int, reason: str) -> HistoryEntry:
    return HistoryEntry(at_ms=now_ms, rule=state.rule, event="suppressed", reason=reason)


# --- messages ------------------------------------------------------------------------------


def message_key(rule: str, state: Notified, at_ms: int) -> str:
    """``alert:<rule>:<state>:<transition time>``, the time as ``20260304T061505Z``: epoch
    milliseconds would be a 13-digit run, which the audit log refuses as possible personal
    data (the deliverer audits each send under its key). Seconds are enough: a rule is
    evaluated at most every 10 s (``alert_interval_s``), so it never enters one state twice
    within a second."""
    return f"alert:{rule}:{state}:{transition_stamp(at_ms)}"


def transition_stamp(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms // 1000, dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def alert_message(state: RuleState, outgoing: Outgoing) -> Message:
    """The notification of one transition: numbers for people, identifiers for machines."""
    ev = outgoing.evaluation
    headline = _headline(state, outgoing)
    lines = [headline, "", *_evidence(state, ev), "", f"Rule: {state.rule} (owner {state.owner})"]
    when = dt.datetime.fromtimestamp(outgoing.at_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Since: {when}")
    text = "\n".join(lines) + "\n"
    markdown = f"**{headline}**\n\n" + "\n".join(f"- {line}" for line in lines[2:] if line) + "\n"
    data: dict[str, object] = {
        "rule": state.rule,
        "kind": state.kind,
        "scenario": state.scenario,
        "subject": state.subject,
        "owner": state.owner,
        "state": outgoing.state,
        "at_ms": outgoing.at_ms,
        **{
            name: getattr(ev, name)
            for name in (
                "value", "reference", "low", "high", "confidence", "p_value", "sessions",
                "reference_sessions", "tested",
            )
            if getattr(ev, name) is not None
        },
    }  # fmt: skip
    return Message(
        key=message_key(state.rule, outgoing.state, outgoing.at_ms),
        subject=f"[stumble] {headline}",
        text=text,
        markdown=markdown,
        data=data,
    )


def shown(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric in ("step_p95", "operation_p95"):
        return f"{value / 1000:.1f} s"
    return f"{value * 100:.1f}%"


_NAMES: Final[dict[str, str]] = {
    "conversion": "conversion",
    "drop_off": "drop-off before",
    "field_error_share": "field-error share",
    "step_p95": "p95 time to",
    "operation_p95": "p95 of operation",
    "error_rate": "sessions with an error",
}


def describe(state: RuleState) -> str:
    """``p95 of operation search in search`` and the like."""
    parts = state.subject.split("/")
    if state.against == "flag":
        parts = parts[:-1]
    what = _NAMES[state.metric]
    if state.metric in ("error_rate", "conversion"):
        return f"{what} in {state.scenario}"
    if state.metric == "field_error_share" and len(parts) >= 3:
        *form, step, field_id, error = parts
        where = f" of {form[0]}" if form else ""
        return f"{what} {field_id} ({error}) at step {step}{where} in {state.scenario}"
    return f"{what} {parts[0]} in {state.scenario}"


def flag_of(state: RuleState) -> str | None:
    return state.subject.rsplit("/", 1)[-1] if state.against == "flag" else None


def _headline(state: RuleState, outgoing: Outgoing) -> str:
    word = "FIRING" if outgoing.state == "firing" else "RESOLVED"
    ev = outgoing.evaluation
    value = shown(state.metric, ev.value)
    if state.against == "threshold":
        limit = "at least" if state.metric == "conversion" else "at most"
        threshold = shown(state.metric, state.threshold)
        return f"{word}: {describe(state)} {value} (plan: {limit} {threshold})"
    base = "previous 24 h" if state.against == "previous" else f"flag {flag_of(state)} off"
    reference = shown(state.metric, ev.reference)
    return f"{word}: {describe(state)} {value} (against {reference}, {base})"


def _evidence(state: RuleState, ev: Evaluation) -> list[str]:
    level = f"{(ev.confidence or 0.0) * 100:.3g}%"
    p = f"p = {ev.p_value:.2g}" if ev.p_value is not None else "p n/a"
    family = f"Bonferroni over {ev.tested} rules"
    if state.against == "threshold":
        lines = [
            (
                f"Value: {shown(state.metric, ev.value)} over the last 24 h, {ev.sessions} "
                f"sessions; threshold {shown(state.metric, state.threshold)}."
            )
        ]
        if state.metric in ("step_p95", "operation_p95"):
            lines.append(
                f"Sessions slower than the threshold: {level} interval "
                f"{_pct(ev.low)} to {_pct(ev.high)} (5% allowed); {p} ({family})."
            )
        else:
            lines.append(f"{level} interval {_pct(ev.low)} to {_pct(ev.high)}; {p} ({family}).")
        return lines
    flag = flag_of(state)
    now_side, then_side = (
        ("last 24 h", "24 h before") if flag is None else (f"flag {flag} on (last 24 h)", "off")
    )
    tested_as = (
        "share above the pooled p95" if state.metric in ("step_p95", "operation_p95") else "share"
    )
    return [
        (
            f"{now_side}: {shown(state.metric, ev.value)} ({ev.sessions} sessions); "
            f"{then_side}: {shown(state.metric, ev.reference)} ({ev.reference_sessions} sessions)."
        ),
        (
            f"Difference in {tested_as}: {level} interval {_pp(ev.low)} to {_pp(ev.high)}; "
            f"{p} ({family})."
        ),
    ]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f} pp"


# --- the job -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    """What an evaluation would do to one rule (``stumble alerts test``)."""

    rule: Rule
    evaluation: Evaluation
    before: State
    after: State
    notifies: bool


class AlertJob:
    """Evaluates every rule each ``alert_interval_s`` and notifies transitions (the scheduler's
    ``Job``). Idempotent: running it twice at one moment changes nothing the second time, and
    a notification interrupted by a crash is resent under its key on the next run."""

    name = "alerts"

    def __init__(
        self,
        *,
        store: EventStore,
        plan: TrackingPlan,
        settings: Settings,
        notifier: Notifier,
        audit: AuditLog,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        environment: str = DEFAULT_ENVIRONMENT,
        cache_windows: int = 0,
    ) -> None:
        """``cache_windows``: windows kept between evaluations (only a sweep over simulated
        time on a fixed grid reuses them)."""
        self.settings = settings
        self.notifier = notifier
        self.audit = audit
        self.clock = clock
        self.environment = environment
        self.files = AlertFiles(Path(settings.data_dir))
        self.measurer = Measurer(store, plan, cache_size=cache_windows)
        self.policy = Policy.of(settings)

    def due(self, now: dt.datetime) -> bool:
        last = self.files.read_state().evaluated_ms
        return last is None or now_ms_of(now) - last >= self.settings.alert_interval_s * 1000

    def run(self, now: dt.datetime) -> None:
        self.step(now)

    def step(self, now: dt.datetime | None = None) -> Evaluated:
        """Evaluate at ``now`` (the clock's time when None), record, then deliver; what was
        evaluated, for a caller that wants the numbers (tests, sweeps over simulated time)."""
        moment = now or self.clock()
        evaluated = self.evaluate(moment)
        with self.files.locked():
            state = self.files.read_state()
            silences = active_silences(Path(self.settings.data_dir), moment)
            history = self._apply(state, evaluated, now_ms_of(moment), silences)
            state.evaluated_ms = now_ms_of(moment)
            self.files.write_state(state)  # the outbox is on disk before anything is sent
            self.files.append_history(history)
            self.deliver(state, now_ms_of(moment))
        return evaluated

    def evaluate(self, now: dt.datetime) -> Evaluated:
        return evaluate(
            self.measurer,
            now,
            environment=self.environment,
            min_sessions=self.settings.alert_min_sessions,
            alpha=self.settings.alert_alpha,
        )

    def preview(self, now: dt.datetime) -> list[Preview]:
        """What ``run`` would do now, with nothing written and nothing sent."""
        evaluated = self.evaluate(now)
        states = self.files.read_state().rules
        silences = active_silences(Path(self.settings.data_dir), now)
        previews = []
        for rule, ev in zip(evaluated.rules, evaluated.evaluations, strict=True):
            before = states.get(rule.id) or RuleState.new(rule, now_ms_of(now))
            step = advance(before, ev, now_ms_of(now), self.policy, rule.id in silences)
            previews.append(
                Preview(rule, ev, before.state, step.state.state, step.outgoing is not None)
            )
        return previews

    def _apply(
        self, state: StateFile, evaluated: Evaluated, now_ms: int, silences: dict[str, Silence]
    ) -> list[HistoryEntry]:
        history: list[HistoryEntry] = []
        for rule, ev in zip(evaluated.rules, evaluated.evaluations, strict=True):
            before = state.rules.get(rule.id) or RuleState.new(rule, now_ms)
            if before.evaluated_ms == now_ms:
                continue  # this moment was already applied (a second run at the same time)
            step = advance(before, ev, now_ms, self.policy, rule.id in silences)
            state.rules[rule.id] = step.state
            history += step.history
        return history

    def deliver(self, state: StateFile, now_ms: int) -> None:
        """Send every outbox entry; what reached everyone leaves the outbox, the rest is
        tried again next run (the deliverer skips recipients that already have it)."""
        for rule_id, rule_state in list(state.rules.items()):
            if not rule_state.outbox:
                continue
            remaining = []
            history = []
            for outgoing in rule_state.outbox:
                if now_ms - outgoing.at_ms > OUTBOX_TTL_MS:
                    history.append(_suppressed(rule_state, now_ms, "undeliverable"))
                    continue  # a day of failed tries: the channel needs a person, not retries
                report = self._notify(rule_state, outgoing)
                history.append(_delivery_entry(rule_state, outgoing, report, now_ms))
                if report is None or report.failed:
                    remaining.append(outgoing)
            state.rules[rule_id] = msgspec.structs.replace(rule_state, outbox=tuple(remaining))
            self.files.write_state(state)
            self.files.append_history(history)

    def _notify(self, state: RuleState, outgoing: Outgoing) -> DeliveryReport | None:
        """Audit, then send; None when the audit log could not be written (nothing sent)."""
        from stumble.access.audit import AuditUnavailableError  # noqa: PLC0415

        detail = AuditDetail(target=state.rule, reason=outgoing.state)
        try:
            self.audit.record(Actor.system(), AuditAction.ALERT_NOTIFY, Outcome.OK, detail)
        except AuditUnavailableError:
            return None
        try:
            return self.notifier.notify(state.owner, alert_message(state, outgoing))
        except Exception as error:  # noqa: BLE001 - one channel's bug must not stop the others
            # by type only: a message could quote a recipient
            log.warning("alert notification failed: %s", type(error).__name__)
            return None


def _delivery_entry(
    state: RuleState, outgoing: Outgoing, report: DeliveryReport | None, now_ms: int
) -> HistoryEntry:
    if report is None:  # the audit log or the notifier failed: tried again next run
        return HistoryEntry(
            at_ms=now_ms, rule=state.rule, event="delivery_failed", reason=outgoing.state
        )
    event: HistoryEvent = "delivery_failed" if report.failed else "notified"
    return HistoryEntry(
        at_ms=now_ms,
        rule=state.rule,
        event=event,
        reason=outgoing.state,
        sent=len(report.sent) + len(report.already_sent),
        failed=len(report.failed),
    )


__all__ = [
    "AlertFiles",
    "AlertHistory",
    "AlertJob",
    "HistoryEntry",
    "Preview",
    "RuleState",
    "Silence",
    "active_silences",
    "advance",
    "alert_message",
    "current_states",
    "read_history",
    "set_silence",
]
