"""Findings and actions: concrete, specific to the error type, never quoting a stored value."""

from __future__ import annotations

import pytest

from stumble.events import FIELD_ERROR_TYPES
from stumble.reports import actions


@pytest.mark.parametrize("error_type", FIELD_ERROR_TYPES)
def test_every_error_type_has_an_action_naming_the_field(error_type: str) -> None:
    text = actions.field_error_action("contract_number", error_type)
    assert "contract_number" in text
    assert text[0].isupper() and text.endswith(".")


def test_a_format_error_asks_for_a_mask_a_hint_and_a_concrete_text() -> None:
    text = actions.field_error_action("iin_bin", "format")
    assert "input mask" in text and "hint" in text and "concrete" in text


def test_the_field_error_finding_gives_the_share_attempts_and_time_cost() -> None:
    finding = actions.field_error_finding(
        form_id="service_request",
        step=2,
        field_id="iin_bin",
        error_type="format",
        value=0.7,
        threshold=0.2,
        sessions=2521,
        attempts=4.0,
        time_with=115_000.0,
        time_without=46_000.0,
    )
    assert finding == (
        "70% of the sessions that reach step 2 of service_request get a format error on "
        "iin_bin (2521 sessions; the plan allows 20%); they need a median of 4 attempts to "
        "get through; the step takes them 115 s at the median against 46 s without the error."
    )


def test_a_slow_operation_points_at_the_server_or_the_browser() -> None:
    assert "server" in actions.slow_operation_action("report_export", 0.85)
    assert "browser" in actions.slow_operation_action("report_export", 0.2)
    assert "browser" in actions.slow_operation_action("report_export", None)


def test_durations_and_shares_read_naturally() -> None:
    assert [actions.duration(v) for v in (850, 4_200, 46_000, 179_000)] == [
        "850 ms",
        "4.2 s",
        "46 s",
        "3.0 min",
    ]
    assert [actions.share(v) for v in (0.7, 0.062, 0.1)] == ["70%", "6.2%", "10%"]
