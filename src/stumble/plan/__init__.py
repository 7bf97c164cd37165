"""The tracking plan: the YAML file, owned by the product team, that says what may be sent.

It lists every event (kind, owning team, closed lists of values, typed parameters), the
context dimensions, the scenarios whose funnels and thresholds the reports judge, and the
aliases that keep trends across renames. This package loads it (``load_plan``, which refuses
a plan with errors), lints it (``lint_plan``: messages a person can act on), and exports it as
JSON Schema for SDKs and tests (``plan_json_schema``) and as a Markdown catalog
(``render_catalog``). Pure: no I/O beyond reading the plan file.

Modules, in dependency order: ``model`` (the Structs), ``issues`` (``LintIssue``,
``PlanError``), ``fields`` (what each event kind carries, read from ``stumble.events``),
``decode`` (YAML and structural checks), ``lint``, ``load``, ``schema``, ``docs``.
"""

from stumble.plan.docs import render_catalog
from stumble.plan.issues import LintIssue, PlanError
from stumble.plan.lint import check_plan, lint_plan
from stumble.plan.load import default_plan_path, load_plan, validate_plan
from stumble.plan.model import EventSpec, FunnelStep, ParamSpec, Scenario, Thresholds, TrackingPlan
from stumble.plan.schema import plan_json_schema

__all__ = [
    "EventSpec",
    "FunnelStep",
    "LintIssue",
    "ParamSpec",
    "PlanError",
    "Scenario",
    "Thresholds",
    "TrackingPlan",
    "check_plan",
    "default_plan_path",
    "lint_plan",
    "load_plan",
    "plan_json_schema",
    "render_catalog",
    "validate_plan",
]
