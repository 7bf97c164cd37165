"""Loader throughput into an on-disk DuckDB, and what the per-batch session sort buys.

Generates realistic spool segments — 100k ``StoredEvent`` lines each, interleaved from a few
thousand concurrent sessions of the service-desk scenario, with ~1% client retries (a copy of
a recent event, same ``event_id`` and client time, received again up to 30 s later) — and
loads them with ``DuckDBStore.load_segment``: read_json straight into ``events``, the copies
named from the appended rows and the segment recorded in one transaction, the copies deleted
in a second. Prints rows/s per segment for an empty table and again once the table holds
``--prefill-rows`` rows (all inside the dedupe window: the search for stored copies' worst
case).

Each measured segment is also loaded by the *reference path*: DuckDB's own ``read_json`` of the
same file with the same explicit columns, ``INSERT INTO events SELECT ... FROM read_json(...)``
in one transaction, into a table of the same schema in a file of its own attached with the same
row-group size, threads and memory limit (no dedupe, no ordering, no bookkeeping). The two run
back to back on every segment, rotating which goes first; the ratio stumble / reference is
printed (issue 13's loader target is >= 0.8). The reference table holds only the measured
segments. A second reference table, loaded with every segment stumble loads (prefill
included, untimed), gives (b') and (c'): an append and its commit into a table of 10M rows cost
more than into an empty one (commit ~28 ms against ~11 ms per 100k rows), which the first
reference does not pay and stumble does.

``--profile`` times every statement of stumble's load (insert, bounds, naming the copies, mark
dirty, record, commit, the second transaction's delete) and prints the median per statement.

``--rollups`` also rebuilds the rollups of the day each segment touched right after loading it
(``refresh_rollups_after_loading``) and prints (d) load + that refresh, the worst case, (e) the
load with the refreshes the server's loader makes at capacity, where segments are still waiting
after every pass: one at most every ``max(rollup_interval_s, refresh / UPKEEP_SHARE,
CATCHING_UP_INTERVAL_S)`` seconds, and (f) the same at its cadence without a backlog. Latest
(2026-12-07 16:45, quiet machine, ``--prefill-rows 2000000 --segments 8 --rollups``): (c) 0.84
(paired 0.84) empty, 0.83 (0.83) at 2.0M rows; (c') 0.84 and 0.81; (e) 0.83 and 0.81; (f)
0.79 and 0.75, the 2.6M-event day's refresh taking 13.9 s. Two earlier runs of this design:
(c) 0.90 and 0.84 empty, 0.89 and 0.81 at 2.0M rows; (e) 0.87 and 0.79 at 2.0M rows.

``--session-scan`` then times ``WHERE session_id = ? ORDER BY ts`` on the loaded table (arrival
order) against copies of the same rows sorted per batch as stumble stored them before issue 13,
in arrival order with DuckDB's default 122,880-row row groups, and fully sorted.
Generation time is excluded from every figure. Prints figures; asserts nothing about timing.

    .venv/bin/python benchmarks/loader.py [--prefill-rows 10000000] [--session-scan] \
        [--profile] [--rollups]

Earlier designs' figures are in ``docs/decisions.md`` (45). The reference loads a 100k segment in
~460-520 ms on this machine.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import statistics
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from stumble.config import Settings
from stumble.events import StoredEvent
from stumble.plan.load import default_plan_path, load_plan
from stumble.rollups import CATCHING_UP_INTERVAL_S, UPKEEP_SHARE, RollupMaintainer
from stumble.storage import DuckDBStore, LoadResult
from stumble.storage.dialect import DUCKDB
from stumble.storage.duckdb_store import ROW_GROUP_SIZE

SCREENS = ("home", "search", "request_list", "request_create", "request_view", "approval_queue")
FORMS = ("service_request", "approval_decision", "report_params", "search_filters")
FIELDS = ("request_type", "category", "iin_bin", "contract_number", "priority", "due_date")
OPERATIONS = ("login", "search", "request_submit", "approval_decision", "report_export")
START_MS = 1_717_200_000_000
EVENTS_PER_SECOND = 1_000  # server receive rate the generated traffic represents
# Cumulative share of each kind in the traffic.
KIND_MIX = (
    (0.22, "screen_view"),
    (0.42, "action"),
    (0.52, "form_submit"),
    (0.60, "field_error"),
    (0.66, "operation_start"),
    (0.76, "operation_end"),
    (0.82, "navigation"),
    (0.85, "error"),
    (0.97, "vital"),
    (1.00, "custom"),
)


@dataclass
class Session:
    session_id: str
    environment: str
    context: dict[str, str]
    events_left: int
    screen: str = "home"
    operation_id: str = ""


@dataclass
class TrafficGenerator:
    """Deterministic, session-shaped traffic as the spool would hold it."""

    seed: int = 1
    concurrent_sessions: int = 3_000
    retry_rate: float = 0.01
    rng: random.Random = field(init=False)
    now_ms: int = START_MS
    sessions: list[Session] = field(init=False)
    recent: deque[StoredEvent] = field(default_factory=lambda: deque(maxlen=30_000))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.sessions = [self._new_session() for _ in range(self.concurrent_sessions)]

    def segment(self, rows: int) -> bytes:
        return msgspec.json.Encoder().encode_lines([self._next_row() for _ in range(rows)])

    def _next_row(self) -> StoredEvent:
        self.now_ms += self.rng.choice((0, 1, 1, 2)) * 1000 // EVENTS_PER_SECOND
        if self.recent and self.rng.random() < self.retry_rate:
            original = self.recent[self.rng.randrange(len(self.recent))]
            return msgspec.structs.replace(original, received_at=self.now_ms)
        slot = self.rng.randrange(len(self.sessions))
        session = self.sessions[slot]
        row = self._event(session)
        session.events_left -= 1
        if session.events_left <= 0:
            self.sessions[slot] = self._new_session()
        self.recent.append(row)
        return row

    def _new_session(self) -> Session:
        rng = self.rng
        return Session(
            session_id=f"{rng.getrandbits(128):032x}"[:22],
            environment="production" if rng.random() < 0.9 else "staging",
            context={
                "role": rng.choice(("operator", "accountant", "manager", "approver")),
                "division": rng.choice(("hq", "branch_north", "branch_south")),
                "device_type": rng.choice(("desktop", "desktop", "desktop", "tablet")),
                "browser": rng.choice(("chrome", "firefox", "edge", "yandex")),
                "region": rng.choice(("almaty", "astana", "shymkent")),
            },
            events_left=rng.randint(5, 80),
        )

    def _event(self, session: Session) -> StoredEvent:
        rng = self.rng
        latency = rng.randint(20, 400)
        common: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "environment": session.environment,
            "key_id": f"wk_{session.environment}_1",
            "sample_rate": 1.0,
            "received_at": self.now_ms,
            "ts": self.now_ms - latency,
            "client_ts": self.now_ms - latency + 1_800,
            "skew_ms": -1_800,
            "session_id": session.session_id,
            "schema_version": 3,
            "ui_version": "2024.06.1",
            "feature_flags": ["new_search"] if rng.random() < 0.5 else [],
            "tz": "Asia/Almaty",
            **session.context,
        }
        kind, fields = self._kind_fields(session)
        return StoredEvent(
            event_name=fields.pop("event_name", kind),
            kind=kind,
            screen_id=session.screen,
            **common,
            **fields,
        )

    def _kind_fields(self, session: Session) -> tuple[str, dict[str, Any]]:
        roll = self.rng.random()
        for threshold, kind in KIND_MIX:
            if roll < threshold:
                return kind, getattr(self, f"_{kind}")(session)
        raise AssertionError("KIND_MIX ends at 1.0")

    def _screen_view(self, session: Session) -> dict[str, Any]:
        session.screen = self.rng.choice(SCREENS)
        return {"route": f"/{session.screen}/:id", "referrer_screen": "home"}

    def _action(self, session: Session) -> dict[str, Any]:
        return {"event_name": "click_submit", "action_id": "submit", "target": "btn"}

    def _form_submit(self, session: Session) -> dict[str, Any]:
        rng = self.rng
        return {
            "form_id": rng.choice(FORMS),
            "step": rng.randint(1, 3),
            "attempt": 1,
            "status": "success" if rng.random() < 0.8 else "fail",
        }

    def _field_error(self, session: Session) -> dict[str, Any]:
        rng = self.rng
        return {
            "form_id": rng.choice(FORMS),
            "field_id": rng.choice(FIELDS),
            "error_type": rng.choice(("required", "format", "server")),
            "attempt": rng.randint(1, 3),
            "step": 1,
        }

    def _operation_start(self, session: Session) -> dict[str, Any]:
        session.operation_id = f"op_{self.rng.getrandbits(32):08x}"
        return {"operation_id": session.operation_id, "operation": self.rng.choice(OPERATIONS)}

    def _operation_end(self, session: Session) -> dict[str, Any]:
        rng = self.rng
        return {
            "operation_id": session.operation_id or "op_00000000",
            "operation": rng.choice(OPERATIONS),
            "status": "success" if rng.random() < 0.9 else "timeout",
            "duration_ms": round(rng.lognormvariate(6.5, 0.8), 1),
        }

    def _navigation(self, session: Session) -> dict[str, Any]:
        return {"nav": self.rng.choice(("back", "cancel", "retry"))}

    def _error(self, session: Session) -> dict[str, Any]:
        return {"error_kind": "http", "http_status": 503, "route": "/api/requests"}

    def _vital(self, session: Session) -> dict[str, Any]:
        value = round(self.rng.lognormvariate(7.4, 0.5), 1)
        return {"metric": "LCP", "value": value, "rating": "good" if value < 2500 else "poor"}

    def _custom(self, session: Session) -> dict[str, Any]:
        return {"event_name": "report_exported", "params": '{"format":"xlsx"}'}


@dataclass
class Loads:
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0
    inserted: int = 0
    duplicates: int = 0
    reference_seconds: list[float] = field(default_factory=list)
    at_size_seconds: list[float] = field(default_factory=list)
    rollup_seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float, cpu_seconds: float, result: LoadResult) -> None:
        self.seconds.append(seconds)
        self.cpu_seconds += cpu_seconds
        self.inserted += result.inserted
        self.duplicates += result.duplicates


class ReferenceLoader:
    """DuckDB's own path: ``INSERT INTO events SELECT <same columns> FROM read_json(...)``."""

    def __init__(self, database: Path, threads: int, memory_limit: str) -> None:
        config = {
            "threads": threads,
            "memory_limit": memory_limit,
            "preserve_insertion_order": True,  # as stumble's connection
            "temp_directory": str(database.with_name(database.name + ".tmp")),
        }
        self.con = duckdb.connect(":memory:", config=config)
        self.con.execute(f"ATTACH '{database}' AS ref (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        self.con.execute("USE ref")
        self.con.execute(DUCKDB.create_events())
        self.sql = DUCKDB.insert_segment()  # stumble's own insert with nothing filtered

    def load(self, path: Path) -> float:
        started = time.perf_counter()
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(self.sql, [str(path)])
        self.con.execute("COMMIT")
        return time.perf_counter() - started

    def close(self) -> None:
        self.con.close()


def refresh_rollups_after_loading(store: DuckDBStore) -> float | None:
    """Issue 13's "with rollup maintenance included": rebuild the rollups of the days the load
    just marked dirty (every family, the example plan) and return the seconds it took."""
    started = time.perf_counter()
    RollupMaintainer(store, load_plan(default_plan_path())).refresh()
    return time.perf_counter() - started


class StatementTimer:
    """Stands in for the store's writer cursor and times each statement it runs."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self.cursor = cursor
        self.labels = {
            DUCKDB.last_row_id(): "last row id",
            DUCKDB.insert_segment(): "insert read_json (every line)",
            DUCKDB.stage_appended(): "stage appended rows' keys",
            DUCKDB.appended_bounds(): "appended rows' bounds",
            DUCKDB.stage_duplicates(): "name copies (stored + in batch)",
            DUCKDB.staged_duplicates_count(): "count copies",
            DUCKDB.record_pending_duplicates(): "record pending copies",
            DUCKDB.mark_appended_days_dirty(): "mark dirty days",
            **dict.fromkeys(DUCKDB.drop_staged(), "drop staged tables"),
            DUCKDB.record_segment(): "record segment",
            DUCKDB.is_loaded(): "is loaded?",
            DUCKDB.pending_duplicates_bounds(): "pending copies' bounds",
            DUCKDB.delete_duplicates(): "delete copies (2nd transaction)",
            DUCKDB.clear_pending_duplicates(): "forget pending copies",
            "COMMIT": "commit (checkpoint)",
            "BEGIN TRANSACTION": "begin",
        }
        self.seconds: dict[str, list[float]] = {}

    def execute(self, sql: str, params: Any = None) -> StatementTimer:
        started = time.perf_counter()
        self.cursor.execute(sql, params)
        label = self.labels.get(sql, sql[:40])
        self.seconds.setdefault(label, []).append(time.perf_counter() - started)
        return self

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def close(self) -> None:
        self.cursor.close()

    def report(self) -> None:
        total = sum(statistics.median(s) for s in self.seconds.values())
        runs = max(len(s) for s in self.seconds.values())
        print(f"  per statement (median ms over the segments that ran it, of {runs}):")
        for label, seconds in self.seconds.items():
            median = statistics.median(seconds)
            print(
                f"    {label:38s} {median * 1000:7.1f} ms {median / total:5.1%} ran {len(seconds)}"
            )
        print(f"    {'sum of medians':38s} {total * 1000:7.1f} ms", flush=True)


def load_segments(
    store: DuckDBStore,
    generator: TrafficGenerator,
    count: int,
    rows: int,
    spool: Path,
    *,
    reference: ReferenceLoader | None = None,
    at_size: ReferenceLoader | None = None,
    rollups: bool = False,
) -> Loads:
    """Load ``count`` new segments into ``store``, each also into ``at_size`` (the reference
    table that holds every row stumble's does); with ``reference`` set, time both references
    too, rotating which of the three goes first."""
    loads = Loads()
    timed = reference is not None
    for number in range(count):
        path = spool / f"seg-{time.monotonic_ns()}.ndjson"
        path.write_bytes(generator.segment(rows))
        for turn in range(3):
            slot = (turn + number) % 3
            if slot == 0:
                started, cpu_started = time.perf_counter(), time.process_time()
                result = store.load_segment(path)
                loads.add(time.perf_counter() - started, time.process_time() - cpu_started, result)
            elif slot == 1 and reference is not None:
                loads.reference_seconds.append(reference.load(path))
            elif slot == 2 and at_size is not None:
                seconds = at_size.load(path)
                if timed:
                    loads.at_size_seconds.append(seconds)
        if rollups:
            refreshed = refresh_rollups_after_loading(store)
            if refreshed is not None:
                loads.rollup_seconds.append(refreshed)
        path.unlink()
    return loads


def report(label: str, loads: Loads, rows: int, rollups: bool = False) -> None:
    per_row = [rows / s for s in loads.seconds]
    print(
        f"{label:34s} {len(loads.seconds):4d} segments  "
        f"median {statistics.median(loads.seconds) * 1000:6.0f} ms/segment  "
        f"= {statistics.median(per_row):8,.0f} rows/s  "
        f"(worst {min(per_row):8,.0f}; {rows * len(per_row) / loads.cpu_seconds:8,.0f} rows per "
        f"CPU-second)  inserted {loads.inserted:,} dropped {loads.duplicates:,}",
        flush=True,
    )
    if not loads.reference_seconds:
        return
    stumble = rows / statistics.median(loads.seconds)
    reference = rows / statistics.median(loads.reference_seconds)
    print(
        f"  (a) stumble load_segment {stumble:10,.0f} rows/s\n"
        f"  (b) reference read_json  {reference:10,.0f} rows/s  "
        f"(median {statistics.median(loads.reference_seconds) * 1000:.0f} ms/segment)\n"
        f"  (c) ratio a/b            {stumble / reference:10.2f}  (median of the per-segment "
        f"ratios, each pair back to back: {paired_ratio(loads, loads.reference_seconds):.2f})",
        flush=True,
    )
    if loads.at_size_seconds:
        at_size = rows / statistics.median(loads.at_size_seconds)
        print(
            f"  (b') the reference into a table holding what stumble's holds {at_size:10,.0f} "
            f"rows/s (median {statistics.median(loads.at_size_seconds) * 1000:.0f} ms/segment); "
            f"(c') ratio a/b' {stumble / at_size:.2f} (paired "
            f"{paired_ratio(loads, loads.at_size_seconds):.2f})",
            flush=True,
        )
    if rollups and loads.rollup_seconds:
        _report_rollups(loads, rows, reference)


def _report_rollups(loads: Loads, rows: int, reference: float) -> None:
    """(d) the worst case, a refresh after every segment; (e) what the server does at capacity:
    segments are waiting after every loading pass, so ``RollupMaintainer.refresh_if_due``
    starts a refresh at most every ``max(rollup_interval_s, refresh / UPKEEP_SHARE,
    CATCHING_UP_INTERVAL_S)`` seconds, and of each such period the refresh takes its own time
    and loading the rest; (f) the same at the cadence without a backlog, for comparison."""
    both = [a + r for a, r in zip(loads.seconds, loads.rollup_seconds, strict=True)]
    every = rows / statistics.median(both)
    refresh = statistics.median(loads.rollup_seconds)
    load = statistics.median(loads.seconds)
    interval = Settings().rollup_interval_s
    usual = max(interval, refresh / UPKEEP_SHARE)
    catching_up = max(usual, CATCHING_UP_INTERVAL_S)
    print(
        f"  (d) load + a rollup refresh after every segment {every:10,.0f} rows/s, "
        f"ratio to (b) {every / reference:.2f} (refresh median {refresh * 1000:.0f} ms)",
        flush=True,
    )
    for label, period, why in (
        ("(e)", catching_up, "the server's cadence while segments wait"),
        ("(f)", usual, f"every {interval:.0f} s, at most {UPKEEP_SHARE:.0%} of the time"),
    ):
        amortised = rows / load * (1 - refresh / period)
        print(
            f"  {label} load + a refresh every {period:.0f} s ({why}) {amortised:10,.0f} rows/s, "
            f"ratio to (b) {amortised / reference:.2f}",
            flush=True,
        )


def paired_ratio(loads: Loads, reference_seconds: list[float]) -> float:
    """Median over segments of reference seconds / stumble seconds: less sensitive to other
    work on a shared machine than the ratio of two medians."""
    return statistics.median(r / s for s, r in zip(loads.seconds, reference_seconds, strict=True))


def max_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


@dataclass
class Phase:
    """What a measured phase needs: the store (and its statement timer) and both references."""

    store: DuckDBStore
    generator: TrafficGenerator
    spool: Path
    args: argparse.Namespace
    reference: ReferenceLoader
    at_size: ReferenceLoader
    timer: StatementTimer | None

    def measure(self, label: str) -> None:
        """Load ``--segments`` segments timed against both references, and print them."""
        rows = self.args.segment_rows
        measured = load_segments(
            self.store,
            self.generator,
            self.args.segments,
            rows,
            self.spool,
            reference=self.reference,
            at_size=self.at_size,
            rollups=self.args.rollups,
        )
        report(label, measured, rows, self.args.rollups)
        if self.timer is not None:
            self.timer.report()
            self.timer.seconds.clear()

    def fill(self, count: int) -> None:
        """Load ``count`` more segments, into the reference at size too; not a figure."""
        rows = self.args.segment_rows
        prefill = load_segments(
            self.store, self.generator, count, rows, self.spool, at_size=self.at_size
        )
        report("filling (not a figure of its own)", prefill, rows)
        if self.timer is not None:
            self.timer.seconds.clear()


def measure_loading(args: argparse.Namespace, database: Path, spool: Path) -> None:
    reference = ReferenceLoader(
        database.with_name("reference.duckdb"), args.threads, args.memory_limit
    )
    at_size = ReferenceLoader(
        database.with_name("reference-at-size.duckdb"), args.threads, args.memory_limit
    )
    with DuckDBStore(database, threads=args.threads, memory_limit=args.memory_limit) as store:
        timer = None
        if args.profile:
            timer = StatementTimer(store._writer)  # the benchmark's own probe
            store._writer = timer  # type: ignore[assignment]
        generator = TrafficGenerator(seed=args.seed, retry_rate=args.retry_rate)
        phase = Phase(store, generator, spool, args, reference, at_size, timer)
        phase.measure("empty table")
        to_prefill = max(0, args.prefill_rows - store.count_events()) // args.segment_rows
        if to_prefill:
            phase.fill(to_prefill)
            phase.measure(f"at {store.count_events():,} existing rows")
    reference.close()
    at_size.close()
    print(f"max RSS {max_rss_mb()} MB, database {database.stat().st_size >> 20} MB", flush=True)


def _copy(database: Path, target: Path, order: str, row_group_size: int) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{database}' AS src (READ_ONLY)")
    con.execute(f"ATTACH '{target}' AS dst (ROW_GROUP_SIZE {row_group_size})")
    con.execute(f"CREATE TABLE dst.events AS SELECT * FROM src.events ORDER BY {order}")
    con.close()


def _time_session_scans(database: Path, row_group_size: int, sessions: list[str]) -> str:
    con = duckdb.connect(config={"threads": 2})
    con.execute(f"ATTACH '{database}' AS db (ROW_GROUP_SIZE {row_group_size}, READ_ONLY)")
    con.execute("USE db")
    sql = "SELECT * FROM events WHERE session_id = ? ORDER BY ts"
    for session in sessions[:5]:
        con.execute(sql, [session]).fetchall()  # warm the buffer pool
    seconds = []
    for session in sessions:
        started = time.perf_counter()
        con.execute(sql, [session]).fetchall()
        seconds.append(time.perf_counter() - started)
    profiled = [_row_groups_scanned(con, sql, session) for session in sessions[:20]]
    scanned = [found for found in profiled if found is not None]
    con.close()
    groups = (
        f"median {statistics.median(s for s, _ in scanned):.0f} of {scanned[0][1]}"
        if scanned
        else "not in the profile"
    )
    return (
        f"median {statistics.median(seconds) * 1000:5.1f} ms  "
        f"p90 {sorted(seconds)[int(len(seconds) * 0.9)] * 1000:5.1f} ms  row groups read: {groups}"
    )


def _row_groups_scanned(
    con: duckdb.DuckDBPyConnection, sql: str, session: str
) -> tuple[int, int] | None:
    plan = con.execute("EXPLAIN ANALYZE " + sql, [session]).fetchall()[0][1]
    found = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan)
    if found is None:  # DuckDB's profile does not always name them
        return None
    return int(found.group(1)), int(found.group(2))


def measure_session_scans(database: Path, workdir: Path, segment_rows: int) -> None:
    con = duckdb.connect(str(database), read_only=True)
    rows = con.execute("SELECT count(*) FROM events").fetchone()
    sessions = [s for (s,) in con.execute("SELECT DISTINCT session_id FROM events").fetchall()]
    con.close()
    picked = random.Random(3).sample(sessions, min(100, len(sessions)))
    print(f"\nWHERE session_id = ? ORDER BY ts over {rows[0] if rows else 0:,} rows:")
    batch = f"rowid // {segment_rows}"  # the per-batch sort stumble did before issue 13
    variants = [
        ("loaded: arrival order, 16k groups", database, ROW_GROUP_SIZE, None),
        (
            "per-batch sorted (old layout), 16k",
            workdir / "batch16k.duckdb",
            ROW_GROUP_SIZE,
            f"{batch}, environment, session_id, ts",
        ),
        ("arrival order, 122k groups", workdir / "arrival122k.duckdb", 122_880, "rowid"),
        ("fully sorted (bound), 122k", workdir / "full122k.duckdb", 122_880, "session_id, ts"),
    ]
    for label, path, row_group_size, order in variants:
        if order is not None:
            _copy(database, path, order, row_group_size)
        print(f"  {label:34s} {_time_session_scans(path, row_group_size, picked)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segment-rows", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=5, help="measured segments per phase")
    parser.add_argument("--prefill-rows", type=int, default=10_000_000)
    parser.add_argument("--retry-rate", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--session-scan", action="store_true")
    parser.add_argument("--profile", action="store_true", help="time each statement of a load")
    parser.add_argument(
        "--rollups",
        action="store_true",
        help="also time rollups refreshed after loading (hook: refresh_rollups_after_loading)",
    )
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        workdir = Path(work)
        database = workdir / "stumble.duckdb"
        spool = workdir / "spool"
        spool.mkdir()
        measure_loading(args, database, spool)
        if args.session_scan:
            measure_session_scans(database, workdir, args.segment_rows)


if __name__ == "__main__":
    main()
