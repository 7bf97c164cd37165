"""The Markdown catalog: every part of the plan appears, grouped and formatted for people."""

from __future__ import annotations

import re
import textwrap

import pytest

from stumble.events import CONTEXT_FIELDS
from stumble.plan import TrackingPlan, default_plan_path, load_plan, render_catalog


@pytest.fixture(scope="module")
def plan() -> TrackingPlan:
    return load_plan(default_plan_path())


@pytest.fixture(scope="module")
def catalog(plan: TrackingPlan) -> str:
    return render_catalog(plan)


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = markdown.index(heading + "\n")
    rest = markdown[start + len(heading) + 1 :]
    following = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.MULTILINE)
    return rest[: following.start()] if following else rest


def test_every_event_is_listed_under_its_owner(plan: TrackingPlan, catalog: str) -> None:
    events = section(catalog, "## Events by owner")
    for name, spec in plan.events.items():
        assert f"#### `{name}` · kind `{spec.kind}`" in section(events, f"### {spec.owner}")


def test_owners_are_in_alphabetical_order(plan: TrackingPlan, catalog: str) -> None:
    owners = re.findall(r"^### (team_\w+)$", catalog, flags=re.MULTILINE)
    assert owners == sorted({spec.owner for spec in plan.events.values()})


def test_allowed_values_and_descriptions_are_shown(plan: TrackingPlan, catalog: str) -> None:
    field_error = section(catalog, "#### `field_error` · kind `field_error`")
    assert plan.events["field_error"].description in field_error
    assert "`iin_bin`, `contract_number`" in field_error
    assert "| `error_type` | one of a fixed list | yes | `conflict`, `format`" in field_error


def test_parameters_show_type_unit_bounds_and_required(catalog: str) -> None:
    report = section(catalog, "#### `report_exported` · kind `custom`")
    assert "| `report_format` | enum |  |  | yes | `xlsx`, `pdf`, `csv` |  |" in report
    assert "| `generation_time` | duration_ms | milliseconds | ≤ 3,600,000 | no |" in report
    assert "| `file_size` | bytes | bytes | ≤ 1,073,741,824 | no |" in report


def test_scenarios_show_steps_window_and_thresholds(catalog: str) -> None:
    scenario = section(catalog, "### `create_service_request`")
    assert "window 60 minutes" in scenario
    assert "1. **form_opened**: `screen_view` where screen_id = `request_create`" in scenario
    assert (
        "4. **submitted**: `form_submit` where form_id = `service_request`, step = `3`" in scenario
    )
    assert "| Minimum conversion | 50% |" in scenario
    assert "| Maximum p95 time per step | 2 min |" in scenario
    assert "| Maximum p95 operation time | 5 s |" in scenario


def test_a_bare_step_is_labelled_with_its_event(catalog: str) -> None:
    assert "3. **search_result_opened**: `search_result_opened`" in catalog


def test_context_dimensions_and_aliases_are_listed(plan: TrackingPlan, catalog: str) -> None:
    context = section(catalog, "## Context dimensions")
    for dimension in CONTEXT_FIELDS:
        assert f"| `{dimension}` |" in context
    assert "`branch_north`" in context
    assert "| `btn_send` | `btn_submit` |" in section(catalog, "## Aliases")


def test_every_table_row_has_as_many_cells_as_its_header(catalog: str) -> None:
    for table in re.findall(r"(?:^\|.*\|\n)+", catalog, flags=re.MULTILINE):
        rows = table.splitlines()
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in rows}
        assert len(widths) == 1, table


def test_prose_cannot_break_a_table_and_deprecation_is_marked() -> None:
    plan = load_plan(
        textwrap.dedent("""
            schema_version: 1
            events:
              old_opened:
                kind: custom
                owner: team_forms
                description: Replaced by opened.
                deprecated: true
                params:
                  choice: {type: enum, values: [a, b], description: "a | b, or\\n none"}
        """)
    )
    catalog = render_catalog(plan)
    assert "#### `old_opened` · kind `custom` · **deprecated**" in catalog
    assert "| a \\| b, or none |" in catalog
    assert "## Scenarios" not in catalog  # no empty sections
    assert "## Aliases" not in catalog
