"""Collectors against a Kubernetes API: the test double by default, a real one via envtest.

See `kube_fixtures.py`. Timeouts and backoffs are shrunk so the whole file runs in seconds.
These tests pin the paged LIST + WATCH path (`list_mode="paged"`); the streaming list, the
default, and its fallback are tested in `test_collector_streaming.py`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import kube_fixtures
import pytest
from http_proxy import RewritingProxy
from kube_fixtures import (
    CLUSTER_THINGS,
    EXEC_TOKEN_PREFIX,
    MEMCACHED,
    READER_USER,
    WIDGETS,
    ApiBackend,
    make_obj,
)
from request_log import RequestLog
from tcp_proxy import TcpProxy

from scaffold_metrics.runtime.collector import Collector, new_collectors

control_plane = kube_fixtures.control_plane  # fixtures, shared with other runtime test files
kube = kube_fixtures.kube
cached_control_plane = kube_fixtures.cached_control_plane
kube_watch_cache = kube_fixtures.kube_watch_cache
double_only = kube_fixtures.double_only

Backend = ApiBackend

FAST: dict[str, Any] = {
    "watch_timeout": (30, 30),
    "idle_timeout": 5.0,
    "connect_timeout": 2.0,
    "backoff_base": 0.02,
    "backoff_cap": 0.1,
    "list_mode": "paged",
}


class FakeReplacement:
    """What `MetricsStore.begin_replace` returns: objects added page by page, then `replace`."""

    def __init__(self, store: FakeStore, scope: str | None) -> None:
        self.store, self.scope = store, scope
        self.objs: list[Mapping[str, Any]] = []

    def add(self, objs: Iterable[Mapping[str, Any]]) -> None:
        batch = list(objs)
        self.store.added.append(len(batch))
        self.objs.extend(batch)

    def __len__(self) -> int:
        return len(self.objs)

    def commit(self) -> None:
        self.store.replace(self.objs, self.scope)


class FakeStore:
    """Minimal stand-in for `MetricsStore`: the objects themselves, by uid."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objs: dict[str, dict[str, Any]] = {}
        self.replaces: list[str | None] = []
        self.added: list[int] = []  # objects per `add` of a replacement: one page at a time
        self.self_metrics = RecordingSelfMetrics()  # where collectors report by default

    def upsert(self, obj: Mapping[str, Any]) -> None:
        with self.lock:
            self.objs[obj["metadata"]["uid"]] = dict(obj)

    def delete(self, obj: Mapping[str, Any]) -> None:
        with self.lock:
            self.objs.pop(obj["metadata"]["uid"], None)

    def replace(self, objs: Iterable[Mapping[str, Any]], scope: str | None) -> None:
        with self.lock:
            self.replaces.append(scope)
            for uid, obj in list(self.objs.items()):
                if scope is None or obj["metadata"].get("namespace") == scope:
                    del self.objs[uid]
            for obj in objs:
                self.objs[obj["metadata"]["uid"]] = dict(obj)

    def begin_replace(self, scope: str | None) -> FakeReplacement:
        return FakeReplacement(self, scope)

    def __len__(self) -> int:
        with self.lock:
            return len(self.objs)

    def names(self) -> set[str]:
        with self.lock:
            return {
                f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
                for o in self.objs.values()
            }

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            for o in self.objs.values():
                meta = o["metadata"]
                if meta.get("namespace", "") == namespace and meta["name"] == name:
                    return o
            return None


class RecordingSelfMetrics:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def record_list(self, kind: str, namespace: str, ok: bool) -> None:
        self.calls.append(("list", kind, namespace, ok))

    def record_watch(self, kind: str, namespace: str, ok: bool) -> None:
        self.calls.append(("watch", kind, namespace, ok))

    def record_event(self, kind: str, event_type: str) -> None:
        self.calls.append(("event", kind, event_type))

    def record_sync(self, kind: str, namespace: str, timestamp: float) -> None:
        self.calls.append(("sync", kind, namespace))

    def record_list_mode(self, kind: str, namespace: str, mode: str) -> None:
        self.calls.append(("mode", kind, namespace, mode))


class MemcachedGenerator:
    group: ClassVar[str] = "cache.example.com"
    version: ClassVar[str] = "v1alpha1"
    kind: ClassVar[str] = "Memcached"
    plural: ClassVar[str] = "memcacheds"
    namespaced: ClassVar[bool] = True
    families: ClassVar[tuple[Any, ...]] = ()

    def generate(self, obj: Mapping[str, Any]) -> list[Any]:
        return []


class ClusterThingGenerator(MemcachedGenerator):
    group = "test.example.com"
    version = "v1"
    kind = "ClusterThing"
    plural = "clusterthings"
    namespaced = False


