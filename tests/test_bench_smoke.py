"""Smoke test of the benchmark command: it runs at tiny sizes and prints its table.

No timing is asserted: the benchmarks are not tests (see bench/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_run_quick_prints_the_table() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--sizes", "50"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    assert "| measure | objects | ours | baseline | ratio | target | result |" in out
    for measure in (
        "scrape vs prometheus_client",
        "HTTP scrape",
        "ingest",
        "memory per object",
        "cold start",
        "RSS per object after a cold start",
        "p99 scrape latency",
    ):
        assert measure in out, measure
    assert "targets met" in out
