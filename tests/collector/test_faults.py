"""Real faults against a real ``stumble serve``: kill -9 under load, a torn spool tail, a full
disk, a spool at its bound while the loader lags, storage that cannot be written, duplicate
delivery, memory under load.

Each test checks the guarantee the fault table of the reliability reference gives: every event
answered 202 is in DuckDB exactly once once the dust settles; refusals are 503 with
``Retry-After``; the server heals without a restart. Counts are printed (run with ``-s``), so a
run documents what it exercised. Nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.collector.conftest import ORIGIN, Server, batch, event, make_server

from stumble.access.pseudonyms import EventIdKey

KINDS = (
    "action",
    "screen_view",
    "form_submit",
    "field_error",
    "operation_end",
    "error",
    "vital",
    "navigation",
    "custom",
)
MIB = 1024 * 1024


# --- what the clients know ------------------------------------------------------------------


@dataclass
class Ledger:
    """Shared by client threads: ids sent, ids answered 202, and every answer seen."""

    sent: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # ids of batches answered 503
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_sent(self, ids: list[str]) -> None:
        with self.lock:
            self.sent.extend(ids)

    def record(self, response: httpx.Response, ids: list[str]) -> None:
        """Book an answer; anything but a full 202 or a 503 with Retry-After is a problem."""
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code == 202:
                body = response.json()
                rejected = {item.get("event_id") for item in body["rejected"]}
                if rejected or body["accepted"] != len(ids):
                    self.problems.append(
                        f"202 accepted {body['accepted']} of {len(ids)} valid events"
                    )
                self.acked.extend(i for i in ids if i not in rejected)
            elif response.status_code == 503:
                self.refused.extend(ids)
                if not response.headers.get("retry-after", "").isdigit():
                    self.problems.append("503 without a numeric Retry-After")
            else:
                self.problems.append(f"unexpected {response.status_code} {response.text[:80]}")


def client_for(srv: Server) -> httpx.Client:
    """A keep-alive client with the prod key, as a browser SDK's beacon would present it."""
    headers = {"Authorization": f"Bearer {srv.keys['prod']}", "Origin": ORIGIN}
    return httpx.Client(base_url=srv.url, headers=headers, timeout=15)


def random_events(rng: random.Random, low: int, high: int) -> list[dict[str, Any]]:
    """Valid events of mixed kinds, so every column of the stored row is exercised."""
    return [event(rng.choice(KINDS)) for _ in range(rng.randint(low, high))]


def post_batch(
    client: httpx.Client, ledger: Ledger, events: list[dict[str, Any]]
) -> httpx.Response:
    ids = [e["event_id"] for e in events]
    ledger.note_sent(ids)
    response = client.post("/v1/batch", json=batch(*events))
    ledger.record(response, ids)
    return response


def post_until_status(
    client: httpx.Client, ledger: Ledger, status: int, *, within_s: float, pause_s: float = 0.0
) -> httpx.Response:
    """Post 50-event batches until one is answered ``status``; fail after ``within_s``."""
    rng = random.Random(status)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        response = post_batch(client, ledger, random_events(rng, 50, 50))
        if response.status_code == status:
            return response
        time.sleep(pause_s)
    pytest.fail(f"no {status} within {within_s} s; answers so far: {dict(ledger.statuses)}")


def _post_until_stopped(srv: Server, stop: threading.Event, ledger: Ledger, seed: int) -> None:
    rng = random.Random(seed)
    with client_for(srv) as client:
        while not stop.is_set():
            try:
                post_batch(client, ledger, random_events(rng, 10, 50))
            except httpx.TransportError:
                time.sleep(0.02)  # the server is dead: no answer, so nothing was promised


@contextmanager
def load(srv: Server, ledger: Ledger, *, threads: int, seed: int) -> Iterator[None]:
    """Client threads post random batches for as long as the block runs."""
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=_post_until_stopped, args=(srv, stop, ledger, seed + n), daemon=True
        )
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)


