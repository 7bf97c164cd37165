"""Loading: the example plan decodes fully, and a plan with errors is refused with reasons."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stumble.plan import (
    EventSpec,
    FunnelStep,
    PlanError,
    TrackingPlan,
    default_plan_path,
    load_plan,
    validate_plan,
)


def dedent(text: str) -> str:
    return textwrap.dedent(text)


VALID = dedent("""
    schema_version: 2
    events:
      opened: {kind: screen_view, owner: team_forms, description: Opened.}
      submitted: {kind: form_submit, owner: team_forms}
    scenarios:
      fill_form:
        owner: team_forms
        steps:
          - {name: form_opened, event: opened, where: {screen_id: request_create}}
          - submitted
""")


def test_the_example_plan_loads_with_every_section() -> None:
    plan = load_plan(default_plan_path())
    assert plan.schema_version == 3
    assert plan.min_schema_version == 2
    assert plan.events["report_exported"].params["rows"].max == 10_000_000
    assert plan.context["device_type"] == ("desktop", "tablet", "mobile")
    assert plan.scenarios["create_service_request"].thresholds.min_conversion == 0.5
    assert plan.canonical_target("btn_send") == "btn_submit"


def test_yaml_anchors_are_resolved() -> None:
    plan = load_plan(default_plan_path())
    assert plan.events["operation_end"].values == plan.events["operation_start"].values


def test_a_step_given_as_a_bare_event_name_becomes_a_step() -> None:
    plan = load_plan(default_plan_path())
    search_steps = plan.scenarios["search"].steps
    assert search_steps[2] == FunnelStep(event="search_result_opened")
    assert search_steps[2].label == "search_result_opened"
    assert search_steps[0].label == "search_opened"


def test_a_plan_loads_from_a_path_a_path_string_or_text(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(VALID, encoding="utf-8")
    from_path = load_plan(plan_file)
    assert load_plan(str(plan_file)) == from_path
    assert load_plan(VALID) == from_path
    assert from_path.events["submitted"] == EventSpec(kind="form_submit", owner="team_forms")


def test_flow_style_text_on_one_line_is_read_as_yaml() -> None:
    text = (
        "{schema_version: 1, events: {opened: {kind: screen_view, owner: team_forms}, "
        "sent: {kind: form_submit, owner: team_forms}}}"
    )
    assert set(load_plan(text).events) == {"opened", "sent"}


def test_warnings_do_not_stop_a_load() -> None:
    plan = load_plan(VALID)  # `submitted` has no description: a warning
    assert isinstance(plan, TrackingPlan)


def test_a_structural_error_names_the_place() -> None:
    text = VALID.replace(
        "kind: form_submit,", "kind: custom, params: {rows: {type: count, max: x}},"
    )
    with pytest.raises(PlanError) as caught:
        load_plan(text)
    assert str(caught.value) == "events.submitted.params.rows.max: expected a number, got text"


def test_every_error_is_reported_at_once() -> None:
    text = VALID.replace("owner: team_forms, description: Opened.", "description: Opened.")
    text = text.replace("kind: form_submit", "kind: form_sent")
    with pytest.raises(PlanError) as caught:
        load_plan(text)
    locations = [issue.location for issue in caught.value.issues]
    assert locations == ["events.opened.owner", "events.submitted.kind"]
    assert str(caught.value).startswith("the tracking plan has 2 errors:\n")
    assert all(issue.severity == "error" for issue in caught.value.issues)


def test_duplicate_keys_are_refused_with_the_line() -> None:
    text = VALID.replace("steps:", "owner: team_other\n    steps:")
    with pytest.raises(PlanError) as caught:
        load_plan(text)
    message = str(caught.value)
    assert message.startswith("line 9: duplicate key `owner` (first defined on line 8)")


def test_a_missing_file_is_named() -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(Path("/nonexistent/plan.yaml"))
    assert str(caught.value).startswith("/nonexistent/plan.yaml: cannot read the file")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_bytes(b"schema_version: 1\nevents: {}\n# \xff\xfe\n")
    with pytest.raises(PlanError, match="not UTF-8"):
        load_plan(plan_file)


def test_validate_plan_refuses_a_plan_built_in_code() -> None:
    plan = TrackingPlan(schema_version=1, events={"opened": EventSpec(kind="page_view")})
    with pytest.raises(PlanError) as caught:
        validate_plan(plan)
    assert [issue.location for issue in caught.value.issues] == [
        "events.opened.owner",
        "events.opened.kind",
    ]


def test_the_default_plan_path_is_the_packaged_example() -> None:
    path = default_plan_path()
    assert path.is_file()
    assert path.name == "service_desk.yaml"
    assert "schema_version" in path.read_text(encoding="utf-8")
