"""Scrape: time to produce the full `/metrics` body from a filled store.

Ours is the server's own `render_exposition` over one memcached store (text format, plus the
self-metrics families). Baselines: (a) `generate_latest` of a prometheus_client custom collector
rebuilding every family from the same decoded objects; (b) `b"".join` of the body's lines,
already rendered (no per-family grouping, no lock): the floor for any design.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import generate_latest

from scaffold_metrics.runtime import SelfMetrics
from scaffold_metrics.runtime.server import render_exposition

from .baselines import naive_registry, rendered_lines
from .common import Row, filled_store, fmt_seconds, median_time, repeats_for


def run(generator: Any, objs: Sequence[Mapping[str, Any]], *, quick: bool = False) -> list[Row]:
    size = len(objs)
    repeat = repeats_for(size, quick)
    store = filled_store(generator, objs)
    self_metrics = SelfMetrics()
    ours = median_time(lambda: render_exposition([store], self_metrics, openmetrics=False), repeat)

    registry = naive_registry(generator, objs)
    naive = median_time(lambda: generate_latest(registry), max(1, repeat // 3))

    lines = rendered_lines(generator, objs)
    join = median_time(lambda: b"".join(lines), repeat)

    return [
        Row(
            "scrape vs prometheus_client (a)",
            size,
            fmt_seconds(ours),
            fmt_seconds(naive),
            naive / ours,
            ">= 30x",
        ),
        Row(
            "scrape vs join of rendered lines (b)",
            size,
            fmt_seconds(ours),
            fmt_seconds(join),
            ours / join,
            "<= 2x",
        ),
    ]
