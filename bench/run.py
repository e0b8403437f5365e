"""Run every runtime benchmark and print one table of ratios measured in this run.

    python bench/run.py [--sizes 1000,10000,100000] [--quick] [--only scrape,http,...]

Each measure lives in its own module (`bench/scrape.py`, `bench/http_scrape.py`,
`bench/ingest.py`, `bench/memory.py`, `bench/cold_start.py`, `bench/resident.py`,
`bench/scrape_under_load.py`); this script builds the workload once per size, runs them, and
prints the table (markdown) with the machine it ran on. Not a test: nothing here runs in CI
except a smoke run at tiny sizes.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (
    cold_start,
    generators,
    http_scrape,
    ingest,
    memory,
    resident,
    scrape,
    scrape_under_load,
    workload,
)
from bench.common import Row

MEASURES = ("scrape", "http", "ingest", "memory", "cold", "resident", "load")


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}"
    )


def table(rows: list[Row]) -> str:
    head = ["measure", "objects", "ours", "baseline", "ratio", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [
            r.measure,
            f"{r.size:,}",
            r.ours,
            r.baseline,
            f"{r.ratio:.2f}x",
            r.target,
            "pass" if r.passed else "**MISS**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="object counts, comma-separated"
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and events")
    parser.add_argument(
        "--only", default=",".join(MEASURES), help=f"subset of {','.join(MEASURES)}"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    only = {m.strip() for m in args.only.split(",") if m.strip()}
    unknown = only - set(MEASURES)
    if unknown:
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    generator = generators.memcached_generator()
    generators.prometheus_generator(
        refresh=True
    )  # scaffold it once here, not in each memory subprocess
    print(f"generator: {generators.describe()}", flush=True)
    for size in sizes:
        print(f"-- {size:,} objects", file=sys.stderr, flush=True)
        first_row = len(rows)
        objs = workload.memcached_objects(size)
        # The workload's own objects stand for the API server's: keep them out of the
        # garbage collector's way, as they would not exist in the measured process.
        gc.collect()
        gc.freeze()
        try:
            if "scrape" in only:
                rows += scrape.run(generator, objs, quick=args.quick)
            if "http" in only:
                rows += http_scrape.run(generator, objs, quick=args.quick)
            if "ingest" in only:
                rows += ingest.run(generator, objs, quick=args.quick)
            if "load" in only:
                rows += scrape_under_load.run(generator, objs, quick=args.quick)
        finally:
            gc.unfreeze()
        del objs
        gc.collect()
        if "memory" in only:
            rows += memory.run(size, large_size=max(10, size // 10))
        if "cold" in only:
            rows += cold_start.run(size, quick=args.quick)
        if "resident" in only:
            rows += resident.run(size)
        print(table(rows[first_row:]), file=sys.stderr, flush=True)  # progress: this size
    print()
    print(table(rows))
    print(
        f"\n{sum(r.passed for r in rows)}/{len(rows)} targets met; "
        f"{time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
