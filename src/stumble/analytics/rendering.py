"""Render a report for people: a terminal table, Markdown, or JSON.

Every report's data offers ``tables()``; the renderers only format values by column type
(shares as percentages, milliseconds as ms / s / min), so a new report needs no renderer code.
Charts (the dashboard) will draw from the same ``Table`` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import msgspec

from stumble.analytics.results import Format, Report, ReportMeta, Table, Tabular

OutputFormat = Literal["table", "json", "md"]
OUTPUT_FORMATS: Final[tuple[str, ...]] = ("table", "json", "md")
MISSING: Final = "\u2013"  # an en dash: reads as "no value", unlike a minus sign


def format_value(value: object, kind: Format) -> str:
    """One cell as text; None is a dash, text (such as ``hidden``) passes through."""
    if value is None:
        return MISSING
    if isinstance(value, str | bool):
        return str(value)
    if not isinstance(value, int | float):
        return str(value)
    return _NUMBER_FORMATS[kind](float(value)) if kind in _NUMBER_FORMATS else _plain(value)


def _plain(value: int | float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def _milliseconds(value: float) -> str:
    if abs(value) < 1_000:
        return f"{value:.0f} ms"
    if abs(value) < 120_000:
        return f"{value / 1_000:.1f} s"
    return f"{value / 60_000:.1f} min"


_NUMBER_FORMATS: Final[dict[str, Callable[[float], str]]] = {
    "int": lambda v: f"{round(v):,}",
    "share": lambda v: f"{v:.1%}",
    "ms": _milliseconds,
    "number": lambda v: _plain(int(v) if v.is_integer() else v),
    "p": lambda v: "<0.001" if v < 0.001 else f"{v:.3f}",
}


def header_lines(meta: ReportMeta) -> list[str]:
    window = f"{meta.time_from:%Y-%m-%d %H:%M} to {meta.time_to:%Y-%m-%d %H:%M} UTC"
    lines = [f"{meta.report}: {window}, environment {meta.environment or 'all'}"]
    if meta.by:
        lines.append(f"by {meta.by}")
    if meta.filters:
        lines.append("filters: " + ", ".join(f"{k}={v}" for k, v in meta.filters.items()))
    if meta.estimated:
        rates = ", ".join(f"{r:g}" for r in meta.sample_rates)
        lines.append(f"estimates: counts re-weighted from sampled sessions (rates {rates})")
    if meta.hidden:
        lines.append(
            f"{meta.hidden} cells hidden (fewer than {meta.min_group_size} sessions, "
            "or hidden so a total cannot reveal one)"
        )
    lines.extend(f"note: {note}" for note in meta.notes)
    return lines


def _cells(table: Table) -> list[list[str]]:
    return [
        [
            format_value(value, column.format)
            for value, column in zip(row, table.columns, strict=True)
        ]
        for row in table.rows
    ]


def text_table(table: Table) -> str:
    headers = [column.name for column in table.columns]
    cells = _cells(table)
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [column.format != "text" for column in table.columns]

    def line(values: list[str]) -> str:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    out = [table.title, line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    if not cells:
        out.append("(no rows)")
    if table.note:
        out.append(table.note)
    return "\n".join(out)


def markdown_table(table: Table) -> str:
    headers = [column.name for column in table.columns]
    aligns = ["---:" if column.format != "text" else "---" for column in table.columns]
    out = [f"### {table.title}", "", _md_row(headers), _md_row(aligns)]
    out.extend(_md_row(row) for row in _cells(table))
    if not table.rows:
        out.append("_no rows_")
    if table.note:
        out.extend(["", f"_{table.note}_"])
    return "\n".join(out)


def _md_row(values: list[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def render(report: Report[Any], output: OutputFormat) -> str:
    """The report as text in one of ``OUTPUT_FORMATS``."""
    if output == "json":
        return msgspec.json.format(msgspec.json.encode(report)).decode()
    data: Tabular = report.data
    tables = data.tables()
    if output == "md":
        head = "\n".join(f"- {line}" for line in header_lines(report.meta))
        return "\n\n".join([f"## {report.meta.report}", head, *map(markdown_table, tables)]) + "\n"
    head = "\n".join(header_lines(report.meta))
    return "\n\n".join([head, *map(text_table, tables)]) + "\n"
