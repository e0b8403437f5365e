"""Operator repositories laid out as their authors' are, for the first-hour scenario tests.

- `kustomize_operator`: a plain Python operator with kubebuilder-style `config/` kustomize
  manifests, its Deployment in its own namespace (`backup-system`), no RBAC for the kinds.
- `kopf_operator`: a kopf operator whose Deployment and Service live in a Helm chart under
  `deploy/chart/`, with its CRD beside it in `deploy/crds/`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scaffold_helpers import MEMCACHED_V1

CRD_PATH = "config/crd/bases/cache.example.com_memcacheds.yaml"
KOPF_CRD_PATH = "deploy/crds/memcacheds.yaml"

MANAGER = """\
apiVersion: v1
kind: Namespace
metadata:
  name: backup-system
---
# The operator itself.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backup-operator
  namespace: backup-system
  labels:
    app.kubernetes.io/name: backup-operator
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: backup-operator
  template:
    metadata:
      labels:
        app.kubernetes.io/name: backup-operator
    spec:
      serviceAccountName: backup-operator
      containers:
        - name: manager
          image: "example.com/backup-operator:v0.3.1"   # pinned by the release job
          command: ["python", "-m", "backup_operator"]
          ports:
            - name: health
              containerPort: 8081
"""
MANAGER_KUSTOMIZATION = "resources:\n  - manager.yaml\n"
PLAIN_MAIN = """\
import time


def reconcile_forever() -> None:
    while True:
        time.sleep(30)


if __name__ == "__main__":
    reconcile_forever()
"""

KOPF_MAIN = """\
import kopf


@kopf.on.create("cache.example.com", "v1alpha1", "memcacheds")
def created(spec, **_):
    return {"size": spec.get("size")}
"""
CHART = "apiVersion: v2\nname: memcached-operator\nversion: 0.1.0\n"
CHART_VALUES = "image: example.com/memcached-operator:v0.1.0\nmetricsPort: 8389\n"
CHART_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "memcached-operator.fullname" . }}
  labels:
    {{- include "memcached-operator.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "memcached-operator.selectorLabels" . | nindent 6 }}
  template:
    spec:
      containers:
        - name: operator
          image: {{ .Values.image }}
          command: ["kopf", "run", "-A", "main.py"]
"""
CHART_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ include "memcached-operator.fullname" . }}
spec:
  selector:
    {{- include "memcached-operator.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: 80
"""


def kustomize_operator(root: Path) -> Path:
    """The plain operator with `config/` kustomize manifests; returns its root."""
    (root / "config" / "crd" / "bases").mkdir(parents=True)
    (root / "config" / "manager").mkdir(parents=True)
    shutil.copyfile(MEMCACHED_V1, root / CRD_PATH)
    (root / "config" / "manager" / "manager.yaml").write_text(MANAGER)
    (root / "config" / "manager" / "kustomization.yaml").write_text(MANAGER_KUSTOMIZATION)
    (root / "main.py").write_text(PLAIN_MAIN)
    return root


def kopf_operator(root: Path) -> Path:
    """The kopf operator with a Helm chart under `deploy/chart/`; returns its root."""
    templates = root / "deploy" / "chart" / "templates"
    templates.mkdir(parents=True)
    (root / "deploy" / "crds").mkdir(parents=True)
    shutil.copyfile(MEMCACHED_V1, root / KOPF_CRD_PATH)
    (root / "deploy" / "chart" / "Chart.yaml").write_text(CHART)
    (root / "deploy" / "chart" / "values.yaml").write_text(CHART_VALUES)
    (templates / "deployment.yaml").write_text(CHART_DEPLOYMENT)
    (templates / "service.yaml").write_text(CHART_SERVICE)
    (root / "main.py").write_text(KOPF_MAIN)
    (root / "requirements.txt").write_text("kopf==1.37.2\n")
    return root