def page_lists(requests: Iterable[Any]) -> list[Any]:
    """The LISTs of (re)lists among `requests` (the double's or a `RequestLog`'s), not the
    one-item LIST a collector sends before resuming a watch to check the server's history."""
    return [r for r in requests if not r.is_watch and r.query.get("limit") != "1"]


def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or pred}")


@pytest.fixture
def running() -> Any:
    """Start collectors and always stop them, so no thread outlives its test."""
    started: list[Collector] = []

    def start(*collectors: Collector) -> None:
        for c in collectors:
            started.append(c)
            c.start()

    yield start
    for c in started:
        c.stop()


def memcached_collector(
    kube: Backend, namespace: str | None, store: FakeStore | None = None, **options: Any
) -> Collector:
    spec = MEMCACHED
    return Collector(
        kube.api_client(),
        spec.group,
        spec.version,
        spec.plural,
        spec.kind,
        namespace,
        store if store is not None else FakeStore(),
        **{**FAST, **options},
    )


# -- list --------------------------------------------------------------------------------


def test_initial_paged_list_fills_store(kube: Backend, running: Any) -> None:
    for i in range(1200):
        kube.create(make_obj(MEMCACHED, f"m-{i:04d}", "default" if i % 2 else "other"))
    col = memcached_collector(kube, None, page_size=500)
    assert not col.has_synced
    running(col)
    assert col.wait_for_sync(30)
    assert col.has_synced
    assert len(col.store) == 1200
    assert col.store.added == [500, 500, 200], "each page rendered as it came, then dropped"
    assert ("list", "Memcached", "", True) in col.store.self_metrics.calls, "store's registry"
    if kube.double is not None:
        lists = kube.double.list_requests()
        assert [r.query.get("limit") for r in lists] == ["500", "500", "500"]
        assert "continue" not in lists[0].query
        assert all(r.query.get("continue") for r in lists[1:])
        eventually(lambda: kube.double.watch_requests() != [], what="watch")  # type: ignore[union-attr]
        first_watch = kube.double.watch_requests()[0]
        assert first_watch.query["resourceVersion"] == str(kube.double.resource_version)
        assert first_watch.query["allowWatchBookmarks"] == "true"
        assert 30 <= int(first_watch.query["timeoutSeconds"]) <= 30


def test_namespaced_collector_sees_only_its_namespace(kube: Backend, running: Any) -> None:
    kube.create(make_obj(MEMCACHED, "a", "default"))
    kube.create(make_obj(MEMCACHED, "b", "other"))
    col = memcached_collector(kube, "default")
    running(col)
    assert col.wait_for_sync(10)
    kube.create(make_obj(MEMCACHED, "c", "other"))
    kube.create(make_obj(MEMCACHED, "d", "default"))
    store = col.store
    assert isinstance(store, FakeStore)
    eventually(lambda: store.names() == {"default/a", "default/d"})
    assert store.replaces == ["default"]


# -- watch -------------------------------------------------------------------------------


def test_follows_added_modified_deleted(kube: Backend, running: Any) -> None:
    metrics = RecordingSelfMetrics()
    store = FakeStore()
    col = memcached_collector(kube, None, store)
    col.self_metrics = metrics
    running(col)
    assert col.wait_for_sync(10)
    obj = kube.create(make_obj(MEMCACHED, "x", "default"))
    eventually(lambda: store.get("default", "x") is not None, what="ADDED")
    obj["spec"] = {"size": 2}
    kube.update(obj)
    eventually(lambda: (store.get("default", "x") or {}).get("spec") == {"size": 2})
    condition = {
        "lastTransitionTime": "2026-11-27T13:00:00Z",
        "message": "ok",
        "reason": "Ready",
        "status": "True",
        "type": "Available",
    }
    obj["status"] = {"conditions": [condition]}
    kube.update_status(obj)
    eventually(lambda: "status" in (store.get("default", "x") or {}), what="status MODIFIED")
    got = store.get("default", "x")
    assert got is not None and got["metadata"]["generation"] == 2
    kube.delete(obj)
    eventually(lambda: len(store) == 0, what="DELETED")
    assert ("list", "Memcached", "", True) in metrics.calls
    assert ("sync", "Memcached", "") in metrics.calls
    for event_type in ("ADDED", "MODIFIED", "DELETED"):
        assert ("event", "Memcached", event_type) in metrics.calls
    assert col.resource_version is not None


