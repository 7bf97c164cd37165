"""The simulator: valid wire events, determinism, and a ground truth that is both true to the
events (recomputed here independently) and true to the params (within sampling error)."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from stumble.analytics.stats import (
    NO_CHANGE,
    mann_whitney_u,
    quantile,
    two_proportion_test,
    verdict,
)
from stumble.events import ActionEvent, decode_event
from stumble.plan.model import FunnelStep, TrackingPlan
from stumble.simulate import (
    FUNNEL_STEPS,
    GroundTruth,
    SimulatedSession,
    Simulation,
    SimulationParams,
    simulate_sessions,
)
from stumble.simulate.attempts import AttemptTracker
from stumble.simulate.params import FieldErrorRule, FormVersion, LogNormal

ALMATY = ZoneInfo("Asia/Almaty")
START = dt.date(2026, 3, 2)  # the same Monday as the big_run fixture
SESSION_ID = re.compile(r"^s_[a-z]{20}$")
OPERATION_ID = re.compile(r"^op_[a-z]{16}$")
FINGERPRINT = re.compile(r"^[0-9a-f]{8,16}$")
LONG_DIGIT_RUN_BYTES = re.compile(rb"[0-9]{9,}")
EVENT_ID_MEMBER = re.compile(rb'"event_id":"[0-9a-f-]{36}",?')
JSON_STRING = re.compile(rb'"[^"]*"')


def small_run(plan: TrackingPlan, **overrides: Any) -> tuple[list[SimulatedSession], GroundTruth]:
    params = SimulationParams(**{"sessions": 600, "start_date": START, "seed": 7, **overrides})
    return Simulation(params, plan).run()


def as_dicts(session: SimulatedSession) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(event) for event in session.events]


# --- validity -----------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(plan: TrackingPlan) -> None:
    def encoded(seed: int) -> list[bytes]:
        params = SimulationParams(sessions=300, start_date=START, seed=seed)
        return [
            msgspec.json.encode([session.events, session.sent_at])
            for session in simulate_sessions(params, plan)
        ]

    assert encoded(3) == encoded(3)
    assert encoded(3) != encoded(4)


def test_every_event_is_a_valid_wire_event(
    big_run: tuple[list[SimulatedSession], GroundTruth],
) -> None:
    sessions, _ = big_run
    event_ids: set[str] = set()
    for session in sessions[:3000]:
        assert SESSION_ID.match(session.session_id)
        assert session.sent_at >= session.events[-1].ts
        stamps = [event.ts for event in session.events]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)
        for event in session.events:
            assert decode_event(msgspec.json.encode(event)) == event
            assert event.session_id == session.session_id
            event_ids.add(event.event_id)
            operation_id = getattr(event, "operation_id", None)
            assert operation_id is None or OPERATION_ID.match(operation_id)
            fingerprint = getattr(event, "fingerprint", None)
            assert fingerprint is None or FINGERPRINT.match(fingerprint)
    assert len(event_ids) == sum(len(session.events) for session in sessions[:3000])


def test_no_string_carries_a_run_of_nine_digits(
    big_run: tuple[list[SimulatedSession], GroundTruth],
) -> None:
    sessions, _ = big_run
    checked = 0
    for session in sessions:
        wire = EVENT_ID_MEMBER.sub(b"", msgspec.json.encode(session.events))
        # Identifiers hold no quotes or escapes, so a JSON string is exactly "...".
        strings = JSON_STRING.findall(wire)
        checked += len(strings)
        assert not any(LONG_DIGIT_RUN_BYTES.search(text) for text in strings)
    assert checked > 1_000_000


def test_events_stay_within_the_plan(
    plan: TrackingPlan, big_run: tuple[list[SimulatedSession], GroundTruth]
) -> None:
    sessions, _ = big_run
    seen_names: set[str] = set()
    for session in sessions[:5000]:
        for event in as_dicts(session):
            spec = plan.events[event["event_name"]]
            seen_names.add(event["event_name"])
            assert spec.kind == event["kind"]
            for field_name, allowed in spec.values.items():
                if field_name in event:
                    assert event[field_name] in allowed, (event["event_name"], field_name)
            for dimension, value in event.get("context", {}).items():
                assert value in plan.context[dimension]
            for param, value in event.get("params", {}).items():
                declared = spec.params[param]
                assert not declared.values or value in declared.values
                assert declared.max is None or value <= declared.max
    assert seen_names == set(plan.events)  # every declared event shows up in the traffic


def test_sessions_happen_in_almaty_working_hours_over_the_days(
    big_run: tuple[list[SimulatedSession], GroundTruth],
) -> None:
    sessions, truth = big_run
    first_day = dt.datetime.combine(START, dt.time(), ALMATY)
    last_day_end = first_day + dt.timedelta(days=14)
    starts = [
        dt.datetime.fromtimestamp(session.events[0].ts / 1000, ALMATY) for session in sessions
    ]
    assert all(9 <= moment.hour < 18 for moment in starts)
    assert all(first_day <= moment < last_day_end for moment in starts)
    assert starts == sorted(starts)  # chronological
    assert truth.last_ts is not None
    assert truth.last_ts < last_day_end.timestamp() * 1000
    by_weekday = Counter(moment.weekday() for moment in starts)
    assert by_weekday[5] < by_weekday[2] / 5  # a Saturday is quiet
    assert all(event.tz == "Asia/Almaty" for event in sessions[0].events)


def test_ui_version_switches_on_the_change_day(
    big_run: tuple[list[SimulatedSession], GroundTruth],
) -> None:
    sessions, truth = big_run
    change = dt.datetime.combine(START + dt.timedelta(days=7), dt.time(), ALMATY)
    for session in sessions:
        versions = {event.ui_version for event in session.events}
        expected = "2.0.0" if session.events[0].ts >= change.timestamp() * 1000 else "1.4.2"
        assert versions == {expected}
        assert session.facts.ui_version == expected
    before, after = truth.version("1.4.2").sessions, truth.version("2.0.0").sessions
    assert before + after == 20_000
    assert abs(before - after) < 600  # both weeks hold the same weekdays
    targets = {
        session.facts.ui_version: event.target
        for session in sessions
        for event in session.events
        if isinstance(event, ActionEvent) and event.event_name == "request_submit_clicked"
    }
    assert targets == {"1.4.2": "btn_send", "2.0.0": "btn_submit"}


# --- ground truth is true to the events ---------------------------------------------------


def matches(step: FunnelStep, event: dict[str, Any]) -> bool:
    if event["event_name"] != step.event:
        return False
    return all(event.get(key) == value for key, value in step.where.items())


def funnel_stamps(plan: TrackingPlan, scenario: str, events: list[dict[str, Any]]) -> list[int]:
    """The funnel's rules over every event of the stream that matches a step (not only those
    the generator marked with ``reach``): the truth must not miss a step event."""
    declared = plan.scenarios[scenario]
    tracker = AttemptTracker([s.optional for s in declared.steps], declared.window_ms)
    for event in events:
        steps = [i for i, step in enumerate(declared.steps) if matches(step, event)]
        if steps:
            tracker.event(event["ts"], steps)
    return [ts for ts in tracker.reached() if ts is not None]


def test_ground_truth_equals_an_independent_recount_of_the_events(
    plan: TrackingPlan, big_run: tuple[list[SimulatedSession], GroundTruth]
) -> None:
    sessions, truth = big_run
    for version in ("1.4.2", "2.0.0"):
        mine = [s for s in sessions if s.events[0].ui_version == version]
        segment = truth.version(version)
        for scenario in FUNNEL_STEPS:
            stamps = [funnel_stamps(plan, scenario, as_dicts(s)) for s in mine]
            funnel = segment.funnels[scenario]
            reached = tuple(
                sum(len(s) > i for s in stamps) for i in range(len(FUNNEL_STEPS[scenario]))
            )
            assert funnel.reached == reached, scenario
            for index in range(1, len(reached)):
                durations = [s[index] - s[index - 1] for s in stamps if len(s) > index]
                summary = funnel.step_times[index]
                assert summary.n == len(durations)
                if durations:
                    assert summary.median == quantile(durations, 0.5)
                    assert summary.p95 == quantile(durations, 0.95)
        # field errors: sessions with an iin_bin format error among those that entered step 2
        with_error = sum(
            any(
                e["event_name"] == "field_error"
                and e["field_id"] == "iin_bin"
                and e["error_type"] == "format"
                for e in as_dicts(s)
            )
            for s in mine
        )
        iin = segment.field_error("iin_bin", "format")
        assert iin is not None
        assert iin.sessions == with_error
        assert iin.sessions_entered == segment.funnels["create_service_request"].reached[1]
        # operations: request_submit durations as sent
        submit = [
            e["duration_ms"]
            for s in mine
            for e in as_dicts(s)
            if e["kind"] == "operation_end"
            and e["operation"] == "request_submit"
            and e["status"] == "success"
        ]
        assert segment.operations["request_submit"].duration_success.median == quantile(submit, 0.5)
        kinds = Counter(e["kind"] for s in mine for e in as_dicts(s))
        assert segment.events_by_kind == dict(kinds)


# --- ground truth is true to the params -----------------------------------------------------


def test_ground_truth_recovers_the_seed_story(
    big_run: tuple[list[SimulatedSession], GroundTruth],
) -> None:
    _, truth = big_run
    before, after = truth.version("1.4.2"), truth.version("2.0.0")
    form_before = before.funnels["create_service_request"]
    form_after = after.funnels["create_service_request"]
    assert form_before.drop_off(2) == pytest.approx(0.40, abs=0.02)
    assert form_after.drop_off(2) == pytest.approx(0.15, abs=0.02)
    for funnel in (form_before, form_after):
        assert funnel.drop_off(1) == pytest.approx(0.10, abs=0.02)
        assert funnel.drop_off(3) == pytest.approx(0.05, abs=0.02)
    iin_before = before.field_error("iin_bin", "format")
    iin_after = after.field_error("iin_bin", "format")
    assert iin_before is not None
    assert iin_after is not None
    assert iin_before.share == pytest.approx(0.70, abs=0.02)
    assert iin_after.share == pytest.approx(0.10, abs=0.02)
    assert 2.0 <= iin_before.events / iin_before.sessions <= 4.0  # 2-4 failed attempts each
    step_2_before = form_before.step_times[2].median
    step_2_after = form_after.step_times[2].median
    assert step_2_before is not None
    assert step_2_after is not None
    assert 80_000 <= step_2_before <= 100_000  # "median time on the step grows to 90 seconds"
    assert 30_000 <= step_2_after <= 40_000
    submit_route = truth.all.api_routes["/api/requests"]
    assert submit_route.median is not None
    assert submit_route.median == pytest.approx(1_200, rel=0.1)
    assert submit_route.p95 == pytest.approx(4_000, rel=0.15)
    export_route = truth.all.api_routes["/api/reports/export"]
    assert export_route.median is not None
    assert export_route.median > 4 * submit_route.median  # the slow route stands out
    conversion_before, conversion_after = form_before.conversion(), form_after.conversion()
    assert conversion_before is not None
    assert conversion_after is not None
    assert conversion_after - conversion_before > 0.15


def test_other_signals_are_present_and_plausible(
    big_run: tuple[list[SimulatedSession], GroundTruth],
) -> None:
    _, truth = big_run
    everything = truth.all
    assert everything.sessions == 20_000
    assert set(everything.vitals) >= {"LCP", "FCP", "TTFB", "CLS", "INP", "long_task"}
    lcp = everything.vitals["LCP"]
    assert lcp.p75 is not None
    assert 1_800 < lcp.p75 < 3_500
    js = everything.js_errors
    assert set(js) == {"9f3ac2e1b7d40a5c", "4be1d0a9c3f2", "c7d2e8f1a0b3", "a1b2c3d4e5f6a7b8"}
    assert "a1b2c3d4e5f6a7b8" not in truth.version("1.4.2").js_errors  # new in 2.0.0
    assert sum(error.sessions for error in js.values()) == pytest.approx(0.04 * 20_000, rel=0.15)
    assert {"back", "cancel", "close", "retry"} <= set(everything.navigation)
    assert everything.errors_by_kind.keys() == {"js", "http", "timeout"}
    role_share = everything.context["role"]["operator"] / everything.sessions
    assert role_share == pytest.approx(0.45, abs=0.02)
    for scenario in ("login", "search", "approval", "report_export"):
        assert everything.funnels[scenario].reached[-1] > 0


# --- A/A mode -----------------------------------------------------------------------------


def test_aa_flag_splits_sessions_without_an_effect(plan: TrackingPlan) -> None:
    sessions, truth = small_run(
        plan, sessions=8_000, seed=11, aa_flag="aa_check", ui_version_change_day=None
    )
    treatment, control = truth.segments["aa:treatment"], truth.segments["aa:control"]
    assert treatment.sessions + control.sessions == 8_000
    assert abs(treatment.sessions - control.sessions) < 300
    for session in sessions:
        flagged = {tuple(event.feature_flags) for event in session.events}
        assert flagged == ({("aa_check",)} if session.facts.aa_arm == "treatment" else {()})
    a = control.funnels["create_service_request"]
    b = treatment.funnels["create_service_request"]
    test = two_proportion_test(a.reached[3], a.reached[0], b.reached[3], b.reached[0])
    assert verdict(test.diff, (test.ci_low, test.ci_high), test.p_value, True) == NO_CHANGE
    times = {
        arm: [
            s.facts.funnel_ts["create_service_request"][2]
            - s.facts.funnel_ts["create_service_request"][1]
            for s in sessions
            if s.facts.aa_arm == arm
            and len(s.facts.funnel_ts.get("create_service_request", [])) > 2
        ]
        for arm in ("control", "treatment")
    }
    assert mann_whitney_u(times["control"], times["treatment"]).p_value > 0.05


# --- params -------------------------------------------------------------------------------


def test_params_round_trip_through_json() -> None:
    params = SimulationParams(sessions=10, start_date=START, aa_flag="aa_check")
    assert SimulationParams.from_json(params.to_json()) == params
    assert msgspec.json.decode(params.to_json())["start_date"] == "2026-03-02"


def test_every_param_is_documented() -> None:
    _, components = msgspec.json.schema_components([SimulationParams])
    undocumented = [
        f"{name}.{field}"
        for name, schema in components.items()
        for field, spec in schema.get("properties", {}).items()
        if not spec.get("description")
        and name not in {"ContextParams"}  # its fields are the plan's context dimensions
    ]
    assert undocumented == []


def test_bad_params_are_refused(plan: TrackingPlan) -> None:
    with pytest.raises(msgspec.ValidationError):
        SimulationParams.from_json(b'{"sessions": 0}')
    with pytest.raises(msgspec.ValidationError, match="p95"):
        SimulationParams.from_json(b'{"send_delay": {"median": 10, "p95": 5}}')
    with pytest.raises(msgspec.ValidationError):
        SimulationParams.from_json(b'{"environment": "prod"}')  # not a simulation knob
    impossible = FormVersion(
        drop_off={2: 0.9},
        field_errors=(FieldErrorRule("iin_bin", "format", 2, 0.7),),
        fill={1: LogNormal(1_000, 2_000), 2: LogNormal(1_000, 2_000), 3: LogNormal(1_000, 2_000)},
        correction=LogNormal(1_000, 2_000),
        validation_wait=LogNormal(100, 200),
    )
    form = msgspec.structs.replace(
        SimulationParams().request_form, versions={"1.4.2": impossible, "2.0.0": impossible}
    )
    with pytest.raises(ValueError, match="error_abandon_lift"):
        next(simulate_sessions(SimulationParams(start_date=START, request_form=form), plan))
    bad_roles = msgspec.structs.replace(SimulationParams().context, role={"ceo": 1.0})
    with pytest.raises(ValueError, match="not in the plan"):
        next(simulate_sessions(SimulationParams(start_date=START, context=bad_roles), plan))


def test_start_date_defaults_to_the_days_before_today(plan: TrackingPlan) -> None:
    simulation = Simulation(SimulationParams(sessions=5), plan, today=dt.date(2026, 5, 10))
    assert simulation.params.start_date == dt.date(2026, 4, 26)
    _, truth = simulation.run()
    assert truth.params.start_date == dt.date(2026, 4, 26)
    assert truth.first_ts is not None
    first = dt.datetime.fromtimestamp(truth.first_ts / 1000, ALMATY).date()
    assert dt.date(2026, 4, 26) <= first < dt.date(2026, 5, 10)


def test_ground_truth_serialises(plan: TrackingPlan) -> None:
    _, truth = small_run(plan, sessions=200)
    assert msgspec.json.decode(truth.to_json(), type=GroundTruth) == truth


def test_lognormal_means_what_it_says() -> None:
    distribution = LogNormal(1_200, 4_000)
    assert math.exp(distribution.mu) == pytest.approx(1_200)
    assert math.exp(distribution.mu + 1.6448536269514722 * distribution.sigma) == pytest.approx(
        4_000
    )
