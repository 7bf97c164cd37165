"""The linter: the example plan is clean, and each mistake gets a located, plain message."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stumble.events import CONTEXT_FIELDS, KINDS
from stumble.plan import LintIssue, check_plan, default_plan_path, lint_plan, load_plan
from stumble.plan.model import PARAM_TYPES

SMALL_PLAN = """
    schema_version: 1
    events:
      opened: {kind: screen_view, owner: team_forms, description: The form was opened.}
      submitted: {kind: form_submit, owner: team_forms, description: The form was sent.}
    scenarios:
      fill_form:
        owner: team_forms
        steps: [opened, submitted]
    routes: [/form]
"""


def small_plan_with(top_level_line: str) -> str:
    """The small plan with one more top-level key, indented like the rest of it."""
    return f"{SMALL_PLAN}    {top_level_line}\n"


def error_locations(issues: list[LintIssue]) -> list[str]:
    return [issue.location for issue in issues if issue.severity == "error"]


def custom_event_with(params: str) -> str:
    """A plan whose only event is a custom `report_exported` with the given params."""
    return f"""
        schema_version: 1
        events:
          report_exported:
            kind: custom
            owner: team_reports
            description: A report was produced.
            params: {params}
    """


# --- clean plans --------------------------------------------------------------------------


def test_the_example_plan_has_no_issues() -> None:
    assert lint_plan(default_plan_path()) == []


def test_the_small_plan_used_below_is_clean(lint_text) -> None:
    assert lint_text(SMALL_PLAN) == []


def test_check_plan_accepts_the_decoded_example() -> None:
    assert check_plan(load_plan(default_plan_path())) == []


# --- YAML ---------------------------------------------------------------------------------


def test_yaml_syntax_error_reports_the_line(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms
    """)
    assert len(issues) == 1
    assert issues[0].location.startswith("line ")
    assert "YAML syntax" in issues[0].message


def test_duplicate_key_is_refused_with_both_lines(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms}
          opened: {kind: action, owner: team_forms}
    """)
    issue = issue_at(issues, "line 5")
    assert "duplicate key `opened`" in issue.message
    assert "first defined on line 4" in issue.message


def test_duplicate_key_inside_a_flow_mapping_is_refused(lint_text) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms, owner: team_other}
    """)
    assert [issue.location for issue in issues] == ["line 4"]
    assert "duplicate key `owner`" in issues[0].message


def test_merge_keys_may_be_overridden_without_a_duplicate_error(lint_text) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: &base {kind: screen_view, owner: team_forms, description: Opened.}
          closed:
            <<: *base
            kind: navigation
            description: Closed.
        routes: [/form]
    """)
    assert issues == []


def test_an_empty_file_says_what_a_plan_needs(lint_text, issue_at) -> None:
    issue = issue_at(lint_text("\n"), "plan")
    assert "empty" in issue.message
    assert "schema_version" in issue.message


def test_a_list_instead_of_a_plan_is_refused(lint_text, issue_at) -> None:
    issue = issue_at(lint_text("- one\n- two\n"), "plan")
    assert "must be a mapping" in issue.message


# --- structure ----------------------------------------------------------------------------


def test_unknown_key_suggests_the_right_one(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owners: team_forms}
    """)
    issue = issue_at(issues, "events.opened.owners")
    assert "unknown key `owners`" in issue.message
    assert "did you mean `owner`?" in issue.message


