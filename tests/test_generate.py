"""`operator-metrics generate [--check|--diff]`: CRD changes, drift, ownership, exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scaffold_helpers import CORPUS, MEMCACHED_V1, run_cli, tree

from scaffold_metrics.files import is_generated

USER_FILES = ("main.py", "pkg/__init__.py")


def scaffold(project: Path, *crds: Path, flags: tuple[str, ...] = ()) -> None:
    args: list[str | Path] = ["init", "--out", project, *flags]
    for crd in crds:
        args += ["--crd", crd]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr


def user_owned(project: Path) -> dict[str, bytes]:
    """User files: entry, package init, custom modules and the Service manifest."""
    files = tree(project)
    return {
        path: data
        for path, data in files.items()
        if path in USER_FILES or ("/custom/" in path and not path.endswith("__init__.py"))
    }


def personalise(project: Path) -> dict[str, bytes]:
    """Make user edits everywhere the user owns something; return the expected bytes."""
    for path in user_owned(project):
        with open(project / path, "a") as handle:
            handle.write("\n# edited by the user\n")
    return user_owned(project)


def check(project: Path) -> tuple[int, str, str]:
    result = run_cli("generate", "--check", "--project", project)
    return result.exit_code, result.stdout, result.stderr


def generate(project: Path) -> tuple[int, str]:
    result = run_cli("generate", "--project", project)
    return result.exit_code, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "op"
    (root / "crds").mkdir(parents=True)
    shutil.copyfile(MEMCACHED_V1, root / "crds" / "memcached.yaml")
    scaffold(root, root / "crds" / "memcached.yaml")
    return root


def test_up_to_date_project_checks_clean_and_generate_touches_nothing(project: Path) -> None:
    before = tree(project)
    assert check(project) == (0, "", "")
    code, err = generate(project)
    assert code == 0
    assert tree(project) == before
    assert all(line.startswith("unchanged ") for line in err.splitlines())


def test_generate_gives_exactly_what_init_gave(project: Path, tmp_path: Path) -> None:
    init_tree = tree(project)
    for path in list((project / "pkg" / "metrics").rglob("*.py")):
        if "custom" not in path.parts or path.name == "__init__.py":
            path.unlink()
    code, err = generate(project)
    assert code == 0, err
    assert tree(project) == init_tree


def test_hand_edited_generated_file_fails_check_then_is_restored(project: Path) -> None:
    target = project / "pkg/metrics/kinds/memcached.py"
    original = target.read_bytes()
    target.write_text(target.read_text().replace("memcached_info", "memcached_hacked"))
    code, out, err = check(project)
    assert code == 1
    assert (
        "--- a/pkg/metrics/kinds/memcached.py" in out
        and "+++ b/pkg/metrics/kinds/memcached.py" in out
    )
    assert '-    name="memcached_hacked",' in out and '+    name="memcached_info",' in out
    assert "out of date" in err
    assert target.read_text().count("memcached_hacked") > 0  # --check wrote nothing
    diff = run_cli("generate", "--diff", "--project", project)
    assert diff.exit_code == 0 and diff.stdout == out
    code, err = generate(project)
    assert code == 0 and "update    pkg/metrics/kinds/memcached.py" in err
    assert target.read_bytes() == original


def test_crlf_checkout_is_not_drift(project: Path) -> None:
    target = project / "pkg/metrics/kinds/memcached.py"
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n"))
    assert check(project)[0] == 0


def test_missing_generated_file_is_drift(project: Path) -> None:
    (project / "pkg/metrics/wiring.py").unlink()
    code, out, _err = check(project)
    assert code == 1 and "--- /dev/null\n+++ b/pkg/metrics/wiring.py" in out


def test_field_added_and_removed(project: Path) -> None:
    expected_user = personalise(project)
    crd = project / "crds" / "memcached.yaml"
    original = crd.read_text()
    added = original.replace(
        "              size:\n",
        "              replicas:\n                description: Wanted replicas.\n"
        "                type: integer\n              size:\n",
        1,
    )
    assert added != original
    crd.write_text(added)
    code, out, _err = check(project)
    assert code == 1 and "memcached_spec_replicas" in out
    assert generate(project)[0] == 0
    assert "memcached_spec_replicas" in (project / "pkg/metrics/kinds/memcached.py").read_text()
    crd.write_text(original)
    assert check(project)[0] == 1
    assert generate(project)[0] == 0
    assert "memcached_spec_replicas" not in (project / "pkg/metrics/kinds/memcached.py").read_text()
    assert check(project)[0] == 0
    assert user_owned(project) == expected_user


def test_storage_version_changed(tmp_path: Path) -> None:
    root = tmp_path / "op"
    root.mkdir()
    crd = root / "pipeline.yaml"
    shutil.copyfile(CORPUS / "tekton-pipelines.yaml", crd)
    scaffold(root, crd)
    expected_user = personalise(root)
    module = root / "pkg/metrics/kinds/pipeline.py"
    assert 'version: ClassVar[str] = "v1"' in module.read_text()
    text = crd.read_text()
    swapped = text.replace("storage: true", "storage: __A__").replace(
        "storage: false", "storage: true"
    )
    crd.write_text(swapped.replace("storage: __A__", "storage: false"))
    code, out, _err = check(root)
    assert code == 1 and '+    version: ClassVar[str] = "v1beta1"' in out
    assert generate(root)[0] == 0
    assert 'version: ClassVar[str] = "v1beta1"' in module.read_text()
    assert user_owned(root) == expected_user


def test_kind_renamed_removes_only_the_old_generated_module(project: Path) -> None:
    expected_user = personalise(project)
    stray = project / "pkg/metrics/kinds/notes.py"
    stray.write_text("# a file the user put here\n")
    crd = project / "crds" / "memcached.yaml"
    crd.write_text(
        crd.read_text()
        .replace("kind: Memcached\n", "kind: MemcachedCluster\n")
        .replace("listKind: MemcachedList", "listKind: MemcachedClusterList")
    )
    code, out, _err = check(project)
    assert code == 1
    assert "--- a/pkg/metrics/kinds/memcached.py\n+++ /dev/null" in out
    code, err = generate(project)
    assert code == 0
    assert "remove    pkg/metrics/kinds/memcached.py" in err
    assert "create    pkg/metrics/kinds/memcached_cluster.py" in err
    assert "create    pkg/metrics/custom/memcached_cluster.py" in err
    assert not (project / "pkg/metrics/kinds/memcached.py").exists()
    assert stray.read_text() == "# a file the user put here\n"
    assert user_owned(project).items() >= expected_user.items()
    assert check(project)[0] == 0


def test_crd_added_to_and_removed_from_the_set(project: Path) -> None:
    expected_user = personalise(project)
    shutil.copyfile(CORPUS / "crossplane-providers.yaml", project / "crds" / "providers.yaml")
    scaffold(project, project / "crds" / "memcached.yaml", project / "crds" / "providers.yaml")
    assert (project / "pkg/metrics/kinds/provider.py").is_file()
    assert "ProviderMetricsGenerator" in (project / "pkg/metrics/__init__.py").read_text()
    assert check(project)[0] == 0
    scaffold(project, project / "crds" / "memcached.yaml")
    assert not (project / "pkg/metrics/kinds/provider.py").exists()
    assert "Provider" not in (project / "pkg/metrics/__init__.py").read_text()
    assert check(project)[0] == 0
    assert user_owned(project).items() >= expected_user.items()


def test_crd_file_moved_updates_config_via_init(project: Path) -> None:
    expected_user = personalise(project)
    (project / "config").mkdir()
    moved = project / "config" / "crd.yaml"
    (project / "crds" / "memcached.yaml").rename(moved)
    code, _out, err = check(project)
    assert code == 2 and "error: CRD file not found" in err
    scaffold(project, moved)
    assert "- config/crd.yaml" in (project / ".operator-metrics.yaml").read_text()
    code, out, _err = check(project)
    assert code == 0, out
    assert user_owned(project) == expected_user
    assert "#   config/crd.yaml" in (project / "pkg/metrics/kinds/memcached.py").read_text()


def test_package_moved_via_init_removes_the_old_generated_package(project: Path) -> None:
    expected_user = personalise(project)
    old_generated = sorted(
        path
        for path, data in tree(project).items()
        if path.startswith("pkg/metrics/") and is_generated(data)
    )
    assert "pkg/metrics/kinds/memcached.py" in old_generated
    result = run_cli(
        "init",
        "--out",
        project,
        "--crd",
        project / "crds" / "memcached.yaml",
        "--package",
        "app/observability",
    )
    assert result.exit_code == 0, result.stderr
    assert "moved from pkg/metrics to app/observability" in result.stderr
    assert "package: app/observability" in (project / ".operator-metrics.yaml").read_text()
    for path in old_generated:
        assert not (project / path).exists(), path
        assert f"remove    {path}" in result.stderr
    assert (project / "app/observability/kinds/memcached.py").is_file()
    assert (project / "app/observability/custom/memcached.py").is_file()
    # the user's files stay where they were, untouched (custom edits are theirs to move)
    assert user_owned(project).items() >= expected_user.items()
    assert check(project)[0] == 0


def test_user_edits_around_the_metrics_port_survive(project: Path) -> None:
    config = (project / ".operator-metrics.yaml").read_text()
    service_path = project / next(
        line.split(": ", 1)[1] for line in config.splitlines() if line.startswith("service:")
    )
    text = service_path.read_text()
    edited = text.replace(
        "  - name: cr-metrics\n",
        "  # scraped by the platform team's Prometheus\n  - name: cr-metrics\n",
    ).replace("    protocol: TCP\n", "    protocol: TCP\n    appProtocol: http\n")
    edited += "---\n# another document the user keeps here\napiVersion: v1\nkind: ConfigMap\n"
    assert edited != text
    service_path.write_text(edited)
    assert check(project)[0] == 0
    assert generate(project)[0] == 0
    assert service_path.read_text() == edited


def test_config_errors(project: Path) -> None:
    config = project / ".operator-metrics.yaml"
    original = config.read_text()
    config.write_text(original + "colour: blue\n")
    code, _out, err = check(project)
    assert code == 2 and "error: unknown config key 'colour'" in err
    assert f"{config}:{len(original.splitlines()) + 1}" in err
    config.write_text(original.replace("version: 1", "version: 7"))
    code, _out, err = check(project)
    assert code == 2 and "newer than this operator-metrics understands" in err
    config.unlink()
    code, _out, err = check(project)
    assert code == 2 and "run `operator-metrics init" in err


def test_failed_write_leaves_the_project_as_it_was(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scaffold_metrics.files as files
    from scaffold_metrics.errors import OutputError

    crd = project / "crds" / "memcached.yaml"
    crd.write_text(crd.read_text().replace("kind: Memcached\n", "kind: Cache\n"))
    before = tree(project)
    real_stage = files.stage
    calls = 0

    def failing_stage(target: Path, data: bytes) -> Path:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OutputError("cannot write (No space left on device)", target)
        return real_stage(target, data)

    monkeypatch.setattr(files, "stage", failing_stage)
    code, err = generate(project)
    assert code == 2 and "error: cannot write (No space left on device)" in err
    assert calls == 3
    assert tree(project) == before  # no file written, none removed, no temporary left
