"""The filter bar's state: parsed from the URL, written back to it, and turned into the
catalog's report parameters."""

from __future__ import annotations

import datetime as dt

import pytest

from stumble.dashboard.filters import FilterError, ViewFilters

TODAY = dt.date(2026, 12, 7)


def test_the_default_is_the_last_seven_days_including_today() -> None:
    filters = ViewFilters.parse({}, TODAY)
    assert (filters.range, filters.start, filters.end) == ("7d", dt.date(2026, 12, 1), TODAY)
    assert filters.days == 7
    assert filters.env is None and filters.query_items() == []


def test_a_custom_range_and_filters_round_trip_through_the_url() -> None:
    query = {
        "range": "custom",
        "from": "2026-03-02",
        "to": "2026-03-15",
        "env": "staging",
        "role": "operator",
        "device_type": "tablet",
        "ui_version": "2.0.0",
        "flag": "!new_nav",
    }
    filters = ViewFilters.parse(query, TODAY)
    assert dict(filters.query_items()) == query
    assert ViewFilters.parse(dict(filters.query_items()), TODAY) == filters
    assert filters.report_params() == {
        "from": "2026-03-02",
        "to": "2026-03-15",
        "env": "staging",
        "role": "operator",
        "device_type": "tablet",
        "ui_version": "2.0.0",
        "flag": "!new_nav",
    }


def test_links_keep_the_filters_and_add_page_parameters() -> None:
    filters = ViewFilters.parse({"range": "28d", "env": "dev"}, TODAY)
    assert filters.link("/funnel", scenario="login", by=None) == (
        "/funnel?range=28d&env=dev&scenario=login"
    )


def test_the_previous_period_has_the_same_length() -> None:
    filters = ViewFilters.parse({"range": "28d"}, TODAY)
    before = filters.shifted(-filters.days)
    assert before.end == filters.start - dt.timedelta(days=1)
    assert before.days == filters.days == 28


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"range": "1y"}, "range"),
        ({"range": "custom"}, "from"),
        ({"range": "custom", "from": "2026-01-01"}, "to"),
        ({"range": "custom", "from": "yesterday", "to": "2026-01-01"}, "from"),
        ({"range": "custom", "from": "2026-01-05", "to": "2026-01-01"}, "to"),
        ({"range": "custom", "from": "2020-01-01", "to": "2026-01-01"}, "400 days"),
        ({"role": "a b"}, "role"),
        ({"env": "x" * 65}, "env"),
        ({"flag": "!<b>"}, "flag"),
    ],
)
def test_a_value_that_cannot_be_used_is_named_never_echoed(
    query: dict[str, str], named: str
) -> None:
    with pytest.raises(FilterError) as error:
        ViewFilters.parse(query, TODAY)
    assert named in str(error.value)
    assert "<b>" not in str(error.value) and "yesterday" not in str(error.value)