# --- what storage holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    acked: int
    stored: int
    stored_unanswered: int
    stored_refused: int


def assert_acked_stored_once(srv: Server, ledger: Ledger) -> Outcome:
    """Every 202'd id stored, none twice, none that was never sent. The server must be stopped."""
    assert not ledger.problems, ledger.problems[:5]
    assert ledger.acked, "no batch was acknowledged: the test exercised nothing"
    key = EventIdKey(srv.data_dir / "secrets")
    stored = dict(srv.query("SELECT CAST(event_id AS VARCHAR), count(*) FROM events GROUP BY 1"))
    acked = {key.stored_id(i) for i in ledger.acked}
    sent = {key.stored_id(i) for i in ledger.sent}
    missing = acked - stored.keys()
    assert not missing, f"{len(missing)} of {len(acked)} events answered 202 are not stored"
    doubled = sum(1 for count in stored.values() if count > 1)
    assert doubled == 0, f"{doubled} event ids are stored more than once"
    assert stored.keys() <= sent, "storage holds event ids that no client sent"
    refused = {key.stored_id(i) for i in ledger.refused}
    outcome = Outcome(
        len(acked), len(stored), len(stored.keys() - acked), len(stored.keys() & refused)
    )
    print(
        f"acked={outcome.acked} stored={outcome.stored} "
        f"stored_without_answer={outcome.stored_unanswered} "
        f"stored_after_503={outcome.stored_refused} statuses={dict(ledger.statuses)}"
    )
    return outcome


