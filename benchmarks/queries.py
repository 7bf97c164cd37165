"""Report query times on ~10M simulated events in the real on-disk DuckDB file.

    .venv/bin/python benchmarks/queries.py [--events 10000000] [--data /tmp/stumble-bench-queries]
        [--only REPORT ...] [--repeat 3] [--months 13]

The database is built once and reused while its parameters match (``built.json`` beside it).
Building: the simulator's sessions are enriched exactly as the collector does (pseudonymous
session ids, stored event ids, skew correction, receive time) and written as NDJSON segments by
two worker processes; the store loads each segment with ``load_segment``, the loader's own path.
The privacy guard is skipped (simulated events are clean by construction), except for what it
changes in a clean row: API routes carry ids on the wire (``/api/requests/48213``) and are
stored as templates (``/api/requests/:id``), so routes are templated here as the guard does.
A database built before that is templated in place once (``built.json`` records it).

Each report runs ``cold`` (the first run on a freshly opened store: DuckDB's buffer pool is
empty, the OS page cache may not be) and ``warm`` (best of ``--repeat`` further runs), with
DuckDB limited to two threads. ``warm cpu`` is the CPU time the process used (all threads):
on a shared machine wall time swings with the neighbours' load, CPU time much less, and on an
idle two-core machine the wall time of the parallel parts is about half of it.

Rollups (issue 13): after building or reusing the database, the daily rollups of every day
that needs them are built (seconds per day printed), then every report runs twice, on raw rows
(``source=raw``) and as it chooses by itself (``auto``: rollups when they answer; the
``source`` column says what it used). ``--months 13`` then repeats the reports over a copy
whose rollups reach 13 x 28 days back (the 28 days' cells repeated: what reading 13 months
costs; raw rows stay 28 days).

Targets (2 cores): issue 13: top problems <= 0.3 s, every other report over 28 days
<= 0.25 s, 13 months of rollups <= 0.5 s. Issue 11: the attempts funnel no slower than 1.2x
first touch on raw rows (``funnel`` and ``funnel (first touch)``, ratio printed). Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import json
import multiprocessing
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from stumble.access.keys import WriteKey
from stumble.access.pseudonyms import EventIdKey, SessionKeyRing
from stumble.admission import clock_skew_ms
from stumble.analytics.clicks import ClickQuery, run_clicks
from stumble.analytics.compare import run_compare
from stumble.analytics.failures import run_failures
from stumble.analytics.field_errors import run_field_errors
from stumble.analytics.frustration import FrustrationQuery, run_frustration
from stumble.analytics.funnels import run_funnel
from stumble.analytics.health import run_health
from stumble.analytics.loops import run_loops
from stumble.analytics.paths import PathQuery, run_paths
from stumble.analytics.queries import (
    Arm,
    CompareQuery,
    FailureQuery,
    FieldErrorQuery,
    FunnelQuery,
    HealthQuery,
    LoopQuery,
    Scope,
    TimeRange,
    TimingQuery,
    UsageQuery,
)
from stumble.analytics.timings import run_timings
from stumble.analytics.usage import run_usage
from stumble.collector.enrich import RequestContext
from stumble.plan.load import default_plan_path, load_plan
from stumble.plan.model import TrackingPlan
from stumble.privacy.urls import template_route
from stumble.reports.top_problems import TopProblemsQuery, run_top_problems
from stumble.rollups import RollupMaintainer
from stumble.simulate import SimulationParams, simulate_sessions
from stumble.storage import DuckDBStore, EventStore

START = dt.date(2026, 3, 2)
DAYS = 28
EVENTS_PER_SESSION = 24.2  # measured on the default parameters
ROWS_PER_SEGMENT = 250_000
WORKERS = 2


# --- building -----------------------------------------------------------------------------


def _worker(job: tuple[int, int, int, str]) -> list[str]:
    """Simulate ``sessions`` sessions with one seed and write enriched NDJSON segments."""
    index, sessions, seed, directory = job
    out = Path(directory)
    plan = load_plan(default_plan_path())
    secrets = out.parent / "secrets"
    from stumble.collector.enrich import Enricher  # noqa: PLC0415

    enricher = Enricher(SessionKeyRing(secrets), EventIdKey(secrets))
    key = WriteKey(key_id="benchkey", environment="prod", key_sha256="-")
    params = SimulationParams(
        sessions=sessions, days=DAYS, start_date=START, seed=seed, ui_version_change_day=DAYS // 2
    )
    paths: list[str] = []
    lines: list[bytes] = []
    for session in simulate_sessions(params, plan):
        received = session.sent_at + 40
        request = RequestContext(
            key, received, clock_skew_ms(session.sent_at, received), None, None, None
        )
        lines.extend(
            enricher.stored_line(_templated(event), request, 0) for event in session.events
        )
        if len(lines) >= ROWS_PER_SEGMENT:
            paths.append(_write_segment(out, index, len(paths), lines))
            lines = []
    if lines:
        paths.append(_write_segment(out, index, len(paths), lines))
    return paths


def _templated(event: Any) -> Any:
    """The event with its route templated, as the privacy guard stores it."""
    route = getattr(event, "route", None)
    if not route:
        return event
    templated = template_route(route).template
    return msgspec.structs.replace(event, route=templated) if templated != route else event


def template_stored_routes(data: Path) -> None:
    """Template the routes of a database built before the build did (ids -> ``:id``)."""
    marker = data / "built.json"
    built = json.loads(marker.read_text())
    if built.get("routes") == "templated":
        return
    # A database that old also predates the rollup tables this marks dirty: migrate it first.
    DuckDBStore(data / "stumble.duckdb", threads=2).close()
    con = duckdb.connect(str(data / "stumble.duckdb"))
    con.execute(
        "UPDATE events SET route = regexp_replace(route, '/[0-9]+(/|$)', '/:id\\1', 'g') "
        "WHERE regexp_matches(route, '/[0-9]+(/|$)')"
    )
    con.execute(
        "INSERT OR IGNORE INTO rollup_dirty "
        "SELECT DISTINCT environment, CAST(ts AS DATE) FROM events"
    )
    con.close()
    marker.write_text(json.dumps({**built, "routes": "templated"}))


def _write_segment(out: Path, worker: int, number: int, lines: list[bytes]) -> str:
    path = out / f"bench-{worker}-{number:05d}.ndjson"
    path.write_bytes(b"".join(lines))
    return str(path)


def build(data: Path, events: int) -> None:
    sessions = round(events / EVENTS_PER_SESSION)
    print(f"building: {sessions} sessions (~{events} events) over {DAYS} days into {data}")
    data.mkdir(parents=True, exist_ok=True)
    for stale in (data / "stumble.duckdb", data / "stumble.duckdb.wal", data / "built.json"):
        stale.unlink(missing_ok=True)
    segments = data / "segments"
    segments.mkdir(exist_ok=True)
    ring = SessionKeyRing(data / "secrets")
    EventIdKey(data / "secrets")
    for day in range(-1, DAYS + 2):  # create every daily key before the workers share them
        moment = dt.datetime.combine(START + dt.timedelta(days=day), dt.time(12), dt.UTC)
        ring.key_for(int(moment.timestamp() * 1000))
    started = time.perf_counter()
    share = sessions // WORKERS
    jobs = [(i, share, 1000 + i, str(segments)) for i in range(WORKERS)]
    with multiprocessing.Pool(WORKERS) as pool:
        paths = [p for part in pool.map(_worker, jobs) for p in part]
    print(f"  simulated and enriched in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    store = DuckDBStore(data / "stumble.duckdb", threads=2)
    for path in paths:
        store.load_segment(Path(path))
        Path(path).unlink()
    total = store.count_events()
    store.close()
    print(f"  loaded {total} rows in {time.perf_counter() - started:.0f} s")
    (data / "built.json").write_text(
        json.dumps({"events": events, "rows": total, "routes": "templated"})
    )


# --- timing -------------------------------------------------------------------------------


def first_touch(query: FunnelQuery) -> FunnelQuery:
    """The same funnel counted by the rule before attempts."""
    return dataclasses.replace(
        query, scenario=dataclasses.replace(query.scenario, order="first_touch")
    )


Source = str
Runner = Callable[[EventStore, Source], Any]


def reports(plan: TrackingPlan, months: int = 0) -> dict[str, Runner]:
    """Every report over the 28 days (or ``months`` x 28 days back from their end), each a
    function of the store and the source asked for (``raw`` or ``auto``: rollups)."""
    last = START + dt.timedelta(days=DAYS - 1)
    first = last - dt.timedelta(days=28 * months - 1) if months else START
    time_range = TimeRange.days(first, last)
    scope = Scope(time_range)
    by_version = Scope(time_range, by="ui_version")
    by_role = Scope(time_range, by="role")
    before = Arm("1.4.2", ui_version=("1.4.2",))
    after = Arm("2.0.0", ui_version=("2.0.0",))
    funnel = FunnelQuery.from_plan(plan, scope, "create_service_request")
    funnel_by_version = FunnelQuery.from_plan(plan, by_version, "create_service_request")
    return {
        "funnel": lambda s, src: run_funnel(s, funnel, source=src),
        "funnel (first touch)": lambda s, src: run_funnel(s, first_touch(funnel), source=src),
        "funnel with last actions": lambda s, src: run_funnel(
            s,
            FunnelQuery.from_plan(plan, scope, "create_service_request", last_actions=True),
            source=src,
        ),
        "funnel by ui_version": lambda s, src: run_funnel(s, funnel_by_version, source=src),
        "funnel by ui_version (first touch)": lambda s, src: run_funnel(
            s, first_touch(funnel_by_version), source=src
        ),
        "field-errors": lambda s, src: run_field_errors(
            s, FieldErrorQuery.from_plan(plan, scope), **_source(run_field_errors, src)
        ),
        "field-errors by role": lambda s, src: run_field_errors(
            s, FieldErrorQuery.from_plan(plan, by_role), **_source(run_field_errors, src)
        ),
        "timings": lambda s, src: run_timings(s, TimingQuery(scope), **_source(run_timings, src)),
        "timings by role": lambda s, src: run_timings(
            s, TimingQuery(by_role), **_source(run_timings, src)
        ),
        "loops": lambda s, src: run_loops(s, LoopQuery(scope), **_source(run_loops, src)),
        "usage": lambda s, src: run_usage(
            s, UsageQuery.from_plan(plan, scope), **_source(run_usage, src)
        ),
        "failures": lambda s, src: run_failures(
            s, FailureQuery.from_plan(plan, scope), **_source(run_failures, src)
        ),
        "compare": lambda s, src: run_compare(
            s,
            CompareQuery.from_plan(plan, scope, "create_service_request", before, after),
            source=src,
        ),
        "top-problems": lambda s, src: run_top_problems(
            s, TopProblemsQuery.from_plan(plan, scope), **_source(run_top_problems, src)
        ),
        "health": lambda s, src: run_health(
            s, HealthQuery.from_plan(plan, time_range), **_source(run_health, src)
        ),
        "clicks": lambda s, src: run_clicks(
            s, ClickQuery.from_plan(plan, scope), **_source(run_clicks, src)
        ),
        "paths": lambda s, src: run_paths(
            s, PathQuery(scope, "request_create"), **_source(run_paths, src)
        ),
        "paths between two screens": lambda s, src: run_paths(
            s, PathQuery(scope, start="home", end="request_view"), **_source(run_paths, src)
        ),
        "frustration": lambda s, src: run_frustration(
            s, FrustrationQuery(scope), **_source(run_frustration, src)
        ),
    }


def _source(run: Callable[..., Any], source: Source) -> dict[str, Any]:
    """``source=`` for the reports that choose one (the others read raw rows only)."""
    return {"source": source} if "source" in inspect.signature(run).parameters else {}


def refresh_rollups(data: Path) -> None:
    """Build the rollups of every day that needs it (after a build, or a plan change), every
    past month, and put the daily cells in order, as the server's loader does."""
    store = DuckDBStore(data / "stumble.duckdb", threads=2)
    try:
        started = time.perf_counter()
        maintainer = RollupMaintainer(store, load_plan(default_plan_path()))
        report = maintainer.refresh(max_outdated=None, max_months=None)
        seconds = time.perf_counter() - started
    finally:
        store.close()
    if report.days_built or report.months_built or report.clustered:
        per_day = f" ({seconds / report.days_built:.2f} s per day)" if report.days_built else ""
        print(
            f"rollups: {report.days_built} day(s), {report.cells} cells, {report.months_built} "
            f"month(s), ordered: {report.clustered}, in {seconds:.1f} s{per_day}"
        )


