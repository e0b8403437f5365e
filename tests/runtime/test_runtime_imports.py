"""The runtime stays light: importing it pulls in none of the scaffolder's or kopf's modules."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_runtime_imports_no_scaffolder_or_kopf_modules() -> None:
    # yaml and bcrypt too: the scaffolder imports the runtime package, and its own install
    # (without the runtime extras) has neither
    code = (
        "import sys, scaffold_metrics.runtime as r\n"
        "r.MetricsStore, r.start_metrics_server, r.serve_metrics, r.SelfMetrics\n"
        "bad = sorted(m for m in ('click', 'jinja2', 'black', 'ruamel', 'kopf', 'kubernetes',"
        " 'yaml', 'bcrypt') if m in sys.modules)\n"
        "print(','.join(bad))\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == ""
