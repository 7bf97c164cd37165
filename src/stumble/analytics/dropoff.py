"""What sessions that dropped off at a funnel step did last (back, cancel, close, an error...).

For each session whose counted attempt stopped short of the last step, the last event of the
session after the step it reached and inside that attempt's window (vitals aside: the browser
sends them, the person does not) names what it did: a navigation (``back``, ``cancel``,
``close``, ``retry``, ``reopen``), ``error``, ``field_error``, ``form_failed``, ``screen_view``
(went to another screen), ``action``, ``operation``, ``custom``; ``idle`` when nothing followed.
Counted for the total only, per step, with small-cell suppression: the actions of one step add
up to its drop-off, so a hidden action is protected by a complement like any breakdown.
"""

from __future__ import annotations

from typing import Final

import msgspec

from stumble.analytics.common import Suppressor, fetch
from stumble.analytics.queries import FunnelQuery
from stumble.analytics.sql import Sql, SqlDialect, render, scope_filter
from stumble.storage.base import EventStore

IDLE: Final = "idle"
ACTION_LABEL: Final = (
    "CASE kind WHEN 'navigation' THEN nav WHEN 'form_submit' THEN "
    "CASE WHEN status = 'fail' THEN 'form_failed' ELSE 'form_submit' END "
    "WHEN 'operation_start' THEN 'operation' WHEN 'operation_step' THEN 'operation' "
    "WHEN 'operation_end' THEN 'operation' ELSE kind END"
)


class LastAction(msgspec.Struct, frozen=True, kw_only=True):
    action: str
    hidden: bool = False
    sessions: int | None = None
    share: float | None = None
    """Of the sessions that stopped at this step."""


class StepLastActions(msgspec.Struct, frozen=True, kw_only=True):
    """Sessions that reached ``step`` and went no further, by what they did last."""

    step: str
    stopped: int
    actions: list[LastAction]


def stopped_ctes(query: FunnelQuery, dialect: SqlDialect) -> Sql:
    """CTEs to follow ``chain`` (``funnels.chain_sql``), ending in ``last_action``: one row per
    session whose counted attempt stopped short of the last step, with its group and weight,
    the furthest step ``k`` it reached and what it did last (``idle``: nothing followed)."""
    count = len(query.scenario.steps)
    furthest = " ".join(f"WHEN t{i} IS NOT NULL THEN {i}" for i in reversed(range(count)))
    reached_at = "coalesce(" + ", ".join(f"t{i}" for i in reversed(range(count))) + ")"
    return render(
        ", stopped AS (SELECT session_id, grp, weight, CASE {furthest} END AS k, "
        "{reached_at} AS at, {deadline} AS until FROM chain WHERE t{last} IS NULL), "
        "after AS (SELECT s.session_id, s.k, {latest} AS action FROM stopped AS s "
        "JOIN (SELECT {sid} AS session_id, ts, {label} AS action FROM events WHERE {scope} "
        "AND kind <> 'vital') AS v ON v.session_id = s.session_id AND v.ts > s.at "
        "AND v.ts <= s.until GROUP BY s.session_id, s.k), "
        "last_action AS (SELECT s.session_id, s.grp, s.weight, s.k, "
        "coalesce(a.action, '{idle}') AS action FROM stopped AS s "
        "LEFT JOIN after AS a USING (session_id))",
        furthest=furthest,
        reached_at=reached_at,
        deadline=dialect.plus_ms("t0", query.scenario.window_ms),
        last=str(count - 1),
        latest=dialect.arg_max("v.action", "v.ts"),
        sid=dialect.session_key("session_id"),
        label=ACTION_LABEL,
        scope=scope_filter(query.scope, dialect),
        idle=IDLE,
    )


def last_actions_sql(chain: Sql, query: FunnelQuery, dialect: SqlDialect) -> Sql:
    """``chain`` (from ``funnels.chain_sql``) + per stopped step and last action: sessions."""
    counted = Sql(" SELECT k, action, count(*) AS sessions FROM last_action GROUP BY ALL")
    return chain + stopped_ctes(query, dialect) + counted


StoppedCounts = dict[int, dict[str, int]]
"""Per furthest step reached, sessions per last action."""


def last_actions(
    store: EventStore, chain: Sql, query: FunnelQuery, dialect: SqlDialect, k: int
) -> list[StepLastActions]:
    """Per step some session stopped at, its last actions, most frequent first."""
    counts: StoppedCounts = {}
    for row in fetch(store, last_actions_sql(chain, query, dialect)):
        counts.setdefault(int(row["k"]), {})[str(row["action"])] = int(row["sessions"])
    return step_last_actions(counts, query, k)


def step_last_actions(counts: StoppedCounts, query: FunnelQuery, k: int) -> list[StepLastActions]:
    """The counts as steps and actions, with small-cell suppression."""
    suppressor = Suppressor(k)
    tickets = {
        (step, action): suppressor.add(("last", step), action, n)
        for step, actions in counts.items()
        for action, n in actions.items()
    }
    totals = {
        step: suppressor.add(("last", step), None, sum(actions.values()))
        for step, actions in counts.items()
    }
    suppressor.decide()
    labels = [s.label for s in query.scenario.steps]
    return [
        StepLastActions(
            step=labels[step],
            stopped=sum(actions.values()),
            actions=[
                _action(action, n, actions, suppressor.is_hidden(tickets[step, action]))
                for action, n in sorted(actions.items(), key=lambda item: (-item[1], item[0]))
            ],
        )
        for step, actions in sorted(counts.items())
        if not suppressor.is_hidden(totals[step])
    ]


def _action(action: str, sessions: int, actions: dict[str, int], hidden: bool) -> LastAction:
    if hidden:
        return LastAction(action=action, hidden=True)
    return LastAction(action=action, sessions=sessions, share=sessions / sum(actions.values()))