def test_resume_after_server_ends_watch_uses_last_bookmark_rv(
    kube_watch_cache: Backend, running: Any
) -> None:
    """On the double and a real server (with its watch cache: only that sends bookmarks)."""
    kube = kube_watch_cache
    kube.create(make_obj(MEMCACHED, "a", "default"))
    metrics = RecordingSelfMetrics()
    # a real server's last bookmark comes 2 s before timeoutSeconds: the watch lasts longer
    col = memcached_collector(kube, "default", watch_timeout=(3, 3))
    sent = RequestLog()
    col.api_client = sent.attach(col.api_client)
    col.self_metrics = metrics
    running(col)
    assert col.wait_for_sync(10)
    eventually(lambda: len(sent.watches()) >= 1, what="watch")
    # A change in another namespace: this watch sees no event, only bookmarks carrying its RV.
    later_rv = kube.create(make_obj(MEMCACHED, "elsewhere", "other"))["metadata"]["resourceVersion"]

    def resumed_from_later_rv() -> bool:
        return any(int(w.query["resourceVersion"]) >= int(later_rv) for w in sent.watches())

    # (a watch that ends before its bookmark comes resumes from the list's RV once more)
    eventually(resumed_from_later_rv, timeout=12, what="a watch from a bookmark's RV")
    assert int(sent.watches()[0].query["resourceVersion"]) < int(later_rv)
    assert [r.status for r in page_lists(sent.requests)] == [200], "resuming must not relist"
    assert {r.query["limit"] for r in sent.lists()} == {"500", "1"}, "but check the history"
    assert len(col.store) == 1
    assert ("watch", "Memcached", "default", True) in metrics.calls
    assert ("event", "Memcached", "BOOKMARK") in metrics.calls


def test_410_inside_watch_relists_and_drops_objects_deleted_meanwhile(
    kube: Backend, running: Any
) -> None:
    """On the double and a real server alike: RBAC keeps the collector away while things
    change and history is compacted; its resumed watch then gets 410 and it relists."""
    keep = kube.create(make_obj(MEMCACHED, "keep", "default"))
    gone = kube.create(make_obj(MEMCACHED, "gone", "default"))
    kube.grant(MEMCACHED, None)
    store = FakeStore()
    with TcpProxy(kube.host) as proxy:
        col, metrics = proxied_collector(kube, proxy, store)
        col.api_client = proxied_reader(kube, proxy)
        running(col)
        assert col.wait_for_sync(10)
        time.sleep(0.3)  # the watch is open
        kube.revoke(None)
        proxy.drop_connections()
        eventually(lambda: failed_requests(metrics) >= 1, what="403 while away")
        kube.delete(gone)
        kube.create(make_obj(MEMCACHED, "new", "default"))
        kube.compact()
        kube.grant(MEMCACHED, None)
        eventually(lambda: store.names() == {"default/keep", "default/new"}, what="relist")
    assert store.replaces == [None, None]
    assert [c for c in metrics.calls if c[0] == "list" and c[-1]] == [
        ("list", "Memcached", "", True)
    ] * 2
    assert keep["metadata"]["uid"] in store.objs


def failed_requests(metrics: RecordingSelfMetrics) -> int:
    return sum(1 for c in metrics.calls if c[0] in ("list", "watch") and c[-1] is False)


def test_expired_continue_token_relists_from_scratch(kube: Backend, running: Any) -> None:
    """On the double and a real server alike: between the first two pages a write and a
    compaction (etcd's, on a real server) make the first page's continue token too old, and
    the server answers 410 Expired ("The provided continue parameter is too old")."""
    for i in range(12):
        kube.create(make_obj(MEMCACHED, f"m-{i:02d}", "default"))
    col = memcached_collector(kube, None, page_size=5)
    sent = RequestLog()
    col.api_client = sent.attach(col.api_client)

    def compact_after_first_page(request: Any) -> None:
        if not request.is_watch and "continue" not in request.query and len(sent.lists()) == 1:
            kube.create(make_obj(CLUSTER_THINGS, "later", None, colour="red"))
            kube.compact()

    sent.after = compact_after_first_page
    running(col)
    assert col.wait_for_sync(10)
    assert len(col.store) == 12
    assert [(bool(r.query.get("continue")), r.status) for r in sent.lists()] == [
        (False, 200),
        (True, 410),
        (False, 200),
        (True, 200),
        (True, 200),
    ]


def proxied(kube: Backend, proxy: TcpProxy) -> Any:
    """An `ApiClient` of the code under test that goes through `proxy`."""
    api_client = kube.api_client()
    api_client.configuration.host = proxy.url
    return api_client


def proxied_reader(kube: Backend, proxy: TcpProxy) -> Any:
    """An `ApiClient` of `READER_USER` that goes through `proxy`."""
    api_client = kube.reader_client()
    api_client.configuration.host = proxy.url
    return api_client


def proxied_collector(
    kube: Backend, proxy: TcpProxy, store: FakeStore, **options: Any
) -> tuple[Collector, RecordingSelfMetrics]:
    col = memcached_collector(kube, None, store, **options)
    col.api_client = proxied(kube, proxy)
    metrics = RecordingSelfMetrics()
    col.self_metrics = metrics
    return col, metrics


