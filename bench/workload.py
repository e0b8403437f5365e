"""Realistic objects and watch event streams for the benchmarks.

Objects are shaped like the ones in `/work/shared/kube-api-transcripts` (a real kube-apiserver's
answers): `managedFields` entries for client-side apply, a status patch and a spec patch, and a
`kubectl.kubernetes.io/last-applied-configuration` annotation, so a memcached object is several
times the size of its spec. Everything is deterministic for a given size and seed.

Two kinds: the memcached example kind (about 2 KB of JSON), and a Prometheus custom resource
(prometheus-operator's `monitoring.coreos.com/v1`) with a big spec (about 25 KB of JSON), for
the memory target of large objects.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

MEMCACHED_API = "cache.example.com/v1alpha1"
PROMETHEUS_API = "monitoring.coreos.com/v1"
NAMESPACES_PER_1K = 20  # objects are spread over namespaces, ~50 per namespace
BASE_TIME = 1_795_000_000  # 2026-11-18, seconds


def _ts(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _last_applied(api: str, kind: str, name: str, namespace: str, spec: dict[str, Any]) -> str:
    doc = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"annotations": {}, "name": name, "namespace": namespace},
        "spec": spec,
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


def _fields_of(value: Any) -> dict[str, Any]:
    """`fieldsV1` of a value: `f:<key>` for every key of nested dicts (lists end the walk)."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {".": {}}
    for key, sub in value.items():
        out[f"f:{key}"] = _fields_of(sub)
    return out


def _managed(api: str, manager: str, fields: dict[str, Any], at: int, sub: str = "") -> Any:
    entry: dict[str, Any] = {
        "apiVersion": api,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        "manager": manager,
        "operation": "Update",
    }
    if sub:
        entry["subresource"] = sub
    entry["time"] = _ts(at)
    return entry


def _conditions(rng: random.Random, at: int, generation: int) -> list[dict[str, Any]]:
    available = rng.random() < 0.9
    degraded = rng.random() < 0.05
    return [
        {
            "lastTransitionTime": _ts(at),
            "message": "Deployment for custom resource reconciled" if available else "starting",
            "observedGeneration": generation,
            "reason": "Reconciling" if available else "Progressing",
            "status": "True" if available else "False",
            "type": "Available",
        },
        {
            "lastTransitionTime": _ts(at),
            "message": "Finalizer operations ran" if degraded else "",
            "observedGeneration": generation,
            "reason": "Finalizing" if degraded else "Reconciled",
            "status": "True" if degraded else ("Unknown" if rng.random() < 0.02 else "False"),
            "type": "Degraded",
        },
    ]


def memcached_object(i: int, n: int, rng: random.Random, version: int = 1) -> dict[str, Any]:
    """The i-th of n memcached objects, with status conditions, as the API returns it."""
    namespaces = max(1, n * NAMESPACES_PER_1K // 1000)
    namespace = f"team-{i % namespaces:04d}"
    name = f"memcached-{i:06d}"
    created = BASE_TIME + i
    size = 1 + i % 3
    spec = {"containerPort": 11211, "size": size}
    generation = version
    status_fields = {".": {}, "f:conditions": {}}
    return {
        "apiVersion": MEMCACHED_API,
        "kind": "Memcached",
        "metadata": {
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": _last_applied(
                    MEMCACHED_API, "Memcached", name, namespace, spec
                )
            },
            "creationTimestamp": _ts(created),
            "finalizers": ["cache.example.com/finalizer"],
            "generation": generation,
            "managedFields": [
                _managed(
                    MEMCACHED_API,
                    "kubectl-client-side-apply",
                    {
                        "f:metadata": {
                            "f:annotations": {
                                ".": {},
                                "f:kubectl.kubernetes.io/last-applied-configuration": {},
                            }
                        },
                        "f:spec": _fields_of(spec),
                    },
                    created,
                ),
                _managed(
                    MEMCACHED_API,
                    "manager",
                    {
                        "f:metadata": {
                            "f:finalizers": {".": {}, 'v:"cache.example.com/finalizer"': {}}
                        }
                    },
                    created + 1,
                ),
                _managed(
                    MEMCACHED_API, "manager", {"f:status": status_fields}, created + 2, "status"
                ),
            ],
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(100_000 + i * 7 + version),
            "uid": _uid(rng),
        },
        "spec": spec,
        "status": {"conditions": _conditions(rng, created + 2, generation)},
    }