def test_wrong_type_says_what_was_expected(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{rows: {type: count, max: lots}}"))
    issue = issue_at(issues, "events.report_exported.params.rows.max")
    assert issue.message == "expected a number, got text"


def test_yaml_booleans_in_a_list_of_names_get_a_quoting_hint(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          choice: {kind: action, owner: team_forms, values: {target: [yes, maybe]}}
    """)
    issue = issue_at(issues, "events.choice.values.target[0]")
    assert "got true or false" in issue.message
    assert "quotes" in issue.message


def test_missing_schema_version_is_reported(lint_text, issue_at) -> None:
    issues = lint_text("events: {}\n")
    assert "requires `schema_version`" in issue_at(issues, "schema_version").message


def test_a_broken_event_does_not_make_its_scenario_steps_undeclared(lint_text) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms, description: Opened., colour: red}
          submitted: {kind: form_submit, owner: team_forms, description: Sent.}
        scenarios:
          fill_form: {owner: team_forms, steps: [opened, submitted]}
    """)
    assert error_locations(issues) == ["events.opened.colour"]


def test_a_broken_parameter_does_not_hide_problems_in_the_others(lint_text) -> None:
    issues = lint_text(custom_event_with("{rows: {type: count, max: lots}, note: {type: text}}"))
    assert error_locations(issues) == [
        "events.report_exported.params.rows.max",
        "events.report_exported.params.note.type",
    ]


# --- owners -------------------------------------------------------------------------------


def test_missing_owner_on_an_event(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, description: Opened.}
    """)
    issue = issue_at(issues, "events.opened.owner")
    assert issue.severity == "error"
    assert "missing owner" in issue.message
    assert "team_forms" in issue.message


def test_missing_owner_on_a_scenario(lint_text, issue_at) -> None:
    issues = lint_text(SMALL_PLAN.replace("        owner: team_forms\n", ""))
    assert "missing owner" in issue_at(issues, "scenarios.fill_form.owner").message


@pytest.mark.parametrize(
    ("owner", "phrase"),
    [
        ("ivan.petrov@corp.example", "e-mail"),
        ("Ivan Petrov", "space"),
        ("ivan.petrov", "first.last"),
        ("IPetrov", "capital letters"),
    ],
)
def test_an_owner_that_looks_like_a_person_is_refused(lint_text, issue_at, owner, phrase) -> None:
    issues = lint_text(f"""
        schema_version: 1
        events:
          opened: {{kind: screen_view, owner: "{owner}", description: Opened.}}
    """)
    issue = issue_at(issues, "events.opened.owner")
    assert phrase in issue.message
    assert "never a person" in issue.message
    assert owner not in issue.message  # a person's name or address is not repeated


def test_an_owner_with_odd_characters_must_be_a_team_identifier(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: "team#forms", description: Opened.}
    """)
    assert "team identifier" in issue_at(issues, "events.opened.owner").message


# --- kinds, parameters --------------------------------------------------------------------


def test_unknown_kind_lists_the_known_kinds(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          sent: {kind: form_sumbit, owner: team_forms, description: Sent.}
    """)
    issue = issue_at(issues, "events.sent.kind")
    assert "unknown kind `form_sumbit`" in issue.message
    assert "did you mean `form_submit`?" in issue.message
    assert all(kind in issue.message for kind in KINDS)


def test_a_parameter_without_a_type(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{rows: {max: 100}}"))
    issue = issue_at(issues, "events.report_exported.params.rows.type")
    assert "every parameter needs a type" in issue.message
    assert all(param_type in issue.message for param_type in PARAM_TYPES)


def test_an_empty_parameter_type(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with('{rows: {type: ""}}'))
    issue = issue_at(issues, "events.report_exported.params.rows.type")
    assert "every parameter needs a type" in issue.message


def test_an_unknown_parameter_type_lists_the_known_types(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{rows: {type: integer}}"))
    issue = issue_at(issues, "events.report_exported.params.rows.type")
    assert "unknown parameter type `integer`" in issue.message
    assert all(param_type in issue.message for param_type in PARAM_TYPES)


@pytest.mark.parametrize("free_text_type", ["string", "text", "str"])
def test_there_is_no_free_text_parameter_type(lint_text, issue_at, free_text_type) -> None:
    issues = lint_text(custom_event_with(f"{{outcome: {{type: {free_text_type}}}}}"))
    issue = issue_at(issues, "events.report_exported.params.outcome.type")
    assert "there is no free-text type" in issue.message
    assert "enum" in issue.message


def test_an_enum_without_values(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{report_format: {type: enum}}"))
    issue = issue_at(issues, "events.report_exported.params.report_format.values")
    assert "an enum needs its list of values" in issue.message


def test_an_enum_with_a_duplicate_value(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{report_format: {type: enum, values: [pdf, csv, pdf]}}"))
    issue = issue_at(issues, "events.report_exported.params.report_format.values")
    assert "`pdf` is listed 2 times" in issue.message


def test_values_on_a_parameter_that_is_not_an_enum(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{rows: {type: count, values: [a, b]}}"))
    issue = issue_at(issues, "events.report_exported.params.rows.values")
    assert "only applies to `type: enum`" in issue.message


def test_min_greater_than_max(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{rows: {type: count, min: 10, max: 2}}"))
    issue = issue_at(issues, "events.report_exported.params.rows.min")
    assert "min (10) is greater than max (2)" in issue.message


@pytest.mark.parametrize("param_type", ["count", "bytes", "duration_ms"])
def test_a_negative_bound_on_a_non_negative_type(lint_text, issue_at, param_type) -> None:
    issues = lint_text(custom_event_with(f"{{amount: {{type: {param_type}, min: -1}}}}"))
    issue = issue_at(issues, "events.report_exported.params.amount.min")
    assert "cannot be negative" in issue.message


def test_bounds_on_a_parameter_that_is_not_a_number(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{scheduled: {type: bool, max: 1}}"))
    issue = issue_at(issues, "events.report_exported.params.scheduled.max")
    assert "only applies to numeric types" in issue.message


def test_params_on_an_event_that_is_not_custom(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          clicked:
            kind: action
            owner: team_forms
            description: Clicked.
            params: {rows: {type: count}}
    """)
    issue = issue_at(issues, "events.clicked.params")
    assert "only `custom` events take params" in issue.message
    assert "action_id" in issue.message  # the kind's own fields are named


