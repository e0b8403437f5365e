"""Projects scaffolded with `init --dashboards --alerts` for the dashboard and alert tests: the
bundled memcached example, and a Strimzi Kafka operator whose config opts in to
metadata.generation and metadata.deletionTimestamp (so every alert of a kind is planned)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from scaffold_helpers import run_cli

from scaffold_metrics.explain import build_plan, plan_inputs
from scaffold_metrics.plan import KindPlan

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "memcached-operator"
MEMCACHED_CRD = "config/crd/bases/cache.example.com_memcacheds.yaml"
KAFKA_CRD = "config/crd/kafkas.yaml"
KAFKA_SOURCE = Path(__file__).resolve().parent / "data" / "crds" / "strimzi-kafkas.yaml"
KAFKA_METRICS = """\
metrics:
  kinds:
    Kafka:
      include:
        - metadata.generation
        - metadata.deletionTimestamp
"""
# A kind whose name is template and PromQL syntax: text in every output, never code.
HOSTILE_KIND = 'Evil{{ query "up" }}"\n'


def crd_with_conditions(kind: str, plural: str) -> str:
    """A namespaced CRD of `kind` whose only planned field is status.conditions."""
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.example.com
spec:
  group: example.com
  names:
    kind: {json.dumps(kind)}
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
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {{type: string}}
                    status: {{type: string}}
"""


HOSTILE_CRD = crd_with_conditions(HOSTILE_KIND, "evils")


def memcached_project(root: Path, *flags: str) -> Path:
    """A copy of the example, scaffolded again with `flags` (default: dashboards and alerts)."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    result = run_cli("init", "--crd", root / MEMCACHED_CRD, "--project", root, *flags)
    assert result.exit_code == 0, result.stderr
    return root


def kafka_project(root: Path) -> Path:
    """A Kafka operator with dashboards, alerts and both opt-in metadata fields."""
    (root / KAFKA_CRD).parent.mkdir(parents=True)
    shutil.copyfile(KAFKA_SOURCE, root / KAFKA_CRD)
    result = run_cli(
        "init", "--crd", root / KAFKA_CRD, "--project", root, "--dashboards", "--alerts"
    )
    assert result.exit_code == 0, result.stderr
    config = root / ".operator-metrics.yaml"
    config.write_text(config.read_text() + KAFKA_METRICS)
    result = run_cli("generate", "--project", root)
    assert result.exit_code == 0, result.stderr
    return root


def project_kinds(root: Path) -> tuple[KindPlan, ...]:
    """The plan `generate` rendered for the project at `root`."""
    return build_plan(plan_inputs((), {}, root)).kinds


def load_yaml(path: Path) -> Any:
    """A YAML file as plain data."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))
