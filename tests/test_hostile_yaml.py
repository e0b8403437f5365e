"""Hostile YAML in a CRD (deep nesting, recursive and exploding aliases, huge names) ends in a
clear `error:` and exit 2, fast and in bounded memory: never a traceback, 123 or a signal.

Each case runs in a child process under a memory limit and a timeout (see `hostile_yaml`), so a
regression fails here instead of crashing or hanging the test run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hostile_yaml import (
    TIME_LIMIT,
    billion_laughs_enum,
    fanned_out_properties,
    long_kind,
    nested_all_of,
    nested_flow_sequence_in_unread_key,
    recursive_all_of,
    run_bounded,
)
from scaffold_helpers import MEMCACHED_V1, run_cli, tree

from scaffold_metrics.yamldocs import MAX_DEPTH, MAX_NODES

CASES: dict[str, tuple[Callable[[], str], str]] = {
    "recursive anchor in allOf": (recursive_all_of, "recursive YAML alias *a"),
    "allOf nested 1,000 deep": (lambda: nested_all_of(1000), f"deeper than {MAX_DEPTH}"),
    "flow sequence nested 30,000 deep in an unread key": (
        lambda: nested_flow_sequence_in_unread_key(30_000),
        f"deeper than {MAX_DEPTH}",
    ),
    "kind of 5,000 characters": (lambda: long_kind(5000), "spec.names.kind is 5,000 characters"),
    "billion laughs as an enum": (billion_laughs_enum, f"more than {MAX_NODES:,} nodes"),
    "10 properties x 9 levels of aliases": (
        fanned_out_properties,
        f"more than {MAX_NODES:,} nodes",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_yaml_is_refused_fast_and_small(tmp_path: Path, case: str) -> None:
    make, message = CASES[case]
    crd = tmp_path / "crd.yaml"
    crd.write_text(make())
    project = tmp_path / "op"
    project.mkdir()
    run = run_bounded("init", "--crd", crd, "--out", project)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert run.stderr.startswith("error: "), run.stderr[-2000:]
    assert message in run.stderr
    assert f"{crd}:" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.seconds < TIME_LIMIT
    assert run.max_rss_mib < 500
    assert tree(project) == {}


def test_error_names_the_line_of_the_offending_node(tmp_path: Path) -> None:
    crd = tmp_path / "crd.yaml"
    text = nested_flow_sequence_in_unread_key(MAX_DEPTH + 1)
    crd.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("  unused:"))
    result = run_cli("init", "--crd", crd, "--out", tmp_path / "op")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].endswith(f"{crd}:{line}")


def test_depth_and_aliases_within_bounds_still_load(tmp_path: Path) -> None:
    """The bounds are far above real CRDs: nesting close to the limit and a few aliases work."""
    crd = tmp_path / "crd.yaml"
    crd.write_text(nested_all_of(MAX_DEPTH // 2 - 12).replace("{type: object}", "&o {}", 1))
    result = run_cli("init", "--crd", crd, "--out", tmp_path / "op")
    assert result.exit_code == 0, result.stderr
    crd.write_text(fanned_out_properties(levels=3, width=5))
    result = run_cli("init", "--crd", crd, "--out", tmp_path / "op")
    assert result.exit_code == 0, result.stderr


def test_config_file_is_bounded_too(tmp_path: Path) -> None:
    project = tmp_path / "op"
    (project / "crds").mkdir(parents=True)
    (project / "crds" / "m.yaml").write_bytes(MEMCACHED_V1.read_bytes())
    assert run_cli("init", "--crd", project / "crds" / "m.yaml", "--out", project).exit_code == 0
    config = project / ".operator-metrics.yaml"
    config.write_text(config.read_text() + "metrics: " + "[" * 30_000 + "]" * 30_000 + "\n")
    run = run_bounded("generate", "--project", project)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert f"deeper than {MAX_DEPTH}" in run.stderr
    assert ".operator-metrics.yaml:" in run.stderr


def test_a_manifest_of_the_project_is_bounded_too(tmp_path: Path) -> None:
    project = tmp_path / "op"
    (project / "crds").mkdir(parents=True)
    (project / "deploy").mkdir()
    (project / "crds" / "m.yaml").write_bytes(MEMCACHED_V1.read_bytes())
    (project / "deploy" / "operator.yaml").write_text(
        "kind: Deployment\nspec: " + "[" * 30_000 + "]" * 30_000 + "\n"
    )
    run = run_bounded("init", "--crd", project / "crds" / "m.yaml", "--out", project)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert f"deeper than {MAX_DEPTH}" in run.stderr
    assert "operator.yaml:2" in run.stderr
