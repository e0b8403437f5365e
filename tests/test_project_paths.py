"""Nothing the tool writes lands outside the project: config paths, init flags, symlinked dirs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scaffold_helpers import MEMCACHED_V1, run_cli, tree

from scaffold_metrics.errors import OutputError
from scaffold_metrics.files import apply, compare
from scaffold_metrics.render import RenderedFile

VICTIM_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: victim
  labels: {app: victim}
spec:
  ports:
  - name: http
    port: 80
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scaffolded project (with Service, RBAC and ServiceMonitor) inside `tmp_path/op`."""
    root = tmp_path / "op"
    (root / "crds").mkdir(parents=True)
    shutil.copyfile(MEMCACHED_V1, root / "crds" / "memcached.yaml")
    result = run_cli(
        "init",
        "--crd",
        root / "crds" / "memcached.yaml",
        "--out",
        root,
        "--rbac",
        "--service-monitor",
    )
    assert result.exit_code == 0, result.stderr
    return root


def everything(base: Path) -> dict[str, bytes]:
    """Every file under `base` (the project and its surroundings), to prove nothing changed."""
    return tree(base)


def set_config_key(project: Path, key: str, value: str) -> int:
    """Point `key` of the project's config at `value`; returns the key's line number."""
    config = project / ".operator-metrics.yaml"
    lines = config.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if line.startswith(f"{key}:"):
            lines[number - 1] = f"{key}: {value}\n"
            config.write_text("".join(lines))
            return number
    lines.append(f"{key}: {value}\n")
    config.write_text("".join(lines))
    return len(lines)


@pytest.mark.parametrize(
    ("key", "victim"),
    [
        ("rbac", "victim.yaml"),
        ("service_monitor", "victim.yaml"),
        ("service", "victim.yaml"),
        ("main", "victim.py"),
        ("package", "victim"),
    ],
)
@pytest.mark.parametrize("absolute", [False, True])
def test_config_path_outside_the_project_is_refused(
    project: Path, key: str, victim: str, absolute: bool
) -> None:
    outside = project.parent / victim
    if victim.endswith(".yaml"):
        outside.write_text(VICTIM_SERVICE)
    value = str(outside) if absolute else f"../{victim}"
    line = set_config_key(project, key, value)
    before = everything(project.parent)
    for command in (("generate",), ("generate", "--check"), ("generate", "--diff")):
        result = run_cli(*command, "--project", project)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "outside the project" in result.stderr
        assert f".operator-metrics.yaml:{line}" in result.stderr
        assert "Traceback" not in result.stderr
    result = run_cli("init", "--crd", project / "crds" / "memcached.yaml", "--out", project)
    assert result.exit_code == 2, result.stderr
    assert f".operator-metrics.yaml:{line}" in result.stderr
    assert everything(project.parent) == before


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--main", "../victim.py"),
        ("--service", "../victim.yaml"),
        ("--package", "../victim"),
        ("--main", "/{outside}/victim.py"),
        ("--service", "/{outside}/victim.yaml"),
    ],
)
def test_init_flag_outside_the_project_is_refused(tmp_path: Path, flag: str, value: str) -> None:
    root = tmp_path / "op"
    (root / "crds").mkdir(parents=True)
    shutil.copyfile(MEMCACHED_V1, root / "crds" / "memcached.yaml")
    (tmp_path / "victim.yaml").write_text(VICTIM_SERVICE)
    value = value.replace("/{outside}", str(tmp_path))
    before = everything(tmp_path)
    result = run_cli(
        "init", "--crd", root / "crds" / "memcached.yaml", "--out", root, "--rbac", flag, value
    )
    assert result.exit_code == 2, result.stderr
    assert "outside the project" in result.stderr or "inside the project" in result.stderr
    assert "Traceback" not in result.stderr
    assert everything(tmp_path) == before


@pytest.mark.parametrize("directory", ["pkg", "pkg/metrics", "pkg/metrics/kinds", "deploy"])
def test_symlinked_directory_leading_out_is_not_written_through(
    project: Path, directory: str
) -> None:
    outside = project.parent / "elsewhere"
    shutil.move(project / directory, outside)
    (project / directory).symlink_to(outside, target_is_directory=True)
    (outside / "victim.yaml").write_text(VICTIM_SERVICE)
    # Something generated must be out of date, so that a write would happen.
    for path in sorted(outside.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml"):
            path.write_text(path.read_text() + "\n# stale\n")
    before = everything(project.parent)
    for command in (("generate",), ("generate", "--check")):
        result = run_cli(*command, "--project", project)
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "outside the project" in result.stderr
        assert "Traceback" not in result.stderr
    assert everything(project.parent) == before


def test_dangling_symlink_to_outside_is_not_created(project: Path) -> None:
    (project / "requirements.txt").unlink()
    (project / "requirements.txt").symlink_to(project.parent / "victim.txt")
    before = everything(project.parent)
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2, result.stderr
    assert "requirements.txt" in result.stderr
    assert not (project.parent / "victim.txt").exists()
    assert everything(project.parent) == before


@pytest.mark.parametrize("path", ["../victim.py", "/tmp/victim.py", "a/../../victim.py"])
def test_write_layer_refuses_paths_outside_the_root(tmp_path: Path, path: str) -> None:
    root = tmp_path / "op"
    root.mkdir()
    files = [RenderedFile("ok.py", b"x = 1\n", "generated"), RenderedFile(path, b"", "generated")]
    with pytest.raises(OutputError, match="outside the project"):
        apply(root, compare(root, files, []))
    assert not (root / "ok.py").exists()
    assert not (tmp_path / "victim.py").exists()


def test_symlink_inside_the_project_is_still_written(project: Path) -> None:
    """Confinement is about where a path leads, not about symlinks as such."""
    shutil.move(project / "deploy", project / "manifests")
    (project / "deploy").symlink_to("manifests", target_is_directory=True)
    rbac = next((project / "manifests").glob("*rbac.yaml"))
    rbac.write_text("stale\n")
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 0, result.stderr
    assert rbac.read_text() != "stale\n"
    assert (project / "deploy").is_symlink()


def test_config_path_too_long_for_the_filesystem_is_refused(project: Path) -> None:
    line = set_config_key(project, "main", "m" * 300 + ".py")
    before = everything(project.parent)
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 2, result.stderr
    assert "longer than 255 bytes" in result.stderr
    assert f".operator-metrics.yaml:{line}" in result.stderr
    assert everything(project.parent) == before
