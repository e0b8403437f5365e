"""One CLI voice: `--project` in every command (`--out` kept at init), click's own errors in
the `error:` style with exit 2, hints that point at the config when a path came from it, and
a closed pipe (`| head`) that neither fails the command nor prints a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scaffold_helpers import MEMCACHED_V1, copy_crd, run_cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_crd(MEMCACHED_V1, tmp_path / "op", "crd.yaml")
    return tmp_path / "op"


@pytest.mark.parametrize("spelling", ["--project", "--out"])
def test_init_takes_project_and_the_old_out(project: Path, spelling: str) -> None:
    result = run_cli("init", "--crd", project / "crd.yaml", spelling, project)
    assert result.exit_code == 0, result.stderr
    assert (project / ".operator-metrics.yaml").is_file()


@pytest.mark.parametrize("command", [["init"], ["generate"], ["explain"], ["export", "ksm"]])
def test_every_command_names_the_project_directory_project(command: list[str]) -> None:
    assert "--project" in run_cli(*command, "--help").stdout


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["init", "--bogus"], "error: no such option '--bogus'"),
        (["init"], "error: missing option '--crd'"),
        (["init", "--crd", "absent.yaml"],
         "error: invalid value for '--crd': Path 'absent.yaml' does not exist"),
        (["init", "--crd", "crd.yaml", "--port", "0"], "error: invalid value for '--port'"),
        (["frobnicate"], "error: no such command 'frobnicate'"),
        (["explain", "--output", "yaml"], "error: invalid value for '--output'"),
    ],
)  # fmt: skip
def test_click_errors_are_in_the_error_style_and_exit_2(
    project: Path, args: list[str], stderr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(stderr), result.stderr
    assert "Error:" not in result.stderr and "Usage:" not in result.stderr
    assert "\n  hint: see `operator-metrics" in result.stderr


def test_a_crd_moved_away_from_the_config_points_at_the_config_and_init(project: Path) -> None:
    assert run_cli("init", "--crd", project / "crd.yaml", "--project", project).exit_code == 0
    (project / "crd.yaml").rename(project / "moved.yaml")
    config = project / ".operator-metrics.yaml"
    line = config.read_text().splitlines().index("  - crd.yaml") + 1
    expected = (
        f"error: CRD file not found: crd.yaml (listed under `crds`): {config}:{line}\n"
        "  hint: moved it? run `operator-metrics init --crd NEW_PATH`: it updates the config and "
        "keeps your other choices\n"
    )
    for args in (["generate"], ["generate", "--check"], ["explain"], ["export", "ksm"]):
        result = run_cli(*args, "--project", project)
        assert (result.exit_code, result.stderr) == (2, expected), args


def closed_pipe(project: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with its stdout a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-c", "from scaffold_metrics.cli import main; main()", *args],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)


def test_a_closed_pipe_keeps_the_commands_own_exit_code(project: Path) -> None:
    assert run_cli("init", "--crd", project / "crd.yaml", "--project", project).exit_code == 0
    explained = closed_pipe(project, "explain")
    assert (explained.returncode, explained.stderr) == (0, b"")
    (project / "pkg/metrics/wiring.py").write_text("# edited\n")
    diff = closed_pipe(project, "generate", "--diff")
    assert (diff.returncode, diff.stderr) == (0, b"")
    check = closed_pipe(project, "generate", "--check")
    assert check.returncode == 1
    assert check.stderr == b"1 file(s) out of date: run `operator-metrics generate`\n"
