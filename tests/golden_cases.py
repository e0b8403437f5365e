"""Golden cases: whole generated trees, checked in under tests/golden/<case>/.

Regenerate after an intended change with `python tests/golden_cases.py`, then review the diff.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent
GOLDEN = TESTS / "golden"
CRDS = TESTS / "data" / "crds"

# case name → (CRD file in tests/data/crds, extra init flags)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "memcached-v1beta1": ("operator-sdk-memcached-v1beta1.yaml", ()),
    "memcached-v1": ("operator-sdk-cache.example.com_memcacheds.yaml", ("--namespace", "default")),
}


def render_case(case: str, workdir: Path) -> Path:
    """Scaffold `case` into `workdir/memcached-operator` and return that project root."""
    from unittest import mock

    from click.testing import CliRunner

    from scaffold_metrics.cli import cli

    crd_name, flags = CASES[case]
    project = workdir / "memcached-operator"
    (project / "config" / "crd").mkdir(parents=True)
    shutil.copyfile(CRDS / crd_name, project / "config" / "crd" / crd_name)
    args = ["init", "--crd", str(project / "config" / "crd" / crd_name), "--out", str(project)]
    # requirements.txt names where the tool was installed from: a release range, as from an
    # index, whatever this machine's install is.
    with mock.patch("scaffold_metrics.pipeline.installed_origin", return_value=None):
        result = CliRunner().invoke(cli, [*args, *flags], catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"init failed for {case}: {result.stderr}")
    return project


def regenerate() -> None:
    """Rewrite every golden tree from the current code."""
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            project = render_case(case, Path(tmp))
            target = GOLDEN / case
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(project, target)
        print(f"regenerated tests/golden/{case}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS.parent))
    regenerate()
