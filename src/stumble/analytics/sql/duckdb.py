"""The DuckDB spellings of ``SqlDialect``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from stumble.analytics.sql.base import Sql, SqlDialect, render


class DuckDBSql(SqlDialect):
    name: Final = "duckdb"

    def quantiles(self, expr: str, levels: Sequence[float], where: str | None = None) -> str:
        listed = ", ".join(repr(float(q)) for q in levels)
        # quantile_cont interpolates linearly between order statistics, like stats.quantile.
        aggregate = f"quantile_cont({expr}, [{listed}])"
        return f"{aggregate} FILTER (WHERE {where})" if where else aggregate

    def count_if(self, condition: str) -> str:
        return f"count(*) FILTER (WHERE {condition})"

    def sum_if(self, expr: str, condition: str) -> str:
        return f"sum({expr}) FILTER (WHERE {condition})"

    def count_distinct_if(self, expr: str, condition: str) -> str:
        return f"count(DISTINCT {expr}) FILTER (WHERE {condition})"

    def aggregate_if(self, function: str, expr: str, condition: str) -> str:
        return f"{function}({expr}) FILTER (WHERE {condition})"

    def collect(self, expr: str, condition: str) -> str:
        return f"coalesce(list({expr}) FILTER (WHERE {condition}), [])"

    def any_of(self, condition: str) -> str:
        return f"bool_or({condition})"

    def arg_min(self, value: str, key: str, condition: str | None = None) -> str:
        aggregate = f"arg_min({value}, {key})"
        return f"{aggregate} FILTER (WHERE {condition})" if condition else aggregate

    def arg_min_row(self, value: str, key: str, condition: str | None = None) -> str:
        aggregate = f"arg_min_null({value}, {key})"
        return f"{aggregate} FILTER (WHERE {condition})" if condition else aggregate

    def arg_max(self, value: str, key: str) -> str:
        return f"arg_max({value}, {key})"

    def arg_max_row(self, value: str, key: str) -> str:
        return f"arg_max_null({value}, {key})"

    def latest(self, expressions: Sequence[str]) -> str:
        # DuckDB's greatest skips NULL arguments (ClickHouse's would return NULL).
        return f"greatest({', '.join(expressions)})"

    def epoch_ms(self, timestamp: str) -> str:
        return f"epoch_ms({timestamp})"

    def ms_between(self, earlier: str, later: str) -> str:
        return f"CAST(epoch_ms({later}) - epoch_ms({earlier}) AS DOUBLE)"

    def plus_ms(self, timestamp: str, milliseconds: int) -> str:
        return f"({timestamp} + to_milliseconds({int(milliseconds)}))"

    def day(self, timestamp: str) -> str:
        return f"CAST({timestamp} AS DATE)"

    def week(self, timestamp: str) -> str:
        return f"CAST(date_trunc('week', {timestamp}) AS DATE)"

    def elements(self, array: str) -> str:
        return f"unnest({array})"

    def has_element(self, array: str, element: Sql) -> Sql:
        return render(f"list_contains({array}, {{element}})", element=element)

    def previous_non_null(self, expr: str, partition: str, order: str) -> str:
        return (
            f"last_value({expr} IGNORE NULLS) OVER (PARTITION BY {partition} ORDER BY {order} "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        )

    def weight(self, sample_rate: str) -> str:
        # A rate of 0 sends nothing; a stored row under it can only stand for itself.
        return f"(CASE WHEN {sample_rate} > 0 THEN 1.0 / {sample_rate} ELSE 1.0 END)"

    def to_text(self, expr: str) -> str:
        return f"CAST({expr} AS VARCHAR)"

    def session_key(self, *columns: str) -> str:
        return f"hash({', '.join(columns)})"

    def materialized(self, name: str) -> str:
        return f"{name} AS MATERIALIZED"

    def matches(self, text: str, pattern: Sql) -> Sql:
        return render(f"regexp_matches({text}, {{pattern}})", pattern=pattern)

    def any_element_matches(self, array: str, pattern: Sql) -> Sql:
        # Elements are identifiers (no spaces), so matching the space-joined list with a
        # pattern bounded by non-letters tests each element without a lambda.
        return render(
            f"regexp_matches(array_to_string({array}, ' '), {{pattern}})", pattern=pattern
        )


DUCKDB_SQL: Final = DuckDBSql()
