"""Helpers for the plan tests: lint a YAML snippet, find the issue at a location."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

import pytest

from stumble.plan import LintIssue, lint_plan

LintText = Callable[[str], list[LintIssue]]
IssueAt = Callable[[Sequence[LintIssue], str], LintIssue]


@pytest.fixture
def lint_text() -> LintText:
    """Lint a dedented YAML snippet given as text."""

    def lint(text: str) -> list[LintIssue]:
        return lint_plan(textwrap.dedent(text))

    return lint


@pytest.fixture
def issue_at() -> IssueAt:
    """The single issue reported at ``location``; fails listing all issues otherwise."""

    def find(issues: Sequence[LintIssue], location: str) -> LintIssue:
        matches = [issue for issue in issues if issue.location == location]
        assert len(matches) == 1, f"expected one issue at {location!r}, got: {issues}"
        return matches[0]

    return find
