"""End to end: the example operator scaffolded with `init --shards 3`, its metrics-only command
(`python -m pkg.metrics`) run as the three pods of the StatefulSet would run it (downward-API
pod name and namespace) against the API double, and a real Prometheus scraping the three:
each custom resource stored exactly once, before and after a scale from 3 to 2."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubeapi_double import MEMCACHED, PODS, STATEFULSETS, KubeApiDouble
from prom_helpers import free_port, query, running_prometheus, values_by, wait_for_query
from scaffold_helpers import run_cli
from test_end_to_end import EXAMPLE, ROOT, fetch, kubeconfig_for, wait_until

NAMESPACE = "memcached-operator-system"
STS = "memcached-operator-metrics-shard"
OBJECTS = 90


def memcached(i: int) -> dict[str, Any]:
    return {
        "apiVersion": MEMCACHED.api_version,
        "kind": MEMCACHED.kind,
        "metadata": {"name": f"cache-{i}", "namespace": ("default", "team-a")[i % 2]},
        "spec": {"size": 1 + i % 3},
    }


def statefulset(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": STS, "namespace": NAMESPACE},
        "spec": {"replicas": replicas},
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "memcached-operator"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__"))
    crd = root / "config/crd/bases/cache.example.com_memcacheds.yaml"
    result = run_cli("init", "--crd", crd, "--project", root, "--shards", "3")
    assert result.exit_code == 0, result.stderr
    assert (root / "pkg/metrics/__main__.py").is_file()
    return root


class Shard:
    """One pod of the StatefulSet: `python3 -m pkg.metrics` with its downward-API variables."""

    def __init__(self, project: Path, double: KubeApiDouble, ordinal: int, tmp: Path) -> None:
        (sts,) = double.objects(STATEFULSETS.plural)
        owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": STS,
                 "uid": sts["metadata"]["uid"], "controller": True}  # fmt: skip
        self.pod = f"{STS}-{ordinal}"
        double.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": self.pod, "namespace": NAMESPACE, "ownerReferences": [owner]},
            }
        )
        config = tmp / "kubeconfig"
        config.write_text(json.dumps(kubeconfig_for(double.api_client())))
        self.port = free_port()
        env = {
            **{
                k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "METRICS_"))
            },
            "KUBECONFIG": str(config),
            "METRICS_PORT": str(self.port),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_POD_NAME": self.pod,
            "METRICS_POD_NAMESPACE": NAMESPACE,
            "PYTHONPATH": str(ROOT),
        }
        env.pop("WATCH_NAMESPACE", None)
        self.log_path = tmp / f"{self.pod}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pkg.metrics"],
            cwd=project,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(
            lambda: self.proc.poll() is None and fetch(self.url + "/readyz")[0] == 200,
            30,
            f"{self.pod} ready ({self.log_path.read_text()})",
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
            assert code == 0, self.log_path.read_text()
        self.log.close()


@pytest.fixture
def double() -> Iterator[KubeApiDouble]:
    with KubeApiDouble((MEMCACHED, PODS, STATEFULSETS), bookmark_interval=0.3) as d:
        yield d


def once_each(prom: str, expected: int) -> bool:
    counts = query(prom, "count by (namespace, memcached) (memcached_info)")
    return len(counts) == expected and all(r["value"][1] == "1" for r in counts)


def test_three_shard_processes_are_scraped_once_each_and_follow_a_scale_down(
    project: Path, double: KubeApiDouble, tmp_path: Path
) -> None:
    for i in range(OBJECTS):
        double.create(memcached(i))
    double.create(statefulset(3))
    shards: list[Shard] = []
    try:
        shards = [Shard(project, double, n, tmp_path) for n in range(3)]
        targets = [s.url.removeprefix("http://") for s in shards]
        with running_prometheus(targets) as prom:
            wait_for_query(
                prom,
                "count(memcached_info)",
                lambda r: bool(r) and r[0]["value"][1] == str(OBJECTS),
            )
            assert once_each(prom, OBJECTS)
            ordinals = values_by(query(prom, "operator_metrics_shard_ordinal"), "instance")
            assert ordinals == {t: float(n) for n, t in enumerate(targets)}
            per_shard = values_by(query(prom, "count by (instance) (memcached_info)"), "instance")
            assert len(per_shard) == 3 and sum(per_shard.values()) == OBJECTS
            assert all(v > 10 for v in per_shard.values())
            kept = query(
                prom, 'sum by (instance) (operator_metrics_shard_objects{ownership="kept"})'
            )
            assert values_by(kept, "instance") == per_shard
            skipped = query(prom, 'sum(operator_metrics_shard_objects{ownership="skipped"})')
            assert float(skipped[0]["value"][1]) == 2 * OBJECTS

            # 3 -> 2: the last pod goes; the other two take its objects over, in place
            double.update(statefulset(2))
            shards[2].stop()
            wait_for_query(
                prom,
                "operator_metrics_total_shards",
                lambda r: len(r) == 2 and all(x["value"][1] == "2" for x in r),
            )
            wait_until(lambda: once_each(prom, OBJECTS), 30, "each object once on two shards")
            kept = query(prom, 'sum(operator_metrics_shard_objects{ownership="kept"})')
            assert float(kept[0]["value"][1]) == OBJECTS
            assert all(s.proc.poll() is None for s in shards[:2])  # no restart
    finally:
        for s in shards:
            s.stop()
