"""Prometheus metrics of the collector. Labels are reason codes and environments only.

The guard guarantees reason codes and event names are schema-known strings, and detectors are
an enum, so no label can ever carry a submitted value, and label cardinality stays bounded.
"""

from __future__ import annotations

import bisect
from collections import Counter as Tally
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from stumble.spool import SpoolStats

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rejected = Counter(
            "stumble_events_rejected", "Events refused, by reason code", ["reason"], registry=r
        )
        self.redactions = Counter(
            "stumble_redactions",
            "Values dropped from accepted events, by reason",
            ["reason"],
            registry=r,
        )
        # Updated once or more per request on the event loop: plain counters read at scrape
        # time (prometheus_client's locked children cost ~1 µs per update, 8 per request).
        self.ingest = IngestTallies()
        r.register(self.ingest)
        self.loaded_rows = Counter("stumble_loader_rows", "Rows loaded into storage", registry=r)
        self.loaded_duplicates = Counter(
            "stumble_loader_duplicates", "Duplicate event ids dropped by the loader", registry=r
        )
        self.loader_errors = Counter(
            "stumble_loader_errors", "Loader cycles that failed", registry=r
        )

    def bind_spool(
        self, stats: Callable[[], SpoolStats], loader_lag_s: Callable[[], float]
    ) -> None:
        """Gauges read at scrape time, so they are always current."""
        r = self.registry
        Gauge("stumble_spool_bytes", "Spool bytes on disk", registry=r).set_function(
            lambda: stats().disk_bytes
        )
        Gauge(
            "stumble_spool_unloaded_bytes", "Spool bytes not yet loaded", registry=r
        ).set_function(lambda: stats().unloaded_bytes)
        Gauge("stumble_spool_sealed_segments", "Sealed segments waiting", registry=r).set_function(
            lambda: stats().sealed_segments
        )
        Gauge("stumble_spool_fsyncs", "fsync calls since start", registry=r).set_function(
            lambda: stats().fsync_count
        )
        Gauge(
            "stumble_loader_lag_seconds", "Age of the oldest unloaded segment", registry=r
        ).set_function(loader_lag_s)

    def render(self, spool: SpoolStats | None = None) -> bytes:
        text = generate_latest(self.registry)
        if spool is None:
            return text
        return text + _fsync_histogram(spool)


def _fsync_histogram(stats: SpoolStats) -> bytes:
    """The spool keeps its own fsync latency buckets (it runs in its writer thread)."""
    lines = [
        "# HELP stumble_spool_fsync_seconds fsync latency of group commits",
        "# TYPE stumble_spool_fsync_seconds histogram",
    ]
    for bound, count in stats.fsync_seconds_buckets:
        le = "+Inf" if bound == float("inf") else repr(bound)
        lines.append(f'stumble_spool_fsync_seconds_bucket{{le="{le}"}} {count}')
    lines.append(f"stumble_spool_fsync_seconds_sum {stats.fsync_seconds_sum}")
    lines.append(f"stumble_spool_fsync_seconds_count {stats.fsync_count}")
    return ("\n".join(lines) + "\n").encode()


class LoopHistogram:
    """A histogram updated from one thread (the event loop) without a lock."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.total)


class IngestTallies(Collector):
    """Per-request ingest metrics: requests by status, events accepted by environment, batch
    sizes, and the time to a 202. Written by the event loop only; exposed at scrape time."""

    def __init__(self) -> None:
        self.requests: Tally[int] = Tally()
        self.accepted: Tally[str] = Tally()
        self.batch_size = LoopHistogram(_BATCH_BUCKETS)
        self.ack_latency = LoopHistogram(_LATENCY_BUCKETS)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "stumble_batch_requests", "Batch requests by HTTP status", labels=["status"]
        )
        for status, count in sorted(self.requests.items()):
            requests.add_metric([str(status)], count)
        accepted = CounterMetricFamily(
            "stumble_events_accepted", "Events made durable", labels=["environment"]
        )
        for environment, count in sorted(self.accepted.items()):
            accepted.add_metric([environment], count)
        yield requests
        yield accepted
        yield self.batch_size.family("stumble_batch_events", "Events per batch request")
        yield self.ack_latency.family("stumble_ack_seconds", "Time from request to 202")
