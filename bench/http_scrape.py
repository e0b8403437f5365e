"""Scrape over HTTP: a Prometheus-like client on loopback, real `Accept`/`Accept-Encoding`.

Ours is `start_metrics_server` over a filled store; the baseline is
`prometheus_client.start_http_server` serving the naive collector of the same objects. Both
answer Prometheus' headers with OpenMetrics and gzip. Time is from request to the last byte of
the compressed body.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import start_http_server

from scaffold_metrics.runtime import SelfMetrics, start_metrics_server

from .baselines import naive_registry
from .common import (
    Row,
    Scraper,
    StaticCollector,
    filled_store,
    fmt_bytes,
    fmt_seconds,
    median_time,
    repeats_for,
)


def run(generator: Any, objs: Sequence[Mapping[str, Any]], *, quick: bool = False) -> list[Row]:
    size = len(objs)
    repeat = repeats_for(size, quick)
    store = filled_store(generator, objs)
    server = start_metrics_server(
        [StaticCollector(store)], port=0, host="127.0.0.1", self_metrics=SelfMetrics()
    )
    scraper = Scraper("127.0.0.1", server.port)
    try:
        body = scraper.scrape()
        ours = median_time(scraper.scrape, repeat)
    finally:
        scraper.close()
        server.stop()
    plain = len(gzip.decompress(body))

    httpd, thread = start_http_server(0, "127.0.0.1", registry=naive_registry(generator, objs))
    scraper = Scraper("127.0.0.1", httpd.server_address[1])
    try:
        naive = median_time(scraper.scrape, max(1, repeat // 3))
    finally:
        scraper.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    return [
        Row(
            f"HTTP scrape, gzip ({fmt_bytes(len(body))} of {fmt_bytes(plain)})",
            size,
            fmt_seconds(ours),
            fmt_seconds(naive),
            naive / ours,
            ">= 20x",
        )
    ]