def test_more_parameters_than_an_event_may_carry(lint_text, issue_at) -> None:
    params = ", ".join(f"p{index}: {{type: count}}" for index in range(17))
    issues = lint_text(custom_event_with(f"{{{params}}}"))
    assert "at most 16" in issue_at(issues, "events.report_exported.params").message


# --- values -------------------------------------------------------------------------------


def test_values_on_a_field_the_kind_does_not_have(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          clicked: {kind: action, owner: team_forms, description: C., values: {form_id: [a]}}
    """)
    issue = issue_at(issues, "events.clicked.values.form_id")
    assert "`form_id` is not a field of kind `action`" in issue.message
    assert "target" in issue.message  # the closable fields are listed


def test_values_on_a_field_that_is_already_a_fixed_list(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          sent: {kind: form_submit, owner: team_forms, description: S., values: {status: [ok]}}
    """)
    issue = issue_at(issues, "events.sent.values.status")
    assert "already a fixed list (fail, success)" in issue.message


@pytest.mark.parametrize("field", ["session_id", "event_name", "operation_id"])
def test_values_on_a_per_instance_field(lint_text, issue_at, field) -> None:
    issues = lint_text(f"""
        schema_version: 1
        events:
          began:
            kind: operation_start
            owner: team_ops
            description: Began.
            values: {{{field}: [a]}}
    """)
    issue = issue_at(issues, f"events.began.values.{field}")
    assert "cannot be closed" in issue.message


def test_common_identifier_fields_may_be_closed(lint_text) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened:
            kind: screen_view
            owner: team_forms
            description: Opened.
            values: {screen_id: [home], ui_version: [v1, v2], feature_flags: [new_form]}
        routes: [/form]
    """)
    assert issues == []


def test_an_empty_list_of_values(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms, description: O., values: {screen_id: []}}
    """)
    assert "would refuse every value" in issue_at(issues, "events.opened.values.screen_id").message


def test_a_value_that_is_not_an_identifier(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened:
            kind: screen_view
            owner: team_forms
            description: Opened.
            values: {screen_id: [home, "Ivan's screen"]}
    """)
    issue = issue_at(issues, "events.opened.values.screen_id[1]")
    assert "not an identifier" in issue.message
    assert "Ivan" not in issue.message  # a value that is not an identifier is not repeated


def test_an_event_name_that_is_not_an_identifier(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          form opened: {kind: screen_view, owner: team_forms, description: Opened.}
    """)
    assert "event name is not an identifier" in issue_at(issues, "events.form opened").message


# --- free text and personal data ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "comment", "note", "notes", "text", "message", "msg", "description", "details",
        "free_text", "body", "content", "title", "subject", "remark", "reason_text",
        "query_text", "search_text", "userComment", "comment_for_manager",
    ],
)  # fmt: skip
def test_a_parameter_named_like_free_text_is_refused(lint_text, issue_at, name) -> None:
    issues = lint_text(custom_event_with(f"{{{name}: {{type: identifier}}}}"))
    issue = issue_at(issues, f"events.report_exported.params.{name}")
    assert "could hold free text" in issue.message


@pytest.mark.parametrize(
    ("name", "param_type"),
    [
        ("message_id", "identifier"),
        ("content_type", "identifier"),
        ("has_comment", "bool"),
        ("comment_count", "count"),
        ("title_length", "int"),
    ],
)
def test_codes_and_numbers_about_text_are_allowed(lint_text, name, param_type) -> None:
    assert lint_text(custom_event_with(f"{{{name}: {{type: {param_type}}}}}")) == []


