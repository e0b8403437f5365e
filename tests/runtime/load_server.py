"""The server side of the load test, run as its own process so its RSS, threads and fds are its own.

Fills a store with `objects` Widgets, serves it on a loopback port (printed as `port N`), and on
the line `feed` from stdin starts applying 1,000 upserts/deletes per second to the store. On
stdin EOF it stops everything and prints `events N connections N` before exiting.
"""

from __future__ import annotations

import sys
import threading
import time

from store_fakes import FakeCollector, WidgetGenerator, widget

from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.server import start_metrics_server
from scaffold_metrics.runtime.store import MetricsStore

EVENTS_PER_SECOND = 1000
TICK = 0.01


def feed(store: MetricsStore, objects: int, stop: threading.Event, applied: list[int]) -> None:
    """Upsert (and every tenth event delete and re-add) Widgets at a steady rate."""
    batch = round(EVENTS_PER_SECOND * TICK)
    next_tick = time.perf_counter()
    n = 0
    while not stop.is_set():
        for _ in range(batch):
            n += 1
            obj = widget(f"w{n % objects}", replicas=n)
            if n % 10 == 0:
                store.delete(obj)
            else:
                store.upsert(obj)
        applied[0] += batch
        next_tick += TICK
        delay = next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def main() -> None:
    objects = int(sys.argv[1])
    sm = SelfMetrics()
    store = MetricsStore(WidgetGenerator(), self_metrics=sm)
    for i in range(objects):
        store.upsert(widget(f"w{i}", replicas=i))
    server = start_metrics_server([FakeCollector(store)], port=0, host="127.0.0.1", self_metrics=sm)
    print(f"port {server.port}", flush=True)
    stop = threading.Event()
    applied = [0]
    feeder = threading.Thread(target=feed, args=(store, objects, stop, applied), daemon=True)
    for line in sys.stdin:
        if line.strip() == "feed":
            feeder.start()
            print("feeding", flush=True)
    stop.set()
    if feeder.is_alive():
        feeder.join()
    connections = server.open_connections
    server.stop()
    print(f"events {applied[0]} connections {connections}", flush=True)


if __name__ == "__main__":
    main()
