"""Renderers: values by column type, tables, Markdown, and JSON that decodes to the same types."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from stumble.analytics.funnels import FunnelGroup, FunnelResult, FunnelStep
from stumble.analytics.rendering import format_value, render
from stumble.analytics.results import Durations, Report, ReportMeta, Share


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (None, "ms", "\u2013"),
        ("hidden", "int", "hidden"),
        (1234567, "int", "1,234,567"),
        (0.4012, "share", "40.1%"),
        (850.0, "ms", "850 ms"),
        (90_314.0, "ms", "90.3 s"),
        (179_086.0, "ms", "3.0 min"),
        (0.0004, "p", "<0.001"),
        (0.4139, "p", "0.414"),
        (3.0, "number", "3"),
        (2.5, "number", "2.5"),
    ],
)
def test_values_are_formatted_by_column_type(value: object, kind: str, text: str) -> None:
    assert format_value(value, kind) == text  # type: ignore[arg-type]


def sample_report() -> Report[FunnelResult]:
    shown = FunnelStep(
        label="form_opened", sessions=120, conversion=Share(value=1.0, low=0.97, high=1.0)
    )
    done = FunnelStep(
        label="submitted",
        sessions=60,
        conversion=Share(value=0.5, low=0.41, high=0.59),
        drop_off=60,
        drop_off_share=0.5,
        time_from_previous=Durations(n=60, p50=90_000.0, p95=180_000.0),
    )
    groups = [
        FunnelGroup(group=None, steps=[shown, done], conversion=Share(value=0.5)),
        FunnelGroup(
            group="admin",
            steps=[
                FunnelStep(label="form_opened", hidden=True),
                FunnelStep(label="submitted", hidden=True),
            ],
        ),
    ]
    meta = ReportMeta(
        report="funnel",
        time_from=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        time_to=dt.datetime(2026, 3, 9, tzinfo=dt.UTC),
        environment="prod",
        by="role",
        filters={"ui_version": "1.4.2"},
        estimated=True,
        sample_rates=[0.5],
        hidden=2,
    )
    result = FunnelResult(
        scenario="create_service_request",
        semantics="first_touch",
        window_minutes=60,
        steps=["form_opened", "submitted"],
        groups=groups,
    )
    return Report(meta=meta, data=result)


def test_a_table_names_the_window_filters_estimates_and_hidden_cells() -> None:
    text = render(sample_report(), "table")
    assert "funnel: 2026-03-02 00:00 to 2026-03-09 00:00 UTC, environment prod" in text
    assert "filters: ui_version=1.4.2" in text
    assert "estimates: counts re-weighted from sampled sessions (rates 0.5)" in text
    assert "2 cells hidden" in text
    lines = text.splitlines()
    submitted = next(line for line in lines if line.startswith("all") and "submitted" in line)
    assert "90.0 s" in submitted and "3.0 min" in submitted and "50.0%" in submitted
    assert any(line.startswith("admin") and "hidden" in line for line in lines)


def test_markdown_has_one_table_per_section() -> None:
    text = render(sample_report(), "md")
    assert text.startswith("## funnel")
    assert "| group | step | sessions |" in text
    assert "| ---: |" in text or "---:" in text
    assert text.count("### ") == 2


def test_json_decodes_back_into_the_typed_report() -> None:
    report = sample_report()
    decoded = msgspec.json.decode(render(report, "json"), type=Report[FunnelResult])
    assert decoded == report
