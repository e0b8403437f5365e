"""Round-trip Service edits: comments, order, quoting and other documents survive; twice is once."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from scaffold_metrics.errors import InputError
from scaffold_metrics.manifests import (
    find_manifest,
    guess_indentation,
    read_deployment,
    with_metrics_port,
)
from scaffold_metrics.yamldocs import split_documents

MULTI_DOC = """\
# leading comment of the file
apiVersion: v1
kind: ServiceAccount
metadata:
  name: op   # trailing comment
---
apiVersion: v1
kind: Service
metadata:
  name: 'op'
  annotations:
    note: "keep my quotes"
spec:
  # the selector
  selector:
    app: op
  ports:
    - name: http-metrics
      port: 8383   # operator metrics
      targetPort: 8383
---
apiVersion: v1
kind: ConfigMap
metadata: {name: untouched,   odd: spacing}
"""


def test_adds_port_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(MULTI_DOC)
    edited = with_metrics_port(path, 8389, "op")
    before, after = split_documents(MULTI_DOC), split_documents(edited)
    assert after[0].text == before[0].text
    assert after[2].text == before[2].text
    expected = before[1].text.replace(
        "      targetPort: 8383\n",
        "      targetPort: 8383\n"
        "    - name: cr-metrics\n      port: 8389\n      targetPort: 8389\n      protocol: TCP\n",
    )
    assert after[1].text == expected
    service = list(YAML(typ="safe").load_all(edited))[1]
    assert {"name": "cr-metrics", "port": 8389, "targetPort": 8389, "protocol": "TCP"} in service[
        "spec"
    ]["ports"]


def test_applying_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(MULTI_DOC)
    once = with_metrics_port(path, 8389, "op")
    path.write_text(once)
    assert with_metrics_port(path, 8389, "op") == once


def test_changed_port_is_updated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(MULTI_DOC)
    path.write_text(with_metrics_port(path, 8389, "op"))
    moved = with_metrics_port(path, 9000, "op")
    assert "port: 9000" in moved and "targetPort: 9000" in moved and "8389" not in moved
    assert moved.count("cr-metrics") == 1


def test_zero_offset_sequences_keep_their_style(tmp_path: Path) -> None:
    text = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: op\nspec:\n  ports:\n"
        "  - name: web\n    port: 80\n"
    )
    path = tmp_path / "svc.yml"
    path.write_text(text)
    assert guess_indentation(text) == (2, 2, 0)
    assert with_metrics_port(path, 8389, None) == text + (
        "  - name: cr-metrics\n    port: 8389\n    targetPort: 8389\n    protocol: TCP\n"
    )


def test_file_without_service_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    with pytest.raises(InputError, match="no Service"):
        with_metrics_port(path, 8389, None)


def test_finds_service_and_deployment_under_deploy(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "a.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-op\nspec:\n"
        "  selector:\n    matchLabels:\n      name: my-op\n      tier: ctl\n"
    )
    (tmp_path / "deploy" / "b.yaml").write_text(MULTI_DOC)
    assert find_manifest(tmp_path, "Service") == tmp_path / "deploy" / "b.yaml"
    deployment_file = find_manifest(tmp_path, "Deployment")
    assert deployment_file is not None
    deployment = read_deployment(deployment_file)
    assert deployment is not None
    assert deployment.name == "my-op"
    assert deployment.selector == (("name", "my-op"), ("tier", "ctl"))
