"""SQL generation: composable fragments, the per-engine dialects and the shared scope filter."""

from __future__ import annotations

from stumble.analytics.sql.base import (
    Sql,
    SqlDialect,
    as_sql,
    conjunction,
    disjunction,
    param,
    params_list,
    render,
)
from stumble.analytics.sql.duckdb import DUCKDB_SQL, DuckDBSql
from stumble.analytics.sql.scope import dimension_expr, grouping, scope_filter, step_condition

DIALECTS: dict[str, SqlDialect] = {DUCKDB_SQL.name: DUCKDB_SQL}


def dialect_for(name: str) -> SqlDialect:
    """The compiler for a store's ``dialect`` attribute."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"no analytics dialect for {name!r}") from None


__all__ = [
    "DIALECTS",
    "DUCKDB_SQL",
    "DuckDBSql",
    "Sql",
    "SqlDialect",
    "as_sql",
    "conjunction",
    "dialect_for",
    "dimension_expr",
    "disjunction",
    "grouping",
    "param",
    "params_list",
    "render",
    "scope_filter",
    "step_condition",
]
