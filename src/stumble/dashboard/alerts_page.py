"""The alerts page: every rule's state now, and the history of transitions, notifications
and silences. The web layer reads the states and history (``review.alerts.current_states``,
``read_history``) and the active silences, and passes them here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from stumble.analytics.results import Column, Table
from stumble.dashboard.model import Callout, Page, Section, TableBlock, Tone
from stumble.review.alerts import AlertHistory, HistoryEntry, RuleState, Silence, shown

HISTORY_ROWS = 200


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(ms: int, now: dt.datetime) -> str:
    seconds = max(0, round(now.timestamp() - ms / 1000))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86_400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86_400} days"


def alerts_page(
    states: Sequence[RuleState],
    history: AlertHistory,
    now: dt.datetime,
    silences: Mapping[str, Silence] | None = None,
) -> Page:
    """``states`` as ``current_states`` orders them (firing first); ``history`` oldest first
    (its latest ``HISTORY_ROWS`` entries are shown, newest first)."""
    silenced = silences or {}
    return Page(
        slug="alerts",
        question="What is breaking now, and what fired lately?",
        owner="each rule's owner team",
        sections=[
            Section("Now", [_summary(states, silenced)]),
            Section(
                "Rules",
                [TableBlock("rules", _rules_table(states, silenced, now))],
                intro=(
                    "Rules come from the tracking plan: its thresholds, and error rate, "
                    "field-error share and p95 times against the previous 24 h and between a "
                    "rollout flag's arms. A rule fires when the change is significant after "
                    "adjusting for every rule tested together, with enough sessions on each "
                    "side, for longer than the pending period."
                ),
            ),
            Section("History", [TableBlock("history", _history_table(history))]),
        ],
        notes=(
            "rates are shares of sessions; times are p95 in seconds",
            "the interval is at the family-adjusted level (alpha / rules tested)",
        ),
        uses_filters=False,
    )


def _summary(states: Sequence[RuleState], silenced: Mapping[str, Silence]) -> Callout:
    if not states:
        return Callout("No rule has been evaluated yet: the server evaluates them on a schedule.")
    counts = {name: sum(1 for s in states if s.state == name) for name in ("firing", "pending")}
    text = (
        f"{counts['firing']} firing, {counts['pending']} pending, "
        f"{len(states) - counts['firing'] - counts['pending']} quiet of {len(states)} rules"
    )
    if silenced:
        text += f"; {len(silenced)} silenced"
    tone: Tone = "bad" if counts["firing"] else "warning" if counts["pending"] else "good"
    return Callout(text + ".", tone)


def _rules_table(
    states: Sequence[RuleState], silenced: Mapping[str, Silence], now: dt.datetime
) -> Table:
    rows = []
    for state in states:
        last = state.last
        no_data = last is not None and last.status == "no_data"
        silence = silenced.get(state.rule)
        rows.append(
            (
                state.state + (f" (silenced until {_when(silence.until_ms)})" if silence else ""),
                _ago(state.since_ms, now),
                state.rule,
                state.owner,
                "too few sessions" if no_data or last is None else shown(state.metric, last.value),
                shown(state.metric, state.threshold if last is None else last.reference),
                _interval(state, last.low if last else None, last.high if last else None),
                last.sessions if last else None,
                None if last is None else last.p_value,
            )
        )
    return Table(
        "Rules, firing first",
        (
            Column("state"),
            Column("for"),
            Column("rule"),
            Column("owner"),
            Column("value"),
            Column("threshold or before"),
            Column("interval"),
            Column("sessions", "int"),
            Column("p", "p"),
        ),
        rows,
        "threshold rules: the value's interval (a p95: the share slower than the limit); "
        "change rules: the difference's",
    )


def _interval(state: RuleState, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    if state.against == "threshold":
        return f"{low * 100:.1f}% to {high * 100:.1f}%"
    return f"{low * 100:+.1f} to {high * 100:+.1f} pp"


_WHAT = {
    "transition": "moved",
    "evaluation": "breaching",
    "notified": "notified",
    "suppressed": "not notified",
    "delivery_failed": "delivery failed",
    "silenced": "silenced",
    "unsilenced": "unsilenced",
}


def _history_table(history: AlertHistory) -> Table:
    shown_entries = [e for e in history.entries if e.event != "evaluation"][-HISTORY_ROWS:]
    rows = [_history_row(entry) for entry in reversed(shown_entries)]
    return Table(
        "Transitions, notifications and silences, newest first",
        (
            Column("time"),
            Column("rule"),
            Column("what"),
            Column("detail"),
            Column("sessions", "int"),
            Column("p", "p"),
        ),
        rows,
        f"the latest {HISTORY_ROWS} entries; breaching evaluations are kept in the history file",
    )


def _history_row(entry: HistoryEntry) -> tuple[object, ...]:
    ev = entry.evaluation
    if entry.event == "transition":
        detail = f"{entry.from_state} -> {entry.to_state}"
    elif entry.event == "silenced":
        detail = f"until {_when(entry.until_ms)}"
    elif entry.event in ("notified", "delivery_failed"):
        detail = f"{entry.reason}: {entry.sent or 0} sent, {entry.failed or 0} failed"
    else:
        detail = entry.reason or ""
    return (
        _when(entry.at_ms),
        entry.rule,
        _WHAT[entry.event],
        detail,
        ev.sessions if ev else None,
        ev.p_value if ev else None,
    )
