"""Ground truth: what the generated traffic actually contains, to check reports against.

Built from each session's recorded facts (the ts and values of the events it emitted), not
from the params, so sampling noise is included: a report computed from the same events must
match these numbers exactly, and the params only within sampling error.

Definitions (the analytics layer must use the same ones to compare with ``==``):

* Funnels count attempts (``attempts.AttemptTracker``, the report's rules): a session reaches
  step i when its furthest attempt did; ``reached[i]`` counts sessions.
* ``step_times[i]`` (i >= 1): ts of step i minus ts of step i-1 in the first attempt that
  reached the session's furthest step, over sessions reaching step i.
  For create_service_request, step_times[2] is "time on form step 2".
* Quantiles are ``stats.quantile`` (= DuckDB ``quantile_cont``) over those durations in ms.
* A field error's ``share`` is sessions with at least one such error divided by sessions that
  entered the form step (for service_request step 2: sessions that completed step 1).
* Segments: ``all``, ``ui_version:<v>`` per version, and ``aa:treatment`` / ``aa:control``
  in A/A mode (the flag is set on the treatment half).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import msgspec

from stumble.analytics.stats import quantile_of_sorted
from stumble.events import CONTEXT_FIELDS, BaseEvent
from stumble.simulate.params import SimulationParams
from stumble.simulate.session import FUNNEL_STEPS, SessionFacts, SimulatedSession

ALL: Final = "all"


class Summary(msgspec.Struct, frozen=True):
    """Size and quantiles of a sample; the quantiles are None for an empty sample."""

    n: int
    mean: float | None = None
    median: float | None = None
    p75: float | None = None
    p95: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            return cls(n=0)
        return cls(
            n=len(ordered),
            mean=sum(ordered) / len(ordered),
            median=quantile_of_sorted(ordered, 0.5),
            p75=quantile_of_sorted(ordered, 0.75),
            p95=quantile_of_sorted(ordered, 0.95),
        )


class FunnelTruth(msgspec.Struct, frozen=True):
    steps: tuple[str, ...]
    reached: tuple[int, ...]
    step_times: tuple[Summary, ...]
    """Index i: time from step i-1 to step i; index 0 is empty by definition."""
    time_to_convert: Summary
    """From the first step to the last, over converted sessions."""

    def conversion(self) -> float | None:
        return self.reached[-1] / self.reached[0] if self.reached[0] else None

    def drop_off(self, step: int) -> float | None:
        """Share of sessions reaching step ``step - 1`` that do not reach ``step``."""
        before = self.reached[step - 1]
        return 1.0 - self.reached[step] / before if before else None


class FieldErrorTruth(msgspec.Struct, frozen=True):
    form_id: str
    field_id: str
    error_type: str
    step: int
    events: int
    sessions: int
    sessions_entered: int
    """Sessions that were on this form step: the share's denominator."""

    @property
    def share(self) -> float | None:
        return self.sessions / self.sessions_entered if self.sessions_entered else None


class OperationTruth(msgspec.Struct, frozen=True):
    ended: int
    by_status: dict[str, int]
    duration_success: Summary
    duration_all: Summary


class ErrorTruth(msgspec.Struct, frozen=True):
    events: int
    sessions: int


class SegmentTruth(msgspec.Struct, frozen=True):
    sessions: int
    events: int
    events_by_kind: dict[str, int]
    context: dict[str, dict[str, int]]
    """Sessions per value of each context dimension."""
    funnels: dict[str, FunnelTruth]
    field_errors: tuple[FieldErrorTruth, ...]
    operations: dict[str, OperationTruth]
    api_routes: dict[str, Summary]
    """Server time per route template (the 'api' vital)."""
    vitals: dict[str, Summary]
    errors_by_kind: dict[str, int]
    js_errors: dict[str, ErrorTruth]
    """By fingerprint."""
    sessions_with_error: int
    navigation: dict[str, int]

    def field_error(
        self, field_id: str, error_type: str, *, form_id: str = "service_request"
    ) -> FieldErrorTruth | None:
        for truth in self.field_errors:
            if (truth.form_id, truth.field_id, truth.error_type) == (form_id, field_id, error_type):
                return truth
        return None


class GroundTruth(msgspec.Struct, frozen=True):
    params: SimulationParams
    first_ts: int | None
    last_ts: int | None
    segments: dict[str, SegmentTruth]

    @property
    def all(self) -> SegmentTruth:
        return self.segments[ALL]

    def version(self, ui_version: str) -> SegmentTruth:
        return self.segments[f"ui_version:{ui_version}"]

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)