@pytest.mark.parametrize(("name", "param_type"), [("iin", "count"), ("email", "identifier")])
def test_a_parameter_named_as_personal_data_is_refused_whatever_its_type(
    lint_text, issue_at, name, param_type
) -> None:
    issues = lint_text(custom_event_with(f"{{{name}: {{type: {param_type}}}}}"))
    issue = issue_at(issues, f"events.report_exported.params.{name}")
    assert "names personal data" in issue.message


def test_a_values_field_named_like_free_text_is_refused(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          clicked: {kind: action, owner: team_forms, description: C., values: {comment: [a]}}
    """)
    assert "could hold free text" in issue_at(issues, "events.clicked.values.comment").message


# --- context, versions, aliases -----------------------------------------------------------


def test_an_unknown_context_dimension(lint_text, issue_at) -> None:
    issues = lint_text(small_plan_with("context: {mood: [happy, sad]}"))
    issue = issue_at(issues, "context.mood")
    assert "unknown context dimension `mood`" in issue.message
    assert all(dimension in issue.message for dimension in CONTEXT_FIELDS)


def test_a_context_dimension_with_duplicate_values(lint_text, issue_at) -> None:
    issues = lint_text(small_plan_with("context: {role: [operator, admin, operator]}"))
    assert "`operator` is listed 2 times" in issue_at(issues, "context.role").message


def test_min_schema_version_above_schema_version(lint_text, issue_at) -> None:
    issues = lint_text(small_plan_with("min_schema_version: 2"))
    assert "above schema_version 1" in issue_at(issues, "min_schema_version").message


def test_an_alias_to_itself(lint_text, issue_at) -> None:
    issues = lint_text(small_plan_with("aliases: {btn_send: btn_send}"))
    assert "alias of itself" in issue_at(issues, "aliases.btn_send").message


def test_an_alias_cycle(lint_text, issue_at) -> None:
    issues = lint_text(small_plan_with("aliases: {btn_a: btn_b, btn_b: btn_a}"))
    assert "alias cycle: btn_a → btn_b → btn_a" in issue_at(issues, "aliases.btn_a").message
    assert "alias cycle" in issue_at(issues, "aliases.btn_b").message


def test_an_alias_chain_is_refused_because_aliases_are_followed_once(lint_text, issue_at) -> None:
    issues = lint_text(small_plan_with("aliases: {btn_old: btn_mid, btn_mid: btn_new}"))
    issue = issue_at(issues, "aliases.btn_old")
    assert "point `btn_old` straight at `btn_new`" in issue.message
    assert error_locations(issues) == ["aliases.btn_old"]


# --- scenarios ----------------------------------------------------------------------------


def test_a_step_that_is_not_a_declared_event(lint_text, issue_at) -> None:
    issues = lint_text(SMALL_PLAN.replace("[opened, submitted]", "[opened, submited]"))
    issue = issue_at(issues, "scenarios.fill_form.steps[1].event")
    assert "`submited` is not a declared event" in issue.message
    assert "did you mean `submitted`?" in issue.message


def test_a_scenario_with_one_step(lint_text, issue_at) -> None:
    issues = lint_text(SMALL_PLAN.replace("[opened, submitted]", "[opened]"))
    assert "at least 2 steps" in issue_at(issues, "scenarios.fill_form.steps").message


def test_two_steps_with_the_same_name(lint_text, issue_at) -> None:
    issues = lint_text(SMALL_PLAN.replace("[opened, submitted]", "[opened, submitted, opened]"))
    issue = issue_at(issues, "scenarios.fill_form.steps")
    assert "`opened` is used 2 times" in issue.message


def test_a_where_key_that_is_not_a_field_of_the_event(lint_text, issue_at) -> None:
    issues = lint_text(
        SMALL_PLAN.replace("[opened, submitted]", "[opened, {event: submitted, where: {stage: 1}}]")
    )
    issue = issue_at(issues, "scenarios.fill_form.steps[1].where.stage")
    assert "`stage` is not a field of `submitted`" in issue.message
    assert "did you mean `step`?" in issue.message


def test_common_fields_count_as_where_keys(lint_text) -> None:
    steps = "[{event: opened, where: {screen_id: home, ui_version: v2}}, submitted]"
    assert lint_text(SMALL_PLAN.replace("[opened, submitted]", steps)) == []


@pytest.mark.parametrize(
    ("where", "phrase"),
    [
        ("{status: done}", "`status` is one of fail, success"),
        ("{step: 0}", "`step` is at least 1"),
        ("{step: first}", "`step` is a number"),
        ("{form_id: 3}", "put the value in quotes"),
    ],
)
def test_a_where_value_that_can_never_match(lint_text, issue_at, where, phrase) -> None:
    steps = f"[opened, {{event: submitted, where: {where}}}]"
    issues = lint_text(SMALL_PLAN.replace("[opened, submitted]", steps))
    key = where.strip("{}").split(":")[0]
    issue = issue_at(issues, f"scenarios.fill_form.steps[1].where.{key}")
    assert "can never match" in issue.message
    assert phrase in issue.message


def test_a_where_value_outside_the_events_declared_values(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms, description: O., values: {screen_id: [x]}}
          submitted: {kind: form_submit, owner: team_forms, description: Sent.}
        scenarios:
          fill_form:
            owner: team_forms
            steps: [{event: opened, where: {screen_id: login}}, submitted]
    """)
    issue = issue_at(issues, "scenarios.fill_form.steps[0].where.screen_id")
    assert "only accepts these `screen_id` values: x" in issue.message


