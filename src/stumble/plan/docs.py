"""The tracking plan as a Markdown catalog people read before instrumenting or analysing.

Events are grouped by the team that owns them, each with its kind, what it means, the values
its fields may take and its parameters with types, units and bounds; then the scenarios
(funnel steps, window, thresholds), the context dimensions, the aliases, and the fields every
event carries. Field lists come from the wire Structs, so the catalog cannot drift from the
collector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import msgspec

from stumble.events import CONTEXT_FIELDS, KINDS
from stumble.plan.fields import WireField, wire_fields
from stumble.plan.model import (
    EventSpec,
    FunnelStep,
    ParamSpec,
    Scenario,
    Thresholds,
    TrackingPlan,
    describe_window,
)

PARAM_UNITS: Final = {"duration_ms": "milliseconds", "bytes": "bytes"}

THRESHOLD_LABELS: Final = {
    "min_conversion": "Minimum conversion",
    "max_step_drop_off": "Maximum drop-off at any step",
    "max_field_error_share": "Maximum share of sessions with a field error",
    "max_step_p95_ms": "Maximum p95 time per step",
    "max_operation_p95_ms": "Maximum p95 operation time",
    "max_error_rate": "Maximum error rate",
}


def render_catalog(plan: TrackingPlan) -> str:
    """The whole catalog as Markdown. The plan must be valid (``validate_plan``)."""
    sections = [
        _header(plan),
        _events_section(plan),
        _scenarios_section(plan),
        _context_section(plan),
        _aliases_section(plan),
        _common_fields_section(),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


def _header(plan: TrackingPlan) -> str:
    owners = {spec.owner for spec in plan.events.values()}
    versions = f"Schema version {plan.schema_version}"
    if plan.min_schema_version is not None:
        versions += f"; events older than version {plan.min_schema_version} are refused"
    return "\n\n".join(
        [
            "# Tracking plan",
            (
                f"{versions}. {_count(len(plan.events), 'event')} owned by "
                f"{_count(len(owners), 'team')}, {_count(len(plan.scenarios), 'scenario')}."
            ),
            (
                "Every value sent is an identifier or one of the listed values: there is no "
                "free-text field, so names, comments and field contents have nowhere to go."
            ),
        ]
    )


# --- events -------------------------------------------------------------------------------


def _events_section(plan: TrackingPlan) -> str:
    by_owner: dict[str, list[str]] = {}
    for name, spec in plan.events.items():
        by_owner.setdefault(spec.owner, []).append(name)
    blocks = ["## Events by owner"]
    for owner in sorted(by_owner):
        blocks.append(f"### {owner}")
        blocks += [_event_block(plan, name, plan.events[name]) for name in by_owner[owner]]
    return "\n\n".join(blocks)


def _event_block(plan: TrackingPlan, name: str, spec: EventSpec) -> str:
    title = f"#### `{name}` · kind `{spec.kind}`" + (" · **deprecated**" if spec.deprecated else "")
    parts = [title, _paragraph(spec.description or "_No description._")]
    used_by = [s for s, scenario in plan.scenarios.items() if _uses(scenario, name)]
    if used_by:
        parts.append("Used by scenarios: " + ", ".join(f"`{s}`" for s in used_by) + ".")
    parts.append(_kind_fields_table(spec))
    if spec.params:
        parts.append(_params_table(spec.params))
    return "\n\n".join(parts)


def _uses(scenario: Scenario, event: str) -> bool:
    return any(step.event == event for step in scenario.steps)


def _kind_fields_table(spec: EventSpec) -> str:
    fields = [f for f in wire_fields(spec.kind).values() if not f.common or f.name in spec.values]
    fields = [f for f in fields if f.name != "params"]  # custom parameters get their own table
    if not fields:
        return "Only the fields every event carries."
    rows = [
        [f"`{f.name}`", _field_type(f), "yes" if f.required else "no", _allowed(f, spec)]
        for f in fields
    ]
    return _table(["field", "type", "required", "allowed values"], rows)


def _allowed(field: WireField, spec: EventSpec) -> str:
    if field.name in spec.values:
        return _codes(spec.values[field.name])
    if field.shape == "choice":
        return _codes(field.choices)
    if field.shape in ("identifier", "identifier_list"):
        return "any identifier"
    return ""


def _field_type(field: WireField) -> str:
    if field.shape in ("int", "number"):
        noun = "integer" if field.shape == "int" else "number"
        return f"{noun} {_range(field.minimum, field.maximum)}".rstrip()
    words = {
        "identifier_list": "list of identifiers",
        "choice": "one of a fixed list",
        "string": "text, format checked by the collector",
        "object": "object, see Context dimensions" if field.name == "context" else "object",
    }
    return words.get(field.shape, field.shape)


def _params_table(params: dict[str, ParamSpec]) -> str:
    rows = [
        [
            f"`{name}`",
            param.type,
            PARAM_UNITS.get(param.type, ""),
            _range(param.min, param.max),
            "yes" if param.required else "no",
            _codes(param.values) if param.values else "",
            _cell(param.description),
        ]
        for name, param in params.items()
    ]
    headers = ["parameter", "type", "unit", "bounds", "required", "values", "description"]
    return "Parameters:\n\n" + _table(headers, rows)


# --- scenarios ----------------------------------------------------------------------------


def _scenarios_section(plan: TrackingPlan) -> str:
    if not plan.scenarios:
        return ""
    blocks = ["## Scenarios"]
    blocks += [_scenario_block(name, scenario) for name, scenario in plan.scenarios.items()]
    return "\n\n".join(blocks)


def _scenario_block(name: str, scenario: Scenario) -> str:
    facts = [f"owner `{scenario.owner}`", f"window {describe_window(scenario.window_ms)}"]
    if scenario.form_id:
        facts.append(f"form `{scenario.form_id}`")
    if scenario.operation:
        facts.append(f"operation `{scenario.operation}`")
    if scenario.order != "ordered":
        facts.append(f"order {scenario.order}")
    if scenario.exclusions:
        facts.append("excluding " + ", ".join(f"`{step.label}`" for step in scenario.exclusions))
    parts = [f"### `{name}`"]
    if scenario.description:
        parts.append(_paragraph(scenario.description))
    parts.append(_capitalize("; ".join(facts)) + ".")
    parts.append("\n".join(_step_line(i, step) for i, step in enumerate(scenario.steps, 1)))
    thresholds = _thresholds_table(scenario.thresholds)
    if thresholds:
        parts.append(thresholds)
    return "\n\n".join(parts)


def _step_line(number: int, step: FunnelStep) -> str:
    line = f"{number}. **{step.label}**: `{step.event}`"
    if step.where:
        conditions = ", ".join(f"{key} = `{_scalar(value)}`" for key, value in step.where.items())
        line += f" where {conditions}"
    return line + (" (optional)" if step.optional else "")


def _thresholds_table(thresholds: Thresholds) -> str:
    rows = [
        [THRESHOLD_LABELS.get(name, name), _threshold_value(name, value)]
        for name, value in msgspec.structs.asdict(thresholds).items()
        if value is not None
    ]
    return _table(["threshold", "value"], rows) if rows else ""


def _threshold_value(name: str, value: float) -> str:
    if name.endswith("_ms"):
        return _duration(value)
    return f"{value * 100:g}%"


def _duration(ms: float) -> str:
    if ms >= 60_000:
        return f"{ms / 60_000:g} min"
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms"


# --- context, aliases, common fields ------------------------------------------------------


def _context_section(plan: TrackingPlan) -> str:
    rows = [
        [
            f"`{dimension}`",
            _codes(plan.context[dimension]) if dimension in plan.context else "any identifier",
        ]
        for dimension in CONTEXT_FIELDS
    ]
    return "## Context dimensions\n\n" + _table(["dimension", "allowed values"], rows)


def _aliases_section(plan: TrackingPlan) -> str:
    if not plan.aliases:
        return ""
    rows = [[f"`{old}`", f"`{new}`"] for old, new in plan.aliases.items()]
    intro = "Renamed targets: reports count the old name under the current one."
    return f"## Aliases\n\n{intro}\n\n" + _table(["old name", "current name"], rows)


def _common_fields_section() -> str:
    common = [f for f in wire_fields(KINDS[0]).values() if f.common]
    rows = [[f"`{f.name}`", _field_type(f), "yes" if f.required else "no"] for f in common]
    return "## Fields every event carries\n\n" + _table(["field", "type", "required"], rows)


# --- Markdown helpers ---------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Free prose from the plan, made safe inside a table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _paragraph(text: str) -> str:
    return " ".join(text.split())


def _codes(values: Iterable[str]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{_number(minimum)} to {_number(maximum)}"
    if minimum is not None:
        return f"≥ {_number(minimum)}"
    if maximum is not None:
        return f"≤ {_number(maximum)}"
    return ""


def _number(value: float) -> str:
    """Bounds in full (``1,073,741,824``), not ``1.07374e+09``."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def _scalar(value: str | int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
