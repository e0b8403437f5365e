"""Benchmark: `operator-metrics generate --check` over a project holding every corpus kind.

Reports the wall time of the real command and how it splits (interpreter + imports, CRD load,
plan, template rendering, black, comparing with the disk), and the CLI start-up time.
Run: `python bench/generate_check.py` (from the repository root).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "crds"
# Both memcached files define the same CRD; the project takes the v1 one.
SKIP = {"operator-sdk-memcached-v1beta1.yaml"}
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def wall(command: list[str], cwd: Path, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_project(base: Path) -> Path:
    project = base / "all-kinds"
    (project / "crds").mkdir(parents=True)
    for crd in sorted(CORPUS.glob("*.yaml")):
        if crd.name not in SKIP:
            shutil.copyfile(crd, project / "crds" / crd.name)
    cli = shutil.which("operator-metrics")
    assert cli is not None, "install the project first: pip install -e ."
    subprocess.run(
        [cli, "init", "--crd", str(project / "crds"), "--out", str(project)],
        check=True,
        capture_output=True,
    )
    return project


def stages(project: Path) -> dict[str, float]:
    from scaffold_metrics.config import load_config
    from scaffold_metrics.crd import load_crds
    from scaffold_metrics.files import compare
    from scaffold_metrics.pipeline import build_project
    from scaffold_metrics.plan import PlanOptions, plan_metrics
    from scaffold_metrics.render import format_python, render_template

    config = load_config(project)
    loaded, t_load = timed(lambda: load_crds([project / p for p in config.crds]))
    plan, t_plan = timed(lambda: plan_metrics(loaded.crds, PlanOptions(), {}))
    texts, t_render = timed(
        lambda: [render_template("kind_metrics.py.j2", k=k) for k in plan.kinds]
    )
    _, t_black = timed(lambda: [format_python(t) for t in texts])
    build, t_build = timed(lambda: build_project(project, config))
    _, t_compare = timed(lambda: compare(project, build.files, build.owned_dirs))
    return {
        "load CRDs (ruamel)": t_load,
        "plan": t_plan,
        "render templates (jinja2)": t_render,
        "format (black)": t_black,
        "whole pipeline in-process": t_build,
        "compare with disk": t_compare,
        "kinds": float(len(plan.kinds)),
    }


def main() -> None:
    cli = shutil.which("operator-metrics")
    assert cli is not None
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        t_python = wall([sys.executable, "-c", "pass"], project)
        t_import = wall([sys.executable, "-c", "import scaffold_metrics.cli"], project)
        t_help = wall([cli, "--help"], project)
        t_check = wall([cli, "generate", "--check"], project)
        split = stages(project)
    kinds = int(split.pop("kinds"))
    print(f"generate --check over {kinds} kinds (every CRD of the corpus), median of 3 runs")
    print(f"{'measure':<34} {'seconds':>8}")
    print(f"{'generate --check (wall)':<34} {t_check:>8.3f}")
    print(f"{'  python start-up':<34} {t_python:>8.3f}")
    print(f"{'  import scaffold_metrics.cli':<34} {t_import - t_python:>8.3f}")
    for name, seconds in split.items():
        print(f"{'  ' + name:<34} {seconds:>8.3f}")
    print(f"{'operator-metrics --help (wall)':<34} {t_help:>8.3f}")


if __name__ == "__main__":
    main()