def test_dropped_connection_resumes_from_last_rv(kube: Backend, running: Any) -> None:
    """On the double and a real server alike: the proxy resets the connections."""
    store = FakeStore()
    with TcpProxy(kube.host) as proxy:
        col, metrics = proxied_collector(kube, proxy, store)
        running(col)
        assert col.wait_for_sync(10)
        kube.create(make_obj(MEMCACHED, "a", "default"))
        eventually(lambda: store.names() == {"default/a"})
        seen_rv = col.resource_version
        opened = proxy.accepted
        proxy.drop_connections()
        eventually(lambda: proxy.accepted > opened, what="reconnect")
        kube.create(make_obj(MEMCACHED, "b", "default"))
        eventually(lambda: store.names() == {"default/a", "default/b"})
        assert ("watch", "Memcached", "", False) in metrics.calls
        assert [c for c in metrics.calls if c[0] == "list"] == [
            ("list", "Memcached", "", True)
        ], "resumed, not relisted"
        if kube.double is not None:  # the request log says from where
            watches = kube.double.watch_requests()
            assert watches[1].query["resourceVersion"] == seen_rv


def test_stalled_watch_reconnects_after_idle_timeout(kube: Backend, running: Any) -> None:
    """On the double and a real server alike: the proxy holds the server's bytes back."""
    store = FakeStore()
    with TcpProxy(kube.host) as proxy:
        col, metrics = proxied_collector(kube, proxy, store, idle_timeout=0.6)
        running(col)
        assert col.wait_for_sync(10)
        time.sleep(0.3)  # the watch is open (a real server sends nothing before an event)
        opened = proxy.accepted
        proxy.stall(2.0)
        kube.create(make_obj(MEMCACHED, "during-stall", "default"))
        time.sleep(1.0)
        assert len(store) == 0, "a stalled watch delivers nothing"
        eventually(lambda: proxy.accepted > opened, what="reconnect after idle timeout")
        eventually(lambda: store.names() == {"default/during-stall"}, what="event after stall")
        assert [c for c in metrics.calls if c[0] == "list"] == [("list", "Memcached", "", True)]


def test_stalled_double_watch_reconnects_after_idle_timeout(
    double_only: Backend, running: Any
) -> None:
    """The double's own stall (the server sends nothing, not even bookmarks), which the
    stateful test uses. Double-only: a real server has no such control; the same fault in
    front of either server is `test_stalled_watch_reconnects_after_idle_timeout`."""
    kube = double_only
    double = kube.double
    assert double is not None
    store = FakeStore()
    col = memcached_collector(kube, None, store, idle_timeout=0.6)
    running(col)
    assert col.wait_for_sync(10)
    eventually(lambda: len(double.watch_requests()) == 1)
    double.stall_watches(2.0)
    kube.create(make_obj(MEMCACHED, "during-stall", "default"))
    time.sleep(1.0)
    assert len(store) == 0, "a stalled watch delivers nothing"
    eventually(lambda: len(double.watch_requests()) >= 2, what="reconnect after idle timeout")
    eventually(lambda: store.names() == {"default/during-stall"}, what="event after stall")
    assert len(page_lists(double.requests)) == 1


# -- errors ------------------------------------------------------------------------------


def failed_lists(metrics: RecordingSelfMetrics) -> int:
    return sum(1 for c in metrics.calls if c[0] == "list" and c[-1] is False)


