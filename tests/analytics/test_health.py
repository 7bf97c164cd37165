"""Data health finds each kind of trouble planted in otherwise clean traffic."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from tests.analytics.conftest import START, TIME_RULES, Dataset, write_key

from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.admission import AdmissionRules
from stumble.analytics.health import HealthResult, run_health, volume_alerts
from stumble.analytics.queries import HealthQuery, PlanFacts, TimeRange
from stumble.collector.enrich import Enricher
from stumble.collector.offline import OfflineIngest
from stumble.collector.quarantine import Quarantine
from stumble.events import (
    ActionEvent,
    Event,
    FieldErrorEvent,
    OperationEndEvent,
    OperationStartEvent,
)
from stumble.plan.model import EventSpec, TrackingPlan
from stumble.simulate import SimulationParams, simulate_sessions
from stumble.storage import DuckDBStore, IngestCount

HOUR_MS = 3_600_000
NOON = int(dt.datetime.combine(START, dt.time(12), dt.UTC).timestamp() * 1000)
# From before the simulated days to today: the loader records duplicates when it loads.
WEEK = TimeRange.days(START - dt.timedelta(days=1), dt.datetime.now(dt.UTC).date())


def common(ts: int, session: str = "s_healthcheck", **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "ts": ts,
        "session_id": session,
        "screen_id": "request_create",
        "schema_version": 3,
        "ui_version": "1.4.2",
    }
    base.update(fields)
    return base


@dataclass
class Messy:
    store: DuckDBStore
    replayed: int


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory, plan: TrackingPlan) -> Iterator[Messy]:
    work: Path = tmp_path_factory.mktemp("messy")
    store = DuckDBStore(work / "stumble.duckdb", threads=2)
    quarantine = Quarantine()
    ingest = OfflineIngest(
        rules=AdmissionRules(plan, TIME_RULES),
        max_events=500,
        key=write_key(),
        enricher=Enricher(SessionKeyRing(work / "secrets"), EventIdKey(work / "secrets")),
        store=store,
        work_dir=work / "segments",
        quarantine=quarantine,
    )
    params = SimulationParams(sessions=300, days=3, start_date=START, seed=5)
    sessions = list(simulate_sessions(params, plan))
    for session in sessions:
        ingest.add(session.events, sent_at=session.sent_at, received_at_ms=session.sent_at + 40)
    ingest.flush()
    # A client retry reaching storage again: every event of the first ten sessions.
    replayed = sessions[:10]
    for session in replayed:
        ingest.add(session.events, sent_at=session.sent_at, received_at_ms=session.sent_at + 90)
    ingest.flush()
    planted: list[Event] = [
        ActionEvent(**common(NOON, event_name="not_in_plan", action_id="x")),  # type: ignore[arg-type]
        ActionEvent(**common(NOON + 1, event_name="filter_applied", action_id="x",  # type: ignore[arg-type]
                             target="tin_870412300125")),  # redacted: a digit run
        ActionEvent(**common(NOON + 2, event_name="filter_applied", action_id="x",  # type: ignore[arg-type]
                             schema_version=1)),  # below the plan's minimum of 2
        ActionEvent(**common(NOON + 3, event_name="filter_applied", action_id="x",  # type: ignore[arg-type]
                             ui_version="2.1.0-test")),  # test traffic under the prod key
        OperationEndEvent(**common(NOON + 4, event_name="operation_end", operation_id="op_orphan",  # type: ignore[arg-type]
                                   operation="search", status="success", duration_ms=10.0)),
        OperationStartEvent(**common(NOON + 9, event_name="operation_start",  # type: ignore[arg-type]
                                     operation_id="op_backwards", operation="search")),
        OperationEndEvent(**common(NOON + 5, event_name="operation_end",  # type: ignore[arg-type]
                                   operation_id="op_backwards", operation="search",
                                   status="success", duration_ms=5.0)),
    ]  # fmt: skip
    ingest.add(planted, sent_at=NOON + 100, received_at_ms=NOON + 140)
    # A client whose clock is two hours behind: its times are corrected by the skew.
    late = [
        FieldErrorEvent(**common(NOON - 2 * HOUR_MS, session="s_lateclock",  # type: ignore[arg-type]
                                 event_name="field_error", form_id="service_request",
                                 field_id="iin_bin", error_type="format", attempt=1, step=2))
    ]  # fmt: skip
    ingest.add(late, sent_at=NOON - 2 * HOUR_MS + 50, received_at_ms=NOON + 60)
    ingest.close()
    store.add_ingest_counts(
        [
            IngestCount(
                day=dt.date.fromisoformat(key.day),
                environment=key.environment,
                event_name=key.event_name,
                outcome="rejected" if key.outcome == "rejected" else "redacted",
                reason=key.reason,
                field_path=key.field_path,
                count=count,
            )
            for key, count in quarantine.drain().items()
        ]
    )
    yield Messy(store, sum(len(s.events) for s in replayed))
    store.close()


def health(messy: Messy, plan: TrackingPlan) -> HealthResult:
    return run_health(messy.store, HealthQuery.from_plan(plan, WEEK)).data


def test_volumes_rejections_redactions_and_duplicates(messy: Messy, plan: TrackingPlan) -> None:
    result = health(messy, plan)
    assert sum(d.events for d in result.per_day) == messy.store.count_events()
    assert all(d.environment == "prod" for d in result.per_day)
    assert {(r.reason, r.event_name) for r in result.rejected} == {
        ("plan.unknown_event", "(unknown)")
    }
    assert [(r.reason, r.field_path, r.count) for r in result.redactions] == [
        ("pii.digit_run", "$.target", 1)
    ]
    assert sum(d.redacted_events for d in result.per_day) == 1
    assert sum(d.duplicates for d in result.duplicates) == messy.replayed


def test_clock_skew_timers_plan_drift_versions_and_test_data(
    messy: Messy, plan: TrackingPlan
) -> None:
    result = health(messy, plan)
    (skew,) = result.clock_skew
    assert skew.max_abs_ms == pytest.approx(2 * HOUR_MS, abs=100)
    assert 0 < skew.buckets["beyond_1h"] < 0.01
    search = next(t for t in result.timers if t.operation == "search")
    assert (search.ends_without_start, search.negative) == (1, 1)
    assert search.duration_mismatch == 0
    rejected = [m for m in result.not_in_plan if m.source == "rejected"]
    assert [m.problem for m in rejected] == ["plan.unknown_event"]
    statuses = {(v.schema_version, v.status) for v in result.schema_versions}
    assert statuses == {(1, "stale"), (3, "current")}
    (hint,) = result.test_data
    assert (hint.field, hint.value, hint.events) == ("ui_version", "2.1.0-test", 1)
    assert hint.sessions is None  # one session: a small cell


def test_rows_a_changed_plan_no_longer_allows(messy: Messy, plan: TrackingPlan) -> None:
    events = dict(plan.events)
    del events["filter_applied"]  # the event was renamed in the plan
    field_error = events["field_error"]
    values = dict(field_error.values)
    values["field_id"] = tuple(v for v in values["field_id"] if v != "iin_bin")
    events["field_error"] = msgspec.structs.replace(field_error, values=values)
    events["export_started"] = EventSpec(kind="custom")  # the kind changed
    changed = msgspec.structs.replace(plan, events=events)
    result = run_health(messy.store, HealthQuery.from_plan(changed, WEEK)).data
    stored = {
        (m.problem, m.event_name, m.field) for m in result.not_in_plan if m.source == "stored"
    }
    assert ("unknown_event", "filter_applied", "") in stored
    assert ("kind_mismatch", "export_started", "") in stored
    assert ("value_not_allowed", "field_error", "field_id") in stored


# --- gaps and drops -------------------------------------------------------------------------

MONDAY = dt.date(2026, 3, 2)


def weekdays(weeks: int, per_day: int = 100, env: str = "prod") -> dict[dt.date, int]:
    """A working-week pattern: ``per_day`` events Monday to Friday, nothing at weekends."""
    days = (MONDAY + dt.timedelta(days=n) for n in range(7 * weeks))
    return {day: per_day for day in days if day.weekday() < 5}


def alerts_for(counts: dict[dt.date, int], env: str = "prod") -> list[tuple[str, str, int]]:
    rows = [{"day": day, "environment": env, "events": n} for day, n in counts.items()]
    window = TimeRange.days(MONDAY, MONDAY + dt.timedelta(days=34))
    query = HealthQuery(window, plan=_PLAN_FACTS)
    found = volume_alerts(rows, query, today=MONDAY + dt.timedelta(days=35))
    return [(a.day.isoformat(), a.kind, a.events) for a in found]


_PLAN_FACTS = PlanFacts(
    schema_version=1, min_schema_version=None, event_kinds=(), allowed_values=()
)


def test_a_quiet_weekend_is_not_an_alarm() -> None:
    assert alerts_for(weekdays(5)) == []


def test_a_weekday_with_nothing_is_a_gap_and_one_at_a_third_is_a_drop() -> None:
    counts = weekdays(5, per_day=1000)
    counts.pop(dt.date(2026, 3, 25))  # Wednesday of week 4: nothing arrived
    counts[dt.date(2026, 3, 31)] = 300  # Tuesday of week 5: under a third of usual
    counts[dt.date(2026, 4, 2)] = 600  # Thursday of week 5: lower, not alarming
    assert alerts_for(counts) == [("2026-03-25", "gap", 0), ("2026-03-31", "drop", 300)]


def test_the_first_week_and_small_volumes_are_not_judged() -> None:
    counts = weekdays(5, per_day=20)  # too few events to tell a gap from a quiet day
    counts[dt.date(2026, 3, 31)] = 0
    assert alerts_for(counts) == []
    counts = weekdays(5, per_day=200)  # a gap, but not yet enough to call a drop
    counts[dt.date(2026, 3, 31)], counts[dt.date(2026, 4, 1)] = 0, 40
    assert alerts_for(counts) == [("2026-03-31", "gap", 0)]
    late_start = {d: n for d, n in weekdays(5).items() if d >= dt.date(2026, 3, 16)}
    late_start.pop(dt.date(2026, 3, 17))  # the environment's first week: no history yet
    assert alerts_for(late_start) == []


def test_the_simulated_weeks_have_no_gaps_until_the_traffic_stops(seed_story: Dataset) -> None:
    two_weeks = TimeRange.days(START, START + dt.timedelta(days=13))
    report = run_health(seed_story.store, HealthQuery.from_plan(seed_story.plan, two_weeks)).data
    assert report.volume_alerts == []
    after = TimeRange.days(START, START + dt.timedelta(days=15))  # the simulation is days 0-13
    report = run_health(seed_story.store, HealthQuery.from_plan(seed_story.plan, after)).data
    prod = [a for a in report.volume_alerts if a.environment == "prod"]
    assert [((a.day - START).days, a.kind) for a in prod] == [(14, "gap"), (15, "gap")]
    assert any(t.title == "Gaps and drops in volume" for t in report.tables())
