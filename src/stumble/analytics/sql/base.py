"""SQL as composable fragments with their parameters, and the dialect interface.

A ``Sql`` fragment is text plus the values bound to its ``?`` placeholders, in order. Fragments
compose with ``+``, ``Sql.join`` and ``render(template, name=fragment)``, which keeps every
parameter next to the text that uses it, so assembling a statement out of order can never
misalign them. Values are always bound, never spliced; the only identifiers written into the
text are column names checked against the stored schema.

``SqlDialect`` lists every spelling that differs between engines (quantiles, conditional
aggregates, list membership, time arithmetic): report modules write the shared SQL once and
ask the dialect for the rest, the way ibis keeps one compiler per backend.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

_SLOT: Final = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Sql:
    """SQL text and the values of its ``?`` placeholders, in order of appearance."""

    text: str
    params: tuple[object, ...] = ()

    def __add__(self, other: Sql | str) -> Sql:
        if isinstance(other, str):
            return Sql(self.text + other, self.params)
        return Sql(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Sql:
        return Sql(other + self.text, self.params)

    @staticmethod
    def join(separator: str, parts: Iterable[Sql | str]) -> Sql:
        text: list[str] = []
        params: list[object] = []
        for part in parts:
            fragment = as_sql(part)
            text.append(fragment.text)
            params.extend(fragment.params)
        return Sql(separator.join(text), tuple(params))


def as_sql(part: Sql | str) -> Sql:
    return part if isinstance(part, Sql) else Sql(part)


def param(value: object) -> Sql:
    """One bound value."""
    return Sql("?", (value,))


def params_list(values: Sequence[object]) -> Sql:
    """``?, ?, ?`` for an ``IN (...)`` list; at least one value."""
    if not values:
        raise ValueError("an IN list needs at least one value")
    return Sql.join(", ", (param(v) for v in values))


def render(template: str, **parts: Sql | str) -> Sql:
    """Fill ``{name}`` slots with fragments, collecting their parameters in text order.

    The template itself holds no placeholders of its own, and every slot must be given.
    """
    if "?" in _SLOT.sub("", template):
        raise ValueError("bind values through fragments, not '?' in a template")
    text: list[str] = []
    params: list[object] = []
    position = 0
    for match in _SLOT.finditer(template):
        fragment = as_sql(parts[match.group(1)])
        text.append(template[position : match.start()])
        text.append(fragment.text)
        params.extend(fragment.params)
        position = match.end()
    text.append(template[position:])
    return Sql("".join(text), tuple(params))


def conjunction(conditions: Iterable[Sql | str]) -> Sql:
    """``a AND b AND c``, or ``TRUE`` when there is no condition."""
    parts = [as_sql(c) for c in conditions]
    if not parts:
        return Sql("TRUE")
    # A disjunction keeps its own parentheses so AND cannot bind into it.
    return Sql.join(
        " AND ", (Sql(f"({p.text})", p.params) if " OR " in p.text else p for p in parts)
    )


def disjunction(conditions: Iterable[Sql | str]) -> Sql:
    parts = [as_sql(c) for c in conditions]
    if not parts:
        return Sql("FALSE")
    return Sql.join(" OR ", (Sql(f"({p.text})", p.params) for p in parts))


class SqlDialect(abc.ABC):
    """Spellings that differ between engines. Arguments are SQL expressions (text)."""

    name: str

    @abc.abstractmethod
    def quantiles(self, expr: str, levels: Sequence[float], where: str | None = None) -> str:
        """A list of linearly interpolated quantiles (``quantile_cont`` semantics)."""

    @abc.abstractmethod
    def count_if(self, condition: str) -> str: ...

    @abc.abstractmethod
    def sum_if(self, expr: str, condition: str) -> str: ...

    @abc.abstractmethod
    def count_distinct_if(self, expr: str, condition: str) -> str: ...

    @abc.abstractmethod
    def aggregate_if(self, function: str, expr: str, condition: str) -> str:
        """``function(expr)`` over the rows meeting ``condition`` (min, max, avg...)."""

    @abc.abstractmethod
    def collect(self, expr: str, condition: str) -> str:
        """The values of ``expr`` over the rows meeting ``condition``, as a list (an aggregate)."""

    @abc.abstractmethod
    def any_of(self, condition: str) -> str:
        """Whether any row of the group meets ``condition`` (an aggregate)."""

    @abc.abstractmethod
    def arg_min(self, value: str, key: str, condition: str | None = None) -> str:
        """``value`` of the row with the smallest ``key`` (among rows meeting ``condition``)."""

    @abc.abstractmethod
    def arg_min_row(self, value: str, key: str, condition: str | None = None) -> str:
        """Like ``arg_min``, but NULL when that row's ``value`` is NULL (``arg_min`` may skip
        rows whose value is NULL and answer another row's)."""

    @abc.abstractmethod
    def arg_max(self, value: str, key: str) -> str:
        """``value`` of the row with the largest ``key``."""

    @abc.abstractmethod
    def arg_max_row(self, value: str, key: str) -> str:
        """Like ``arg_max``, but NULL when that row's ``value`` is NULL."""

    @abc.abstractmethod
    def latest(self, expressions: Sequence[str]) -> str:
        """The largest non-NULL value of several expressions (NULL when all are NULL)."""

    @abc.abstractmethod
    def epoch_ms(self, timestamp: str) -> str:
        """Milliseconds since the epoch of a timestamp, as an integer."""

    @abc.abstractmethod
    def ms_between(self, earlier: str, later: str) -> str:
        """``later - earlier`` in milliseconds, as a DOUBLE (exact for whole ms)."""

    @abc.abstractmethod
    def plus_ms(self, timestamp: str, milliseconds: int) -> str: ...

    @abc.abstractmethod
    def day(self, timestamp: str) -> str:
        """The UTC calendar date of a timestamp."""

    @abc.abstractmethod
    def week(self, timestamp: str) -> str:
        """The Monday (UTC) starting the ISO week of a timestamp, as a date."""

    @abc.abstractmethod
    def elements(self, array: str) -> str:
        """One row per element of a list column (a set-returning expression)."""

    @abc.abstractmethod
    def has_element(self, array: str, element: Sql) -> Sql:
        """Whether a list column contains a value."""

    @abc.abstractmethod
    def previous_non_null(self, expr: str, partition: str, order: str) -> str:
        """The last non-NULL ``expr`` on an earlier row of the same partition."""

    @abc.abstractmethod
    def weight(self, sample_rate: str) -> str:
        """How many sessions a sampled one stands for (``1 / sample_rate``)."""

    @abc.abstractmethod
    def to_text(self, expr: str) -> str: ...

    @abc.abstractmethod
    def session_key(self, *columns: str) -> str:
        """A 64-bit integer standing for a session id: joins and groups on it are far
        cheaper than on text. Two of a million sessions share one with probability ~3e-8."""

    @abc.abstractmethod
    def materialized(self, name: str) -> str:
        """``name AS`` for a CTE the engine should compute once for several readers."""

    @abc.abstractmethod
    def matches(self, text: str, pattern: Sql) -> Sql:
        """Whether ``text`` matches a regular expression (RE2 syntax in both engines)."""

    @abc.abstractmethod
    def any_element_matches(self, array: str, pattern: Sql) -> Sql:
        """Whether some element of a list column matches a regular expression."""
