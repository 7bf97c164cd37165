"""Analytics: turn stored events into answers, as aggregates an analyst may see.

The flow is the same for every report::

    query object (queries.py)  ->  SQL fragments for the store's dialect (sql/)
      -> EventStore.query(sql, params), the only read path
      -> typed result (msgspec Structs) with small-cell suppression (suppression.py)
      -> JSON for the API, tables / Markdown for people (rendering.py)

Report families, one module each: ``funnels`` (1), ``timings`` (2), ``field_errors`` (3),
``loops`` (4), ``usage`` (5), ``failures`` (6), ``compare`` (7), ``health`` (9); the ranked
"top problems" (8) lives in ``stumble.reports`` because it judges what these compute.
``stats`` holds the pure statistics the verdicts rest on (Wilson and Newcombe intervals,
two-proportion and Mann-Whitney tests, a bootstrap, quantiles equal to DuckDB's).

Query objects and SQL builders are pure (no I/O); the ``run_*`` functions take an
``EventStore``. Engine differences live in ``sql.SqlDialect`` (DuckDB today, ClickHouse next).
"""

from stumble.analytics.queries import (
    Arm,
    CompareQuery,
    FailureQuery,
    FieldErrorQuery,
    Filters,
    FlagFilter,
    FunnelQuery,
    HealthQuery,
    LoopQuery,
    QueryError,
    Scope,
    TimeRange,
    TimingQuery,
    UsageQuery,
)
from stumble.analytics.results import Report, ReportMeta

__all__ = [
    "Arm",
    "CompareQuery",
    "FailureQuery",
    "FieldErrorQuery",
    "Filters",
    "FlagFilter",
    "FunnelQuery",
    "HealthQuery",
    "LoopQuery",
    "QueryError",
    "Report",
    "ReportMeta",
    "Scope",
    "TimeRange",
    "TimingQuery",
    "UsageQuery",
]
