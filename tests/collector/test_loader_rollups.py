"""The loader keeps daily rollups current: after loading, at most once per interval."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path

import msgspec
from tests.collector.test_loader import old_row

from stumble.app import CollectorServices
from stumble.config import Settings


def _row(at_ms: int) -> object:
    return msgspec.structs.replace(old_row(at_ms), event_id=str(uuid.uuid4()), environment="prod")


def test_a_load_is_rolled_up_then_waits_for_the_interval(tmp_path: Path) -> None:
    services = CollectorServices(Settings(data_dir=str(tmp_path / "data"), rollup_interval_s=3600))
    services.open()
    try:
        now_ms = int(time.time() * 1000)
        day = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
        services.store.write_rows([_row(now_ms)])
        services.loader.run_once()
        (state,) = services.store.rollup_days("prod")
        assert (state.day, state.dirty, state.built_at_ms is not None) == (day, False, True)

        services.store.write_rows([_row(now_ms + 1)])
        services.loader.run_once()  # within the interval: the day waits, dirty
        (state,) = services.store.rollup_days("prod")
        assert state.dirty
        assert services.loader.status.last_error is None
    finally:
        services.close()


def test_while_segments_keep_arriving_rollups_wait_for_the_catch_up_interval(
    tmp_path: Path,
) -> None:
    # Each loading pass finds a segment sealed while it loaded (arrivals during a catch-up):
    # rebuilding whole days after every pass would redo the same work, so the refresh waits.
    services = CollectorServices(Settings(data_dir=str(tmp_path / "data"), rollup_interval_s=0))
    services.open()
    try:
        assert services.loader.rollups is not None
        seconds = [0.0]
        services.loader.rollups.clock = lambda: seconds[0]
        now_ms = int(time.time() * 1000)
        services.store.write_rows([_row(now_ms)])
        services.loader.run_once()  # nothing waiting: rolled up at once
        assert not services.store.rollup_days("prod")[0].dirty

        load = services.store.load_segment

        def arrivals_during_the_load(path: Path) -> object:
            result = load(path)
            services.spool.append_blocking(msgspec.json.encode(_row(now_ms + 2)) + b"\n")
            services.spool.seal_now()
            return result

        services.store.load_segment = arrivals_during_the_load  # type: ignore[method-assign]
        for _ in range(3):
            services.spool.append_blocking(msgspec.json.encode(_row(now_ms + 1)) + b"\n")
            services.spool.seal_now()
            seconds[0] += 100  # past the usual wait, short of the catch-up interval
            services.loader.run_once()
            assert services.spool.sealed_segments(), "a segment is waiting after the pass"
            assert services.store.rollup_days("prod")[0].dirty, "no refresh while catching up"

        services.store.load_segment = load  # type: ignore[method-assign]
        seconds[0] += 100
        services.loader.run_once()  # the spool drained: back to the usual wait
        assert not services.spool.sealed_segments()
        assert not services.store.rollup_days("prod")[0].dirty
        assert services.loader.status.last_error is None
    finally:
        services.close()
