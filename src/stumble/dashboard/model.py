"""The typed view model of a dashboard page: sections of blocks, each block one kind of thing
a person reads (a chart with its table, a table, problem cards, scenario tiles, a callout).

Templates dispatch on the block's ``kind``; nothing here knows HTML. Every number reaches a
block already formatted for people, except in ``Table`` rows, whose columns carry their
format (the table view and the CSV export share those rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from stumble.analytics.results import Table

Tone = Literal["good", "bad", "neutral", "info", "warning"]


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart and the table it draws: the table view, the CSV export and the chart are one."""

    kind: ClassVar[str] = "chart"
    id: str
    """Unique within its page; the export URL names it."""
    title: str
    spec: dict[str, Any]
    """A complete Vega-Lite spec with its data inline."""
    table: Table
    summary: str
    """One sentence for screen readers: what the chart shows."""
    small: bool = False
    """A sparkline: no caption, no table view (its table is exported with its tile)."""
    table_open: bool = False
    """Show the table view unfolded (when its numbers are the page's answer)."""

    @property
    def empty(self) -> bool:
        """Nothing to draw: no row was shown (too few sessions) or nothing happened."""
        values = self.spec.get("data", {}).get("values")
        return not values


@dataclass(frozen=True, slots=True)
class RowAction:
    """A button on a table row that posts a change (the page's script sends the CSRF token)."""

    label: str
    url: str
    body: str = "{}"
    """The JSON body to post."""
    confirm: str = ""
    """The question asked before posting (empty: none)."""


@dataclass(frozen=True, slots=True)
class TableBlock:
    kind: ClassVar[str] = "table"
    id: str
    table: Table
    exportable: bool = True
    empty: str = "No rows for these filters."
    """What an empty table says."""
    link_column: int | None = None
    """A column whose values open a page: ``link_prefix`` + the value."""
    link_prefix: str = ""
    actions: Sequence[RowAction | None] = ()
    """One per row (None: no button on that row); empty: no action column."""


@dataclass(frozen=True, slots=True)
class ProblemCard:
    rank: int
    title: str
    finding: str
    action: str
    owner: str
    sessions: str
    link: str | None
    """The page that shows the evidence, with the same filters."""
    fix_link: str | None = None
    """The fixes page with a fix for this problem begun (shown to roles that record fixes)."""


@dataclass(frozen=True, slots=True)
class ProblemList:
    kind: ClassVar[str] = "problems"
    id: str
    problems: Sequence[ProblemCard]
    table: Table
    """The same problems as rows: the table view and the CSV export."""
    empty: str


@dataclass(frozen=True, slots=True)
class Metric:
    label: str
    value: str
    change: str = ""
    """Against the previous period, for people ("+4.1 pp", "−12 s")."""
    tone: Tone = "neutral"
    direction: Literal["up", "down", ""] = ""
    """Which way the value moved (the arrow); ``tone`` says whether that is good."""


@dataclass(frozen=True, slots=True)
class Tile:
    title: str
    owner: str
    link: str
    metrics: Sequence[Metric]
    trend: Chart | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class TileGrid:
    kind: ClassVar[str] = "tiles"
    tiles: Sequence[Tile]


@dataclass(frozen=True, slots=True)
class Callout:
    kind: ClassVar[str] = "callout"
    text: str
    tone: Tone = "info"


@dataclass(frozen=True, slots=True)
class BulletList:
    kind: ClassVar[str] = "bullets"
    items: Sequence[tuple[str, Tone]]
    empty: str = ""


@dataclass(frozen=True, slots=True)
class Facts:
    """Label/value pairs (settings, chain status)."""

    kind: ClassVar[str] = "facts"
    items: Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True, slots=True)
class Picker:
    """A page-specific control in the filter form (scenario, breakdown, form…)."""

    name: str
    label: str
    choices: Sequence[Choice]
    selected: str

    def options(self) -> list[tuple[str, str]]:
        return [(choice.value, choice.label) for choice in self.choices]


@dataclass(frozen=True, slots=True)
class FixForm:
    """Recording a fix from the dashboard (posted to ``/api/v1/fixes`` by the page's script)."""

    kind: ClassVar[str] = "fix_form"
    scenarios: Sequence[str]
    owners: Sequence[str]
    environments: Sequence[str]
    problem: str = ""
    scenario: str = ""
    owner: str = ""
    expectation: str = ""
    shipped_on: str = ""
    verify_on: str = ""


@dataclass(frozen=True, slots=True)
class Pager:
    kind: ClassVar[str] = "pager"
    next_link: str | None


Block = Chart | TableBlock | ProblemList | TileGrid | Callout | BulletList | Facts | Pager | FixForm


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    blocks: Sequence[Block]
    intro: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """One dashboard page: the question it answers (its heading), who owns the answer, and
    what it shows."""

    slug: str
    question: str
    owner: str
    sections: Sequence[Section]
    notes: Sequence[str] = ()
    """How to read the numbers: suppression, sampling, semantics (from the reports' meta)."""
    pickers: Sequence[Picker] = ()
    uses_filters: bool = True
    """Pages about the system (plan, admin, audit) have no filter bar."""
    extra_params: dict[str, str] = field(default_factory=dict)
    """Page-specific parameters to keep in links and exports (the picked scenario…)."""

    def tables(self) -> dict[str, Table]:
        """Every exportable table of the page by its block id."""
        found: dict[str, Table] = {}
        for section in self.sections:
            for block in section.blocks:
                found.update(_tables_of(block))
        return found


def _tables_of(block: Block) -> dict[str, Table]:
    if isinstance(block, Chart):
        return {block.id: block.table}
    if isinstance(block, TableBlock) and block.exportable:
        return {block.id: block.table}
    if isinstance(block, ProblemList):
        return {block.id: block.table}
    if isinstance(block, TileGrid):
        return {t.trend.id: t.trend.table for t in block.tiles if t.trend is not None}
    return {}
