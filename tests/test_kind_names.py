"""Kinds that snake-case alike each get their own module and metric names (or a clear error)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scaffold_helpers import imported_package, run_cli

from scaffold_metrics.crd import load_crds
from scaffold_metrics.plan import PlanOptions, plan_metrics


def crd_text(kind: str, plural: str, group: str, field: str = "size") -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  names:
    kind: {kind}
    plural: {plural}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              {field}:
                type: integer
"""


def write_crds(directory: Path, *crds: tuple[str, str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, (kind, plural, group) in enumerate(crds):
        path = directory / f"{number}-{plural}.{group}.yaml"
        path.write_text(crd_text(kind, plural, group))
        paths.append(path)
    return paths


COLLIDING = {
    "FooBar and FOOBar in one group": [
        ("FooBar", "foobars", "example.com"),
        ("FOOBar", "foo-bars", "example.com"),
    ],
    "Widget in two groups plus WIDGET": [
        ("Widget", "widgets", "a.example.com"),
        ("Widget", "widgets", "b.example.com"),
        ("WIDGET", "widgetz", "a.example.com"),
    ],
    "a group prefix spelling another kind": [
        ("Widget", "widgets", "a.example.com"),
        ("Widget", "widgets", "b.example.com"),
        ("AWidget", "awidgets", "c.example.com"),
    ],
}


def plan_names(paths: list[Path]) -> dict[str, str]:
    plan = plan_metrics(load_crds(paths).crds, PlanOptions(), {})
    return {kind.crd_name: kind.module for kind in plan.kinds}


@pytest.mark.parametrize("case", sorted(COLLIDING))
def test_every_colliding_kind_gets_its_own_module_and_names(tmp_path: Path, case: str) -> None:
    crds = COLLIDING[case]
    paths = write_crds(tmp_path / "crds", *crds)
    project = tmp_path / "op"
    result = run_cli("init", "--crd", tmp_path / "crds", "--out", project)
    assert result.exit_code == 0, result.stderr
    modules = sorted(p.stem for p in (project / "pkg/metrics/kinds").glob("*.py"))
    assert len(modules) == len(crds) + 1, modules  # + __init__
    with imported_package(project) as package:
        generators = package.GENERATORS
        assert sorted((g.kind, g.group) for g in generators) == sorted((k, g) for k, _, g in crds)
        names = [f.name for g in generators for f in g.families]
        assert len(names) == len(set(names)), sorted(names)
        obj = {"metadata": {"name": "x", "namespace": "default"}, "spec": {"size": 1}}
        series = [s.render() for g in generators for s in g().generate(obj)]
        assert len(series) == len(set(series))
    assert sorted(plan_names(paths).values()) == sorted(plan_names(paths[::-1]).values())


def test_names_stay_plain_where_nothing_collides(tmp_path: Path) -> None:
    paths = write_crds(
        tmp_path,
        ("Widget", "widgets", "a.example.com"),
        ("Widget", "widgets", "b.example.com"),
        ("Gadget", "gadgets", "a.example.com"),
    )
    assert plan_names(paths) == {
        "widgets.a.example.com": "a_widget",
        "widgets.b.example.com": "b_widget",
        "gadgets.a.example.com": "gadget",
    }


def test_kinds_alike_in_one_group_are_told_apart_by_their_plural(tmp_path: Path) -> None:
    paths = write_crds(
        tmp_path, ("FooBar", "foobars", "example.com"), ("FOOBar", "foo-bars", "example.com")
    )
    assert plan_names(paths) == {
        "foobars.example.com": "example_foobars",
        "foo-bars.example.com": "example_foo_bars",
    }


def test_a_field_spelling_another_kinds_metric_is_an_error(tmp_path: Path) -> None:
    """`Foo`'s `spec.spec.size` and `FooSpec`'s `spec.size` are both `foo_spec_spec_size`."""
    nested = crd_text("Foo", "foos", "example.com", field="spec").replace(
        "                type: integer\n",
        "                type: object\n"
        "                properties:\n"
        "                  size:\n"
        "                    type: integer\n",
    )
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "foo.yaml").write_text(nested)
    (crds / "foospec.yaml").write_text(crd_text("FooSpec", "foospecs", "example.com"))
    project = tmp_path / "op"
    result = run_cli("init", "--crd", crds, "--out", project)
    assert result.exit_code == 2, result.stderr
    assert "metric foo_spec_spec_size would be served by two kinds" in result.stderr
    assert f"{crds / 'foospec.yaml'}:1" in result.stderr
    assert not project.exists()
    # The hint's way out: rename one of them in the config.
    project.mkdir()
    (project / ".operator-metrics.yaml").write_text(
        "version: 1\ncrds: [../crds]\nmetrics:\n  kinds:\n    Foo:\n      rename:\n"
        "        spec.spec.size: foo_inner_size\n"
    )
    result = run_cli("generate", "--project", project)
    assert result.exit_code == 0, result.stderr
