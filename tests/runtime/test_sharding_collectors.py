"""Sharded collectors against the API double: every shard keeps only the objects it owns, so
the shards' scrapes together are the unsharded scrape, each object in exactly one; and shards
that follow their StatefulSet hand objects over when its replicas change, in place."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for kubeapi_double

from kubeapi_double import PODS, STATEFULSETS, KubeApiDouble, RequestRecord, ResourceSpec
from store_fakes import WidgetGenerator

from scaffold_metrics.runtime.autoshard import StatefulSetShards
from scaffold_metrics.runtime.collector import Collector
from scaffold_metrics.runtime.selfmetrics import SHARD_OBJECTS, SelfMetrics
from scaffold_metrics.runtime.sharding import ShardSelector
from scaffold_metrics.runtime.store import MetricsStore

WIDGETS = ResourceSpec("example.com", "v1", "widgets", "Widget")
OBJECTS = 3000
NAMESPACES = ("default", "team-a", "team-b")


def widget(i: int) -> dict[str, Any]:
    return {
        "apiVersion": WIDGETS.api_version,
        "kind": WIDGETS.kind,
        "metadata": {"name": f"w{i}", "namespace": NAMESPACES[i % len(NAMESPACES)]},
        "spec": {"replicas": i % 5},
    }


@pytest.fixture
def double() -> Iterator[KubeApiDouble]:
    with KubeApiDouble((WIDGETS, PODS, STATEFULSETS), bookmark_interval=0.3) as d:
        d.managed_fields = False
        yield d


def collector(
    double: KubeApiDouble, selector: ShardSelector | None, namespace: str | None = None
) -> Collector:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    c = Collector(
        double.api_client(),
        WIDGETS.group,
        WIDGETS.version,
        WIDGETS.plural,
        WIDGETS.kind,
        namespace,
        store,
        page_size=700,
        backoff_base=0.01,
        selector=selector,
    )
    if selector is not None:
        selector.subscribe(lambda shard, total: c.request_relist())
    c.start()
    return c


def lines(c: Collector) -> set[bytes]:
    return {ln for _, body in c.store.family_bodies() for ln in body.splitlines()}


def names(c: Collector) -> list[str]:
    info = next(body for family, body in c.store.family_bodies() if family.name == "widget_info")
    return [ln.split(b'name="')[1].split(b'"')[0].decode() for ln in info.splitlines()]


def wait_until(done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def assert_partition(shards: list[Collector], whole: Collector) -> None:
    """The shards' lines together are exactly `whole`'s, and no object is in two shards."""
    union: set[bytes] = set()
    for c in shards:
        union |= lines(c)
    assert union == lines(whole)
    owned = [name for c in shards for name in names(c)]
    assert len(owned) == len(set(owned)) == len(whole.store)


def partitioned(shards: list[Collector], whole: Collector) -> bool:
    try:
        assert_partition(shards, whole)
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("total", [1, 2, 3, 7])
def test_shards_partition_the_unsharded_scrape(double: KubeApiDouble, total: int) -> None:
    for i in range(OBJECTS):
        double.create(widget(i))
    whole = collector(double, None)
    shards = [collector(double, ShardSelector(n, total)) for n in range(total)]
    try:
        for c in [whole, *shards]:
            assert c.wait_for_sync(30)
        assert len(whole.store) == OBJECTS
        assert_partition(shards, whole)
        if total > 1:
            assert all(0 < len(c.store) < OBJECTS for c in shards)
        for c in shards:
            sm = c.store.self_metrics
            assert sm.value(SHARD_OBJECTS, "Widget", "", "kept") == len(c.store)
            assert sm.value(SHARD_OBJECTS, "Widget", "", "skipped") == OBJECTS - len(c.store)
        # watch events go to their owner alone: new objects, changes and deletions
        for i in range(OBJECTS, OBJECTS + 60):
            double.create(widget(i))
        for i in range(0, 90, 3):
            double.delete(widget(i))
        for i in range(1, 60, 3):
            double.update({**widget(i), "spec": {"replicas": 99}})
        wait_until(lambda: len(whole.store) == OBJECTS + 30 and partitioned(shards, whole))
        kept = sum(
            c.store.self_metrics.value(SHARD_OBJECTS, "Widget", "", "kept") or 0 for c in shards
        )
        assert kept == OBJECTS + 30
    finally:
        for c in [whole, *shards]:
            c.stop()


def test_per_namespace_collectors_shard_alike(double: KubeApiDouble) -> None:
    for i in range(600):
        double.create(widget(i))
    whole = collector(double, None)
    shards = [collector(double, ShardSelector(n, 2), ns) for n in range(2) for ns in NAMESPACES]
    try:
        for c in [whole, *shards]:
            assert c.wait_for_sync(30)
        assert_partition(shards, whole)
    finally:
        for c in [whole, *shards]:
            c.stop()


class Replica:
    """One pod of the metrics StatefulSet: its shard follows the StatefulSet, its collector
    keeps that shard's objects."""

    def __init__(self, double: KubeApiDouble, ordinal: int) -> None:
        self.pod = f"metrics-{ordinal}"
        self.selector = ShardSelector()
        self.shards = StatefulSetShards(
            double.api_client(), self.pod, "ops", self.selector, backoff_base=0.01
        )
        self.shards.start()
        self.collector = collector(double, self.selector)

    def stop(self) -> None:
        self.collector.stop()
        self.shards.stop()


