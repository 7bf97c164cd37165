"""The weekly digest: what the review meeting reads, as typed data, rendered to standalone HTML
(e-mail) and to Markdown (chat), and the job that sends it once a week.

What it holds, for one ISO week and one environment (by default the one the dashboard picks):
the week's top problems with owner team and suggested action; per scenario conversion and p95
against the week before (the overview's tiles, from ``dashboard.pages``); field errors and
failures that are new (present this week, absent or at most half as frequent the week
before); fix records, open ones with their verification day and the verdicts reached in the
week; data-health warnings (counts and reason codes only). Every number comes from the
catalog's suppressed reports, so the digest never describes fewer than k sessions.

Per team: a team's copy lists its own items first, then everyone else's. The review is one
meeting of every owner team, and a problem another team owns (a platform error behind a
service-desk drop-off) is context a team should not have to go looking for.

Charts are the dashboard's Vega-Lite specs, rendered to SVG on the server by
``vl-convert-python`` with a fixed width (a mail client has no container to fit) and no
data URL allowed, and inlined: the HTML has no script and no external asset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import jinja2
from markupsafe import Markup

from stumble.analytics.failures import ErrorCount, FailureResult
from stumble.analytics.field_errors import FieldErrorResult, FieldErrorRow
from stumble.analytics.health import HealthResult
from stumble.analytics.rendering import format_value
from stumble.dashboard import charts
from stumble.dashboard.cache import ResultCache
from stumble.dashboard.context import PageContext, notes_of
from stumble.dashboard.filters import ViewFilters
from stumble.dashboard.inventory import take_inventory
from stumble.dashboard.model import Metric
from stumble.dashboard.pages import NO_OWNER, PROBLEM_KINDS, problem_list, scenario_tiles
from stumble.reports.top_problems import TopProblemsResult
from stumble.review.calendar import Week, review_zone
from stumble.review.messages import Message

if TYPE_CHECKING:
    from stumble.config import Settings
    from stumble.plan.model import TrackingPlan
    from stumble.review.delivery import Deliverer
    from stumble.storage.base import EventStore

log = logging.getLogger("stumble.review")
NEW_GROWTH: Final = 2.0
"""A field error or failure is "new" when last week had none, or at most half the sessions."""
MAX_NEW_ITEMS: Final = 10
VEGA_LITE_VERSION: Final = "6.4"
"""The newest Vega-Lite that vl-convert bundles; the dashboard's browser bundle has 6.5."""
CHART_WIDTH: Final = 560
SPARK_WIDTH: Final = 180
CHART_FONT: Final = "Arial, Helvetica, 'Liberation Sans', sans-serif"
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
RETRY_AFTER: Final = dt.timedelta(minutes=15)
"""After a run with failed recipients, the job waits this long before trying them again."""


# --- the digest as data -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestProblem:
    rank: int
    kind: str
    title: str
    owner: str
    sessions_affected: int
    finding: str
    action: str


@dataclass(frozen=True, slots=True)
class ScenarioWeek:
    scenario: str
    title: str
    owner: str
    conversion: Metric
    p95: Metric
    note: str
    trend: Mapping[str, Any] | None
    """The overview tile's 12-week sparkline spec (None: nothing to draw)."""


@dataclass(frozen=True, slots=True)
class NewFieldError:
    form_id: str
    step: int
    field_id: str
    error_type: str
    owner: str
    sessions: int
    share: float | None
    """Of the sessions that entered the step."""
    sessions_before: int | None
    """Last week's sessions with this error (None: none, or fewer than k)."""


@dataclass(frozen=True, slots=True)
class NewFailure:
    error_kind: str
    subject: str
    """The error type, or a JS fingerprint with its module."""
    owner: str
    sessions: int
    sessions_before: int | None


@dataclass(frozen=True, slots=True)
class FixSummary:
    """What the digest shows of a fix record (``stumble.review.fixes``)."""

    fix_id: str
    title: str
    owner: str
    verify_on: dt.date
    status: str
    """``open`` or ``verified``."""
    verdict: str | None = None
    """improved / no significant change / regressed, once verified."""
    checked_on: dt.date | None = None
    environment: str | None = None
    """Where the fix is measured; None: shown in every environment's digest."""


