"""`--rbac` and `--service-monitor`: generated RBAC and ServiceMonitor manifests, kept current."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from scaffold_helpers import CORPUS, MEMCACHED_V1, run_cli

from scaffold_metrics.config import load_config

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cache-operator
  namespace: operators
spec:
  selector:
    matchLabels: {app: cache-operator}
  template:
    metadata:
      labels: {app: cache-operator}
    spec:
      serviceAccountName: cache-operator-sa
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: cache-operator
  namespace: operators
  labels:
    app: cache-operator
    team: "a \\"quoted\\" team"
spec:
  selector: {app: cache-operator}
  ports:
    - name: http
      port: 8080
"""


def docs(path: Path) -> list[Any]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d is not None]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "op"
    (root / "deploy").mkdir(parents=True)
    (root / "deploy" / "operator.yaml").write_text(DEPLOYMENT)
    (root / "deploy" / "service.yaml").write_text(SERVICE)
    shutil.copyfile(MEMCACHED_V1, root / "memcached.yaml")
    shutil.copyfile(CORPUS / "crossplane-providers.yaml", root / "providers.yaml")
    return root


def init(project: Path, *flags: str, crds: tuple[str, ...] = ("memcached.yaml",)) -> str:
    args: list[str | Path] = ["init", "--out", project, *flags]
    for crd in crds:
        args += ["--crd", project / crd]
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def test_rbac_and_service_monitor_for_the_operator(project: Path) -> None:
    init(project, "--rbac", "--service-monitor")
    rbac = docs(project / "deploy" / "cache-operator-metrics-rbac.yaml")
    role, binding = rbac
    assert role["kind"] == "ClusterRole"
    assert role["rules"] == [
        {"apiGroups": ["cache.example.com"], "resources": ["memcacheds"],
         "verbs": ["get", "list", "watch"]}
    ]  # fmt: skip
    assert binding["kind"] == "ClusterRoleBinding"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cache-operator-sa", "namespace": "operators"}
    ]
    (monitor,) = docs(project / "deploy" / "cache-operator-metrics-servicemonitor.yaml")
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app": "cache-operator",
        "team": 'a "quoted" team',
    }
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["operators"]}
    assert monitor["spec"]["endpoints"][0]["port"] == "cr-metrics"
    check = run_cli("generate", "--check", "--project", project)
    assert check.exit_code == 0, check.stdout


def test_rbac_follows_the_crds_and_namespaces(project: Path) -> None:
    init(project, "--rbac", "--namespace", "team-a", "--namespace", "team-b")
    rbac = docs(project / "deploy" / "cache-operator-metrics-rbac.yaml")
    assert [d["kind"] for d in rbac] == ["ClusterRole", "RoleBinding", "RoleBinding"]
    assert [d["metadata"]["namespace"] for d in rbac[1:]] == ["team-a", "team-b"]
    assert run_cli("generate", "--check", "--project", project).exit_code == 0
    # A cluster-scoped kind needs a cluster-wide binding, whatever the namespaces.
    init(project, crds=("memcached.yaml", "providers.yaml"))
    rbac = docs(project / "deploy" / "cache-operator-metrics-rbac.yaml")
    assert [d["kind"] for d in rbac] == [
        "ClusterRole",
        "ClusterRoleBinding",
        "RoleBinding",
        "RoleBinding",
    ]
    groups = {rule["apiGroups"][0]: rule["resources"] for rule in rbac[0]["rules"]}
    assert groups == {"cache.example.com": ["memcacheds"], "pkg.crossplane.io": ["providers"]}


def test_hand_edited_rbac_is_drift(project: Path) -> None:
    init(project, "--rbac")
    path = project / "deploy" / "cache-operator-metrics-rbac.yaml"
    original = path.read_text()
    path.write_text(original.replace("watch", "watch, delete"))
    check = run_cli("generate", "--check", "--project", project)
    assert check.exit_code == 1 and "cache-operator-metrics-rbac.yaml" in check.stdout
    assert run_cli("generate", "--project", project).exit_code == 0
    assert path.read_text() == original


def test_service_monitor_needs_service_labels(project: Path) -> None:
    (project / "deploy" / "service.yaml").write_text(
        SERVICE.replace('  labels:\n    app: cache-operator\n    team: "a \\"quoted\\" team"\n', "")
    )
    before = sorted(p.name for p in (project / "deploy").iterdir())
    result = run_cli(
        "init", "--out", project, "--crd", project / "memcached.yaml", "--service-monitor"
    )
    assert result.exit_code == 2
    assert "has no labels for a ServiceMonitor to select" in result.stderr
    assert sorted(p.name for p in (project / "deploy").iterdir()) == before


def test_turning_rbac_off_removes_the_generated_manifest(project: Path) -> None:
    init(project, "--rbac")
    path = project / "deploy" / "cache-operator-metrics-rbac.yaml"
    assert path.is_file()
    err = init(project, "--no-rbac")
    assert "remove    deploy/cache-operator-metrics-rbac.yaml" in err
    assert not path.exists()
    assert load_config(project).rbac is None
