"""Load a tracking plan that is safe to enforce, or explain why it is not.

``load_plan`` parses the YAML (refusing duplicate keys), decodes it into the model and runs
the linter, raising ``PlanError`` if the linter finds any error. So a ``TrackingPlan`` that
came from ``load_plan`` has owners, known kinds and types, declared steps and no free-text
parameters: the collector can enforce it without checking again. Warnings do not stop a load;
``stumble plan lint`` shows them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from stumble.plan.decode import decode_plan, parse_yaml, read_source
from stumble.plan.issues import PlanError, errors_only
from stumble.plan.lint import check_plan
from stumble.plan.model import TrackingPlan

__all__ = ["PlanError", "default_plan_path", "load_plan", "validate_plan"]

DEFAULT_PLAN = "examples/service_desk.yaml"


def load_plan(source: Path | str) -> TrackingPlan:
    """The plan at ``source``: a ``Path``, a path string, or YAML text (a string spanning
    lines or starting with ``{``). Raises ``PlanError`` listing every error found."""
    plan = decode_plan(parse_yaml(read_source(source)))
    validate_plan(plan)
    return plan


def validate_plan(plan: TrackingPlan) -> None:
    """Raise ``PlanError`` if the plan has any lint error (warnings are allowed)."""
    errors = errors_only(check_plan(plan))
    if errors:
        raise PlanError(errors)


def default_plan_path() -> Path:
    """The example plan shipped with the package (the service desk from the specification)."""
    # The package is installed as plain files (setuptools package-data), so the resource is
    # a real path; a zipped install would need importlib.resources.as_file instead.
    return Path(str(resources.files("stumble.plan").joinpath(DEFAULT_PLAN)))
