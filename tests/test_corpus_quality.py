"""For every corpus CRD: explain is complete, the whole generated tree is ruff (the project's
rules, RUF022 and E501 included) and mypy --strict clean, and a scrape of sample objects passes
`promtool check metrics`."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from prom_helpers import promtool_check
from scaffold_helpers import copy_crd, run_cli
from schema_helpers import CORPUS, CRD_DIR, import_generators, load, plan_of, sample_object
from test_generated_samples import mypy_strict

from scaffold_metrics import schema as sch
from scaffold_metrics.crd import Crd
from scaffold_metrics.families_plan import DEFAULT_DEPTH, STATUS_DEPTH
from scaffold_metrics.plan import KindPlan, requested_version, select_version
from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.server import render_exposition
from scaffold_metrics.runtime.store import MetricsStore

GADGETS = Path(__file__).parent / "data" / "test-crds" / "test.example.com_gadgets.yaml"
FILES = [CRD_DIR / name for name in CORPUS] + [GADGETS]
RUFF_ARGS = ("--isolated", "--no-cache", "--select", "E,F,W,I,B,UP,SIM,RUF")
RUFF_ARGS += ("--line-length", "100", "--target-version", "py310")


def _fields_to_plan(crd: Crd, kind: KindPlan) -> list[str]:
    """Every field of spec and status to the planning depth that is not an object."""
    version = select_version(crd, requested_version(crd, {}))
    paths = []
    for field in sch.walk(version.schema):
        limit = STATUS_DEPTH if field.path[0] == "status" else DEFAULT_DEPTH
        if field.kind != sch.OBJECT and len(field.path) - 1 <= limit:
            paths.append(field.dotted)
    return paths


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_explain_lists_every_field_as_planned_xor_left_out(path: Path) -> None:
    crds = load(path)
    plan = plan_of(crds)
    by_name = {crd.name: crd for crd in crds}
    for kind in plan.kinds:
        planned = {f.source for f in kind.families}
        left = [o.path for o in kind.left_out]
        assert len(left) == len(set(left)), "a path is left out twice"
        assert not planned & set(left), "a path is both planned and left out"
        missing = [p for p in _fields_to_plan(by_name[kind.crd_name], kind) if p not in planned]
        assert [p for p in missing if p not in left] == []


def test_explain_is_complete_below_a_schema_less_spec(tmp_path: Path) -> None:
    crd = tmp_path / "crd.yaml"
    crd.write_text(
        (Path(__file__).parent / "data" / "test-crds" / "test.example.com_widgets.yaml").read_text()
    )
    project = tmp_path / "p"
    copy_crd(crd, project)
    assert run_cli("init", "--crd", project / "crd.yaml", "--out", project).exit_code == 0
    config = project / ".operator-metrics.yaml"
    config.write_text(
        config.read_text() + "metrics:\n  kinds:\n    Widget:\n      include: [spec.replicas]\n"
    )
    result = run_cli("explain", "--project", project, "--output", "json")
    assert result.exit_code == 0, result.stderr
    import json

    (kind,) = json.loads(result.stdout)["kinds"]
    planned = {f["source"] for f in kind["families"]}
    left = {o["path"]: o["reason"] for o in kind["left_out"]}
    assert "spec.replicas" in planned
    assert not planned & set(left)
    assert left["spec"] == "schema-less (preserve-unknown-fields): include its fields by path"


def _tree(tmp_path: Path, crds: list[Path]) -> Path:
    project = tmp_path / "operator"
    args: list[str | Path] = ["init", "--out", project, "--namespace", "default"]
    for index, crd in enumerate(crds):
        args += ["--crd", copy_crd(crd, project, f"crd-{index}.yaml")]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return project


def _ruff(project: Path) -> subprocess.CompletedProcess[str]:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is a test dependency: pip install -e '.[test]'")
    return subprocess.run(
        [ruff, "check", *RUFF_ARGS, "pkg"], cwd=project, capture_output=True, text=True
    )


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_generated_tree_is_ruff_clean(tmp_path: Path, path: Path) -> None:
    result = _ruff(_tree(tmp_path, [path]))
    assert result.returncode == 0, result.stdout


def _long_kind_crd(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.yaml"
    plural = kind.lower() + "s"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {{name: {plural}.objectstores.storage.example.com}}
        spec:
          group: objectstores.storage.example.com
          names: {{kind: {kind}, plural: {plural}}}
          scope: Namespaced
          versions:
            - name: v1alpha1
              served: true
              storage: true
              schema:
                openAPIV3Schema:
                  type: object
                  properties:
                    status: {{type: object, properties: {{phase: {{type: string}}}}}}
        """))
    return path


def test_tree_of_prefix_and_long_kind_names_is_ruff_clean(tmp_path: Path) -> None:
    kinds = [
        "CephObjectStore",
        "CephObjectStoreAccount",
        "CephOSDs",
        "Ceph2Store",
        "Ceph10Store",
        "CephFilesystemSubVolumeGroupSnapshotScheduleBinding",  # 51 characters
    ]
    project = _tree(tmp_path, [_long_kind_crd(tmp_path, k) for k in kinds])
    result = _ruff(project)
    assert result.returncode == 0, result.stdout


def test_generated_corpus_tree_is_mypy_strict_clean(tmp_path: Path) -> None:
    mypy = shutil.which("mypy")
    if mypy is None:
        pytest.fail("mypy is a test dependency: pip install -e '.[test]'")
    # One project of the whole corpus (the v1beta1 Memcached is the same CRD as the v1 one).
    files = [p for p in FILES if p.name != "operator-sdk-memcached-v1beta1.yaml"]
    project = _tree(tmp_path, files)
    result = mypy_strict(mypy, "pkg.metrics", project)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_scrape_of_sample_objects_passes_promtool(tmp_path: Path, path: Path) -> None:
    plan = plan_of(load(path))
    generators = import_generators(tmp_path, plan)
    stores = []
    for kind in plan.kinds:
        store = MetricsStore(generators[kind.crd_name], self_metrics=SelfMetrics())
        full, fresh = sample_object(kind), sample_object(kind, with_status=False)
        fresh["metadata"] = {**fresh["metadata"], "name": "sample-2", "uid": "2"}
        full["metadata"]["uid"] = "1"
        store.upsert(full)
        store.upsert(fresh)
        stores.append(store)
    promtool_check(render_exposition(stores, SelfMetrics(), openmetrics=False))
