"""Validate manifests against the Kubernetes schemas, offline: `kubernetes-validate` bundles
the built-in kinds' schemas; a ServiceMonitor is checked against the Prometheus Operator's own
CRD schema from the corpus (tests/data/crds)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from ruamel.yaml import YAML
from scaffold_helpers import CORPUS

KUBERNETES_VERSION = "1.30.0"


@functools.lru_cache(maxsize=1)
def _service_monitor_schema() -> dict[str, Any]:
    crd = YAML(typ="safe").load((CORPUS / "prometheus-operator-servicemonitors.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def validate_manifest_file(path: Path) -> list[str]:
    """Validate every document of `path`; return the kinds validated (raises on the first
    invalid one, naming the file)."""
    kinds: list[str] = []
    for doc in YAML(typ="safe").load_all(path.read_text()):
        if doc is None:
            continue
        try:
            if doc.get("kind") == "ServiceMonitor":
                jsonschema.validate(doc, _service_monitor_schema())
            else:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            raise AssertionError(f"{path}: {doc.get('kind')} is not valid: {exc}") from exc
        kinds.append(str(doc["kind"]))
    return kinds