def test_forbidden_retries_logs_once_and_recovers_when_granted(
    kube: Backend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """On the double and a real server alike: RBAC objects made through the API decide."""
    caplog.set_level(logging.WARNING, logger="scaffold_metrics.runtime")
    kube.create(make_obj(MEMCACHED, "a", "default"))
    metrics = RecordingSelfMetrics()
    col = memcached_collector(kube, "default")
    col.api_client = kube.reader_client()
    col.self_metrics = metrics
    running(col)
    eventually(lambda: failed_lists(metrics) >= 5, what="retries")
    assert not col.has_synced
    warnings = [r.getMessage() for r in caplog.records if "memcacheds" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "grant list/watch on memcacheds.cache.example.com in namespace default" in warnings[0]
    assert f'User "{READER_USER}" cannot list resource "memcacheds"' in warnings[0]
    assert ("list", "Memcached", "default", False) in metrics.calls
    kube.grant(MEMCACHED, "other")  # a grant elsewhere does not help
    time.sleep(0.5)
    assert not col.has_synced
    kube.grant(MEMCACHED, "default")
    assert col.wait_for_sync(10)
    assert len(col.store) == 1


def test_forbidden_all_namespaces_names_cluster_scope(
    kube: Backend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A namespace's grant does not reach the cluster scope (both backends)."""
    caplog.set_level(logging.WARNING, logger="scaffold_metrics.runtime")
    kube.grant(MEMCACHED, "default")
    metrics = RecordingSelfMetrics()
    col = memcached_collector(kube, None)
    col.api_client = kube.reader_client()
    col.self_metrics = metrics
    running(col)
    eventually(lambda: failed_lists(metrics) >= 1)
    eventually(lambda: any("grant" in r.getMessage() for r in caplog.records))
    text = next(r.getMessage() for r in caplog.records if "grant" in r.getMessage())
    assert "in all namespaces" in text and "at the cluster scope" in text
    kube.grant(MEMCACHED, None)
    assert col.wait_for_sync(10)


def test_revoked_grant_is_forbidden_again(kube: Backend, running: Any) -> None:
    """Revoking the RoleBinding takes effect on the next request (both backends)."""
    kube.grant(MEMCACHED, "default")
    metrics = RecordingSelfMetrics()
    col = memcached_collector(kube, "default", watch_timeout=(1, 1))
    col.api_client = kube.reader_client()
    col.self_metrics = metrics
    running(col)
    assert col.wait_for_sync(10)
    kube.revoke("default")
    eventually(lambda: ("watch", "Memcached", "default", False) in metrics.calls
               or failed_lists(metrics) >= 1, timeout=10, what="403 after revoke")  # fmt: skip


def test_crd_not_installed_then_installed(
    kube: Backend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scaffold_metrics.runtime")
    col = Collector(
        kube.api_client(),
        WIDGETS.group,
        WIDGETS.version,
        WIDGETS.plural,
        WIDGETS.kind,
        "default",
        FakeStore(),
        **FAST,
    )
    running(col)
    eventually(
        lambda: any("not served yet" in r.getMessage() for r in caplog.records), what="404 log"
    )
    assert not col.has_synced
    text = next(r.getMessage() for r in caplog.records if "not served yet" in r.getMessage())
    assert "CRD widgets.test.example.com version v1 not served yet" in text
    kube.install_crd(WIDGETS)
    kube.create(make_obj(WIDGETS, "w", "default", colour="blue"))
    assert col.wait_for_sync(20)
    eventually(lambda: len(col.store) == 1, what="widget")


# -- scopes ------------------------------------------------------------------------------


def test_several_namespaces_get_one_watch_each(kube: Backend, running: Any) -> None:
    for ns in ("a", "b", "c"):
        kube.create(make_obj(MEMCACHED, "m", ns))
    store = FakeStore()
    cols = new_collectors(
        kube.api_client(), ["a", "b"], "cache.example.com/v1alpha1", "Memcached",
        MemcachedGenerator, store=store, **FAST,
    )  # fmt: skip
    assert [c.namespace for c in cols] == ["a", "b"]
    assert all(c.store is store for c in cols)
    running(*cols)
    assert all(c.wait_for_sync(10) for c in cols)
    assert store.names() == {"a/m", "b/m"}
    if kube.double is not None:
        double = kube.double
        eventually(lambda: len(double.watch_requests()) == 2)
        assert sorted(r.path for r in double.watch_requests()) == [
            "/apis/cache.example.com/v1alpha1/namespaces/a/memcacheds",
            "/apis/cache.example.com/v1alpha1/namespaces/b/memcacheds",
        ]


@pytest.mark.parametrize("namespaces", [None, [], [""]])
def test_all_namespaces_is_one_cluster_wide_watch(
    kube: Backend, running: Any, namespaces: list[str] | None
) -> None:
    for ns in ("a", "b"):
        kube.create(make_obj(MEMCACHED, "m", ns))
    store = FakeStore()
    cols = new_collectors(
        kube.api_client(), namespaces, "cache.example.com/v1alpha1", "Memcached",
        MemcachedGenerator(), store=store, **FAST,
    )  # fmt: skip
    assert [c.namespace for c in cols] == [None]
    running(*cols)
    assert cols[0].wait_for_sync(10)
    assert store.names() == {"a/m", "b/m"}
    if kube.double is not None:
        double = kube.double
        eventually(lambda: len(double.watch_requests()) == 1)
        assert double.watch_requests()[0].path == "/apis/cache.example.com/v1alpha1/memcacheds"


def test_cluster_scoped_kind_gets_one_cluster_wide_collector(kube: Backend, running: Any) -> None:
    kube.create(make_obj(CLUSTER_THINGS, "t1", None, colour="red"))
    store = FakeStore()
    cols = new_collectors(
        kube.api_client(), ["a", "b"], "test.example.com/v1", "ClusterThing",
        ClusterThingGenerator, store=store, **FAST,
    )  # fmt: skip
    assert [c.namespace for c in cols] == [None]
    running(*cols)
    assert cols[0].wait_for_sync(10)
    kube.create(make_obj(CLUSTER_THINGS, "t2", None, colour="green"))
    eventually(lambda: store.names() == {"/t1", "/t2"})


def test_new_collectors_default_store_is_one_metrics_store(kube: Backend) -> None:
    store_module = pytest.importorskip("scaffold_metrics.runtime.store")
    cols = new_collectors(
        kube.api_client(), ["a", "b"], "cache.example.com/v1alpha1", "Memcached",
        MemcachedGenerator,
    )  # fmt: skip
    assert isinstance(cols[0].store, store_module.MetricsStore)
    assert cols[0].store is cols[1].store


def kubeconfig(kube: Backend, path: Path, user: str) -> Path:
    """A kubeconfig for `kube` with `user` (a YAML flow mapping), as a person writes one. A real
    server's serving certificate is self-signed, so its TLS is not verified (as the fixtures'
    own clients do not)."""
    tls = "insecure-skip-tls-verify: true" if kube.double is None else ""
    path.write_text(textwrap.dedent(f"""\
            apiVersion: v1
            kind: Config
            clusters: [{{name: t, cluster: {{server: "{kube.host}", {tls}}}}}]
            users: [{{name: u, user: {user}}}]
            contexts: [{{name: c, context: {{cluster: t, user: u}}}}]
            current-context: c
            """))
    return path


def test_new_collectors_without_client_loads_kubeconfig(
    kube: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: Any
) -> None:
    """On the double and a real server alike (its admin token; any token for the double)."""
    config = kubeconfig(kube, tmp_path / "kubeconfig", f"{{token: {kube.token or 'abc'}}}")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(config))
    kube.create(make_obj(MEMCACHED, "m", "a"))
    cols = new_collectors(
        None, ["a"], "cache.example.com/v1alpha1", "Memcached", MemcachedGenerator,
        store=FakeStore(), **FAST,
    )  # fmt: skip
    assert cols[0].api_client.configuration.host == kube.host
    running(*cols)
    assert cols[0].wait_for_sync(10)
    assert len(cols[0].store) == 1


CREDENTIAL_PLUGIN = f"""\
import datetime, json, pathlib, sys
count = pathlib.Path(sys.argv[1])
n = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(n))
# the client refreshes 5 minutes before expiry: this token is good for about 2 seconds
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5, seconds=2)
print(json.dumps({{
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": {{"token": f"{EXEC_TOKEN_PREFIX}{{n}}",
               "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}},
}}))
"""


def test_exec_plugin_tokens_are_refreshed_when_they_expire(
    kube: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: Any
) -> None:
    """On the double and a real server alike (its token file knows the plugin's tokens)."""
    # kubeconfig with an exec credential plugin (as EKS, GKE and OIDC logins use): every
    # request asks the client for its token, so an expired one is fetched again, mid-watch
    plugin, count = tmp_path / "credential.py", tmp_path / "count"
    plugin.write_text(CREDENTIAL_PLUGIN)
    plugin_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin), str(count)],
            "interactiveMode": "Never",
        }
    }
    config = kubeconfig(kube, tmp_path / "kubeconfig", json.dumps(plugin_user))  # YAML flow
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(config))
    cols = new_collectors(
        None, None, "cache.example.com/v1alpha1", "Memcached", MemcachedGenerator,
        store=FakeStore(), **{**FAST, "watch_timeout": (1, 1)},
    )  # fmt: skip
    sent = RequestLog()
    cols[0].api_client = sent.attach(cols[0].api_client)
    running(*cols)
    assert cols[0].wait_for_sync(10)
    second = f"Bearer {EXEC_TOKEN_PREFIX}2"
    eventually(
        lambda: any(r.authorization == second for r in sent.requests),
        timeout=15,
        what="a request with the refreshed token",
    )
    requests = sent.requests
    assert {r.status for r in requests} == {200}, "the server accepts every token"
    tokens = [int(r.authorization.removeprefix(f"Bearer {EXEC_TOKEN_PREFIX}")) for r in requests]
    assert tokens[0] == 1
    assert tokens == sorted(tokens), "never an older token after a newer one"
    assert tokens.count(1) >= 2, "a token is reused until it expires, not fetched per request"


