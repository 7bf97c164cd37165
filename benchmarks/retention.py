"""Does the database file shrink after retention? Sizes of a real on-disk file, step by step.

Loads ``--rows`` rows of the loader benchmark's traffic spread over ``--days`` days (one
segment per day, received that day), then deletes every day but the last ``--keep-days``
(75% by default) and prints the file (and WAL) size and DuckDB's block counts after each
step: the DELETE, a CHECKPOINT, a second one, five more days loaded and checkpointed (are
free blocks reused?), and the compaction (``COPY FROM DATABASE`` into a new file). Then the
same deletion through ``run_retention`` on a copy of the loaded file, as the server runs it.
Prints figures; asserts nothing.

    .venv/bin/python benchmarks/retention.py [--rows 2000000] [--days 40] [--keep-days 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from loader import START_MS, TrafficGenerator  # run as a script: benchmarks/ is on sys.path
from stumble.retention import DAY_MS, RetentionPolicy, run_retention
from stumble.storage import DuckDBStore
from stumble.storage.duckdb_store import CATALOG

ENVIRONMENTS = ("production", "staging")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--keep-days", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stumble-retention-") as work:
        database = Path(work) / "stumble.duckdb"
        generator = TrafficGenerator()
        with DuckDBStore(database, threads=args.threads) as store:
            load_days(store, generator, range(args.days), args.rows // args.days, Path(work))
            show("loaded", store)
        copy = Path(work) / "copy" / "stumble.duckdb"
        copy.parent.mkdir()
        shutil.copyfile(database, copy)
        now_ms = START_MS + args.days * DAY_MS
        step_by_step(database, generator, args, now_ms, Path(work))
        through_run_retention(copy, args, now_ms)


def load_days(
    store: DuckDBStore, generator: TrafficGenerator, days: range, rows: int, work: Path
) -> None:
    started = time.perf_counter()
    for day in days:
        generator.now_ms = START_MS + day * DAY_MS
        segment = work / f"day-{day}.ndjson"
        segment.write_bytes(generator.segment(rows))
        store.load_segment(segment)
        segment.unlink()
    print(f"  ({len(days)} days of {rows:,} rows loaded in {time.perf_counter() - started:.0f} s)")


def step_by_step(
    database: Path, generator: TrafficGenerator, args: argparse.Namespace, now_ms: int, work: Path
) -> None:
    cutoff_ms = now_ms - args.keep_days * DAY_MS
    with DuckDBStore(database, threads=args.threads) as store:
        started = time.perf_counter()
        deleted = sum(store.delete_expired(env, cutoff_ms) for env in ENVIRONMENTS)
        seconds = time.perf_counter() - started
        show(f"DELETE {deleted:,} rows ({seconds:.1f} s)", store)
        store.reclaim_space(compact_above=1.0)  # a CHECKPOINT, never a copy
        show("CHECKPOINT", store)
        store.reclaim_space(compact_above=1.0)
        show("CHECKPOINT again", store)
        load_days(store, generator, range(args.days, args.days + 5), args.rows // args.days, work)
        show("5 more days loaded", store)
        store.reclaim_space(compact_above=1.0)
        show("CHECKPOINT (new rows fill freed blocks?)", store)
        started = time.perf_counter()
        reclaimed = store.reclaim_space(compact_above=0.3)
        seconds = time.perf_counter() - started
        show(f"compaction={reclaimed.compacted} ({seconds:.1f} s)", store)


def through_run_retention(database: Path, args: argparse.Namespace, now_ms: int) -> None:
    policy = RetentionPolicy(raw_days=dict.fromkeys(ENVIRONMENTS, args.keep_days))
    with DuckDBStore(database, threads=args.threads) as store:
        started = time.perf_counter()
        report = run_retention(store, policy, now_ms, refresh_rollups=None, audit=None)
        seconds = time.perf_counter() - started
        print(
            f"run_retention: {report.rows_deleted:,} rows deleted in {seconds:.1f} s, "
            f"{_mb(report.bytes_before)} -> {_mb(report.bytes_after)} "
            f"(free before compaction {report.space.free_share:.0%}, "
            f"compacted={report.space.compacted}); {store.count_events():,} rows kept"
        )


def show(label: str, store: DuckDBStore) -> None:
    assert isinstance(store.path, Path)
    wal = store.path.with_name(store.path.name + ".wal")
    (total, free), *_ = store.query(
        "SELECT total_blocks, free_blocks FROM pragma_database_size() WHERE database_name = ?",
        [CATALOG],
    ).rows
    print(
        f"{label:44s} file {_mb(store.path.stat().st_size):>9s}  "
        f"wal {_mb(wal.stat().st_size if wal.exists() else 0):>9s}  "
        f"blocks {total:5d} total {free:5d} free  rows {store.count_events():,}",
        flush=True,
    )


def _mb(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.1f} MB"


if __name__ == "__main__":
    main()
