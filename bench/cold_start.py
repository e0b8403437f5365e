"""Cold start: from nothing to the first complete scrape, against the kube-apiserver test double.

The double (`tests/kubeapi_double.py`) holds `size` memcached objects (with managedFields and the
last-applied annotation) and serves a paged LIST (500 per page, the collector's default) and a
streaming list (a WATCH with sendInitialEvents: one event line per object, each split over two
HTTP chunks as the real server may).
Ours, once per sync mode: start the metrics server with a real `Collector` (sync, generate,
render, store), wait until it has synced, then scrape `/metrics` once with Prometheus' headers.
Baseline for both: fetch and `json.loads` the paged list alone, with the same client and HTTP
stack (`watch.list_all` over the kubernetes `ApiClient`), so the two rows compare the two ways
of syncing with one floor.

The double snapshots the objects with a deep copy on every fresh LIST; that is the double's
own cost, not the API server's, so the benchmark serves a snapshot taken once (the objects do
not change during the measure). Encoding each page stays in, for both sides.
"""

from __future__ import annotations

import time
from typing import Any

from scaffold_metrics.runtime import SelfMetrics, start_metrics_server
from scaffold_metrics.runtime.collector import new_collectors
from scaffold_metrics.runtime.kubeclient import resource_path
from scaffold_metrics.runtime.watch import list_all
from tests.kubeapi_double import MEMCACHED, KubeApiDouble, ResourceSpec

from .common import Row, Scraper, fmt_seconds
from .generators import memcached_generator
from .workload import memcached_objects

PAGE_SIZE = 500


class SnapshotDouble(KubeApiDouble):
    """The API double, serving a LIST snapshot taken once (its objects do not change here)."""

    def __init__(self) -> None:
        super().__init__()
        self._cached: dict[tuple[str, str | None], list[dict[str, Any]]] = {}

    def _current(self, spec: ResourceSpec, ns: str | None) -> list[dict[str, Any]]:
        key = (spec.plural, ns)
        if key not in self._cached:
            self._cached[key] = super()._current(spec, ns)
        return self._cached[key]


def _fetch_and_decode(double: KubeApiDouble) -> float:
    client = double.api_client()
    path = resource_path(MEMCACHED.group, MEMCACHED.version, MEMCACHED.plural, None)
    start = time.perf_counter()
    result = list_all(client, path, PAGE_SIZE, (10.0, 120.0))
    elapsed = time.perf_counter() - start
    client.close()
    assert result.items, "the double listed nothing"
    return elapsed


def _first_scrape(double: KubeApiDouble, size: int, list_mode: str) -> float:
    client = double.api_client()
    generator = memcached_generator()
    start = time.perf_counter()
    collectors = new_collectors(
        client,
        None,
        f"{MEMCACHED.group}/{MEMCACHED.version}",
        MEMCACHED.kind,
        generator,
        self_metrics=SelfMetrics(),
        page_size=PAGE_SIZE,
        list_mode=list_mode,
    )
    server = start_metrics_server(collectors, port=0, host="127.0.0.1", self_metrics=SelfMetrics())
    try:
        for c in collectors:
            if not c.wait_for_sync(600):
                raise RuntimeError("collector did not sync")
        scraper = Scraper("127.0.0.1", server.port)
        scraper.scrape()
        elapsed = time.perf_counter() - start
        scraper.close()
        assert len(collectors[0].store) == size
        assert collectors[0].sync_mode == list_mode
    finally:
        server.stop()
        client.close()
    return elapsed


def run(size: int, *, quick: bool = False) -> list[Row]:
    with SnapshotDouble() as double:
        for obj in memcached_objects(size):
            double.create({k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec", "status")})
        _fetch_and_decode(double)  # warm up: snapshot, connection pool, imports
        rounds = 1 if quick or size > 10_000 else 3
        base = min(_fetch_and_decode(double) for _ in range(rounds))
        ours = {
            mode: min(_first_scrape(double, size, mode) for _ in range(rounds))
            for mode in ("paged", "stream")
        }
    return [
        Row(
            f"cold start: {title} list to first complete scrape",
            size,
            fmt_seconds(ours[mode]),
            fmt_seconds(base),
            ours[mode] / base,
            "<= 2x",
        )
        for mode, title in (("paged", "paged"), ("stream", "streaming"))
    ]