# -- lifecycle ---------------------------------------------------------------------------


def test_stop_returns_promptly_mid_watch(kube: Backend) -> None:
    col = memcached_collector(kube, None, watch_timeout=(300, 300), idle_timeout=70.0)
    col.start()
    assert col.wait_for_sync(10)
    time.sleep(0.3)  # now blocked reading the watch stream
    thread = col._thread
    started = time.monotonic()
    col.stop()
    assert time.monotonic() - started < 1.0
    assert thread is not None and not thread.is_alive()


def test_stop_returns_promptly_while_backing_off(kube: Backend) -> None:
    col = Collector(
        kube.api_client(), WIDGETS.group, WIDGETS.version, WIDGETS.plural, WIDGETS.kind,
        None, FakeStore(), backoff_base=30.0, backoff_cap=30.0,
    )  # fmt: skip
    col.start()
    time.sleep(0.3)
    started = time.monotonic()
    col.stop()
    assert time.monotonic() - started < 1.0


def test_new_collectors_pass_the_per_object_bounds_to_their_store(kube: Backend) -> None:
    cols = new_collectors(
        kube.api_client(), None, "cache.example.com/v1alpha1", "Memcached", MemcachedGenerator,
        max_series_per_family=7, max_label_value_length=99,
    )  # fmt: skip
    store = cols[0].store
    assert (store.max_series_per_family, store.max_label_value_length) == (7, 99)


