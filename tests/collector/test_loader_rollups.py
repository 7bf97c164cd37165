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