def extend_history(data: Path, months: int) -> Path:
    """A copy of the database whose rollups cover ``months`` x 28 days: the 28 days' cells
    repeated further back (what 13 months of rollups cost to read; the raw rows stay 28 days,
    so the older days are sealed, as retention leaves them), with its past months added up.
    """
    target = data.with_name(f"{data.name}-{months}m")
    target.mkdir(exist_ok=True)
    copy = target / "stumble.duckdb"
    if not copy.exists():
        shutil.copyfile(data / "stumble.duckdb", copy)
        con = duckdb.connect(str(copy))
        for back in range(1, months):
            shift = f"INTERVAL {28 * back} DAY"
            con.execute(
                f"INSERT INTO rollups SELECT * REPLACE (CAST(day - {shift} AS DATE) AS day) "
                "FROM rollups WHERE day >= ?",
                [START],
            )
            con.execute(
                f"INSERT INTO rollup_days SELECT * REPLACE (CAST(day - {shift} AS DATE) AS day, "
                "true AS sealed) FROM rollup_days WHERE day >= ?",
                [START],
            )
        # The copied cells sit unordered at the end: the maintainer orders them, as it would
        # have ordered them day by day.
        con.execute("DELETE FROM rollup_layout")
        con.close()
        refresh_rollups(target)
    return target