# -- hostile objects and a server with a new history ----------------------------------------


def thing_collector(kube: Backend, **options: Any) -> tuple[Collector, Any, Any]:
    """A cluster-wide collector into a real `MetricsStore` of `ThingGenerator`."""
    from hostile_fakes import ThingGenerator

    from scaffold_metrics.runtime.selfmetrics import SelfMetrics
    from scaffold_metrics.runtime.store import MetricsStore

    sm = SelfMetrics()
    store = MetricsStore(ThingGenerator(), self_metrics=sm)
    col = memcached_collector(kube, None, store, **options)  # type: ignore[arg-type]
    return col, store, sm


def thing_names(store: Any) -> set[str]:
    out: list[bytes] = []
    store.write_to(out)
    return set(
        re.findall(
            r'^thing_info\{namespace="[^"]*",thing="([^"]*)"\}', b"".join(out).decode(), re.M
        )
    )


def poison_items(tag: str) -> list[bytes]:
    """Objects no kube-apiserver sends, as JSON texts: a lone surrogate in a name, `metadata`
    that is a string, an item that is a list, invalid UTF-8 in an allow-listed annotation (read
    as U+FFFD), a 5,000-digit number (each object's name ends with `tag`)."""
    from hostile_fakes import thing
    from kubeapi_double import RawJson, wire_json

    surrogate = thing(f"surrogate-{tag}\ud800")
    surrogate["metadata"]["name"] = f"s{tag}\ud800"
    note = RawJson(b'"invalid \xff\xfe utf-8"')
    return [
        wire_json(surrogate),  # JSON escapes the lone surrogate: \ud800
        wire_json({**thing("x"), "metadata": f"metadata-{tag}"}),
        wire_json(["metadata", "list"]),
        wire_json(thing(f"bytes-{tag}", note=note)),
        wire_json(thing(f"digits-{tag}", size=RawJson(b"9" * 5000))),
    ]