# --- warnings -----------------------------------------------------------------------------


def test_a_missing_description_is_a_warning(lint_text, issue_at) -> None:
    issues = lint_text(SMALL_PLAN.replace(" description: The form was opened.", ""))
    issue = issue_at(issues, "events.opened.description")
    assert issue.severity == "warning"
    assert error_locations(issues) == []


def test_a_deprecated_event_in_a_scenario_is_a_warning(lint_text, issue_at) -> None:
    deprecated = SMALL_PLAN.replace("The form was sent.}", "Replaced., deprecated: true}")
    issues = lint_text(deprecated)
    issue = issue_at(issues, "scenarios.fill_form.steps[1].event")
    assert issue.severity == "warning"
    assert "deprecated" in issue.message


def test_a_scenario_form_no_event_declares_is_a_warning(lint_text, issue_at) -> None:
    issues = lint_text("""
        schema_version: 1
        events:
          opened: {kind: screen_view, owner: team_forms, description: Opened.}
          submitted:
            kind: form_submit
            owner: team_forms
            description: Sent.
            values: {form_id: [request]}
        scenarios:
          fill_form: {owner: team_forms, form_id: requests, steps: [opened, submitted]}
    """)
    issue = issue_at(issues, "scenarios.fill_form.form_id")
    assert issue.severity == "warning"
    assert "will find no data" in issue.message


def test_every_issue_prints_as_severity_location_message() -> None:
    issue = LintIssue("error", "events.login.owner", "missing owner")
    assert str(issue) == "error: events.login.owner: missing owner"


def test_a_bound_that_is_not_finite(lint_text, issue_at) -> None:
    issues = lint_text(custom_event_with("{rows: {type: count, max: .inf}}"))
    assert "finite" in issue_at(issues, "events.report_exported.params.rows.max").message


# --- robustness ---------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=70),
    st.sampled_from([*KINDS, *PARAM_TYPES, "team_forms", "Ivan Petrov", "comment"]),
)
ANY_YAML_VALUE = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


