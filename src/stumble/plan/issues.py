"""What can be wrong with a tracking plan, and the one exception that carries it.

``LintIssue`` is a single finding (an error or a warning) with the place it refers to, written
as a dotted path into the YAML file (``events.login.owner``) or ``line N`` for a YAML syntax
problem. ``PlanError`` is raised when a plan cannot be used; it carries every error found, so a
person fixes them in one pass instead of one per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

Severity = Literal["error", "warning"]


class LintIssue(msgspec.Struct, frozen=True):
    """One finding: how bad, where (``events.login.owner``) and what to do about it."""

    severity: Severity
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.location}: {self.message}"


def error(location: str, message: str) -> LintIssue:
    return LintIssue("error", location, message)


def warning(location: str, message: str) -> LintIssue:
    return LintIssue("warning", location, message)


def errors_only(issues: Iterable[LintIssue]) -> list[LintIssue]:
    return [issue for issue in issues if issue.severity == "error"]


class PlanError(Exception):
    """The plan cannot be used. ``issues`` lists every error; ``str()`` reads as a report."""

    def __init__(self, issues: Iterable[LintIssue]) -> None:
        self.issues: tuple[LintIssue, ...] = tuple(issues)
        super().__init__(self._render())

    @classmethod
    def at(cls, location: str, message: str) -> PlanError:
        return cls([error(location, message)])

    def _render(self) -> str:
        lines = [f"{issue.location}: {issue.message}" for issue in self.issues]
        if len(lines) == 1:
            return lines[0]
        return f"the tracking plan has {len(lines)} errors:\n" + "\n".join(
            f"  {line}" for line in lines
        )
