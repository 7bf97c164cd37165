"""Ingest benchmark: HTTP to a durable 202 against a real ``stumble serve``, from another process.

The collector runs as its own process, pinned to core 0 (threads included: the spool writer
and the loader). This process is the load generator, pinned to core 1: one asyncio (uvloop)
event loop with K keep-alive connections on raw streams, one request in flight each. Requests
are encoded once per batch size; every request gets fresh event ids spliced into the template
(a per-run random prefix plus a counter), so the server deduplicates nothing. A Python HTTP
client such as httpx would cost more CPU per request than the collector itself.

For each batch size:

1. peak: as fast as the connections go, the in-process loader parked (a one-hour interval) so
   the collector's core does ingest only; durable events/s, requests/s, p50/p99 of the 202,
   the collector's RSS. The collector is then killed (everything acknowledged is in the spool)
   and the loader's rows/s is timed in this process, running the same code as ``stumble load``.
2. half rate: a fresh collector with the loader running normally, the generator paced at half
   the peak request rate; p50/p99 of the 202 and the loader's rows/s from ``/metrics``.

Prints figures and a Markdown table; asserts nothing about timing. The generator's CPU share
is printed too: near 100 % means the generator, not the collector, set the peak.

    .venv/bin/python benchmarks/ingest.py [--seconds 10] [--connections 64] \
        [--batch-sizes 100,1] [--no-fsync]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvloop

from stumble.access.keys import KeyRing
from stumble.access.roles import Role
from stumble.access.tokens import TokenRing
from stumble.app import CollectorServices
from stumble.cli.common import CONFIG_FILE
from stumble.config import load_settings

COLLECTOR_CORE = 0
GENERATOR_CORE = 1
WARMUP_S = 1.0
PLACEHOLDER = b"00000000-0000-4000-8000-000000000000"

# Realistic events of the example plan, cycled to fill a batch.
EVENT_SHAPES: tuple[dict[str, object], ...] = (
    {"kind": "screen_view", "event_name": "screen_view", "route": "/requests/new"},
    {
        "kind": "action",
        "event_name": "request_next_clicked",
        "action_id": "request_next_clicked",
        "target": "btn_next",
    },
    {
        "kind": "field_error",
        "event_name": "field_error",
        "form_id": "service_request",
        "field_id": "iin_bin",
        "error_type": "format",
        "attempt": 1,
        "step": 2,
    },
    {
        "kind": "operation_end",
        "event_name": "operation_end",
        "operation_id": "op_abcdefgh",
        "operation": "request_submit",
        "status": "success",
        "duration_ms": 1200.0,
    },
    {"kind": "vital", "event_name": "vital", "metric": "LCP", "value": 1800.0, "rating": "good"},
)


# --- the collector process --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Decided once, before this process pins itself to one core (which would shrink the mask).
_CAN_PIN = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def can_pin() -> bool:
    return _CAN_PIN


def pin_process(pid: int, core: int) -> None:
    """Pin every thread of ``pid``: affinity is per thread on Linux, and threads started later
    inherit it from the thread that creates them."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {core})
        except ProcessLookupError:  # the thread ended while we listed
            continue