def test_poison_objects_are_skipped_and_the_list_and_watch_go_on(
    kube: Backend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """On the double and a real server alike, through a `RewritingProxy` that adds objects
    to the server's LIST answers and watch streams. No kube-apiserver sends such bytes (its
    JSON decoder reads invalid UTF-8 and lone surrogate escapes as U+FFFD, its encoder writes
    valid UTF-8 only, `metadata` is always an object), so they reach a collector only from
    something between them, broken or hostile: the proxy is that, and the rest is the
    server's own answer."""
    from scaffold_metrics.runtime.selfmetrics import LIST_FAILURES, OBJECTS_SKIPPED

    kube.create(make_obj(MEMCACHED, "before"))
    with RewritingProxy(kube.host) as proxy:
        proxy.list_items = poison_items("listed")
        col, store, sm = thing_collector(kube)
        col.api_client = proxied(kube, proxy)
        running(col)
        assert col.wait_for_sync(10)
        eventually(lambda: len(proxy.watches()) == 1, what="watch")
        for item in poison_items("watched"):
            proxy.add_watch_line(b'{"type":"ADDED","object":%s}' % item)
        kube.create(make_obj(MEMCACHED, "after"))
        want = {"before", "bytes-listed", "digits-listed", "bytes-watched", "digits-watched",
                "after"}  # fmt: skip
        eventually(lambda: thing_names(store) == want, what="objects after the poison")
        assert sm.value(OBJECTS_SKIPPED, "Memcached", "invalid_text") == 2
        assert sm.value(OBJECTS_SKIPPED, "Memcached", "invalid_metadata") == 4
        assert sm.value(LIST_FAILURES, "Memcached", "") == 0
        assert len(page_lists(proxy.requests)) == 1, "nothing made the collector list again"
        assert len(proxy.watches()) == 1, "no event was replayed"
    out: list[bytes] = []
    store.write_to(out)
    assert 'annotation_note="invalid \ufffd\ufffd utf-8"' in b"".join(out).decode()


def test_a_watch_line_that_is_not_json_relists_instead_of_replaying(
    kube: Backend, running: Any
) -> None:
    """On the double and a real server alike, through a `RewritingProxy` (kube-apiserver
    writes only JSON lines: see the test above) that adds a line that is not JSON to the
    watch and, from then on, cuts every LIST answer short."""
    kube.create(make_obj(MEMCACHED, "a"))
    metrics = RecordingSelfMetrics()
    store = FakeStore()
    with RewritingProxy(kube.host) as proxy:
        col = memcached_collector(kube, None, store)
        col.api_client = proxied(kube, proxy)
        col.self_metrics = metrics
        running(col)
        assert col.wait_for_sync(10)
        eventually(lambda: len(proxy.watches()) == 1, what="watch")
        proxy.cut_lists = True
        proxy.add_watch_line(b'{"truncated')
        eventually(lambda: ("list", "Memcached", "", False) in metrics.calls, what="list failure")
        assert len(proxy.watches()) == 1, "resuming would read the same line again"


def test_history_reset_behind_the_same_address_is_detected_and_relists(
    kube: Backend, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """On the double and a real server alike: the control plane starts again on an empty etcd
    behind the same address (a real one on a new etcd data directory, the double from its
    first backup). Its watch from the old resourceVersion would be accepted and stay silent,
    so the collector must ask the server where its history is, see it went back, relist."""
    for name in ("kept", "lost-1", "lost-2"):
        kube.create(make_obj(MEMCACHED, name))
    store = FakeStore()
    col = memcached_collector(kube, None, store)
    running(col)
    assert col.wait_for_sync(10)
    assert store.names() == {"default/kept", "default/lost-1", "default/lost-2"}
    seen = int(col.resource_version or 0)
    with caplog.at_level(logging.WARNING, logger="scaffold_metrics.runtime"):
        kube.new_history()  # resourceVersions restart below `seen`
        kube.create(make_obj(MEMCACHED, "kept"))  # the same object, in the new history
        eventually(lambda: store.names() == {"default/kept"}, timeout=30, what="the relist")
        kube.create(make_obj(MEMCACHED, "new"))  # its resourceVersion is below `seen` too
        eventually(lambda: store.names() == {"default/kept", "default/new"}, what="new object")
    assert int(col.resource_version or 0) < seen
    resets = [r.getMessage() for r in caplog.records if "new history" in r.getMessage()]
    assert len(resets) == 1, [r.getMessage() for r in caplog.records]
    assert f"below {seen}" in resets[0]


def test_history_reset_answered_too_large_relists(double_only: Backend, running: Any) -> None:
    """Double-only: kube-apiserver accepts a plain watch from a resourceVersion it has not
    reached and stays silent (the test above); its watch cache answers 504 `Too large
    resource version` to requests that must wait for one (a LIST at it, a `sendInitialEvents`
    watch). The double answers a plain watch so, to test that the collector relists on that
    answer. Its history goes back between the collector's LIST and first WATCH, where no
    history check comes between."""
    kube = double_only
    double = kube.double
    assert double is not None
    double.future_watch = "too_large"
    backup = double.backup()
    kube.create(make_obj(MEMCACHED, "lost"))
    store = FakeStore()
    col = memcached_collector(kube, None, store)
    sent = RequestLog()
    col.api_client = sent.attach(col.api_client)

    def go_back_after_the_first_list(request: Any) -> None:
        if not request.is_watch and len(sent.requests) == 1:
            double.restore(backup)

    sent.after = go_back_after_the_first_list
    running(col)
    eventually(lambda: len(page_lists(sent.requests)) == 2, what="relist after 504 too large")
    eventually(lambda: store.names() == set(), what="the lost object gone")
    kube.create(make_obj(MEMCACHED, "new"))
    eventually(lambda: store.names() == {"default/new"}, what="new object")
    assert [r.status for r in page_lists(double.requests)] == [200, 200]
    assert [r.status for r in sent.watches()][:1] == [200]  # the ERROR event is in the stream


@pytest.mark.parametrize(
    ("last", "new", "went_back"),
    [
        ("1000", "301", True),
        ("1000", "1000", False),
        ("1000", "1001", False),
        ("99", "100", False),  # compared as integers, not as strings
        (None, "1", False),
        ("abc", "abb", False),  # opaque (not etcd's integers): never compared
        ("1000", "a1", False),
        ("-5", "-6", False),
    ],
)
def test_resource_versions_are_compared_only_as_integers(
    last: str | None, new: str, went_back: bool
) -> None:
    from scaffold_metrics.runtime.collector import resource_version_went_back

    assert resource_version_went_back(last, new) is went_back