EXAMPLE_DATA = yaml.load(default_plan_path().read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def replace_at(data: object, path: list[int], value: object) -> object:
    """``data`` with the node chosen by ``path`` (indices into each level) replaced."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[key] = replace_at(data[key], path[1:], value)  # type: ignore[index]
    return copy


@settings(max_examples=300, deadline=None)
@given(path=st.lists(st.integers(0, 50), max_size=6), value=ANY_YAML_VALUE)
def test_lint_never_raises_on_a_damaged_example_plan(path, value) -> None:
    damaged = yaml.dump(replace_at(EXAMPLE_DATA, path, value), Dumper=yaml.CSafeDumper)
    issues = lint_plan(damaged)
    assert all(isinstance(issue, LintIssue) for issue in issues)
    if not [issue for issue in issues if issue.severity == "error"]:
        load_plan(damaged)  # no error reported means the plan really loads


# --- routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["requests/:id", "/requests?id=1", "/a b", "/x/#top"])
def test_a_route_that_is_not_a_template_is_an_error(route: str) -> None:
    plan = SMALL_PLAN.replace("routes: [/form]", f"routes: ['{route}']")
    issues = lint_plan(plan)
    assert error_locations(issues) == ["routes[0]"]
    assert "route template" in issues[0].message


def test_no_routes_for_events_that_carry_them_is_a_warning() -> None:
    issues = lint_plan(SMALL_PLAN.replace("    routes: [/form]\n", ""))
    assert [(i.severity, i.location) for i in issues] == [("warning", "routes")]
    assert "dropped before storage" in issues[0].message


def test_a_route_listed_twice_is_a_warning() -> None:
    issues = lint_plan(SMALL_PLAN.replace("routes: [/form]", "routes: [/form, /form]"))
    assert [(i.severity, i.location) for i in issues] == [("warning", "routes")]


# --- funnel options: window, order, optional steps, exclusions -----------------------------

THREE_STEPS = "[opened, {event: opened, name: again, optional: true}, submitted]"


def scenario_with(line: str, steps: str = "[opened, submitted]") -> str:
    """The small plan whose scenario has one more key (and the given steps)."""
    return SMALL_PLAN.replace(
        "        steps: [opened, submitted]", f"        steps: {steps}\n        {line}"
    )


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("20m", 1_200_000), ("8h", 28_800_000), ("14d", 1_209_600_000)],
)
def test_a_window_in_seconds_minutes_hours_or_days(lint_text, text: str, ms: int) -> None:
    plan_text = scenario_with(f"conversion_window: {text}")
    assert lint_text(plan_text) == []
    plan = load_plan(textwrap.dedent(plan_text))
    assert plan.scenarios["fill_form"].window_ms == ms


def test_without_a_window_a_funnel_has_fourteen_days() -> None:
    plan = load_plan(textwrap.dedent(SMALL_PLAN))
    assert plan.scenarios["fill_form"].window_ms == 14 * 86_400_000


def test_the_old_window_in_minutes_is_still_read() -> None:
    plan = load_plan(textwrap.dedent(scenario_with("conversion_window_minutes: 30")))
    assert plan.scenarios["fill_form"].window_ms == 30 * 60_000


@pytest.mark.parametrize("text", ["10", "10w", "0m", "-5m", "1.5h", "10 m"])
def test_a_window_without_a_unit_or_count_is_refused(lint_text, issue_at, text: str) -> None:
    issues = lint_text(scenario_with(f"conversion_window: '{text}'"))
    assert issue_at(issues, "scenarios.fill_form.conversion_window")


def test_a_window_over_ninety_days_is_refused(lint_text, issue_at) -> None:
    issues = lint_text(scenario_with("conversion_window: 91d"))
    assert "at most 90 days" in issue_at(issues, "scenarios.fill_form.conversion_window").message


def test_a_window_given_twice_is_refused(lint_text, issue_at) -> None:
    issues = lint_text(
        scenario_with("conversion_window: 1h\n        conversion_window_minutes: 60")
    )
    issue = issue_at(issues, "scenarios.fill_form.conversion_window_minutes")
    assert "give the window once" in issue.message


def test_an_unknown_order_is_refused(lint_text, issue_at) -> None:
    issues = lint_text(scenario_with("order: best_path"))
    assert issue_at(issues, "scenarios.fill_form.order")


def test_optional_steps_and_exclusions_are_accepted(lint_text) -> None:
    text = scenario_with("exclusions: [{event: opened, where: {screen_id: help}}]", THREE_STEPS)
    assert lint_text(text) == []
    scenario = load_plan(textwrap.dedent(text)).scenarios["fill_form"]
    assert [s.optional for s in scenario.steps] == [False, True, False]


@pytest.mark.parametrize("index", [0, 1])
def test_the_first_and_last_steps_cannot_be_optional(lint_text, issue_at, index: int) -> None:
    steps = ["opened", "submitted"]
    steps[index] = f"{{event: {steps[index]}, optional: true}}"
    issues = lint_text(scenario_with("order: ordered", f"[{', '.join(steps)}]"))
    issue = issue_at(issues, f"scenarios.fill_form.steps[{index}].optional")
    assert "cannot be optional" in issue.message


def test_an_exclusion_that_is_a_step_is_refused(lint_text, issue_at) -> None:
    issues = lint_text(
        scenario_with("exclusions: [submitted]".replace("[submitted]", "[{event: submitted}]"))
    )
    assert "also a step" in issue_at(issues, "scenarios.fill_form.exclusions[0]").message


def test_an_exclusion_must_be_a_declared_event(lint_text, issue_at) -> None:
    issues = lint_text(scenario_with("exclusions: [{event: cancelled}]"))
    assert (
        "not a declared event"
        in issue_at(issues, "scenarios.fill_form.exclusions[0].event").message
    )


def test_first_touch_takes_no_optional_steps(lint_text, issue_at) -> None:
    issues = lint_text(scenario_with("order: first_touch", THREE_STEPS))
    assert "first_touch" in issue_at(issues, "scenarios.fill_form.order").message