def measure(data: Path, repeat: int, only: list[str], months: int = 0) -> None:
    plan = load_plan(default_plan_path())
    path = data / "stumble.duckdb"
    span = f"{months} x 28 days of rollups" if months else "28 days"
    print(f"\n{span}: seconds (warm = best of {repeat}; cpu = warm CPU time)")
    print(f"{'report':<36} {'source':>8} {'cold':>8} {'warm':>8} {'warm cpu':>9}")
    measured: dict[str, tuple[float, float]] = {}
    for name, run in reports(plan, months).items():
        if only and name not in only:
            continue
        for source in ("raw", "auto") if not months else ("auto",):
            store = DuckDBStore(path, threads=2, migrate=False)
            try:
                started = time.perf_counter()
                report = run(store, source)
                cold = time.perf_counter() - started
                warm, cpu = float("inf"), float("inf")
                for _ in range(repeat):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    run(store, source)
                    warm = min(warm, time.perf_counter() - started)
                    cpu = min(cpu, time.process_time() - cpu_started)
            finally:
                store.close()
            used = report.meta.source
            if source == "raw":
                measured[name] = (warm, cpu)
            print(f"{name:<36} {used:>8} {cold:>8.3f} {warm:>8.3f} {cpu:>9.3f}", flush=True)
    for name in ("funnel", "funnel by ui_version"):
        old = measured.get(f"{name} (first touch)")
        if name in measured and old:
            warm, cpu = (new / before for new, before in zip(measured[name], old, strict=True))
            print(f"{name} (raw rows): attempts / first touch = {warm:.2f}x warm, {cpu:.2f}x cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/stumble-bench-queries"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", action="append", default=[], help="run just these reports")
    parser.add_argument(
        "--months", type=int, default=13, help="also read this many 28-day months of rollups"
    )
    args = parser.parse_args()
    marker = args.data / "built.json"
    built = json.loads(marker.read_text()) if marker.exists() else {}
    if built.get("events") != args.events:
        build(args.data, args.events)
    else:
        print(f"reusing {args.data} ({built['rows']} rows)")
        template_stored_routes(args.data)
    refresh_rollups(args.data)
    measure(args.data, args.repeat, args.only)
    if args.months > 1:
        measure(extend_history(args.data, args.months), args.repeat, args.only, args.months)


if __name__ == "__main__":
    main()
