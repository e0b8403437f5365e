"""Resident memory of a real replica: RSS per object after a cold start, against its text.

The parent holds the API test double (`tests/kubeapi_double.py`, `size` memcached objects, the
cold-start workload) and starts a fresh interpreter per sync mode that runs what an operator's
process runs: a real `Collector` (paged LIST of 500 per page, or a streaming list) feeding a
real store, the metrics server, and one gzip scrape with Prometheus' headers. The child reads
`VmRSS` from `/proc/self/status` before the collector starts and after the scrape (both after
`gc.collect()`), and `VmHWM` (peak RSS) at the end, and renders the text body once to know the
object's rendered bytes. The double's objects live in the parent, so none of them are counted.

A second child per mode runs the same with `tracemalloc` on, which says what Python objects
are alive (traced bytes) and where they were allocated; RSS minus traced is what the
allocators hold beyond live objects (freed pages they keep, fragmentation) plus interpreter
state that tracemalloc does not see.

Run one child by hand (against any API server URL serving memcached objects):
`python -m bench.resident --url http://127.0.0.1:PORT --count 1000 --mode paged [--trace]`.
Sizes the double cannot hold (it keeps every object decoded, 10 KiB each) are measured without
it: `python -m bench.resident --synthetic --count 1000000` encodes each page of objects as the
list JSON, decodes it with the runtime's decoder and feeds it to a store replacement, as a
paged list does, then makes one gzip body as a scrape does (no HTTP, no collector).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import Row, fmt_bytes

ROOT = Path(__file__).resolve().parent.parent
MODES = ("paged", "stream")
PAGE_SIZE = 500


def status_kib(field: str) -> int:
    """A `/proc/self/status` field in bytes (VmRSS: resident now, VmHWM: resident at peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(url: str, count: int, mode: str, trace: bool) -> dict[str, Any]:
    from kubernetes import client as k8s

    from scaffold_metrics.runtime import SelfMetrics, start_metrics_server
    from scaffold_metrics.runtime.collector import new_collectors
    from scaffold_metrics.runtime.server import render_exposition
    from tests.kubeapi_double import MEMCACHED

    from .common import Scraper
    from .generators import memcached_generator

    cfg = k8s.Configuration()
    cfg.host = url
    api = k8s.ApiClient(cfg)
    generator = memcached_generator()
    registry = SelfMetrics()
    if trace:
        import tracemalloc

        tracemalloc.start(1)
    gc.collect()
    before = status_kib("VmRSS")
    traced_before = tracemalloc.get_traced_memory()[0] if trace else 0
    start = time.perf_counter()
    collectors = new_collectors(
        api,
        None,
        f"{MEMCACHED.group}/{MEMCACHED.version}",
        MEMCACHED.kind,
        generator,
        self_metrics=registry,
        page_size=PAGE_SIZE,
        list_mode=mode,
    )
    server = start_metrics_server(collectors, port=0, host="127.0.0.1", self_metrics=registry)
    result: dict[str, Any] = {}
    try:
        for c in collectors:
            if not c.wait_for_sync(900):
                raise RuntimeError("collector did not sync")
        scraper = Scraper("127.0.0.1", server.port)
        gzipped = len(scraper.scrape())
        scraper.close()
        result["seconds"] = time.perf_counter() - start
        store = collectors[0].store
        assert len(store) == count, (len(store), count)
        gc.collect()
        after = status_kib("VmRSS")
        if trace:
            traced, traced_peak = tracemalloc.get_traced_memory()
            snapshot = tracemalloc.take_snapshot()
            result["traced_per_object"] = (traced - traced_before) / count
            result["traced_peak_per_object"] = (traced_peak - traced_before) / count
            result["top"] = [
                {
                    "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                    "per_object": s.size / count,
                    "blocks_per_object": s.count / count,
                }
                for s in snapshot.statistics("lineno")[:12]
            ]
        result["rss_per_object"] = (after - before) / count
        result["peak_per_object"] = (status_kib("VmHWM") - before) / count
        body = render_exposition([store], registry, openmetrics=False)
        result["rendered_per_object"] = len(body) / count
        result["gzip_per_object"] = gzipped / count
        result["store"] = _store_breakdown(store, count)
        del body
        if not trace:
            result["relist_per_object"] = _relist(collectors[0], registry, server.port, before)
    finally:
        server.stop()
        api.close()
    return result


def _synthetic(count: int) -> dict[str, Any]:
    import random

    from scaffold_metrics.runtime import MetricsStore, SelfMetrics
    from scaffold_metrics.runtime.jsondecode import decode_json
    from scaffold_metrics.runtime.memtrim import keep_large_blocks_mapped, trim_freed_memory
    from scaffold_metrics.runtime.server import exposition_chunks
    from scaffold_metrics.runtime.sharedbody import gzip_chunks

    from .generators import memcached_generator
    from .workload import list_page, memcached_object

    registry = SelfMetrics()
    store = MetricsStore(memcached_generator(), self_metrics=registry)
    rng = random.Random(1)
    keep_large_blocks_mapped()  # as `Collector.start` does
    gc.collect()
    before = status_kib("VmRSS")
    start = time.perf_counter()
    replacement = store.begin_replace(None)
    for first in range(0, count, PAGE_SIZE):
        objs = [
            memcached_object(i, count, rng) for i in range(first, min(count, first + PAGE_SIZE))
        ]
        page = list_page(objs, "cache.example.com/v1alpha1", "Memcached", 1000)
        del objs
        replacement.add(decode_json(page)["items"])
        del page
    replacement.commit()
    trim_freed_memory()
    synced = time.perf_counter() - start
    gzipped = len(gzip_chunks(exposition_chunks([store], registry, openmetrics=False)))
    gc.collect()
    after = status_kib("VmRSS")
    rendered = sum(map(len, exposition_chunks([store], registry, openmetrics=False)))
    return {
        "rss_per_object": (after - before) / count,
        "rss_total": after,
        "peak_per_object": (status_kib("VmHWM") - before) / count,
        "peak_total": status_kib("VmHWM"),
        "rendered_per_object": rendered / count,
        "gzip_per_object": gzipped / count,
        "seconds": synced,
    }


def _relist(collector: Any, registry: Any, port: int, before: int) -> float:
    """RSS growth per object after a second sync of the same objects and a scrape: what a
    relist (a 410, a new shard ownership) leaves behind."""
    from scaffold_metrics.runtime.selfmetrics import LAST_SYNC

    from .common import Scraper

    synced = registry.value(LAST_SYNC, collector.kind, "")
    collector.request_relist()
    deadline = time.monotonic() + 900
    while registry.value(LAST_SYNC, collector.kind, "") == synced:
        if time.monotonic() > deadline:
            raise RuntimeError("the relist did not finish")
        time.sleep(0.05)
    scraper = Scraper("127.0.0.1", port)
    scraper.scrape()
    scraper.close()
    gc.collect()
    return (status_kib("VmRSS") - before) / len(collector.store)


def _short(filename: str) -> str:
    for marker in ("scaffold_metrics/", "site-packages/", "lib/python"):
        at = filename.find(marker)
        if at >= 0:
            return filename[at:]
    return filename


def _store_breakdown(store: Any, count: int) -> dict[str, float]:
    """Bytes per object of what the store holds, by part (`sys.getsizeof`, no allocator
    rounding), from whatever attributes its layout has."""
    seen: set[int] = set()

    def size(obj: Any) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        total = sys.getsizeof(obj)
        if isinstance(obj, dict):
            total += sum(size(k) + size(v) for k, v in obj.items())
        elif isinstance(obj, (tuple, list)):
            total += sum(size(v) for v in obj)
        return total

    parts = {}
    # The objects' entries first: the scrape view only refers to the same bytes again.
    for name, value in sorted(vars(store).items(), key=lambda item: item[0] != "_objects"):
        if name.startswith("_") and isinstance(value, (dict, list, tuple, bytes, bytearray)):
            parts[name] = size(value) / count
    return parts


def measure(url: str, count: int, mode: str, trace: bool) -> dict[str, Any]:
    """One child run (see the module docstring) and what it printed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-m", "bench.resident", "--url", url, "--count", str(count)]
    args += ["--mode", mode] + (["--trace"] if trace else [])
    out = subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def describe(mode: str, plain: dict[str, Any], traced: dict[str, Any]) -> str:
    """The breakdown of one mode, for the progress output."""
    lines = [
        f"resident memory, {mode} list: RSS {fmt_bytes(plain['rss_per_object'])}/object "
        f"(peak {fmt_bytes(plain['peak_per_object'])}, after a relist "
        f"{fmt_bytes(plain['relist_per_object'])}), traced "
        f"{fmt_bytes(traced['traced_per_object'])}/object "
        f"(peak {fmt_bytes(traced['traced_peak_per_object'])}), rendered "
        f"{fmt_bytes(plain['rendered_per_object'])}/object "
        f"(gzip {fmt_bytes(plain['gzip_per_object'])})",
        "  store: " + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in plain["store"].items() if v >= 1),
    ]
    lines += [
        f"  {fmt_bytes(t['per_object']):>9} {t['blocks_per_object']:6.1f} blocks  {t['where']}"
        for t in traced["top"]
        if t["per_object"] >= 8
    ]
    return "\n".join(lines)


def run(size: int) -> list[Row]:
    from tests.kubeapi_double import MEMCACHED

    from .cold_start import SnapshotDouble
    from .workload import memcached_objects

    rows = []
    with SnapshotDouble() as double:
        for obj in memcached_objects(size):
            double.create({k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec", "status")})
        del obj
        for mode in MODES:
            plain = measure(double.url, size, mode, trace=False)
            traced = measure(double.url, size, mode, trace=True)
            print(describe(mode, plain, traced), file=sys.stderr, flush=True)
            rendered = plain["rendered_per_object"]
            title = "paged" if mode == "paged" else "streaming"
            rows.append(
                Row(
                    f"RSS per object after a cold start ({title} list; traced "
                    f"{fmt_bytes(traced['traced_per_object'])}, peak "
                    f"{fmt_bytes(plain['peak_per_object'])}) vs rendered bytes",
                    size,
                    fmt_bytes(plain["rss_per_object"]),
                    fmt_bytes(rendered),
                    plain["rss_per_object"] / rendered,
                    "<= 2x",
                )
            )
    assert MEMCACHED.kind
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="paged")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--synthetic", action="store_true", help="no API double (see above)")
    args = parser.parse_args()
    if args.synthetic:
        print(json.dumps(_synthetic(args.count)))
    elif args.url:
        print(json.dumps(_child(args.url, args.count, args.mode, args.trace)))
    else:
        parser.error("--url or --synthetic")


if __name__ == "__main__":
    main()
