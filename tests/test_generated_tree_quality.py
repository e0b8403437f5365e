"""The whole scaffolded tree (package, wiring, user stubs, entry) passes ruff and mypy --strict.

Generated files carry `# ruff: noqa` and `# fmt: off` so the user's own tools leave them alone
(tests/test_user_formatters.py); here ruff runs with `--ignore-noqa` and black sees the files
without `# fmt: off`, so our own bar still applies to every line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scaffold_helpers import CORPUS, MEMCACHED_V1, copy_crd, run_cli

REPO = Path(__file__).resolve().parent.parent
RUFF_RULES = "E,F,W,I,B,UP,SIM,RUF"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree") / "operator"
    crds = [
        copy_crd(MEMCACHED_V1, root, "memcached.yaml"),
        copy_crd(CORPUS / "crossplane-providers.yaml", root, "providers.yaml"),
        copy_crd(CORPUS / "flux-testdata-crd-with-namespace.yaml", root, "namespace.yaml"),
    ]
    args: list[str | Path] = ["init", "--out", root, "--namespace", "default", "--shards", "2"]
    for crd in crds:
        args += ["--crd", crd]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return root


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is a test dependency: pip install -e '.[test]'")
    return path


def test_tree_is_ruff_clean(project: Path) -> None:
    result = subprocess.run(
        [tool("ruff"), "check", "--isolated", "--no-cache", "--select", RUFF_RULES,
         "--line-length", "100", "--target-version", "py310", "--ignore-noqa", "pkg", "main.py"],
        cwd=project, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def test_tree_is_black_formatted(project: Path, tmp_path: Path) -> None:
    unguarded = tmp_path / "pkg"
    shutil.copytree(project / "pkg", unguarded)
    guarded = 0
    for module in unguarded.rglob("*.py"):
        text = module.read_text()
        guarded += "\n# fmt: off\n" in text
        module.write_text(text.replace("\n# fmt: off\n", "\n"))
    assert guarded >= 5  # every generated module had the pragma
    result = subprocess.run(
        [tool("black"), "--check", "--line-length", "100", "--target-version", "py310", "pkg"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_tree_is_mypy_strict_clean(project: Path) -> None:
    env = {**os.environ, "MYPYPATH": str(REPO)}
    result = subprocess.run(
        [tool("mypy"), "--strict", "--no-incremental", "--config-file", os.devnull,
         "--python-version", "3.10", "main.py", "pkg"],
        cwd=project, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