@dataclass(slots=True)
class _SegmentAccumulator:
    sessions: int = 0
    events: int = 0
    events_by_kind: Counter[type[BaseEvent]] = field(default_factory=Counter)
    context: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    reached: dict[str, list[int]] = field(default_factory=dict)
    step_times: defaultdict[tuple[str, int], list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )
    convert_times: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    steps_entered: Counter[tuple[str, int]] = field(default_factory=Counter)
    field_error_events: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    field_error_sessions: Counter[tuple[str, str, str, int]] = field(default_factory=Counter)
    operation_status: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    operation_success: defaultdict[str, list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    operation_all: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    api: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    vitals: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    js_events: Counter[str] = field(default_factory=Counter)
    js_sessions: Counter[str] = field(default_factory=Counter)
    sessions_with_error: int = 0
    navigation: Counter[str] = field(default_factory=Counter)

    def add(self, session: SimulatedSession, kinds: Counter[type[BaseEvent]]) -> None:
        facts = session.facts
        self.sessions += 1
        self.events += len(session.events)
        self.events_by_kind.update(kinds)
        for name in CONTEXT_FIELDS:
            value = getattr(facts.context, name)
            if value is not None:
                self.context[name][value] += 1
        self._add_funnels(facts)
        self._add_forms(facts)
        self._add_operations(facts)
        self._add_errors(facts)
        for route, value in facts.api:
            self.api[route].append(value)
        for metric, value in facts.vitals:
            self.vitals[metric].append(value)
        self.navigation.update(facts.navigation)

    def _add_funnels(self, facts: SessionFacts) -> None:
        for scenario, tracker in facts.attempts.items():
            stamps = [int(ts) for ts in tracker.reached() if ts is not None]
            counts = self.reached.setdefault(scenario, [0] * len(FUNNEL_STEPS[scenario]))
            for index, stamp in enumerate(stamps):
                counts[index] += 1
                if index:
                    self.step_times[scenario, index].append(stamp - stamps[index - 1])
            if len(stamps) == len(FUNNEL_STEPS[scenario]):
                self.convert_times[scenario].append(stamps[-1] - stamps[0])

    def _add_forms(self, facts: SessionFacts) -> None:
        self.steps_entered.update(set(facts.steps_entered))
        self.field_error_events.update(facts.field_errors)
        self.field_error_sessions.update(set(facts.field_errors))

    def _add_operations(self, facts: SessionFacts) -> None:
        for operation, status, duration in facts.operations:
            self.operation_status[operation][status] += 1
            self.operation_all[operation].append(duration)
            if status == "success":
                self.operation_success[operation].append(duration)

    def _add_errors(self, facts: SessionFacts) -> None:
        if facts.errors:
            self.sessions_with_error += 1
        for kind, key in facts.errors:
            self.errors_by_kind[kind] += 1
            if kind == "js":
                self.js_events[key] += 1
        self.js_sessions.update({key for kind, key in facts.errors if kind == "js"})

    def build(self) -> SegmentTruth:
        return SegmentTruth(
            sessions=self.sessions,
            events=self.events,
            events_by_kind=dict(
                sorted(
                    (str(kind.__struct_config__.tag), n) for kind, n in self.events_by_kind.items()
                )
            ),
            context={name: dict(sorted(counts.items())) for name, counts in self.context.items()},
            funnels={scenario: self._funnel(scenario) for scenario in FUNNEL_STEPS},
            field_errors=self._field_errors(),
            operations={
                operation: OperationTruth(
                    ended=sum(statuses.values()),
                    by_status=dict(sorted(statuses.items())),
                    duration_success=Summary.of(self.operation_success[operation]),
                    duration_all=Summary.of(self.operation_all[operation]),
                )
                for operation, statuses in sorted(self.operation_status.items())
            },
            api_routes={route: Summary.of(values) for route, values in sorted(self.api.items())},
            vitals={metric: Summary.of(values) for metric, values in sorted(self.vitals.items())},
            errors_by_kind=dict(sorted(self.errors_by_kind.items())),
            js_errors={
                fingerprint: ErrorTruth(events, self.js_sessions[fingerprint])
                for fingerprint, events in sorted(self.js_events.items())
            },
            sessions_with_error=self.sessions_with_error,
            navigation=dict(sorted(self.navigation.items())),
        )

    def _funnel(self, scenario: str) -> FunnelTruth:
        steps = FUNNEL_STEPS[scenario]
        return FunnelTruth(
            steps=steps,
            reached=tuple(self.reached.get(scenario, [0] * len(steps))),
            step_times=tuple(
                Summary.of(self.step_times[scenario, index]) if index else Summary(n=0)
                for index in range(len(steps))
            ),
            time_to_convert=Summary.of(self.convert_times[scenario]),
        )

    def _field_errors(self) -> tuple[FieldErrorTruth, ...]:
        return tuple(
            FieldErrorTruth(
                form_id=form_id,
                field_id=field_id,
                error_type=error_type,
                step=step,
                events=events,
                sessions=self.field_error_sessions[form_id, field_id, error_type, step],
                sessions_entered=self.steps_entered[form_id, step],
            )
            for (form_id, field_id, error_type, step), events in sorted(
                self.field_error_events.items()
            )
        )


class GroundTruthBuilder:
    """Feed every session as it is generated (or sent), then ``build()``."""

    def __init__(self, params: SimulationParams) -> None:
        self._params = params
        self._segments: defaultdict[str, _SegmentAccumulator] = defaultdict(_SegmentAccumulator)
        self._segments[ALL] = _SegmentAccumulator()
        self._first_ts: int | None = None
        self._last_ts: int | None = None

    def add(self, session: SimulatedSession) -> None:
        if session.events:
            first, last = session.events[0].ts, session.events[-1].ts
            self._first_ts = first if self._first_ts is None else min(self._first_ts, first)
            self._last_ts = last if self._last_ts is None else max(self._last_ts, last)
        # Counting classes runs in C; they are turned into kind names once, at build time.
        kinds = Counter(map(type, session.events))
        for segment in self._segment_names(session.facts):
            self._segments[segment].add(session, kinds)

    @staticmethod
    def _segment_names(facts: SessionFacts) -> list[str]:
        names = [ALL, f"ui_version:{facts.ui_version}"]
        if facts.aa_arm is not None:
            names.append(f"aa:{facts.aa_arm}")
        return names

    def build(self) -> GroundTruth:
        return GroundTruth(
            params=self._params,
            first_ts=self._first_ts,
            last_ts=self._last_ts,
            segments={name: acc.build() for name, acc in sorted(self._segments.items())},
        )


def collect_ground_truth(
    sessions: Iterable[SimulatedSession], params: SimulationParams
) -> GroundTruth:
    builder = GroundTruthBuilder(params)
    for session in sessions:
        builder.add(session)
    return builder.build()
