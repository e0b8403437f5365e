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
DATA = TESTS / "data"

# The `metrics:` config of the value-kinds case: it opts in what the defaults leave out, so that
# the tree has a family of every value kind.
VALUE_KINDS_CONFIG = """\
metrics:
  labels: [app.kubernetes.io/name]
  annotations: [example.com/owner]
  kinds:
    Gadget:
      include:
        - spec.image
        - spec.ports
        - spec.limits
        - status.currentPrimary
        - status.lastBackupTime
        - metadata.generation
        - metadata.deletionTimestamp
      type: {status.lastBackupTime: timestamp, status.observedGeneration: counter}
"""

# case name → (CRD file under tests/data, extra init flags, `metrics:` config or "")
CASES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "memcached-v1beta1": ("crds/operator-sdk-memcached-v1beta1.yaml", (), ""),
    "memcached-v1": (
        "crds/operator-sdk-cache.example.com_memcacheds.yaml",
        ("--namespace", "default"),
        "",
    ),
    "value-kinds": ("test-crds/test.example.com_gadgets.yaml", (), VALUE_KINDS_CONFIG),
    "prometheus": ("crds/prometheus-operator-prometheuses.yaml", (), ""),
    "sharded": (
        "crds/operator-sdk-cache.example.com_memcacheds.yaml",
        ("--shards", "3", "--service-monitor"),
        "",
    ),
}


def render_case(case: str, workdir: Path) -> Path:
    """Scaffold `case` into `workdir/memcached-operator` and return that project root (with a
    `metrics:` config: `init`, then the config, then `generate`)."""
    from unittest import mock

    from click.testing import CliRunner

    from scaffold_metrics.cli import cli

    crd_file, flags, metrics = CASES[case]
    crd_name = Path(crd_file).name
    project = workdir / "memcached-operator"
    (project / "config" / "crd").mkdir(parents=True)
    shutil.copyfile(DATA / crd_file, project / "config" / "crd" / crd_name)
    args = ["init", "--crd", str(project / "config" / "crd" / crd_name), "--out", str(project)]
    # requirements.txt names where the tool was installed from: a release range, as from an
    # index, whatever this machine's install is.
    with mock.patch("scaffold_metrics.pipeline.installed_origin", return_value=None):
        result = CliRunner().invoke(cli, [*args, *flags], catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"init failed for {case}: {result.stderr}")
    if metrics:
        config = project / ".operator-metrics.yaml"
        config.write_text(config.read_text(encoding="utf-8") + metrics, encoding="utf-8")
        result = CliRunner().invoke(
            cli, ["generate", "--project", str(project)], catch_exceptions=False
        )
        if result.exit_code != 0:
            raise RuntimeError(f"generate failed for {case}: {result.stderr}")
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