class FixRecordLike(Protocol):
    """The part of a fix record the digest reads."""

    @property
    def fix_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def verify_on(self) -> dt.date: ...
    @property
    def status(self) -> str: ...
    @property
    def verdict(self) -> object: ...


def fix_summaries(records: Iterable[FixRecordLike]) -> list[FixSummary]:
    summaries = []
    for record in records:
        verdict = record.verdict
        outcome = getattr(verdict, "outcome", None)
        checked = getattr(verdict, "checked_at", None)
        summaries.append(
            FixSummary(
                fix_id=record.fix_id,
                title=record.title,
                owner=record.owner,
                verify_on=record.verify_on,
                status=str(record.status),
                verdict=None if outcome is None else str(outcome),
                checked_on=checked.date() if isinstance(checked, dt.datetime) else None,
                environment=getattr(record, "environment", None),
            )
        )
    return summaries


def load_fixes(data_dir: Path) -> list[FixSummary]:
    """Every fix record in the data directory's fix book, as summaries."""
    from stumble.review.fixes import FixBook  # noqa: PLC0415 - the CLI's import stays light

    return fix_summaries(FixBook(data_dir).all())


@dataclass(frozen=True, slots=True)
class HealthWarning:
    kind: str
    count: int
    text: str


@dataclass(frozen=True, slots=True)
class Digest:
    week: Week
    environment: str
    problems: tuple[DigestProblem, ...]
    problems_found: int
    scenarios: tuple[ScenarioWeek, ...]
    changes: tuple[str, ...]
    """The overview's "what changed" lines: significant conversion changes, p95 ±20%."""
    field_errors: tuple[NewFieldError, ...]
    failures: tuple[NewFailure, ...]
    fixes: tuple[FixSummary, ...]
    """Open fixes (verification day first) and fixes verified during the week."""
    health: tuple[HealthWarning, ...]
    notes: tuple[str, ...]
    team: str | None = None
    """The team this copy is for (its items first); None: everyone's, in rank order."""
    problems_chart: Mapping[str, Any] | None = field(default=None, compare=False)

    def for_team(self, team: str) -> Digest:
        """This digest for ``team``: its own items first, each list otherwise in order."""

        def own_first(items: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(sorted(items, key=lambda item: item.owner != team))

        return dataclasses.replace(
            self,
            team=team,
            problems=own_first(self.problems),
            scenarios=own_first(self.scenarios),
            field_errors=own_first(self.field_errors),
            failures=own_first(self.failures),
            fixes=own_first(self.fixes),
        )

    @property
    def key(self) -> str:
        return digest_key(self.week, self.environment)

    def overdue(self, fix: FixSummary) -> bool:
        """Open past its verification day as of the digest's day (the Monday after)."""
        return fix.status == "open" and fix.verify_on <= self.week.end


def digest_key(week: Week, environment: str) -> str:
    return f"digest:{week}:{environment}"


# --- building it from the reports ---------------------------------------------------------


def default_environment(store: EventStore, week: Week) -> str:
    """The environment the dashboard would show for the week: ``prod`` when it has data."""
    return take_inventory(store, week.start, week.end, None).default_environment()


def build_digest(
    store: EventStore,
    plan: TrackingPlan,
    week: Week,
    *,
    environment: str | None = None,
    fixes: Sequence[FixSummary] = (),
    min_group_size: int = 5,
) -> Digest:
    env = environment or default_environment(store, week)
    filters = ViewFilters("custom", week.start, week.end, env)
    ctx = PageContext(
        store=store,
        plan=plan,
        filters=filters,
        inventory=take_inventory(store, week.start, week.end, env),
        query={},
        min_group_size=min_group_size,
        cache=ResultCache(),
    )
    before = filters.shifted(-7)
    top = ctx.report("top-problems")
    problems = _problems(ctx, top.data)
    scenarios, changes = _scenarios(ctx)
    field_now, field_before = ctx.report("field-errors"), ctx.report("field-errors", None, before)
    fail_now, fail_before = ctx.report("failures"), ctx.report("failures", None, before)
    health = ctx.report("health", {"env": env})
    return Digest(
        week=week,
        environment=env,
        problems=problems,
        problems_found=top.data.considered,
        scenarios=scenarios,
        changes=changes,
        field_errors=_new_field_errors(plan, field_now.data, field_before.data),
        failures=_new_failures(fail_now.data, fail_before.data),
        fixes=_fixes_of_week(fixes, week, env),
        health=_health_warnings(health.data, env),
        notes=tuple(notes_of(top.meta, field_now.meta, fail_now.meta)),
        problems_chart=_problems_chart(problems),
    )


def _scenarios(ctx: PageContext) -> tuple[tuple[ScenarioWeek, ...], tuple[str, ...]]:
    """The overview's tiles for the week against the week before, and its "what changed"."""
    tiles, changes = scenario_tiles(ctx)
    scenarios = tuple(
        ScenarioWeek(
            scenario=name,
            title=tile.title,
            owner=tile.owner,
            conversion=tile.metrics[0],
            p95=tile.metrics[1],
            note=tile.note,
            trend=None if tile.trend is None or tile.trend.empty else tile.trend.spec,
        )
        for name, tile in zip(ctx.plan.scenarios, tiles, strict=True)
    )
    return scenarios, tuple(text for text, _ in changes)


def _problems(ctx: PageContext, result: TopProblemsResult) -> tuple[DigestProblem, ...]:
    cards = problem_list(ctx, result).problems
    return tuple(
        DigestProblem(
            rank=card.rank,
            kind=PROBLEM_KINDS.get(problem.kind, problem.kind),
            title=card.title,
            owner=card.owner,
            sessions_affected=problem.sessions_affected,
            finding=card.finding,
            action=card.action,
        )
        for card, problem in zip(cards, result.problems, strict=True)
    )


def _problems_chart(problems: Sequence[DigestProblem]) -> Mapping[str, Any] | None:
    if not problems:
        return None
    values = [
        # Short labels (rank and kind): the list above the chart says what each one is.
        {"problem": f"{p.rank}. {p.kind}", "sessions": p.sessions_affected}
        for p in problems
    ]
    return charts.horizontal_bars(
        values,
        category="problem",
        value="sessions",
        value_title="sessions affected",
        color=charts.BAD,
    )


def _form_owners(plan: TrackingPlan) -> dict[str, str]:
    """form_id → the owner team of the scenario that contains it (the first in plan order)."""
    owners: dict[str, str] = {}
    for scenario in plan.scenarios.values():
        forms = [scenario.form_id, *(step.where.get("form_id") for step in scenario.steps)]
        for form in forms:
            if isinstance(form, str) and scenario.owner:
                owners.setdefault(form, scenario.owner)
    return owners


def _is_new(now: int, before: int | None) -> bool:
    return before is None or now >= NEW_GROWTH * before


def _new_field_errors(
    plan: TrackingPlan, now: FieldErrorResult, before: FieldErrorResult
) -> tuple[NewFieldError, ...]:
    def totals(result: FieldErrorResult) -> dict[tuple[str, int, str, str], FieldErrorRow]:
        return {
            (r.form_id, r.step, r.field_id, r.error_type): r
            for r in result.errors
            if r.group is None and not r.hidden and r.sessions
        }

    owners = _form_owners(plan)
    previous = totals(before)
    found = []
    for key, row in totals(now).items():
        earlier = previous.get(key)
        sessions_before = earlier.sessions if earlier is not None else None
        if row.sessions and _is_new(row.sessions, sessions_before):
            found.append(
                NewFieldError(
                    form_id=row.form_id,
                    step=row.step,
                    field_id=row.field_id,
                    error_type=row.error_type,
                    owner=owners.get(row.form_id, NO_OWNER),
                    sessions=row.sessions,
                    share=row.share.value,
                    sessions_before=sessions_before,
                )
            )
    found.sort(key=lambda e: (-e.sessions, e.form_id, e.step, e.field_id, e.error_type))
    return tuple(found[:MAX_NEW_ITEMS])


def _failure_subject(count: ErrorCount) -> str:
    key = count.key
    if key.get("fingerprint") is not None:
        return f"{key['fingerprint']} · {key.get('module') or '?'}"
    return str(key.get("error_type") or "?")


def _new_failures(now: FailureResult, before: FailureResult) -> tuple[NewFailure, ...]:
    def totals(result: FailureResult) -> dict[tuple[str, str], ErrorCount]:
        rows = [*result.by_type, *result.by_fingerprint]
        return {
            (str(c.key.get("error_kind") or "js"), _failure_subject(c)): c
            for c in rows
            if c.group is None and not c.hidden and c.sessions
        }

    previous = totals(before)
    found = []
    for (kind, subject), count in totals(now).items():
        earlier = previous.get((kind, subject))
        sessions_before = earlier.sessions if earlier is not None else None
        if count.sessions and _is_new(count.sessions, sessions_before):
            # Errors are not owned by a scenario in the plan: every team reads them.
            found.append(NewFailure(kind, subject, NO_OWNER, count.sessions, sessions_before))
    found.sort(key=lambda f: (-f.sessions, f.error_kind, f.subject))
    return tuple(found[:MAX_NEW_ITEMS])


def _fixes_of_week(fixes: Sequence[FixSummary], week: Week, env: str) -> tuple[FixSummary, ...]:
    """The environment's open fixes, and those whose verdict came during the week or since."""
    shown = [
        f
        for f in fixes
        if f.environment in (None, env)
        and (f.status == "open" or (f.checked_on is not None and week.start <= f.checked_on))
    ]
    shown.sort(key=lambda f: (f.status != "open", f.verify_on, f.fix_id))
    return tuple(shown)


HEALTH_TEXTS: Final = {
    "refused": "events refused",
    "duplicates": "duplicate events dropped",
    "clock_skew": "events whose client clock was off by more than an hour",
    "timers": "impossible operation timers (end without start, negative, mismatch)",
    "stale_schema": "events on a schema version below the plan's minimum",
    "not_in_plan": "events or fields not in the plan",
    "test_data": "events that look like test traffic",
}


def _health_counts(result: HealthResult, env: str) -> dict[str, int]:
    return {
        "refused": sum(r.count for r in result.rejected if r.environment == env),
        "duplicates": sum(d.duplicates for d in result.duplicates),
        "clock_skew": sum(
            round(s.events * s.buckets.get("beyond_1h", 0.0))
            for s in result.clock_skew
            if s.environment == env
        ),
        "timers": sum(
            t.ends_without_start + t.negative + t.duration_mismatch
            for t in result.timers
            if t.environment == env
        ),
        "stale_schema": sum(
            v.events for v in result.schema_versions if v.status == "stale" and v.environment == env
        ),
        "not_in_plan": sum(m.count for m in result.not_in_plan),
        "test_data": sum(h.events for h in result.test_data),
    }


def _health_warnings(result: HealthResult, env: str) -> tuple[HealthWarning, ...]:
    """Counts only: reason codes and numbers, never a value."""
    rejected: dict[str, int] = {}
    for r in result.rejected:
        if r.environment == env:
            rejected[r.reason] = rejected.get(r.reason, 0) + r.count
    top = sorted(rejected.items(), key=lambda item: (-item[1], item[0]))[:3]
    warnings = []
    for kind, count in _health_counts(result, env).items():
        text = HEALTH_TEXTS[kind]
        if kind == "refused" and top:
            text += f" (most: {', '.join(f'{code} {n:,}' for code, n in top)})"
        if count:
            warnings.append(HealthWarning(kind, count, text))
    return tuple(warnings)


# --- rendering ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _svg(spec_json: str, width: int) -> str:
    import vl_convert  # noqa: PLC0415 - a large native module, loaded when a chart is drawn

    spec = json.loads(spec_json)
    spec["width"] = width  # "container" means nothing without a page to fit
    # Labels are measured here and drawn by the mail client: Arial's metrics (Helvetica on a
    # Mac, Liberation Sans on Linux) are the ones both sides share, so no label overflows.
    spec["config"] = {**spec.get("config", {}), "font": CHART_FONT}
    svg: str = vl_convert.vegalite_to_svg(
        vl_spec=spec, vl_version=VEGA_LITE_VERSION, allowed_base_urls=[]
    )
    prefix = "c" + hashlib.sha256(f"{width}:{spec_json}".encode()).hexdigest()[:8]
    return _scoped_ids(svg, prefix)


_SVG_ID: Final = re.compile(r'\bid="([^"]+)"')


def _scoped_ids(svg: str, prefix: str) -> str:
    """Every chart's SVG names its clip paths ``clip1``, ``clip2``…; inlined side by side in
    one document, the first chart's would clip the others. Each chart gets its own names."""
    for name in sorted(set(_SVG_ID.findall(svg)), key=len, reverse=True):
        scoped = f"{prefix}-{name}"
        svg = svg.replace(f'id="{name}"', f'id="{scoped}"')
        svg = svg.replace(f"url(#{name})", f"url(#{scoped})")
        svg = svg.replace(f'href="#{name}"', f'href="#{scoped}"')
    return svg


NOT_DRAWN: Final = Markup('<p class="note">(this chart could not be drawn)</p>')


def chart_svg(spec: Mapping[str, Any], width: int = CHART_WIDTH) -> Markup:
    """A spec drawn as an SVG element, ready to inline (vl-convert escapes every text). A chart
    that cannot be drawn costs the digest that chart, not the digest: its numbers are in the
    text anyway."""
    try:
        svg = _svg(json.dumps(spec, sort_keys=True), width)
    except ValueError as error:  # vl-convert's one error type (a bad spec, a data URL)
        log.warning("digest chart not drawn: %s", type(error).__name__)
        return NOT_DRAWN
    return Markup(svg)  # noqa: S704 - SVG generated by vl-convert from our own spec


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("stumble.review", "templates"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = format_value
    env.filters["svg"] = chart_svg
    env.globals["SPARK_WIDTH"] = SPARK_WIDTH
    env.globals["NO_OWNER"] = NO_OWNER
    return env


_env: Final = _templates()


def render_markdown(digest: Digest) -> str:
    return _env.get_template("digest.md").render(d=digest, title=digest_title(digest))


def render_html(digest: Digest) -> str:
    return _env.get_template("digest.html").render(d=digest, title=digest_title(digest))


def digest_title(digest: Digest) -> str:
    return f"Weekly UX review {digest.week} · {digest.environment}"


def digest_subject(digest: Digest) -> str:
    count = len(digest.problems)
    subject = f"stumble: {digest_title(digest)}: {count} problem{'s' if count != 1 else ''}"
    if digest.team is not None:
        own = sum(1 for p in digest.problems if p.owner == digest.team)
        subject += f", {own} for {digest.team}"
    return subject


def digest_data(digest: Digest) -> dict[str, object]:
    """The plain JSON webhook's ``data``: identifiers and numbers, no prose."""
    return {
        "week": str(digest.week),
        "environment": digest.environment,
        "team": digest.team,
        "problems": [
            {
                "rank": p.rank,
                "kind": p.kind,
                "title": p.title,
                "owner": p.owner,
                "sessions_affected": p.sessions_affected,
            }
            for p in digest.problems
        ],
        "problems_found": digest.problems_found,
        "scenarios": [
            {
                "scenario": s.scenario,
                "owner": s.owner,
                "conversion": s.conversion.value,
                "conversion_change": s.conversion.change,
                "p95": s.p95.value,
                "p95_change": s.p95.change,
            }
            for s in digest.scenarios
        ],
        "new_field_errors": len(digest.field_errors),
        "new_failures": len(digest.failures),
        "fixes": [
            {
                "fix_id": f.fix_id,
                "owner": f.owner,
                "verify_on": f.verify_on.isoformat(),
                "status": f.status,
                "verdict": f.verdict,
            }
            for f in digest.fixes
        ],
        "health": {w.kind: w.count for w in digest.health},
    }


def digest_message(digest: Digest) -> Message:
    markdown = render_markdown(digest)
    return Message(
        key=digest.key,
        subject=digest_subject(digest),
        text=markdown,  # Markdown reads as plain text: the e-mail's text part
        markdown=markdown,
        html=render_html(digest),
        data=digest_data(digest),
    )


# --- the weekly job -----------------------------------------------------------------------


def send_time(settings: Settings, week: Week) -> dt.datetime:
    """When the digest of ``week`` is due: the configured day and time of the week after, in
    the review's time zone."""
    hour, minute = (int(part) for part in settings.digest_time.split(":"))
    day = week.end + dt.timedelta(days=1 + WEEKDAYS.index(settings.digest_weekday))
    return dt.datetime.combine(day, dt.time(hour, minute), review_zone(settings.review_timezone))


def week_due(settings: Settings, now: dt.datetime) -> Week | None:
    """The week before, once this week's send time has passed at ``now``; None before it."""
    local = now.astimezone(review_zone(settings.review_timezone))
    last = Week.of(local.date()).previous()
    return last if send_time(settings, last) <= now else None


def _no_fixes() -> Sequence[FixSummary]:
    return ()


class DigestJob:
    """Sends the week before's digest to every configured team, once.

    Due from the configured day and time (``review_timezone``) until every recipient of every
    team has it; the delivery ledger decides who still needs it, so running twice or
    restarting the server mid-send repeats nothing. After a run where a recipient failed, the
    job waits ``RETRY_AFTER`` before trying again (building a digest costs several reports).
    Only the week before the current one is ever sent: a digest the server missed entirely
    (down for the whole week) is not sent late."""

    name = "digest"

    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        plan: TrackingPlan,
        deliverer: Deliverer,
        *,
        fixes: Callable[[], Sequence[FixSummary]] = _no_fixes,
        environment: str | None = None,
        min_group_size: int = 5,
    ) -> None:
        self.settings = settings
        self.store = store
        self.plan = plan
        self.deliverer = deliverer
        self.fixes = fixes
        self.environment = environment
        self.min_group_size = min_group_size
        self._environments: dict[Week, str] = {}
        self._done: Week | None = None
        self._retry_at: dt.datetime | None = None

    def due(self, now: dt.datetime) -> bool:
        week = week_due(self.settings, now)
        if (
            week is None
            or week == self._done
            or (self._retry_at is not None and now < self._retry_at)
        ):
            return False
        if self._pending_teams(week):
            return True
        self._done = week
        return False

    def run(self, now: dt.datetime) -> None:
        week = week_due(self.settings, now)
        if week is None:
            return
        teams = self._pending_teams(week)
        if not teams:
            self._done = week
            return
        # Pessimistic until the sends are done: a run that raises (the database or the audit
        # log failing) is not rebuilt and retried at every tick either.
        self._retry_at = now + RETRY_AFTER
        digest = build_digest(
            self.store,
            self.plan,
            week,
            environment=self._environment(week),
            fixes=self.fixes(),
            min_group_size=self.min_group_size,
        )
        failed = 0
        for team in teams:
            report = self.deliverer.notify(team, digest_message(digest.for_team(team)))
            failed += len(report.failed)
            log.info(
                "digest %s for %s: %d sent, %d already, %d failed",
                digest.key,
                team,
                len(report.sent),
                len(report.already_sent),
                len(report.failed),
            )
        self._retry_at = now + RETRY_AFTER if failed else None
        if not failed:
            self._done = week

    def _environment(self, week: Week) -> str:
        if self.environment is not None:
            return self.environment
        if week not in self._environments:
            self._environments[week] = default_environment(self.store, week)
        return self._environments[week]

    def _pending_teams(self, week: Week) -> list[str]:
        key = digest_key(week, self._environment(week))
        return [team for team in self.deliverer.teams() if self.deliverer.pending(team, key)]
