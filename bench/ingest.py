"""Ingest: watch events per second through decode, generate, render and store.

The stream is realistic MODIFIED/DELETED/ADDED event lines over a store already holding `size`
objects. Ours does per line what a collector does: decode, count the event, then
`store.upsert` (generate + render + swap under the lock) or `store.delete`, decoding with the
runtime's decoder (orjson when installed, as the `runtime` extra does). The baseline is the
standard library's `json.loads` alone over the same lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from scaffold_metrics.runtime import MetricsStore, SelfMetrics
from scaffold_metrics.runtime.jsondecode import decode_json

from .common import Row, filled_store, median_time
from .workload import watch_events


def apply_events(store: MetricsStore, self_metrics: SelfMetrics, lines: Sequence[bytes]) -> None:
    """What a collector does with each watch line (decoding it as the collector does)."""
    kind = store.kind
    for line in lines:
        event = decode_json(line)
        event_type = event["type"]
        obj = event["object"]
        self_metrics.record_event(kind, event_type)
        if event_type == "DELETED":
            store.delete(obj)
        else:
            store.upsert(obj)


def decode_only(lines: Sequence[bytes]) -> None:
    for line in lines:
        json.loads(line)


def run(generator: Any, objs: Sequence[Mapping[str, Any]], *, quick: bool = False) -> list[Row]:
    size = len(objs)
    count = 2_000 if quick else 20_000
    lines = watch_events(list(objs), count)
    store = filled_store(generator, objs)
    self_metrics = SelfMetrics()
    repeat = 3 if quick else 5
    ours = median_time(lambda: apply_events(store, self_metrics, lines), repeat)
    base = median_time(lambda: decode_only(lines), repeat)
    return [
        Row(
            "ingest: cost per event vs json.loads alone",
            size,
            f"{count / ours:,.0f} ev/s ({ours / count * 1e6:.1f} µs)",
            f"{count / base:,.0f} ev/s ({base / count * 1e6:.1f} µs)",
            ours / base,
            "<= 3x",
        )
    ]
