"""Scrape latency while watch events flow: p99 over HTTP with and without 1k events/s.

An ingest thread decodes and applies watch event lines (as a collector does) at a steady
1000 events/s while a Prometheus-like client scrapes back to back; the baseline is the same
scrapes of the same store with no events.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from scaffold_metrics.runtime import SelfMetrics, start_metrics_server

from .common import Row, Scraper, StaticCollector, filled_store, fmt_seconds
from .ingest import apply_events
from .workload import watch_events

EVENTS_PER_SECOND = 1000
TICK = 0.01  # apply a batch of 10 events every 10 ms


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class EventFeeder(threading.Thread):
    """Applies event lines to a store at a steady rate until stopped; counts what it applied."""

    def __init__(self, store: Any, lines: Sequence[bytes]) -> None:
        super().__init__(name="event-feeder", daemon=True)
        self.store = store
        self.lines = lines
        self.applied = 0
        self.elapsed = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        self_metrics = SelfMetrics()
        batch = round(EVENTS_PER_SECOND * TICK)
        start = next_tick = time.perf_counter()
        position = 0
        while not self.done.is_set():
            chunk = self.lines[position : position + batch]
            position = (position + batch) % max(1, len(self.lines) - batch)
            apply_events(self.store, self_metrics, chunk)
            self.applied += len(chunk)
            next_tick += TICK
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        self.elapsed = time.perf_counter() - start


def _latencies(scraper: Scraper, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        scraper.scrape()
        out.append(time.perf_counter() - start)
    return out


def run(generator: Any, objs: Sequence[Mapping[str, Any]], *, quick: bool = False) -> list[Row]:
    size = len(objs)
    count = 10 if quick else (200 if size <= 1_000 else 100 if size <= 10_000 else 25)
    lines = watch_events(list(objs), 20_000)
    store = filled_store(generator, objs)
    server = start_metrics_server(
        [StaticCollector(store)], port=0, host="127.0.0.1", self_metrics=SelfMetrics()
    )
    scraper = Scraper("127.0.0.1", server.port)
    try:
        _latencies(scraper, 2)
        idle = _latencies(scraper, count)
        feeder = EventFeeder(store, lines)
        feeder.start()
        try:
            time.sleep(0.2)
            loaded = _latencies(scraper, count)
        finally:
            feeder.done.set()
            feeder.join()
    finally:
        scraper.close()
        server.stop()
    rate = feeder.applied / feeder.elapsed
    return [
        Row(
            f"p99 scrape latency under {rate:,.0f} events/s ({count} scrapes)",
            size,
            fmt_seconds(p99(loaded)),
            fmt_seconds(p99(idle)),
            p99(loaded) / p99(idle),
            "<= 2x",
        )
    ]