def statefulset(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "metrics", "namespace": "ops"},
        "spec": {"replicas": replicas, "serviceName": "metrics", "selector": {}},
    }


def pod(double: KubeApiDouble, ordinal: int) -> None:
    (sts,) = double.objects(STATEFULSETS.plural)
    owner = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "metrics",
        "uid": sts["metadata"]["uid"],
        "controller": True,
    }
    double.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"metrics-{ordinal}",
                "namespace": "ops",
                "ownerReferences": [owner],
            },
            "spec": {"containers": [{"name": "metrics", "image": "operator:1"}]},
        }
    )


def syncs(double: KubeApiDouble) -> list[RequestRecord]:
    """The requests that fetched a whole state: paged LISTs and streaming lists alike."""
    return double.list_requests() + [
        r for r in double.watch_requests() if r.query.get("sendInitialEvents") == "true"
    ]


def test_replica_change_moves_objects_without_loss_or_doubles(double: KubeApiDouble) -> None:
    for i in range(1500):
        double.create(widget(i))
    double.create(statefulset(3))
    for ordinal in range(3):
        pod(double, ordinal)
    whole = collector(double, None)
    replicas = [Replica(double, n) for n in range(3)]
    try:
        assert [r.selector.state for r in replicas] == [(0, 3), (1, 3), (2, 3)]
        for c in [whole, *(r.collector for r in replicas)]:
            assert c.wait_for_sync(30)
        assert_partition([r.collector for r in replicas], whole)
        threads = [r.collector._thread for r in replicas]

        # 3 -> 2: the StatefulSet controller removes pod 2; 0 and 1 take its objects over
        syncs_before = len(syncs(double))
        double.update(statefulset(2))
        wait_until(lambda: all(r.selector.total == 2 for r in replicas))
        gone = replicas.pop()
        gone.stop()
        double.delete(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": gone.pod, "namespace": "ops"}}
        )
        for i in range(1500, 1540):  # the cluster does not wait for the metrics
            double.create(widget(i))
        live = [r.collector for r in replicas]
        wait_until(lambda: len(whole.store) == 1540 and partitioned(live, whole))
        assert len(syncs(double)) > syncs_before  # handed over by syncing again ...
        assert [r.collector._thread for r in replicas] == threads[:2]  # ... in place
        assert all(t is not None and t.is_alive() for t in threads[:2])

        # 2 -> 3: a new pod 2 starts; 0 and 1 give up what is now its
        double.update(statefulset(3))
        pod(double, 2)
        replicas.append(Replica(double, 2))
        for i in range(0, 30):
            double.delete(widget(i))
        live = [r.collector for r in replicas]
        wait_until(lambda: len(whole.store) == 1510 and partitioned(live, whole))
        assert [r.selector.state for r in replicas] == [(0, 3), (1, 3), (2, 3)]
        assert all(len(c.store) > 300 for c in live)
    finally:
        for r in replicas:
            r.stop()
        whole.stop()


def _shard_role(statefulset_name: str) -> dict[str, Any]:
    """The Role `init --shards` generates (from the golden project), naming `statefulset_name`
    as the one StatefulSet it may read."""
    import yaml

    golden = (
        Path(__file__).resolve().parents[1]
        / "golden/sharded/config/memcached-operator-metrics-shards.yaml"
    )
    (role,) = [d for d in yaml.safe_load_all(golden.read_text()) if d and d["kind"] == "Role"]
    (sts_rule,) = [r for r in role["rules"] if "statefulsets" in r["resources"]]
    sts_rule["resourceNames"] = [statefulset_name]
    return {"metadata": {"name": "shard"}, "rules": role["rules"]}


@pytest.mark.parametrize("named", ["metrics", "another"])
def test_the_generated_role_is_enough_to_follow_the_statefulset(
    double: KubeApiDouble, named: str
) -> None:
    """With only the generated Role's permissions (pods get; get/list/watch of the StatefulSet
    by name), a replica finds and follows its StatefulSet; a Role naming another one is not
    enough, and the error says what to grant."""
    from kubeapi_double import READER_TOKEN, READER_USER
    from kubernetes import client

    from scaffold_metrics.runtime.autoshard import ShardingSetupError

    double.create(statefulset(3))
    pod(double, 1)
    rbac = client.RbacAuthorizationV1Api(double.admin_api_client())
    rbac.create_namespaced_role("ops", _shard_role(named))
    subject = {"kind": "User", "name": READER_USER, "apiGroup": "rbac.authorization.k8s.io"}
    ref = {"kind": "Role", "name": "shard", "apiGroup": "rbac.authorization.k8s.io"}
    rbac.create_namespaced_role_binding(
        "ops", {"metadata": {"name": "shard"}, "roleRef": ref, "subjects": [subject]}
    )
    selector = ShardSelector()
    shards = StatefulSetShards(
        double.api_client(READER_TOKEN), "metrics-1", "ops", selector, backoff_base=0.01
    )
    if named != "metrics":
        with pytest.raises(ShardingSetupError, match="grant `get`, `list` and `watch` on"):
            shards.start()
        return
    try:
        shards.start()
        assert selector.state == (1, 3)
        double.update(statefulset(5))
        wait_until(lambda: selector.state == (1, 5))
        watches = [r for r in double.watch_requests() if "statefulsets" in r.path]
        assert watches and all(r.status == 200 for r in watches)
    finally:
        shards.stop()
