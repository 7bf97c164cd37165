"""What every report module needs to run: executing fragments, sampling, suppression counts."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from stumble.analytics.queries import Scope
from stumble.analytics.results import Sampling
from stumble.analytics.sql import Sql, SqlDialect, dialect_for, param, render, scope_filter
from stumble.analytics.suppression import CellCount, hidden_cells
from stumble.storage.base import EventStore

Row = dict[str, Any]


def fetch(store: EventStore, statement: Sql) -> list[Row]:
    """Run one read-only statement through the store's only read path."""
    return store.query(statement.text, statement.params).as_dicts()


def dialect_of(store: EventStore) -> SqlDialect:
    return dialect_for(store.dialect)


def sampling_of(store: EventStore, scope: Scope) -> Sampling:
    """The sample rates of the events in scope (a report is an estimate when any is < 1)."""
    dialect = dialect_of(store)
    statement = render(
        "SELECT DISTINCT sample_rate FROM events WHERE {scope} ORDER BY sample_rate",
        scope=scope_filter(scope, dialect),
    )
    return Sampling(tuple(float(row["sample_rate"]) for row in fetch(store, statement)))


def stored_values(store: EventStore, column: str, environment: str | None = None) -> list[str]:
    """The distinct non-NULL values of an identifier column (in one environment, or all):
    what a parameter may choose from when the plan does not close the list."""
    if column not in ("environment", "operation", "form_id", "screen_id"):
        raise ValueError(f"not a column to list: {column}")
    where = render(" AND environment = {env}", env=param(environment)) if environment else Sql("")
    statement = render(
        "SELECT DISTINCT {column} AS v FROM events WHERE {column} IS NOT NULL{where} ORDER BY v",
        column=column,
        where=where,
    )
    return [str(row["v"]) for row in fetch(store, statement)]


def merge_sampling(*parts: Sampling) -> Sampling:
    return Sampling(tuple(sorted({rate for part in parts for rate in part.rates})))


def row_group(row: Row) -> str | None:
    """The breakdown value of a grouped row, or None for the row holding the total."""
    return None if row["is_total"] else row["grp"]


class Suppressor:
    """Collects every cell of a report, then says which ones to hide.

    A cell that adds up in two families (a feature's total is the total of its days and of
    its groups) is registered once per family; ``add(..., same_as=ticket)`` makes the second
    registration an alias, hidden together with the first and counted once.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self._cells: list[CellCount] = []
        self._primary: list[int] = []
        self._hidden: set[int] = set()

    def add(
        self, family: Hashable, group: str | None, sessions: int, *, same_as: int | None = None
    ) -> int:
        """Register a cell; returns its ticket for ``is_hidden``."""
        self._cells.append(CellCount(family, group, int(sessions)))
        ticket = len(self._cells) - 1
        self._primary.append(ticket if same_as is None else same_as)
        return ticket

    def decide(self) -> None:
        self._hidden = {self._primary[i] for i in hidden_cells(self._cells, self.k)}

    def is_hidden(self, ticket: int) -> bool:
        return self._primary[ticket] in self._hidden

    @property
    def hidden_count(self) -> int:
        return len(self._hidden)
