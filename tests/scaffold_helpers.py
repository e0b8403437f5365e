"""Helpers for scaffolder tests: run the CLI in-process and import what it generated."""

from __future__ import annotations

import importlib
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from click.testing import CliRunner, Result

from scaffold_metrics.cli import cli

TESTS = Path(__file__).resolve().parent
CORPUS = TESTS / "data" / "crds"
MEMCACHED_V1 = CORPUS / "operator-sdk-cache.example.com_memcacheds.yaml"
MEMCACHED_V1BETA1 = CORPUS / "operator-sdk-memcached-v1beta1.yaml"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*.yaml"))


def run_cli(*args: str | Path) -> Result:
    """Invoke `operator-metrics` in-process; stdout and stderr kept apart."""
    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def copy_crd(source: Path, project: Path, name: str = "crd.yaml") -> Path:
    """Copy a CRD into a project directory (tests must not depend on absolute paths)."""
    project.mkdir(parents=True, exist_ok=True)
    target = project / name
    shutil.copyfile(source, target)
    return target


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative POSIX path → bytes)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _purge(prefix: str) -> None:
    for name in list(sys.modules):
        if name == prefix or name.startswith(prefix + "."):
            del sys.modules[name]


@contextmanager
def imported_package(root: Path, package: str = "pkg.metrics") -> Iterator[ModuleType]:
    """Import the generated package under `root`, then forget it (every test gets fresh code)."""
    top = package.split(".")[0]
    _purge(top)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(root))
        _purge(top)
