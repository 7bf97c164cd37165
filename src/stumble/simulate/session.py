"""Building one session: the event constructors, the clock, and the facts they record.

``SessionBuilder`` emits events (each at least 1 ms after the previous one, so ordering by
``ts`` is never ambiguous) and records, as it goes, the ``SessionFacts`` the ground truth is
built from. ``World`` holds what is derived once per run: weight tables and the abandon rates
solved from the params. Identifiers are letters only (``s_`` + 20 letters for sessions,
``op_`` + 16 for operations): a run of nine digits in any string would trip the privacy
guard's catch-all.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from stumble.events import (
    ActionEvent,
    Context,
    ErrorEvent,
    ErrorKind,
    Event,
    FieldErrorEvent,
    FieldErrorType,
    FormSubmitEvent,
    NavigationEvent,
    NavigationKind,
    OperationEndEvent,
    OperationStartEvent,
    OperationStatus,
    OperationStepEvent,
    ScreenViewEvent,
    VitalEvent,
    VitalMetric,
    VitalRating,
)
from stumble.plan.model import TrackingPlan
from stumble.simulate.attempts import AttemptTracker
from stumble.simulate.params import FieldErrorRule, LogNormal, OperationParams, SimulationParams

FORM_ID: Final = "service_request"

FUNNEL_STEPS: Final[dict[str, tuple[str, ...]]] = {
    "create_service_request": ("form_opened", "step_1_done", "step_2_done", "submitted"),
    "login": ("login_opened", "logged_in"),
    "search": ("search_opened", "results_shown", "search_result_opened"),
    "approval": ("queue_opened", "approval_opened", "decided"),
    "report_export": ("reports_opened", "export_started", "report_exported"),
}
"""The funnel step labels the generator emits, per scenario; the plan must declare the same."""

# Google's thresholds (good <= first, poor > second); CLS is unitless.
VITAL_THRESHOLDS: Final[dict[str, tuple[float, float]]] = {
    "LCP": (2_500, 4_000),
    "FCP": (1_800, 3_000),
    "TTFB": (800, 1_800),
    "INP": (200, 500),
    "CLS": (0.1, 0.25),
}

# Maps every byte to a letter: random bytes become letters in one C call. 256 is not a
# multiple of 26, so a-v are 1/9 likelier than w-z: irrelevant for an opaque identifier.
_LETTER_TABLE: Final = bytes(string.ascii_lowercase.encode()[i % 26] for i in range(256))
_HTTP_FAILURES: Final = (500, 502, 503, 503, 504)
_MIN_STEP_MS: Final = 1


@dataclass(slots=True)
class SessionFacts:
    """What one session did, recorded as its events were emitted (ts are the events' ts)."""

    session_id: str
    ui_version: str
    day: int
    aa_arm: str | None
    context: Context
    scenario: str | None = None
    funnel_ts: dict[str, list[int]] = field(default_factory=dict)
    """Scenario -> ts of each funnel step reached, in order (first occurrence of each): what
    the generator's behaviour follows."""
    attempts: dict[str, AttemptTracker] = field(default_factory=dict)
    """Scenario -> its funnel as the report counts it (attempts): the ground truth."""
    steps_entered: list[tuple[str, int]] = field(default_factory=list)
    """(form_id, step) for every form step the session was on."""
    field_errors: list[tuple[str, str, str, int]] = field(default_factory=list)
    """(form_id, field_id, error_type, step) per field_error event."""
    operations: list[tuple[str, str, float]] = field(default_factory=list)
    """(operation, status, duration_ms) per operation_end event."""
    api: list[tuple[str, float]] = field(default_factory=list)
    """(route template, value ms) per 'api' vital."""
    vitals: list[tuple[str, float]] = field(default_factory=list)
    """(metric, value) per page vital (not 'api')."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(error_kind, fingerprint or route template) per error event."""
    navigation: list[str] = field(default_factory=list)


class _Running(NamedTuple):
    """An operation in progress."""

    operation_id: str
    operation: str
    screen_id: str
    started: int


@dataclass(slots=True)
class SimulatedSession:
    """One session's batch. ``sent_at`` is the simulated send time; replaying old sessions into
    a live collector, use the real time instead (``StumbleClient`` does), or its clock-skew
    correction would move every event to the replay time."""

    session_id: str
    events: list[Event]
    sent_at: int
    facts: SessionFacts


# --- sampling tables ----------------------------------------------------------------------


class WeightedChoice:
    """Weighted choice by bisection over cumulative weights (``random.choices`` re-checks its
    arguments on every call, which costs more than the draw)."""

    __slots__ = ("_cumulative", "_total", "_values")

    def __init__(self, weights: dict[str, float]) -> None:
        self._values = tuple(weights)
        self._cumulative = tuple(itertools.accumulate(weights.values()))
        self._total = self._cumulative[-1] if self._cumulative else 0.0
        if self._total <= 0:
            raise ValueError("a weight table needs a positive weight")

    def __call__(self, rng: random.Random) -> str:
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return self._values[min(index, len(self._values) - 1)]


def abandon_rates(
    drop_off: float, problem_share: float, lift: float, where: str
) -> tuple[float, float]:
    """(clean, with-problem) abandon probabilities whose mix is ``drop_off`` overall."""
    clean = drop_off / (1.0 - problem_share + lift * problem_share)
    if lift * clean > 1.0:
        raise ValueError(f"{where}: error_abandon_lift is too high for drop_off {drop_off}")
    return clean, lift * clean


def problem_share(rules: Sequence[FieldErrorRule], extra: float = 0.0) -> float:
    clean = 1.0 - extra
    for rule in rules:
        clean *= 1.0 - rule.session_share
    return 1.0 - clean


@dataclass(frozen=True, slots=True)
class FormTables:
    rules_by_step: dict[int, tuple[FieldErrorRule, ...]]
    abandon: dict[int, tuple[float, float]]


def form_tables(params: SimulationParams) -> dict[str, FormTables]:
    form = params.request_form
    submit = params.operations["request_submit"]
    tables = {}
    for version in params.ui_versions():
        behaviour = form.versions[version]
        rules_by_step = {
            step: tuple(rule for rule in behaviour.field_errors if rule.step == step)
            for step in (1, 2, 3)
        }
        abandon = {}
        for step in (1, 2, 3):
            # A failed first submit of step 3 (5xx, timeout) is a problem like a field error.
            extra = submit.fail_rate + submit.timeout_rate if step == 3 else 0.0
            share = problem_share(rules_by_step[step], extra)
            abandon[step] = abandon_rates(
                behaviour.drop_off.get(step, 0.0),
                share,
                form.error_abandon_lift,
                f"request_form.versions[{version}].drop_off[{step}]",
            )
        tables[version] = FormTables(rules_by_step, abandon)
    return tables


# --- the run and the session -------------------------------------------------------------


class World:
    """Everything derived once from the params: weight tables, solved rates, constants."""

    def __init__(self, params: SimulationParams, plan: TrackingPlan) -> None:
        self.params = params
        self.schema_version = params.schema_version or plan.schema_version
        self.windows_ms = {name: plan.scenarios[name].window_ms for name in FUNNEL_STEPS}
        self.form_tables = form_tables(params)
        self.login_abandon = abandon_rates(
            params.login.drop_off,
            problem_share(params.login.field_errors),
            params.request_form.error_abandon_lift,
            "login.drop_off",
        )
        context = params.context
        self.pick_context = {
            name: WeightedChoice(getattr(context, name))
            for name in ("role", "division", "device_type", "browser", "region")
        }
        self.pick_scenario = WeightedChoice({str(k): w for k, w in params.scenario_weights.items()})
        self.pick_abandon_nav = WeightedChoice(
            {str(k): w for k, w in params.request_form.abandon_nav.items()}
        )
        self.pick_report_format = WeightedChoice(params.report.formats)
        self.js_errors_by_version = {
            version: [
                spec
                for spec in params.js_errors.errors
                if not spec.ui_versions or version in spec.ui_versions
            ]
            for version in params.ui_versions()
        }
        self._lognormal: dict[int, tuple[float, float]] = {}
        at = params.regression_at
        self.regression_ms = None if at is None else round(at.timestamp() * 1000)
        self.regressed_operations = {**params.operations, **params.regression_operations}
        self.pick_js_error = {
            version: WeightedChoice({str(i): spec.weight for i, spec in enumerate(specs)})
            for version, specs in self.js_errors_by_version.items()
            if specs
        }

    def operations_at(self, start_ms: int) -> dict[str, OperationParams]:
        """The operations a session starting at ``start_ms`` runs: the regressed ones from
        ``regression_at`` on (``regression_operations`` replace their namesakes)."""
        if self.regression_ms is None or start_ms < self.regression_ms:
            return self.params.operations
        return self.regressed_operations

    def lognormal(self, distribution: LogNormal) -> tuple[float, float]:
        """(mu, sigma) of a distribution, computed once (keyed by identity: params are frozen
        and outlive the run)."""
        key = id(distribution)
        cached = self._lognormal.get(key)
        if cached is None:
            cached = self._lognormal[key] = (distribution.mu, distribution.sigma)
        return cached


class SessionBuilder:
    """Builds one session: a clock, the events, the facts.

    The common envelope fields are passed to every event constructor by name rather than as
    ``**common``: merging a kwargs dict costs more than building the event itself (measured
    1.7 us against 0.5 us), and event construction is the generator's inner loop.
    """

    __slots__ = (
        "context",
        "device",
        "events",
        "facts",
        "flags",
        "operations",
        "params",
        "rng",
        "route",
        "schema_version",
        "screen_id",
        "session_id",
        "t",
        "tz",
        "ui_version",
        "world",
    )

    def __init__(self, world: World, rng: random.Random, start_ms: int, day: int) -> None:
        self.world = world
        self.params = params = world.params
        self.rng = rng
        self.t = start_ms
        self.events: list[Event] = []
        after = params.ui_version_change_day is not None and day >= params.ui_version_change_day
        self.ui_version = params.ui_version_after if after else params.ui_version_before
        self.operations = world.operations_at(start_ms)
        self.schema_version = world.schema_version
        self.tz = params.timezone
        self.session_id = "s_" + self.letters(20)
        aa_arm = None
        self.flags: list[str] = []
        if params.aa_flag is not None:
            treated = rng.random() < 0.5
            aa_arm = "treatment" if treated else "control"
            self.flags = [params.aa_flag] if treated else []
        self.context = Context(**{name: pick(rng) for name, pick in world.pick_context.items()})
        self.device = self.context.device_type or "desktop"
        self.facts = SessionFacts(self.session_id, self.ui_version, day, aa_arm, self.context)
        self.screen_id = "home"
        self.route = "/"

    # --- primitives ----------------------------------------------------------------------

    def letters(self, count: int) -> str:
        return self.rng.randbytes(count).translate(_LETTER_TABLE).decode()

    def event_id(self) -> str:
        """A version-4 UUID made from the seeded generator (uuid4() would not be reproducible)."""
        h = "%032x" % self.rng.getrandbits(128)  # noqa: UP031 -- fastest of the spellings
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def sample(self, distribution: LogNormal) -> int:
        return max(_MIN_STEP_MS, round(self.draw(distribution)))

    def draw(self, distribution: LogNormal) -> float:
        mu, sigma = self.world.lognormal(distribution)
        return math.exp(mu + sigma * self.rng.gauss())

    def wait(self, distribution: LogNormal) -> int:
        waited = self.sample(distribution)
        self.t += waited
        return waited

    def chance(self, share: float) -> bool:
        return self.rng.random() < share

    def raw_route(self, template: str) -> str:
        if ":id" not in template:
            return template
        # 4-7 digit ids, as real URLs carry; the privacy guard turns them back into ':id'.
        return template.replace(":id", str(1_000 + int(self.rng.random() * 9_999_000)))

    def push(self, event: Event) -> None:
        self.events.append(event)
        self.t += 1  # strictly increasing ts within a session

    def reach(self, scenario: str, step: int) -> None:
        """Record that the event just pushed is funnel step ``step`` of ``scenario``.

        ``funnel_ts`` keeps the first occurrence, in order, within the window from the first
        step (first touch: the generator's own flow); ``attempts`` applies the funnel
        report's rules to every occurrence.
        """
        reached = self.facts.funnel_ts.setdefault(scenario, [])
        ts = self.events[-1].ts
        window = self.world.windows_ms[scenario]
        tracker = self.facts.attempts.get(scenario)
        if tracker is None:
            tracker = AttemptTracker([False] * len(FUNNEL_STEPS[scenario]), window)
            self.facts.attempts[scenario] = tracker
        tracker.event(ts, (step,))
        if len(reached) != step:
            return
        if step and ts - reached[0] > self.world.windows_ms[scenario]:
            return
        reached.append(ts)

    # --- event kinds ---------------------------------------------------------------------

    def screen(self, screen_id: str, route_template: str) -> None:
        referrer = self.screen_id
        self.screen_id = screen_id
        self.route = self.raw_route(route_template)
        self.push(
            ScreenViewEvent(
                **self._envelope("screen_view", screen_id=screen_id),
                route=self.route,
                referrer_screen=referrer,
            )
        )

    def action(
        self,
        event_name: str,
        action_id: str,
        target: str | None = None,
        position: str | None = None,
    ) -> None:
        self.push(
            ActionEvent(
                **self._envelope(event_name),
                action_id=action_id,
                target=target,
                position=position,
            )
        )

    def form_submit(self, form_id: str, step: int, attempt: int, success: bool) -> None:
        self.push(
            FormSubmitEvent(
                **self._envelope("form_submit"),
                form_id=form_id,
                step=step,
                attempt=attempt,
                status="success" if success else "fail",
            )
        )

    def field_error(
        self, form_id: str, field_id: str, error_type: FieldErrorType, step: int, attempt: int
    ) -> None:
        self.facts.field_errors.append((form_id, field_id, error_type, step))
        self.push(
            FieldErrorEvent(
                **self._envelope("field_error"),
                form_id=form_id,
                field_id=field_id,
                error_type=error_type,
                attempt=attempt,
                step=step,
            )
        )

    def navigate(self, nav: NavigationKind) -> None:
        self.facts.navigation.append(nav)
        self.push(
            NavigationEvent(
                **self._envelope("navigation"),
                nav=nav,
            )
        )

    def vital(self, metric: VitalMetric, value: float, route: str | None = None) -> None:
        rating: VitalRating | None = None
        thresholds = VITAL_THRESHOLDS.get(metric)
        if thresholds is not None:
            good, poor = thresholds
            rating = "good" if value <= good else "poor" if value > poor else "needs-improvement"
        self.push(
            VitalEvent(
                **self._envelope("vital"),
                metric=metric,
                value=value,
                rating=rating,
                route=route or self.route,
            )
        )

    def error(
        self,
        kind: ErrorKind,
        key: str,
        *,
        error_type: str | None = None,
        fingerprint: str | None = None,
        module: str | None = None,
        http_status: int | None = None,
        route: str | None = None,
    ) -> None:
        self.facts.errors.append((kind, key))
        self.push(
            ErrorEvent(
                **self._envelope("error"),
                error_kind=kind,
                error_type=error_type,
                fingerprint=fingerprint,
                module=module,
                http_status=http_status,
                route=route,
            )
        )

    # --- operations ----------------------------------------------------------------------

    def operation(
        self, name: str, *, problem: bool | None = None, final_step: str = "rendered"
    ) -> OperationStatus:
        """Run a timed operation; ``problem`` forces a failed (True) or clean (False) outcome."""
        spec = self.operations[name]
        running = self.start_operation(spec)
        status = self.operation_outcome(spec, problem)
        if status == "timeout":
            self.t = max(self.t, running.started + round(spec.timeout_ms))
            route = self.raw_route(spec.route)
            self.error("timeout", spec.route, error_type="Timeout", route=route)
        else:
            server_ms = self.wait(spec.server)
            self.operation_step(running, "server_response_received")
            self.api_vital(spec, server_ms)
            if status == "fail":
                status_code = self.rng.choice(_HTTP_FAILURES)
                route = self.raw_route(spec.route)
                self.error(
                    "http", spec.route, error_type="HttpError", http_status=status_code, route=route
                )
            else:
                self.wait(spec.client)
                self.operation_step(running, final_step)
        self.end_operation(running, status)
        return status

    def operation_outcome(self, spec: OperationParams, problem: bool | None) -> OperationStatus:
        failure_share = spec.fail_rate + spec.timeout_rate
        if problem is None:
            problem = self.chance(failure_share)
        if not problem or failure_share <= 0:
            return "success"
        return "timeout" if self.rng.random() * failure_share < spec.timeout_rate else "fail"

    def start_operation(self, spec: OperationParams) -> _Running:
        running = _Running("op_" + self.letters(16), spec.operation, self.screen_id, self.t)
        self.push(
            OperationStartEvent(
                **self._envelope("operation_start", screen_id=running.screen_id),
                operation_id=running.operation_id,
                operation=running.operation,
            )
        )
        self.operation_step(running, "request_sent")
        return running

    def _envelope(self, event_name: str, *, screen_id: str | None = None) -> dict[str, Any]:
        """The fields every event of this session shares (a fresh event id each call)."""
        return {
            "event_id": self.event_id(),
            "event_name": event_name,
            "ts": self.t,
            "screen_id": self.screen_id if screen_id is None else screen_id,
            "session_id": self.session_id,
            "schema_version": self.schema_version,
            "ui_version": self.ui_version,
            "feature_flags": self.flags,
            "tz": self.tz,
            "context": self.context,
        }

    def operation_step(self, running: _Running, step_name: str) -> None:
        self.push(
            OperationStepEvent(
                **self._envelope("operation_step", screen_id=running.screen_id),
                operation_id=running.operation_id,
                operation=running.operation,
                step_name=step_name,
            )
        )

    def end_operation(self, running: _Running, status: OperationStatus) -> None:
        duration = float(self.t - running.started)
        self.facts.operations.append((running.operation, status, duration))
        self.push(
            OperationEndEvent(
                **self._envelope("operation_end", screen_id=running.screen_id),
                operation_id=running.operation_id,
                operation=running.operation,
                status=status,
                duration_ms=duration,
            )
        )

    def api_vital(self, spec: OperationParams, server_ms: int) -> None:
        self.facts.api.append((spec.route, float(server_ms)))
        self.vital("api", float(server_ms), route=self.raw_route(spec.route))

    # --- page-level signals --------------------------------------------------------------

    def page_load_vitals(self) -> None:
        vitals = self.params.vitals
        factor = vitals.device_factor.get(self.device, 1.0)
        for metric, distribution in vitals.page_load.items():
            value = self.draw(distribution)
            value = round(value, 4) if metric == "CLS" else float(round(value * factor))
            self.facts.vitals.append((metric, value))
            self.vital(metric, value)

    def closing_vitals(self) -> None:
        vitals = self.params.vitals
        factor = vitals.device_factor.get(self.device, 1.0)
        inp = float(round(self.sample(vitals.inp) * factor))
        self.facts.vitals.append(("INP", inp))
        self.vital("INP", inp)
        if self.chance(vitals.long_task_share):
            long_task = float(self.sample(vitals.long_task))
            self.facts.vitals.append(("long_task", long_task))
            self.vital("long_task", long_task)

    def maybe_js_error(self) -> None:
        pick = self.world.pick_js_error.get(self.ui_version)
        if pick is None or not self.chance(self.params.js_errors.session_rate):
            return
        spec = self.world.js_errors_by_version[self.ui_version][int(pick(self.rng))]
        self.error(
            "js",
            spec.fingerprint,
            error_type=spec.error_type,
            fingerprint=spec.fingerprint,
            module=spec.module,
            route=self.route,
        )