def metric(client: httpx.Client, name: str, srv: Server) -> float:
    """One sample of an unlabelled metric from ``/metrics`` (read with the admin's token)."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {srv.admin_token}"})
    assert response.status_code == 200, f"/metrics answered {response.status_code}"
    for line in response.text.splitlines():
        sample, _, value = line.partition(" ")
        if sample == name:
            return float(value)
    pytest.fail(f"{name} is not in /metrics")


# --- kill -9 ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_and_doubles_no_acknowledged_event(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    srv = make_server(tmp_path)
    ledger = Ledger()
    try:
        for cycle in range(3):
            srv.start()
            acked_before = len(ledger.acked)
            delay = rng.uniform(0.3, 2.0)
            with load(srv, ledger, threads=4, seed=rng.randrange(2**32)):
                time.sleep(delay)
                srv.kill()
            acked_now = len(ledger.acked) - acked_before
            print(f"cycle {cycle}: SIGKILL after {delay:.2f} s, {acked_now} events acked")
        srv.start()
        srv.stop()
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
    assert outcome.stored >= outcome.acked


@pytest.mark.slow
def test_graceful_stop_under_load_stores_every_acknowledged_event(tmp_path: Path) -> None:
    # SIGTERM while clients post: requests in flight finish (202 or 503), the spool is sealed
    # and loaded on the way out; a restart finds nothing left to repair.
    srv = make_server(tmp_path)
    ledger = Ledger()
    try:
        for cycle in range(2):
            srv.start()
            with load(srv, ledger, threads=4, seed=cycle):
                time.sleep(1.0)
                srv.stop()
        srv.start()
        srv.stop()
        assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
    assert "torn tail" not in srv.logs()


# --- torn segment ----------------------------------------------------------------------------


def newest_open_segment(spool: Path) -> Path:
    segments = sorted(spool.glob("*.open"))
    assert segments, "no open spool segment after the kill"
    return segments[-1]


def torn_tail(segment: Path, kind: str) -> bytes:
    """Half of the last line, as a write cut short leaves it; or the zero fill of a crash that
    extended the file before its data reached the disk."""
    last_line = segment.read_bytes().splitlines(keepends=True)[-1]
    return last_line[: len(last_line) // 2] if kind == "half_line" else b"\0" * 4096


@pytest.mark.parametrize("kind", ["half_line", "zero_fill"])
def test_torn_spool_tail_is_cut_on_restart_and_acknowledged_events_survive(
    tmp_path: Path, kind: str
) -> None:
    # Segments stay open for a minute, so the torn tail lands right behind acknowledged lines
    # in the same file, as it would after a crash in the middle of a write.
    srv = make_server(tmp_path, STUMBLE_SPOOL_MAX_SEGMENT_AGE_S="60")
    ledger = Ledger()
    rng = random.Random(7)
    try:
        srv.start()
        with client_for(srv) as client:
            for _ in range(5):
                assert post_batch(client, ledger, random_events(rng, 20, 20)).status_code == 202
        srv.kill()
        segment = newest_open_segment(srv.data_dir / "spool")
        assert segment.read_bytes().count(b"\n") == len(ledger.acked)
        with segment.open("ab") as stream:
            stream.write(torn_tail(segment, kind))
        log_offset = len(srv.logs())
        srv.start()
        assert "torn tail" in srv.logs()[log_offset:], "the restart did not report the recovery"
        with client_for(srv) as client:
            assert post_batch(client, ledger, random_events(rng, 20, 20)).status_code == 202
        srv.stop()
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
    assert outcome.stored == outcome.acked == 120


# --- offline loading after a crash -------------------------------------------------------------


def test_stumble_load_after_kill_9_loads_every_acknowledged_event_and_says_so(
    tmp_path: Path,
) -> None:
    # The loader is parked, so everything acknowledged is still in the spool when the
    # server dies; the operator's tool must load it and report what it loaded.
    srv = make_server(tmp_path, STUMBLE_LOADER_INTERVAL_S="600")
    ledger = Ledger()
    rng = random.Random(3)
    try:
        srv.start()
        with client_for(srv) as client:
            for _ in range(10):
                assert post_batch(client, ledger, random_events(rng, 30, 30)).status_code == 202
        srv.kill()
        result = subprocess.run(
            [sys.executable, "-m", "stumble.cli.main", "load", "--data", str(srv.data_dir)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        print(result.stdout.strip())
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
    assert outcome.stored == 300
    assert "loaded 300 rows" in result.stdout, "stumble load misreports what it loaded"


# --- disk full -------------------------------------------------------------------------------


def mount_tmpfs(path: Path, size: str) -> None:
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("the disk-full test mounts a tmpfs: it needs root and the mount command")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")


def unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill_leaving(directory: Path, free_bytes: int) -> Path:
    """A filler file that leaves about ``free_bytes`` available on the file system."""
    stats = os.statvfs(directory)
    filler = directory / "filler.bin"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - free_bytes))
    return filler


def test_disk_full_answers_503_never_acks_unsaved_data_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    # The loader waits ten minutes, so space is freed only when the test deletes the filler.
    srv = make_server(tmp_path, STUMBLE_LOADER_INTERVAL_S="600")
    spool = srv.data_dir / "spool"
    spool.mkdir(parents=True)
    mount_tmpfs(spool, "2m")
    ledger = Ledger()
    try:
        filler = fill_leaving(spool, 200 * 1024)
        srv.start()
        with client_for(srv) as client:
            full = post_until_status(client, ledger, 503, within_s=30)
            assert full.json()["error"] == "spool.disk_full"
            assert int(full.headers["retry-after"]) >= 1
            acked_before_full = len(ledger.acked)
            print(f"503 after {acked_before_full} acked events ({dict(ledger.statuses)})")
            readiness = client.get("/readyz")
            assert readiness.status_code == 503
            assert readiness.json()["spool_writable"] is False
            filler.unlink()
            post_until_status(client, ledger, 202, within_s=15, pause_s=0.1)
            print(f"after recovery /readyz: {client.get('/readyz').json()}")
            for _ in range(5):  # and it stays healthy
                assert (
                    post_batch(client, ledger, random_events(random.Random(), 50, 50)).status_code
                    == 202
                )
        srv.stop()
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
        unmount(spool)
    assert outcome.acked > acked_before_full


# --- spool bound while the loader lags --------------------------------------------------------


@pytest.mark.slow
def test_spool_bound_answers_503_until_the_loader_catches_up(tmp_path: Path) -> None:
    srv = make_server(
        tmp_path,
        STUMBLE_SPOOL_MAX_UNLOADED_BYTES=str(128 * 1024),
        STUMBLE_SPOOL_MAX_SEGMENT_AGE_S="0.5",
        STUMBLE_LOADER_INTERVAL_S="3",
    )
    ledger = Ledger()
    try:
        srv.start()
        with client_for(srv) as client:
            full = post_until_status(client, ledger, 503, within_s=30)
            assert full.json()["error"] == "spool.spool_full"
            assert int(full.headers["retry-after"]) >= 1
            depth = metric(client, "stumble_spool_unloaded_bytes", srv)
            assert depth > 64 * 1024, "the spool depth is not visible in /metrics"
            print(f"spool full after {len(ledger.acked)} acked events; unloaded bytes {depth:.0f}")
            post_until_status(client, ledger, 202, within_s=30, pause_s=0.25)
        srv.stop()
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
    assert ledger.statuses[503] >= 1
    assert outcome.stored_refused == 0, "a batch refused at the spool's bound was stored anyway"


@pytest.mark.slow
def test_readiness_holds_while_a_slow_loader_waits_between_cycles(tmp_path: Path) -> None:
    # A loader configured to run every 40 s is healthy while it waits; /readyz must not flap
    # to 503 in between (a load balancer would pull a healthy collector out of rotation).
    srv = make_server(tmp_path, STUMBLE_LOADER_INTERVAL_S="40")
    try:
        srv.start()
        time.sleep(32)
        with client_for(srv) as client:
            readiness = client.get("/readyz")
            assert (
                post_batch(client, Ledger(), random_events(random.Random(), 5, 5)).status_code
                == 202
            )
    finally:
        srv.kill()
    assert readiness.json()["loader_alive"] is True, readiness.json()
    assert readiness.status_code == 200


# --- storage unavailable -----------------------------------------------------------------------


@pytest.mark.slow
def test_storage_full_spool_absorbs_then_503_then_drains_without_loss(tmp_path: Path) -> None:
    # The database's file system (the data directory) is small and gets filled; the spool has
    # a roomy file system of its own, so only storage fails and the spool's bound is what bites.
    data = tmp_path / "data"
    data.mkdir()
    mount_tmpfs(data, "32m")
    spool = data / "spool"
    spool.mkdir()
    mount_tmpfs(spool, "64m")
    srv = make_server(
        tmp_path,
        STUMBLE_SPOOL_MAX_UNLOADED_BYTES=str(MIB),
        STUMBLE_SPOOL_MAX_SEGMENT_AGE_S="0.3",
        STUMBLE_LOADER_INTERVAL_S="0.3",
    )
    ledger = Ledger()
    try:
        srv.start()
        filler = fill_leaving(data, 64 * 1024)
        with client_for(srv) as client:
            full = post_until_status(client, ledger, 503, within_s=60, pause_s=0.05)
            assert full.json()["error"] == "spool.spool_full"
            assert int(full.headers["retry-after"]) >= 1
            assert metric(client, "stumble_loader_errors_total", srv) >= 1
            assert srv.read("/api/v1/health").json()["loader"]["last_error"] == "StorageError"
            print(f"storage full: {len(ledger.acked)} events acked into the spool before 503")
            filler.unlink()
            post_until_status(client, ledger, 202, within_s=30, pause_s=0.25)
        srv.stop()
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
        unmount(spool)
        unmount(data)
    assert outcome.stored_refused == 0, "a batch refused at the spool's bound was stored anyway"


# --- duplicate delivery ------------------------------------------------------------------------


def post_concurrently(srv: Server, body: dict[str, Any], copies: int) -> list[httpx.Response]:
    """``copies`` threads post the same body at once (a barrier lines them up)."""
    barrier = threading.Barrier(copies)
    answers: list[httpx.Response] = []

    def deliver() -> None:
        with client_for(srv) as client:
            barrier.wait()
            answers.append(client.post("/v1/batch", json=body))

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def wait_for_loaded_rows(srv: Server, rows: int, within_s: float = 20) -> None:
    deadline = time.monotonic() + within_s
    with client_for(srv) as client:
        while metric(client, "stumble_loader_rows_total", srv) < rows:
            assert time.monotonic() < deadline, "the loader did not load the first copies"
            time.sleep(0.1)


@pytest.mark.slow
def test_one_batch_delivered_20_times_concurrently_is_stored_once(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    body = batch(*[event(kind) for kind in KINDS for _ in range(5)])
    ids = [e["event_id"] for e in body["events"]]
    try:
        srv.start()
        # Round one: the copies meet in the spool. Round two: they meet rows already stored.
        answers = post_concurrently(srv, body, 20)
        wait_for_loaded_rows(srv, len(ids))
        answers += post_concurrently(srv, body, 20)
        srv.stop()
        key = EventIdKey(srv.data_dir / "secrets")
        stored = dict(
            srv.query("SELECT CAST(event_id AS VARCHAR), count(*) FROM events GROUP BY 1")
        )
    finally:
        srv.kill()
    assert [a.status_code for a in answers] == [202] * 40
    assert {a.json()["accepted"] for a in answers} == {len(ids)}
    assert stored == {key.stored_id(i): 1 for i in ids}
    print(f"delivered {40 * len(ids)} copies of {len(ids)} events; stored {len(stored)}")


# --- memory under sustained load -------------------------------------------------------------


class BatchTemplate:
    """A 100-event batch encoded once; fresh event ids are spliced in for every request."""

    def __init__(self, size: int) -> None:
        rng = random.Random(11)
        placeholder = "00000000-0000-4000-8000-000000000000"
        events = [event(rng.choice(KINDS), event_id=placeholder) for _ in range(size)]
        self.parts = json.dumps(batch(*events)).encode().split(placeholder.encode())
        self.size = size

    def body(self) -> tuple[bytes, list[str]]:
        ids = [str(uuid.uuid4()) for _ in range(self.size)]
        pieces: list[bytes] = [b""] * (2 * self.size + 1)
        pieces[0::2] = self.parts
        pieces[1::2] = [i.encode() for i in ids]
        return b"".join(pieces), ids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


@contextmanager
def rss_samples(pid: int, every_s: float) -> Iterator[list[float]]:
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every_s):
            samples.append(rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        stop.set()
        sampler.join()
        samples.append(rss_mb(pid))


def _post_templates(srv: Server, template: BatchTemplate, requests: int, ledger: Ledger) -> None:
    with client_for(srv) as client:
        for _ in range(requests):
            body, ids = template.body()
            ledger.note_sent(ids)
            ledger.record(
                client.post(
                    "/v1/batch", content=body, headers={"content-type": "application/json"}
                ),
                ids,
            )


@pytest.mark.slow
def test_memory_stays_bounded_under_200k_events(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    ledger = Ledger()
    template = BatchTemplate(100)
    threads, requests_per_thread = 4, 500
    try:
        srv.start()
        assert srv.process is not None
        with rss_samples(srv.process.pid, every_s=1.0) as samples:
            workers = [
                threading.Thread(
                    target=_post_templates, args=(srv, template, requests_per_thread, ledger)
                )
                for _ in range(threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=240)
        print("collector RSS MB, one sample a second:", " ".join(f"{s:.0f}" for s in samples))
        srv.stop()
        outcome = assert_acked_stored_once(srv, ledger)
    finally:
        srv.kill()
    assert outcome.acked == threads * requests_per_thread * template.size
    assert samples[-1] < 600, f"collector RSS {samples[-1]:.0f} MB"
    third = len(samples) // 3
    assert third >= 1, f"only {len(samples)} RSS samples"
    middle = sum(samples[third : 2 * third]) / third
    last = sum(samples[-third:]) / third
    assert last <= middle * 1.25, (
        f"RSS grows with load: middle third {middle:.0f} MB, last {last:.0f} MB"
    )
