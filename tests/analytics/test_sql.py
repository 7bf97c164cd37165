"""SQL fragments keep every bound value next to its text, whatever order they are built in."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from stumble.analytics.queries import Filters, FlagFilter, Scope, StepSpec, TimeRange
from stumble.analytics.sql import (
    DUCKDB_SQL,
    Sql,
    conjunction,
    dialect_for,
    disjunction,
    param,
    params_list,
    render,
    scope_filter,
    step_condition,
)


def test_render_collects_parameters_in_text_order() -> None:
    late, early = param("late"), param("early")
    statement = render("SELECT {a}, {b}, {a}", a=early, b=late)
    assert statement.text == "SELECT ?, ?, ?"
    assert statement.params == ("early", "late", "early")


def test_render_refuses_a_bare_placeholder_in_the_template() -> None:
    with pytest.raises(ValueError, match="fragments"):
        render("SELECT ? + {a}", a=param(1))


def test_join_and_boolean_combinators() -> None:
    joined = Sql.join(", ", [param(1), "x", param(2)])
    assert (joined.text, joined.params) == ("?, x, ?", (1, 2))
    assert conjunction([]).text == "TRUE"
    assert disjunction([]).text == "FALSE"
    both = conjunction([Sql("a = ?", (1,)), disjunction([Sql("b = ?", (2,)), "c"])])
    assert both.text == "a = ? AND ((b = ?) OR (c))"
    assert both.params == (1, 2)
    with pytest.raises(ValueError, match="at least one"):
        params_list([])


def test_scope_filter_binds_every_value_and_runs_on_duckdb() -> None:
    scope = Scope(
        TimeRange(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 2, tzinfo=dt.UTC)),
        Filters(
            environment="prod",
            role=("operator", "x'); DROP TABLE events; --"),
            feature_flag=FlagFilter("new_form", enabled=False),
        ),
    )
    where = scope_filter(scope, DUCKDB_SQL)
    assert "DROP" not in where.text
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT 'prod' AS environment, TIMESTAMP '2026-03-01 10:00' AS ts, "
        "'operator' AS role, ['other']::VARCHAR[] AS feature_flags"
    )
    rows = con.execute(f"SELECT count(*) FROM events WHERE {where.text}", where.params).fetchall()
    assert rows == [(1,)]


def test_step_condition_matches_the_event_name_and_values() -> None:
    step = StepSpec("s", "form_submit", (("status", "success"), ("step", 2)))
    condition = step_condition(step)
    assert condition.params == ("form_submit", "success", 2)


def test_dialects_are_looked_up_by_the_stores_name() -> None:
    assert dialect_for("duckdb") is DUCKDB_SQL
    with pytest.raises(ValueError, match="no analytics dialect"):
        dialect_for("memory")