def memcached_objects(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """n memcached objects (distinct names and uids), deterministic for (n, seed)."""
    rng = random.Random(seed)
    return [memcached_object(i, n, rng) for i in range(n)]


def _container(rng: random.Random, name: str, image: str) -> dict[str, Any]:
    return {
        "args": [f"--{name}.flag-{k}={rng.randrange(10**6)}" for k in range(26)],
        "env": [{"name": f"{name.upper()}_ENV_{k}", "value": f"value-{k}"} for k in range(12)],
        "image": image,
        "name": name,
        "ports": [
            {"containerPort": 9090 + k, "name": f"port-{k}", "protocol": "TCP"} for k in range(2)
        ],
        "resources": {
            "limits": {"cpu": "2", "memory": "8Gi"},
            "requests": {"cpu": "500m", "memory": "2Gi"},
        },
        "volumeMounts": [
            {"mountPath": f"/etc/{name}/config-{k}", "name": f"config-{k}", "readOnly": True}
            for k in range(5)
        ],
    }


def prometheus_object(i: int, n: int, rng: random.Random) -> dict[str, Any]:
    """A Prometheus custom resource with a big spec (about 25 KB of JSON with its metadata)."""
    namespace = f"monitoring-{i % max(1, n // 50):04d}"
    name = f"prometheus-{i:06d}"
    created = BASE_TIME + i
    spec: dict[str, Any] = {
        "additionalScrapeConfigs": {"key": "prometheus-additional.yaml", "name": "additional"},
        "alerting": {
            "alertmanagers": [
                {
                    "apiVersion": "v2",
                    "name": f"alertmanager-{k}",
                    "namespace": namespace,
                    "port": "web",
                }
                for k in range(3)
            ]
        },
        "containers": [
            _container(rng, c, f"quay.io/example/{c}:v1.{i % 9}")
            for c in ("sidecar", "proxy", "config-reloader")
        ],
        "enableAdminAPI": False,
        "externalLabels": {f"label_{k}": f"cluster-{i}-{k}" for k in range(20)},
        "image": "quay.io/prometheus/prometheus:v3.1.0",
        "podMonitorSelector": {"matchLabels": {"team": f"team-{i % 17}"}},
        "replicas": 2,
        "resources": {"requests": {"memory": "4Gi", "cpu": "1"}, "limits": {"memory": "16Gi"}},
        "retention": "15d",
        "ruleSelector": {
            "matchExpressions": [
                {"key": f"rule-{k}", "operator": "In", "values": [f"a{k}", f"b{k}", f"c{k}"]}
                for k in range(6)
            ]
        },
        "securityContext": {"fsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000},
        "serviceAccountName": "prometheus",
        "serviceMonitorSelector": {"matchLabels": {"release": "prometheus"}},
        "shards": 1,
        "storage": {
            "volumeClaimTemplate": {
                "spec": {
                    "resources": {"requests": {"storage": "200Gi"}},
                    "storageClassName": "fast-ssd",
                }
            }
        },
        "tolerations": [
            {
                "effect": "NoSchedule",
                "key": f"dedicated-{k}",
                "operator": "Equal",
                "value": "monitoring",
            }
            for k in range(8)
        ],
        "volumes": [
            {"configMap": {"name": f"config-{k}"}, "name": f"config-{k}"} for k in range(10)
        ],
        "web": {"pageTitle": f"Prometheus {name}"},
    }
    return {
        "apiVersion": PROMETHEUS_API,
        "kind": "Prometheus",
        "metadata": {
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": _last_applied(
                    PROMETHEUS_API, "Prometheus", name, namespace, spec
                )
            },
            "creationTimestamp": _ts(created),
            "generation": 3,
            "labels": {"app.kubernetes.io/name": "prometheus", "team": f"team-{i % 17}"},
            "managedFields": [
                _managed(
                    PROMETHEUS_API,
                    "kubectl-client-side-apply",
                    {"f:metadata": {"f:labels": {".": {}}}, "f:spec": _fields_of(spec)},
                    created,
                ),
                _managed(
                    PROMETHEUS_API,
                    "PrometheusOperator",
                    {
                        "f:status": _fields_of(
                            {"availableReplicas": 0, "conditions": 0, "shardStatuses": 0}
                        )
                    },
                    created + 5,
                    "status",
                ),
            ],
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(500_000 + i),
            "uid": _uid(rng),
        },
        "spec": spec,
        "status": {
            "availableReplicas": 2,
            "conditions": [
                {
                    "lastTransitionTime": _ts(created + 5),
                    "message": "",
                    "observedGeneration": 3,
                    "reason": "",
                    "status": "True",
                    "type": t,
                }
                for t in ("Available", "Reconciled")
            ],
            "paused": False,
            "replicas": 2,
            "shardStatuses": [
                {
                    "availableReplicas": 2,
                    "replicas": 2,
                    "shardID": "0",
                    "unavailableReplicas": 0,
                    "updatedReplicas": 2,
                }
            ],
            "unavailableReplicas": 0,
            "updatedReplicas": 2,
        },
    }


def prometheus_objects(n: int, seed: int = 2) -> list[dict[str, Any]]:
    """n Prometheus objects, deterministic for (n, seed)."""
    rng = random.Random(seed)
    return [prometheus_object(i, n, rng) for i in range(n)]


def dumps(obj: Any) -> bytes:
    """Compact JSON, as kube-apiserver writes it."""
    return json.dumps(obj, separators=(",", ":")).encode()


def list_page(objs: list[dict[str, Any]], api: str, kind: str, rv: int, cont: str = "") -> bytes:
    """One page of a LIST response body."""
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
    return dumps({"apiVersion": api, "items": objs, "kind": f"{kind}List", "metadata": meta})


def watch_events(objs: list[dict[str, Any]], count: int, seed: int = 3) -> list[bytes]:
    """`count` watch event lines over `objs`: mostly status/spec MODIFIED, some DELETED+ADDED.

    Each event is one JSON line (without the newline), as a watch stream delivers it.
    """
    rng = random.Random(seed)
    n = len(objs)
    lines: list[bytes] = []
    rv = 10_000_000
    for k in range(count):
        obj = objs[rng.randrange(n)]
        rv += 1
        roll = rng.random()
        event_type = "MODIFIED" if roll < 0.9 else ("DELETED" if roll < 0.95 else "ADDED")
        changed = dict(obj)
        meta = dict(obj["metadata"])
        meta["resourceVersion"] = str(rv)
        changed["metadata"] = meta
        if event_type == "MODIFIED":
            spec = dict(obj["spec"])
            if "size" in spec:
                spec["size"] = 1 + (k % 3)
            changed["spec"] = spec
        lines.append(dumps({"type": event_type, "object": changed}))
    return lines


def iter_event_objects(lines: list[bytes]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Decode event lines (for code that wants decoded events up front)."""
    for line in lines:
        event = json.loads(line)
        yield event["type"], event["object"]
