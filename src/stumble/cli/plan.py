"""``stumble plan lint|schema|docs FILE``: check, export and document a tracking plan.

``lint`` prints every finding as ``error: events.login.owner: ...`` and exits 1 if any is an
error. ``schema`` and ``docs`` refuse a plan with errors (printing them to stderr) because
their output would describe a plan the collector will not enforce.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stumble.plan.docs import render_catalog
from stumble.plan.issues import PlanError, errors_only
from stumble.plan.lint import lint_plan
from stumble.plan.load import load_plan
from stumble.plan.model import TrackingPlan
from stumble.plan.schema import plan_json_schema


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plan`` command group to the top-level parser's subcommands."""
    plan = subparsers.add_parser(
        "plan",
        help="check, export and document a tracking plan",
        description="Work with the tracking plan: the YAML file the product team owns.",
    )
    commands = plan.add_subparsers(dest="plan_command", required=True, metavar="COMMAND")

    lint = commands.add_parser("lint", help="report every problem in a plan (exit 1 on errors)")
    lint.add_argument("file", type=Path, metavar="FILE", help="the tracking plan (YAML)")
    lint.set_defaults(func=run_lint)

    schema = commands.add_parser("schema", help="print the JSON Schema of accepted batches")
    schema.add_argument("file", type=Path, metavar="FILE", help="the tracking plan (YAML)")
    schema.set_defaults(func=run_schema)

    docs = commands.add_parser("docs", help="write a readable Markdown catalog of the plan")
    docs.add_argument("file", type=Path, metavar="FILE", help="the tracking plan (YAML)")
    docs.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help="write here instead of to stdout"
    )
    docs.set_defaults(func=run_docs)


def run_lint(args: argparse.Namespace) -> int:
    issues = lint_plan(args.file)
    for issue in issues:
        print(issue)
    errors = len(errors_only(issues))
    warnings = len(issues) - errors
    if errors:
        print(f"failed: {_count(errors, 'error')}, {_count(warnings, 'warning')}")
        return 1
    plan = load_plan(args.file)  # cannot fail: lint found no error
    counts = [_count(len(plan.events), "event"), _count(len(plan.scenarios), "scenario")]
    if warnings:
        counts.append(_count(warnings, "warning"))
    print(f"ok: {', '.join(counts)}")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    plan = _load_or_report(args.file)
    if plan is None:
        return 1
    print(json.dumps(plan_json_schema(plan), indent=2, ensure_ascii=False))
    return 0


def run_docs(args: argparse.Namespace) -> int:
    plan = _load_or_report(args.file)
    if plan is None:
        return 1
    catalog = render_catalog(plan)
    if args.output is None:
        sys.stdout.write(catalog)
    else:
        args.output.write_text(catalog, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _load_or_report(path: Path) -> TrackingPlan | None:
    try:
        return load_plan(path)
    except PlanError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        print(f"{path}: fix these errors first (`stumble plan lint {path}`)", file=sys.stderr)
        return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")
