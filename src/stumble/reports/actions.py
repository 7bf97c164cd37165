"""Plain-language findings and the action each kind of problem suggests.

Findings quote aggregates only (shares, counts of sessions, durations), never an event. The
suggested actions follow the specification's advice: a format error asks for an input mask, a
hint with an example and a concrete error text; a required field for marking it before the
submit; a jump in p95 after a release for that release and that step; a slow operation for
the server or the rendering, whichever its phases show dominates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

FIELD_ERROR_ACTIONS: Final[Mapping[str, str]] = {
    "format": (
        "add an input mask and an example of the expected format to the hint of {field}, "
        "check the format as the person types, and replace the error with a concrete text "
        "that says what is expected"
    ),
    "required": (
        "mark {field} as required before the submit (label, disabled button with a reason) "
        "or give it a sensible default"
    ),
    "range": "show the allowed range next to {field} and limit the picker or input to it",
    "too_long": "show the length limit of {field} and a counter while typing",
    "too_short": "show the minimum length of {field} and a counter while typing",
    "server": (
        "check the server rule behind {field}: validate the same rule in the form before the "
        "submit, and turn the server's reason code into a specific message"
    ),
    "conflict": (
        "check for the conflict on {field} as early as possible and offer the existing record"
    ),
    "other": "review the validation rule of {field} and its error text",
}


def share(value: float) -> str:
    return f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


def duration(ms: float) -> str:
    if ms < 1_000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1_000:.0f} s" if ms >= 10_000 else f"{ms / 1_000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def field_error_finding(
    *,
    form_id: str,
    step: int,
    field_id: str,
    error_type: str,
    value: float,
    threshold: float,
    sessions: int,
    attempts: float | None,
    time_with: float | None,
    time_without: float | None,
) -> str:
    text = (
        f"{share(value)} of the sessions that reach step {step} of {form_id} get a "
        f"{error_type} error on {field_id} ({sessions} sessions; the plan allows "
        f"{share(threshold)})"
    )
    if attempts is not None and attempts > 1:
        text += f"; they need a median of {attempts:g} attempts to get through"
    if time_with is not None and time_without is not None:
        text += (
            f"; the step takes them {duration(time_with)} at the median against "
            f"{duration(time_without)} without the error"
        )
    return text + "."


def field_error_action(field_id: str, error_type: str) -> str:
    template = FIELD_ERROR_ACTIONS.get(error_type, FIELD_ERROR_ACTIONS["other"])
    return _sentence(template.format(field=field_id))


def drop_off_finding(
    *, scenario: str, previous: str, step: str, value: float, threshold: float, sessions: int
) -> str:
    return (
        f"In {scenario}, {share(value)} of the sessions that reach {previous} leave before "
        f"{step} ({sessions} sessions; the plan allows {share(threshold)})."
    )


def drop_off_action(step: str, top_error: str | None) -> str:
    if top_error:
        return _sentence(
            f"start with {top_error}, the most frequent field error on the way to {step}, "
            "then compare the time split and the back/cancel rate of that step"
        )
    return _sentence(
        f"look at what happens on the way to {step}: its field errors, the time split "
        "(input, waiting, fixing errors) and where people go back or cancel"
    )


def conversion_finding(*, scenario: str, value: float, threshold: float, lost: int) -> str:
    return (
        f"Only {share(value)} of the sessions that start {scenario} finish it (the plan "
        f"expects {share(threshold)}); {lost} sessions did not."
    )


def conversion_action(worst_step: str | None) -> str:
    if worst_step:
        return _sentence(f"start with the step that loses the most sessions: {worst_step}")
    return _sentence("find the step that loses the most sessions in the funnel report")


def slow_step_finding(
    *, scenario: str, step: str, p95: float, threshold: float, sessions: int
) -> str:
    return (
        f"In {scenario}, the 95th percentile of the time to {step} is {duration(p95)} "
        f"(the plan's limit is {duration(threshold)}); {sessions} sessions took longer."
    )


def slow_step_action(step: str) -> str:
    return _sentence(
        f"split the time to {step} into input, waiting and fixing errors (field-errors "
        "report) and shorten the largest part; if waiting dominates, look at the operation "
        "behind the step"
    )


def slow_operation_finding(
    *, operation: str, p95: float, threshold: float, sessions: int, server_share: float | None
) -> str:
    text = (
        f"The 95th percentile of {operation} is {duration(p95)} (the plan's limit is "
        f"{duration(threshold)}; {sessions} sessions waited longer)"
    )
    if server_share is not None:
        text += f"; {share(server_share)} of its time is spent waiting for the server"
    return text + "."


def slow_operation_action(operation: str, server_share: float | None) -> str:
    if server_share is not None and server_share >= 0.5:
        return _sentence(
            f"the wait is on the server: profile the API behind {operation} (see API times "
            "by route) before touching the interface"
        )
    return _sentence(
        f"the time is spent in the browser: look at what {operation} renders or computes "
        "after the response"
    )


def error_rate_finding(
    *, scenario: str, value: float, threshold: float, sessions: int, kinds: str
) -> str:
    return (
        f"{share(value)} of the sessions in {scenario} hit an error (the plan allows "
        f"{share(threshold)}; {sessions} sessions){kinds}."
    )


def error_rate_action(top: str | None) -> str:
    if top:
        return _sentence(f"fix the most frequent failure first: {top}")
    return _sentence("open the failures report and fix the most frequent error first")


def regression_finding(
    *, metric: str, subject: str, before: str, after: str, version: str, previous: str
) -> str:
    return (
        f"After release {version}, {metric} of {subject} got worse: {before} in {previous}, "
        f"{after} in {version}."
    )


def regression_action(version: str, subject: str) -> str:
    return _sentence(
        f"review what release {version} changed around {subject}; compare that step's "
        "field errors and time split between the two versions, and roll back the change "
        "if it cannot be fixed quickly"
    )


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
