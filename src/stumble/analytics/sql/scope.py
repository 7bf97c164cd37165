"""The parts every report shares: the scope's WHERE clause, breakdown and step conditions."""

from __future__ import annotations

from stumble.analytics.queries import Dimension, Scope, StepSpec
from stumble.analytics.sql.base import Sql, SqlDialect, conjunction, param, params_list, render


def scope_filter(scope: Scope, dialect: SqlDialect, *, column_prefix: str = "") -> Sql:
    """Environment, time range and value filters of a scope, as one condition.

    The environment and time come first so the engine prunes row groups by their zone maps.
    """
    p = column_prefix
    start, end = scope.time.bounds()
    filters = scope.filters
    conditions: list[Sql] = [
        render(f"{p}environment = {{env}}", env=param(filters.environment)),
        render(f"{p}ts >= {{start}} AND {p}ts < {{end}}", start=param(start), end=param(end)),
    ]
    for column, values in filters.value_filters():
        if len(values) == 1:
            conditions.append(render(f"{p}{column} = {{v}}", v=param(values[0])))
        else:
            conditions.append(render(f"{p}{column} IN ({{vs}})", vs=params_list(values)))
    flag = filters.feature_flag
    if flag is not None:
        contains = dialect.has_element(f"{p}feature_flags", param(flag.name))
        conditions.append(contains if flag.enabled else "NOT " + contains)
    return conjunction(conditions)


def dimension_expr(dimension: Dimension | None, dialect: SqlDialect, prefix: str = "") -> str:
    """The breakdown value of a row as text (NULL when the row has none)."""
    if dimension is None:
        return "CAST(NULL AS VARCHAR)"
    if dimension == "day":
        return dialect.to_text(dialect.day(f"{prefix}ts"))
    if dimension == "week":
        return dialect.to_text(dialect.week(f"{prefix}ts"))
    return f"{prefix}{dimension}"


def step_condition(step: StepSpec, prefix: str = "") -> Sql:
    """Whether a row is this funnel step: its event name and its ``where`` values."""
    conditions = [render(f"{prefix}event_name = {{name}}", name=param(step.event_name))]
    for column, value in step.where:
        conditions.append(render(f"{prefix}{column} = {{v}}", v=param(value)))
    return conjunction(conditions)


def grouping(by: Dimension | None, keys: str = "") -> tuple[str, str]:
    """(GROUP BY clause, is-total expression) for rows per ``keys``, per breakdown group
    (column ``grp``) and in total. Without a breakdown ``grp`` is constant, so every row is a
    total."""
    if by is None:
        return f"GROUP BY {keys + ', ' if keys else ''}grp", "TRUE"
    inner = f"{keys}, grp" if keys else "grp"
    return f"GROUP BY GROUPING SETS (({inner}), ({keys}))", "grouping(grp) = 1"
