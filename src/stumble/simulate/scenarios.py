"""The scenarios of the service desk, as sequences of events on a ``SessionBuilder``.

Each session is one visit: an optional login, then one main scenario (create a request,
search, approval, report export), with the Web Vitals of its first page load, an INP at the
end and, now and then, a JS exception.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from stumble.events import CustomEvent, NavigationKind, ParamValue
from stumble.simulate.params import FieldErrorRule
from stumble.simulate.session import FORM_ID, SessionBuilder, SimulatedSession, World


def _failed_attempts(
    session: SessionBuilder, rules: Sequence[FieldErrorRule]
) -> dict[FieldErrorRule, int]:
    """The rules a session trips at a step, each with how many submits it makes fail."""
    tripped = {}
    for rule in rules:
        if session.chance(rule.session_share):
            low, high = rule.failed_attempts
            tripped[rule] = session.rng.randint(low, high)
    return tripped


def _report_field_errors(
    session: SessionBuilder,
    form_id: str,
    step: int,
    attempt: int,
    tripped: dict[FieldErrorRule, int],
) -> None:
    for rule, failures in tripped.items():
        if failures >= attempt:
            session.field_error(form_id, rule.field_id, rule.error_type, step, attempt)


def _leave(session: SessionBuilder) -> None:
    nav = session.world.pick_abandon_nav(session.rng)
    if nav == "back":
        session.action("request_back_clicked", "click_back", target="btn_back", position="footer")
    session.navigate(cast(NavigationKind, nav))


# --- scenarios ----------------------------------------------------------------------------


def _login(session: SessionBuilder) -> bool:
    """The login screen; True when the person got in. A rejected password is a field error
    answered by the server, so every login call itself succeeds."""
    params = session.params.login
    session.screen("login", "/login")
    session.reach("login", 0)
    session.page_load_vitals()
    session.facts.steps_entered.append(("login", 1))
    tripped = _failed_attempts(session, params.field_errors)
    failures = max(tripped.values(), default=0)
    clean_rate, problem_rate = session.world.login_abandon
    abandons = session.chance(problem_rate if failures else clean_rate)
    give_up_after = session.rng.randint(1, failures) if abandons and failures else 0
    if abandons and not failures:
        session.t += round(session.sample(params.fill) * session.rng.random())
        session.navigate("close")
        return False
    for attempt in range(1, failures + 2):
        session.wait(params.fill if attempt == 1 else params.correction)
        session.operation("login", problem=False)
        if attempt <= failures:
            _report_field_errors(session, "login", 1, attempt, tripped)
            session.form_submit("login", 1, attempt, success=False)
            if attempt == give_up_after:
                session.navigate("close")
                return False
            continue
        session.form_submit("login", 1, attempt, success=True)
        session.reach("login", 1)
    session.screen("home", "/")
    return True


@dataclass(frozen=True, slots=True)
class _StepPlan:
    """What will go wrong on one form step, drawn before the person starts it."""

    step: int
    tripped: dict[FieldErrorRule, int]
    field_failures: int
    submit_problem: bool
    """Step 3 only: the first real submit fails (5xx or timeout)."""


def _plan_step(session: SessionBuilder, step: int, rules: Sequence[FieldErrorRule]) -> _StepPlan:
    tripped = _failed_attempts(session, rules)
    submit = session.operations["request_submit"]
    submit_problem = step == 3 and session.chance(submit.fail_rate + submit.timeout_rate)
    return _StepPlan(step, tripped, max(tripped.values(), default=0), submit_problem)


def _form_step(session: SessionBuilder, step: int, abandon: tuple[float, float]) -> bool:
    """One step of the create-request form; True when it was completed.

    Who abandons is drawn first, with the rate that matches whether the step will go wrong
    for this person, so the step's overall drop-off is the configured one.
    """
    behaviour = session.params.request_form.versions[session.ui_version]
    tables = session.world.form_tables[session.ui_version]
    session.facts.steps_entered.append((FORM_ID, step))
    plan = _plan_step(session, step, tables.rules_by_step[step])
    problems = plan.field_failures + plan.submit_problem
    clean_rate, problem_rate = abandon
    if not session.chance(problem_rate if problems else clean_rate):
        give_up_after = 0
    elif problems:
        give_up_after = session.rng.randint(1, problems)  # after which failed attempt
    else:
        session.t += round(session.sample(behaviour.fill[step]) * session.rng.random())
        _leave(session)  # leaves while filling, before any submit
        return False
    attempt = 0
    while True:
        attempt += 1
        session.wait(behaviour.fill[step] if attempt == 1 else behaviour.correction)
        if _form_attempt(session, plan, attempt):
            return True
        if attempt == give_up_after:
            _leave(session)
            return False
        if attempt > plan.field_failures:
            session.navigate("retry")  # the submit itself failed: the person retries it


def _form_attempt(session: SessionBuilder, plan: _StepPlan, attempt: int) -> bool:
    """Click next (or submit) once; True when the step went through."""
    behaviour = session.params.request_form.versions[session.ui_version]
    step = plan.step
    if step < 3:
        session.action("request_next_clicked", "click_next", target="btn_next", position="footer")
    else:
        session.action("request_submit_clicked", "click_submit", target=behaviour.submit_target)
    if attempt <= plan.field_failures:
        session.wait(behaviour.validation_wait)
        _report_field_errors(session, FORM_ID, step, attempt, plan.tripped)
        session.form_submit(FORM_ID, step, attempt, success=False)
        return False
    if step < 3:
        session.wait(behaviour.validation_wait)
        session.form_submit(FORM_ID, step, attempt, success=True)
        return True
    first_submit = attempt == plan.field_failures + 1
    problem = plan.submit_problem if first_submit else None
    succeeded = session.operation("request_submit", problem=problem) == "success"
    session.form_submit(FORM_ID, step, attempt, success=succeeded)
    return succeeded


def _create_service_request(session: SessionBuilder) -> None:
    tables = session.world.form_tables[session.ui_version]
    if session.chance(session.params.request_form.list_first_share):
        session.screen("request_list", "/requests")
        session.operation("request_list")
    session.screen("request_create", "/requests/new")
    session.reach("create_service_request", 0)
    session.maybe_js_error()
    for step in (1, 2, 3):
        if not _form_step(session, step, tables.abandon[step]):
            return
        session.reach("create_service_request", step)
    session.screen("request_view", "/requests/:id")


def _search(session: SessionBuilder) -> None:
    params = session.params.search
    session.screen("search", "/search")
    session.reach("search", 0)
    session.maybe_js_error()
    low, high = params.queries
    for _ in range(session.rng.randint(low, high)):
        session.wait(params.think)
        if session.chance(params.filter_share):
            session.action("filter_applied", "apply_filter", target="filter_panel")
        if session.operation("search") == "success":
            session.reach("search", 1)
    if len(session.facts.funnel_ts["search"]) == 2 and session.chance(params.open_result_share):
        session.wait(params.scan)
        session.action("search_result_opened", "open_result", target="result_row")
        session.reach("search", 2)
        session.screen("request_view", "/requests/:id")
    else:
        session.navigate("back")


def _approval(session: SessionBuilder) -> None:
    params = session.params.approval
    session.screen("approval_queue", "/approvals")
    session.reach("approval", 0)
    session.operation("approval_list")
    session.maybe_js_error()
    if not session.chance(params.open_share):
        session.navigate("close")
        return
    session.wait(params.pick)
    session.action("approval_opened", "open_item", target="queue_row")
    session.reach("approval", 1)
    session.screen("approval_view", "/approvals/:id")
    if not session.chance(params.decide_share):
        session.navigate("back")
        return
    session.wait(params.read)
    session.facts.steps_entered.append(("approval_decision", 1))
    attempt = 1
    if session.chance(params.reason_required_share):
        session.field_error("approval_decision", "reason_code", "required", 1, attempt)
        session.form_submit("approval_decision", 1, attempt, success=False)
        session.wait(params.correction)
        attempt += 1
    while session.operation("approval_decision") != "success":
        session.form_submit("approval_decision", 1, attempt, success=False)
        session.navigate("retry")
        attempt += 1
    session.form_submit("approval_decision", 1, attempt, success=True)
    session.reach("approval", 2)


def _report_export(session: SessionBuilder) -> None:
    params = session.params.report
    session.screen("reports", "/reports")
    session.reach("report_export", 0)
    session.maybe_js_error()
    if not session.chance(params.export_share):
        session.navigate("back")
        return
    session.wait(params.configure)
    session.facts.steps_entered.append(("report_params", 1))
    attempt = 1
    if session.chance(params.period_error_share):
        session.field_error("report_params", "period_to", "range", 1, attempt)
        session.form_submit("report_params", 1, attempt, success=False)
        session.wait(params.correction)
        attempt += 1
    session.form_submit("report_params", 1, attempt, success=True)
    session.action("export_started", "export", target="btn_export")
    session.reach("report_export", 1)
    if session.chance(params.cancel_share):
        _cancelled_export(session)
        return
    if session.operation("report_export", final_step="file_ready") != "success":
        session.navigate("retry")
        session.operation("report_export", problem=False, final_step="file_ready")
    _report_exported(session)


def _cancelled_export(session: SessionBuilder) -> None:
    """The person gives up waiting for a slow export and presses cancel."""
    spec = session.operations["report_export"]
    running = session.start_operation(spec)
    session.wait(spec.server)
    session.navigate("cancel")
    session.end_operation(running, "cancel")


def _report_exported(session: SessionBuilder) -> None:
    rng = session.rng
    rows = max(1, round(rng.lognormvariate(math.log(2_000), 1.2)))
    params: dict[str, ParamValue] = {
        "report_format": session.world.pick_report_format(rng),
        "rows": rows,
        "file_size": min(90_000_000, rows * rng.randint(60, 180)),
        "generation_time": session.facts.operations[-1][2],
        "scheduled": False,
    }
    session.push(
        CustomEvent(
            event_id=session.event_id(),
            event_name="report_exported",
            ts=session.t,
            screen_id=session.screen_id,
            params=params,
            session_id=session.session_id,
            schema_version=session.schema_version,
            ui_version=session.ui_version,
            feature_flags=session.flags,
            tz=session.tz,
            context=session.context,
        )
    )
    session.reach("report_export", 2)
    session.screen("report_view", "/reports/:id")


SCENARIO_FLOWS: Final[dict[str, Callable[[SessionBuilder], None]]] = {
    "create_service_request": _create_service_request,
    "search": _search,
    "approval": _approval,
    "report_export": _report_export,
}


def simulate_one(world: World, rng: random.Random, start_ms: int, day: int) -> SimulatedSession:
    session = SessionBuilder(world, rng, start_ms, day)
    params = world.params
    logged_in = True
    if session.chance(params.login.share):
        logged_in = _login(session)
    else:
        session.screen("home", "/")
        session.page_load_vitals()
    if logged_in:
        scenario = world.pick_scenario(rng)
        session.facts.scenario = scenario
        session.wait(params.pause)
        SCENARIO_FLOWS[scenario](session)
    session.closing_vitals()
    sent_at = session.t + session.sample(params.send_delay)
    return SimulatedSession(session.session_id, session.events, sent_at, session.facts)
