"""What every benchmark module shares: timing helpers, the result row, store building."""

from __future__ import annotations

import gc
import http.client
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scaffold_metrics.runtime import MetricsStore, SelfMetrics

# What Prometheus (v2.x/v3.x) sends when scraping a target.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_HEADERS = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}


@dataclass
class Row:
    """One line of the results table.

    `ratio` is how the measure compares with its baseline in the direction of its target:
    a speed-up (`baseline / ours`, target `>= N`) or a cost ratio (`ours / baseline`,
    target `<= N`).
    """

    measure: str
    size: int
    ours: str
    baseline: str
    ratio: float
    target: str

    @property
    def passed(self) -> bool:
        op, _, value = self.target.partition(" ")
        limit = float(value.rstrip("x"))
        return self.ratio >= limit if op == ">=" else self.ratio <= limit


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes, garbage collection included (as in a real process)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of `repeat` calls of `fn` (after one warm-up call)."""
    fn()
    return statistics.median(timed(fn) for _ in range(repeat))


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_bytes(n: float) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.1f} KiB"
    return f"{n:.0f} B"


def filled_store(generator: Any, objs: Iterable[Mapping[str, Any]]) -> MetricsStore:
    """A store holding `objs`, with its own self-metrics registry."""
    store = MetricsStore(generator, self_metrics=SelfMetrics())
    store.replace(objs, None)
    return store


def repeats_for(size: int, quick: bool) -> int:
    """How many timed repetitions a per-scrape measure gets at `size` objects."""
    if quick:
        return 3
    return 15 if size <= 10_000 else 5


class StaticCollector:
    """A collector whose store was filled up front (what the server sees after the first list)."""

    def __init__(self, store: MetricsStore) -> None:
        self.store = store
        self.has_synced = True

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Scraper:
    """A keep-alive HTTP client scraping one `/metrics` URL with Prometheus' request headers."""

    def __init__(self, host: str, port: int, path: str = "/metrics") -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.path = path

    def scrape(self) -> bytes:
        """One scrape; returns the (compressed) body after checking it came gzipped."""
        self.conn.request("GET", self.path, headers=PROMETHEUS_HEADERS)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200 or resp.getheader("Content-Encoding") != "gzip":
            raise RuntimeError(f"scrape failed: {resp.status} {resp.getheaders()}")
        return body

    def close(self) -> None:
        self.conn.close()