class Collector:
    """One ``stumble serve`` in a fresh data directory, with a prod write key."""

    def __init__(self, *, fsync: bool, loader_interval_s: float) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="stumble-bench-"))
        self.token, _ = KeyRing(self.data_dir).create("prod", ["http://127.0.0.1"])
        self.reader, _ = TokenRing(self.data_dir).create(Role.ENGINEER, "benchmark")
        self.port = free_port()
        self.env = {
            **os.environ,
            "STUMBLE_SPOOL_FSYNC": "true" if fsync else "false",
            "STUMBLE_LOADER_INTERVAL_S": str(loader_interval_s),
            "STUMBLE_SPOOL_MAX_UNLOADED_BYTES": str(16 * 1024**3),  # the peak run fills it
            "STUMBLE_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "stumble.cli.main", "serve", "--data", str(self.data_dir)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        if can_pin():
            pin_process(self.process.pid, COLLECTOR_CORE)  # before it starts any thread
        self._wait_healthy()
        if can_pin():
            pin_process(self.process.pid, COLLECTOR_CORE)  # and again, for certainty

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise SystemExit(f"collector exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit("collector did not start within 60 s")

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the collector."""
        assert self.process is not None
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU of the collector so far (all its threads)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, float]:
        """Unlabelled samples of ``/metrics`` (labelled ones summed by name)."""
        headers = {"Authorization": f"Bearer {self.reader}"}
        text = httpx.get(f"{self.url}/metrics", headers=headers, timeout=10).text
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            base = name.split("{", 1)[0]
            samples[base] = samples.get(base, 0.0) + float(value)
        return samples

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> float:
        """Graceful stop; returns the seconds it took (it loads what is left in the spool)."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=600)
        return time.perf_counter() - started

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log.unlink(missing_ok=True)


# --- requests ---------------------------------------------------------------------------------


class RequestFactory:
    """HTTP/1.1 request bytes for one batch size, with fresh event ids spliced in each time.

    One template per starting event shape, used in turn, so that 1-event requests carry every
    kind too. Each template is the request split at its event-id placeholders.
    """

    def __init__(self, batch_size: int, host: str, token: str) -> None:
        now = int(time.time() * 1000)
        self.templates = [
            _request_template(batch_size, offset, now, host, token)
            for offset in range(len(EVENT_SHAPES))
        ]
        self.batch_size = batch_size
        # Ids are unique per run and process: a random 20-hex-digit prefix, then a counter.
        prefix = secrets.token_hex(10)
        self.prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-".encode()
        self.counter = 0
        self.requests = 0

    def next(self) -> bytes:
        start = self.counter
        self.counter += self.batch_size
        self.requests += 1
        pieces: list[bytes] = [b""] * (2 * self.batch_size + 1)
        pieces[0::2] = self.templates[self.requests % len(self.templates)]
        pieces[1::2] = [
            b"%s%012x" % (self.prefix, n) for n in range(start, start + self.batch_size)
        ]
        return b"".join(pieces)


def _request_template(batch_size: int, offset: int, now: int, host: str, token: str) -> list[bytes]:
    common = {
        "event_id": PLACEHOLDER.decode(),
        "ts": now - 500,
        "session_id": "s_benchmarksession0001",
        "screen_id": "request_create",
        "schema_version": 3,
        "ui_version": "1.4.2",
        "context": {"role": "operator", "division": "hq"},
    }
    events = [
        {**EVENT_SHAPES[(offset + n) % len(EVENT_SHAPES)], **common} for n in range(batch_size)
    ]
    body = json.dumps({"sent_at": now, "events": events}, separators=(",", ":")).encode()
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return (head + body).split(PLACEHOLDER)


# --- the generator ----------------------------------------------------------------------------


@dataclass
class Tally:
    """Answers counted after the warm-up."""

    latencies: list[float]
    accepted_requests: int = 0
    other_answers: int = 0
    measuring_since: float = 0.0
    measuring_until: float = 0.0


@dataclass(frozen=True)
class CpuShares:
    """CPU seconds per wall second: 1.0 is one core fully busy."""

    generator: float
    collector: float


class Pacer:
    """Hands out send slots at a fixed rate across all connections (None: no pacing)."""

    def __init__(self, rate_per_s: float | None, start: float) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s else 0.0
        self.next_slot = start

    async def wait_turn(self) -> None:
        if not self.interval:
            return
        slot = self.next_slot
        self.next_slot += self.interval
        delay = slot - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def connection(
    port: int, factory: RequestFactory, pacer: Pacer, tally: Tally, deadline: float
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            await pacer.wait_turn()
            request = factory.next()
            sent = time.perf_counter()
            if sent >= deadline:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length_at = head.lower().index(b"content-length:") + 15
            length = int(head[length_at : head.index(b"\r\n", length_at)])
            body = await reader.readexactly(length)
            done = time.perf_counter()
            if sent < tally.measuring_since:
                continue
            if head[9:12] == b"202" and b'"rejected":[]' in body:
                tally.accepted_requests += 1
                tally.latencies.append(done - sent)
            else:
                tally.other_answers += 1
    finally:
        writer.close()


async def generate(
    port: int, factory: RequestFactory, connections: int, seconds: float, rate: float | None
) -> Tally:
    start = time.perf_counter()
    tally = Tally(
        latencies=[], measuring_since=start + WARMUP_S, measuring_until=start + WARMUP_S + seconds
    )
    pacer = Pacer(rate, start)
    await asyncio.gather(
        *(
            connection(port, factory, pacer, tally, tally.measuring_until)
            for _ in range(connections)
        )
    )
    return tally


def run_generator(
    collector: Collector, batch_size: int, connections: int, seconds: float, rate: float | None
) -> tuple[Tally, CpuShares]:
    """Returns the tally and the CPU shares (generator, collector) during the run."""
    factory = RequestFactory(batch_size, f"127.0.0.1:{collector.port}", collector.token)
    cpu_before, collector_before = time.process_time(), collector.cpu_seconds()
    wall_before = time.perf_counter()
    tally = uvloop.run(generate(collector.port, factory, connections, seconds, rate))
    wall = time.perf_counter() - wall_before
    shares = CpuShares(
        generator=(time.process_time() - cpu_before) / wall,
        collector=(collector.cpu_seconds() - collector_before) / wall,
    )
    return tally, shares


def check_template(collector: Collector, batch_size: int) -> None:
    """One real request first: a template the server rejects would measure nothing."""
    factory = RequestFactory(batch_size, f"127.0.0.1:{collector.port}", collector.token)
    head, _, body = factory.next().partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    response = httpx.post(f"{collector.url}/v1/batch", content=body, headers=headers, timeout=30)
    if response.status_code != 202 or response.json().get("accepted") != batch_size:
        refusal = f"{response.status_code} {response.text[:300]}"
        raise SystemExit(f"the collector refused the benchmark batch: {refusal}")


# --- results ----------------------------------------------------------------------------------


@dataclass
class RunResult:
    label: str
    batch_size: int
    connections: int
    seconds: float
    requests: int
    other_answers: int
    p50_ms: float
    p99_ms: float
    rss_mb: float
    peak_rss_mb: float
    cpu: CpuShares
    requests_per_fsync: float | None = None
    fsync_mean_ms: float | None = None
    loader_rows_per_s: float | None = None
    loader_note: str = ""

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.requests * self.batch_size / self.seconds


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summarise(
    label: str,
    collector: Collector,
    tally: Tally,
    *,
    cpu: CpuShares,
    batch_size: int,
    connections: int,
) -> RunResult:
    rss, peak = collector.rss_mb()
    return RunResult(
        label=label,
        batch_size=batch_size,
        connections=connections,
        seconds=tally.measuring_until - tally.measuring_since,
        requests=tally.accepted_requests,
        other_answers=tally.other_answers,
        p50_ms=percentile(tally.latencies, 0.50) * 1000,
        p99_ms=percentile(tally.latencies, 0.99) * 1000,
        rss_mb=rss,
        peak_rss_mb=peak,
        cpu=cpu,
    )


def print_run(result: RunResult) -> None:
    fsyncs = ""
    if result.requests_per_fsync is not None and result.fsync_mean_ms is not None:
        fsyncs = (
            f", {result.requests_per_fsync:.1f} requests per fsync"
            f" (mean fsync {result.fsync_mean_ms:.2f} ms)"
        )
    rates = f"{result.events_per_s:,.0f} events/s, {result.requests_per_s:,.0f} req/s"
    latency = f"202 p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms"
    memory = f"collector RSS {result.rss_mb:.0f} MB (peak {result.peak_rss_mb:.0f})"
    print(
        f"  {result.label}: {rates}, {latency}, {memory}, "
        f"CPU collector {result.cpu.collector:.0%} generator {result.cpu.generator:.0%}{fsyncs}, "
        f"non-202 answers {result.other_answers}",
        flush=True,
    )


# --- the loader -------------------------------------------------------------------------------


def time_offline_load(data_dir: Path) -> tuple[int, float]:
    """Rows and seconds to load the spool a killed collector left, with ``stumble load``'s code.

    Unpinned: loading is its own job, and DuckDB may use both cores (its ``threads`` setting).
    """
    if can_pin():
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    settings = load_settings(data_dir / CONFIG_FILE, environ={})
    settings.data_dir = str(data_dir)
    services = CollectorServices(settings)
    services.spool.open()  # recovery: cuts the torn tail the kill left and seals the segment
    services.store.migrate()
    started = time.perf_counter()
    services.loader.run_once()
    services.spool.seal_now()
    services.loader.run_once()
    seconds = time.perf_counter() - started
    status = services.loader.status
    services.close()
    if status.last_error:
        raise SystemExit(f"loading failed: {status.last_error}")
    if can_pin():
        os.sched_setaffinity(0, {GENERATOR_CORE})
    return status.rows_loaded, seconds


# --- the runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    seconds: float
    connections: int
    batch_sizes: tuple[int, ...]
    fsync: bool


def measured_run(
    collector: Collector, options: Options, batch_size: int, label: str, rate: float | None
) -> tuple[RunResult, dict[str, float]]:
    """One generator run against a started collector; returns the result and its metrics after."""
    check_template(collector, batch_size)
    before = collector.metrics()
    tally, cpu = run_generator(collector, batch_size, options.connections, options.seconds, rate)
    result = summarise(
        label, collector, tally, cpu=cpu, batch_size=batch_size, connections=options.connections
    )
    after = collector.metrics()
    add_fsync_figures(result, before, after)
    return result, after


def peak_run(options: Options, batch_size: int) -> RunResult:
    """Ingest only (loader parked), then the loader timed offline over the spool left behind."""
    collector = Collector(fsync=options.fsync, loader_interval_s=3600)
    try:
        collector.start()
        result, _ = measured_run(collector, options, batch_size, "peak", None)
        collector.kill()  # everything acknowledged is durable in the spool
        rows, seconds = time_offline_load(collector.data_dir)
        result.loader_rows_per_s = rows / seconds
        result.loader_note = f"offline, {rows:,} rows in {seconds:.2f} s"
        return result
    finally:
        collector.kill()
        collector.remove()


def half_rate_run(options: Options, batch_size: int, peak: RunResult) -> RunResult:
    """The loader runs as in production (default interval) while the generator is paced."""
    collector = Collector(fsync=options.fsync, loader_interval_s=0.5)
    try:
        collector.start()
        rows_before = collector.metrics().get("stumble_loader_rows_total", 0.0)
        started = time.perf_counter()
        rate = peak.requests_per_s / 2
        result, after = measured_run(collector, options, batch_size, "half rate", rate)
        loaded = after.get("stumble_loader_rows_total", 0.0) - rows_before
        result.loader_rows_per_s = loaded / (time.perf_counter() - started)
        backlog_mb = after.get("stumble_spool_unloaded_bytes", float("nan")) / 1e6
        result.loader_note = (
            f"in-process at {rate:,.0f} req/s offered, {backlog_mb:.1f} MB unloaded at the end"
        )
        result.loader_note += f", graceful stop {collector.stop():.1f} s"
        return result
    finally:
        collector.kill()
        collector.remove()


def add_fsync_figures(result: RunResult, before: dict[str, float], after: dict[str, float]) -> None:
    """Requests per fsync and mean fsync latency from the collector's own counters, over the run
    (warm-up included on both sides of the ratio). Absent with fsync off."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    fsyncs = delta("stumble_spool_fsync_seconds_count")
    if fsyncs:
        result.requests_per_fsync = delta("stumble_batch_requests_total") / fsyncs
        result.fsync_mean_ms = delta("stumble_spool_fsync_seconds_sum") / fsyncs * 1000


def markdown_table(results: list[RunResult], options: Options) -> str:
    columns = [
        "run", "batch", "conns", "events/s", "req/s", "202 p50 ms", "202 p99 ms",
        "collector RSS MB", "loader rows/s", "fsync",
    ]  # fmt: skip
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 2) + "---|"]
    fsync = "on" if options.fsync else "off"
    for r in results:
        loader = f"{r.loader_rows_per_s:,.0f}" if r.loader_rows_per_s is not None else "-"
        cells = [
            r.label,
            str(r.batch_size),
            str(r.connections),
            f"{r.events_per_s:,.0f}",
            f"{r.requests_per_s:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.rss_mb:.0f}",
            loader,
            fsync,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def describe_machine() -> str:
    load1, load5, _ = os.getloadavg()
    pinning = (
        f"collector pinned to core {COLLECTOR_CORE}, generator to core {GENERATOR_CORE}"
        if can_pin()
        else "no pinning (fewer than 2 cores or no sched_setaffinity)"
    )
    return (
        f"{os.cpu_count()} cores, load average {load1:.1f} (1 min) {load5:.1f} (5 min); {pinning}"
    )


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per run (after a 1 s warm-up)"
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="concurrent keep-alive connections"
    )
    parser.add_argument("--batch-sizes", default="100,1", help="comma-separated events per request")
    parser.add_argument(
        "--no-fsync", action="store_true", help="STUMBLE_SPOOL_FSYNC=false: what durability costs"
    )
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s.strip())
    return Options(args.seconds, args.connections, sizes, fsync=not args.no_fsync)


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    if can_pin():
        os.sched_setaffinity(0, {GENERATOR_CORE})
    print(f"machine: {describe_machine()}")
    fsync = "on" if options.fsync else "off"
    print(f"fsync {fsync}, {options.connections} connections, {options.seconds:g} s per run")
    results: list[RunResult] = []
    for batch_size in options.batch_sizes:
        print(f"batch size {batch_size}:", flush=True)
        peak = peak_run(options, batch_size)
        print_run(peak)
        print(f"  loader: {peak.loader_rows_per_s:,.0f} rows/s ({peak.loader_note})", flush=True)
        half = half_rate_run(options, batch_size, peak)
        print_run(half)
        print(f"  loader: {half.loader_rows_per_s:,.0f} rows/s ({half.loader_note})", flush=True)
        results += [peak, half]
    print(f"\nmachine after the runs: {describe_machine()}\n")
    print(markdown_table(results, options))


if __name__ == "__main__":
    main()
