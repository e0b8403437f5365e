"""The pre-commit hook definition is valid and its entry is the drift check that fails CI."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from pre_commit.clientlib import load_manifest
from scaffold_helpers import MEMCACHED_V1, copy_crd, run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_hook_manifest_is_valid_and_runs_generate_check(tmp_path: Path) -> None:
    (hook,) = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert hook["entry"] == "operator-metrics generate --check"
    assert hook["pass_filenames"] is False
    copy_crd(MEMCACHED_V1, tmp_path)
    assert run_cli("init", "--crd", tmp_path / "crd.yaml", "--out", tmp_path).exit_code == 0
    command = shlex.split(hook["entry"])
    executable = shutil.which(command[0])
    assert executable is not None
    clean = subprocess.run([executable, *command[1:]], cwd=tmp_path, capture_output=True)
    assert clean.returncode == 0, clean.stderr
    (tmp_path / "pkg/metrics/wiring.py").write_text("# edited\n")
    drift = subprocess.run([executable, *command[1:]], cwd=tmp_path, capture_output=True)
    assert drift.returncode == 1 and b"+++ b/pkg/metrics/wiring.py" in drift.stdout
