"""Memory: RSS growth per object, each variant in a fresh interpreter.

Baseline: keep every decoded object (what an informer cache does). Ours: keep only the store
(each object is decoded, turned into bytes and dropped). Both children build the same objects
one at a time from the same seed and decode them from JSON, so the only difference in what
stays alive is what each design keeps. RSS is read from `/proc/self/statm`.

Run one variant by hand: `python -m bench.memory --kind memcached --variant store --count 1000`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Row, fmt_bytes

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _child(kind: str, variant: str, count: int) -> dict[str, Any]:
    from scaffold_metrics.runtime import MetricsStore, SelfMetrics

    from . import generators, workload

    make: Callable[[int, int, random.Random], dict[str, Any]]
    if kind == "memcached":
        make, generator = workload.memcached_object, generators.memcached_generator()
    else:
        make, generator = workload.prometheus_object, generators.prometheus_generator()
    rng = random.Random(1)
    store = MetricsStore(generator, self_metrics=SelfMetrics())
    kept: list[dict[str, Any]] = []
    # Warm up every code path once so the measure holds no one-off allocations.
    warm = json.loads(workload.dumps(make(0, 1, random.Random(0))))
    store.upsert(warm)
    store.delete(warm)
    del warm
    gc.collect()
    before = rss()
    json_bytes = 0
    for i in range(count):
        line = workload.dumps(make(i, count, rng))
        json_bytes += len(line)
        obj = json.loads(line)
        if variant == "decoded":
            kept.append(obj)
        else:
            store.upsert(obj)
        del obj, line
    gc.collect()
    after = rss()
    assert len(store) == (count if variant == "store" else 0)
    return {"per_object": (after - before) / count, "json_bytes": json_bytes / count}


def measure(kind: str, variant: str, count: int) -> dict[str, Any]:
    """Run one variant in a fresh interpreter and return what it printed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.memory",
            "--kind",
            kind,
            "--variant",
            variant,
            "--count",
            str(count),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def run(size: int, *, large_size: int) -> list[Row]:
    rows = []
    for kind, count, target in (
        ("memcached", size, "<= 0.2x"),
        ("prometheus", large_size, "<= 0.1x"),
    ):
        base = measure(kind, "decoded", count)
        ours = measure(kind, "store", count)
        label = f"{kind} ({fmt_bytes(base['json_bytes'])} JSON)"
        rows.append(
            Row(
                f"memory per object, {label}",
                count,
                fmt_bytes(ours["per_object"]),
                fmt_bytes(base["per_object"]),
                ours["per_object"] / base["per_object"],
                target,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=("memcached", "prometheus"), required=True)
    parser.add_argument("--variant", choices=("decoded", "store"), required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    print(json.dumps(_child(args.kind, args.variant, args.count)))


if __name__ == "__main__":
    main()
