"""kopf integration: the real kopf operator, against the kube-apiserver test double (or a real
control plane under `KUBEBUILDER_ASSETS`, see `kube_fixtures.py`), feeds the store."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import kopf
import kube_fixtures
import pytest
from kube_fixtures import WIDGETS, ApiBackend, make_obj
from prom_helpers import promtool_check
from prometheus_client.parser import text_string_to_metric_families
from store_fakes import WidgetGenerator, widget
from tcp_proxy import TcpProxy

from scaffold_metrics.runtime.kopf_integration import (
    KopfCollector,
    KopfMetrics,
    register_kopf_metrics,
)
from scaffold_metrics.runtime.selfmetrics import WATCH_EVENTS, SelfMetrics
from scaffold_metrics.runtime.store import MetricsStore

control_plane = kube_fixtures.control_plane  # fixtures, shared with other runtime test files
kube = kube_fixtures.kube

Backend = ApiBackend
WIDGETS_PATH = f"/apis/{WIDGETS.group}/{WIDGETS.version}/{WIDGETS.plural}"


class KubeWidgetGenerator(WidgetGenerator):
    """The Widget generator, for the `widgets.test.example.com` CRD the backends serve."""

    group: ClassVar[str] = WIDGETS.group
    version: ClassVar[str] = WIDGETS.version


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def scrape(port: int, path: str = "/metrics") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def replicas_by_name(port: int) -> dict[str, float]:
    status, body = scrape(port)
    assert status == 200
    promtool_check(body)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    return {s.labels["name"]: s.value for s in fams["widget_spec_replicas"].samples}


@dataclass
class KopfRun:
    """A running kopf operator with the metrics handlers registered, its backend, and the
    proxy between them (network faults on both backends)."""

    kube: Backend
    proxy: TcpProxy
    handle: KopfMetrics
    self_metrics: SelfMetrics
    stop: threading.Event
    start_rv: int | None  # the double's resourceVersion when kopf started (None: real server)


@pytest.fixture
def kopf_operator(kube: Backend) -> Iterator[KopfRun]:
    """A real kopf operator (own registry) watching the backend through a `TcpProxy`, with
    metrics registered."""
    kube.install_crd(WIDGETS)
    # present before the operator starts: kopf's initial list
    kube.create(make_obj(WIDGETS, "listed", replicas=2))
    start_rv = kube.double.resource_version if kube.double is not None else None
    registry = kopf.OperatorRegistry()
    sm = SelfMetrics()
    proxy = TcpProxy(kube.host).__enter__()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=proxy.url, token=kube.token, insecure=True)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.watching.reconnect_backoff = 0.1

    handle = register_kopf_metrics(
        KubeWidgetGenerator,
        port=0,
        host="127.0.0.1",
        registry=registry,
        self_metrics=sm,
        settle_seconds=3600,
        relist_quiet_seconds=0.5,
        clusterwide=True,  # as kopf runs below
    )
    stop = threading.Event()
    ready = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=registry,
                    clusterwide=True,
                    standalone=True,
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name="kopf-operator", daemon=True)
    thread.start()
    try:
        assert ready.wait(20), f"kopf did not start: {errors}"
        wait_until(lambda: handle.server is not None, what="metrics server start")
        yield KopfRun(kube, proxy, handle, sm, stop, start_rv)
    finally:
        stop.set()
        thread.join(30)
        proxy.close()
    assert not errors, errors
    assert not thread.is_alive()


def test_kopf_events_feed_the_store_and_server_follows_operator(kopf_operator: KopfRun) -> None:
    kube, handle, sm = kopf_operator.kube, kopf_operator.handle, kopf_operator.self_metrics
    server = handle.server
    assert server is not None
    port = server.port

    # the initial listing (kopf event type None) lands in the store
    wait_until(lambda: replicas_by_name(port) == {"listed": 2.0}, what="initial list")
    assert scrape(port, "/readyz")[0] == 503  # no watch event yet, settle time not over

    new = kube.create(make_obj(WIDGETS, "new", replicas=5))
    wait_until(lambda: replicas_by_name(port) == {"listed": 2.0, "new": 5.0}, what="ADDED")
    assert scrape(port, "/readyz")[0] == 200  # a watch event proves the listing is over

    kube.update(make_obj(WIDGETS, "listed", replicas=7))
    wait_until(lambda: replicas_by_name(port) == {"listed": 7.0, "new": 5.0}, what="MODIFIED")

    kube.delete(new)
    wait_until(lambda: replicas_by_name(port) == {"listed": 7.0}, what="DELETED")
    assert len(handle.stores[0]) == 1

    assert sm.value(WATCH_EVENTS, "Widget", "ADDED") == 1
    assert sm.value(WATCH_EVENTS, "Widget", "MODIFIED") == 1
    assert sm.value(WATCH_EVENTS, "Widget", "DELETED") == 1

    double = kube.double
    if double is not None:
        # kopf's own discovery, one list and one watch: no second list/watch of ours, and an
        # on.event-only operator writes nothing (no PATCH, no Event) and asks nothing unserved
        assert double.unrouted_requests() == []
        widget_requests = [r for r in double.requests if r.path.startswith(WIDGETS_PATH)]
        assert [(r.method, r.verb) for r in widget_requests] == [("GET", "list"), ("GET", "watch")]
        watch = widget_requests[1]
        assert watch.query["resourceVersion"] == str(kopf_operator.start_rv), "from the list's RV"
        assert {r.method for r in double.requests} == {"GET"}
        assert {r.verb for r in double.requests} == {"discovery", "list", "watch"}

    # the cleanup handler stops the server with the operator
    kopf_operator.stop.set()
    wait_until(lambda: handle.server is None, what="cleanup")
    with pytest.raises(OSError):
        scrape(port)


def test_relist_after_expired_watch_drops_objects_deleted_meanwhile(
    kopf_operator: KopfRun,
) -> None:
    """On the double and a real server alike: the proxy keeps kopf away while two objects go
    and history is compacted (etcd's compaction on a real server), so its resumed watch gets
    a real 410 and only a relist can tell it they are gone."""
    kube, proxy = kopf_operator.kube, kopf_operator.proxy
    server = kopf_operator.handle.server
    assert server is not None
    port = server.port
    gone = kube.create(make_obj(WIDGETS, "gone", replicas=5))
    alone = kube.create(make_obj(WIDGETS, "alone", "team-b", replicas=3))
    wait_until(
        lambda: replicas_by_name(port) == {"listed": 2.0, "gone": 5.0, "alone": 3.0}, what="ADDED"
    )
    time.sleep(1.0)  # past the quiet time: kopf's initial listing (if "gone" was in it) is over
    # the watch breaks; while kopf cannot reconnect, two objects go (one the last of its
    # namespace, which the relist cannot announce) and history is compacted past them
    proxy.refuse()
    kube.delete(gone)
    kube.delete(alone)
    kube.compact()
    proxy.accept()
    double = kube.double
    if double is not None:  # its request log shows the relist; on a real server the ghost does
        wait_until(lambda: len(double.list_requests()) == 2, what="kopf relists after 410")
    wait_until(lambda: replicas_by_name(port) == {"listed": 2.0}, timeout=20, what="ghost gone")


def test_collector_readiness_rules() -> None:
    collector = KopfCollector(MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics()), 0.2)
    assert not collector.has_synced  # operator not started
    collector.start()
    assert not collector.has_synced
    time.sleep(0.25)
    assert collector.has_synced  # settle time over: a quiet cluster becomes ready
    collector.stop()
    assert not collector.has_synced

    fast = KopfCollector(MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics()), 3600)
    fast.start()
    fast.on_event(None, widget("a"))  # initial listing: not proof the list is over
    assert not fast.has_synced
    fast.on_event("MODIFIED", widget("a"))
    assert fast.has_synced
    # an object being deleted (finalizers pending) still exists until its DELETED event
    terminating = widget("a")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    fast.on_event("MODIFIED", terminating)
    assert len(fast.store) == 1
    fast.on_event("DELETED", terminating)
    assert len(fast.store) == 0


def test_handlers_are_registered_in_the_given_registry() -> None:
    registry = kopf.OperatorRegistry()

    class GadgetGenerator(WidgetGenerator):
        kind = "Gadget"
        plural = "gadgets"

    handle = register_kopf_metrics([WidgetGenerator(), GadgetGenerator], registry=registry)
    assert [s.kind for s in handle.stores] == ["Widget", "Gadget"]
    assert handle.server is None  # only the startup handler starts it
    ids = {h.id for h in registry._watching.get_all_handlers()}
    assert ids == {"operator-metrics/widgets.example.com", "operator-metrics/gadgets.example.com"}
    activity_ids = {h.id for h in registry._activities.get_all_handlers()}
    assert {"operator-metrics/startup", "operator-metrics/cleanup"} <= activity_ids


def test_one_generator_per_resource() -> None:
    with pytest.raises(ValueError, match="two generators"):
        register_kopf_metrics(
            [WidgetGenerator, WidgetGenerator()], registry=kopf.OperatorRegistry()
        )


def test_restart_starts_unsynced_and_empty() -> None:
    # kopf.operator() run again in the same process (e.g. after a crash) with the same handle:
    # readiness and the store must not carry over from the previous run, or /readyz says 200
    # before the new listing and objects deleted meanwhile stay in /metrics for good
    collector = KopfCollector(MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics()), 3600)
    collector.start()
    collector.on_event(None, widget("gone-while-down"))
    collector.on_event("MODIFIED", widget("a"))
    assert collector.has_synced
    collector.stop()
    collector.start()
    assert not collector.has_synced
    assert len(collector.store) == 0
    collector.on_event(None, widget("a"))
    assert not collector.has_synced and len(collector.store) == 1


def test_relist_sweep_drops_only_unannounced_objects_of_the_namespaces_it_covered() -> None:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    collector = KopfCollector(store, settle_seconds=3600, relist_quiet_seconds=0.2)
    collector.start()
    for name, namespace in (("a", "x"), ("b", "x"), ("c", "y")):
        collector.on_event(None, widget(name, namespace=namespace))  # the initial listing
    collector.on_event("ADDED", widget("d", namespace="x"))
    time.sleep(0.4)  # the initial listing ends: nothing was there before it, nothing goes
    assert len(store) == 4
    # kopf's watch on namespace x got a 410: it lists x again; b and d were deleted meanwhile
    collector.on_event(None, widget("a", namespace="x"))
    assert len(store) == 4  # not before the listing is over
    time.sleep(0.4)
    assert {k.split("-")[-1] for k in store._objects} == {"a", "c"}  # y was not listed: kept
    collector.stop()


def test_clusterwide_relist_covers_namespaces_it_found_empty() -> None:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    collector = KopfCollector(
        store, settle_seconds=3600, relist_quiet_seconds=0.2, clusterwide=True
    )
    collector.start()
    for name, namespace in (("a", "x"), ("c", "y")):
        collector.on_event(None, widget(name, namespace=namespace))
    time.sleep(0.4)
    # kopf's one cluster-wide watch got a 410: its relist lists only a; y's last object went
    collector.on_event(None, widget("a", namespace="x"))
    time.sleep(0.4)
    assert {k.split("-")[-1] for k in store._objects} == {"a"}
    collector.stop()
