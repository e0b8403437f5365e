"""kopf integration: the real kopf operator, against a loopback API double, feeds the store."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf
import pytest
from kopf_fake_api import FakeKubeAPI
from prom_helpers import promtool_check
from prometheus_client.parser import text_string_to_metric_families
from store_fakes import WidgetGenerator, widget

from scaffold_metrics.runtime.kopf_integration import (
    KopfCollector,
    KopfMetrics,
    register_kopf_metrics,
)
from scaffold_metrics.runtime.selfmetrics import WATCH_EVENTS, SelfMetrics
from scaffold_metrics.runtime.store import MetricsStore


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


@pytest.fixture
def kopf_operator() -> Iterator[tuple[FakeKubeAPI, KopfMetrics, SelfMetrics, threading.Event]]:
    """A real kopf operator (own registry) watching the API double, with metrics registered."""
    api = FakeKubeAPI("example.com", "v1", "Widget", "widgets")
    api.put(widget("listed", replicas=2))  # present before the operator starts: initial list
    registry = kopf.OperatorRegistry()
    sm = SelfMetrics()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=api.url)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.watching.reconnect_backoff = 0.1

    handle = register_kopf_metrics(
        WidgetGenerator,
        port=0,
        host="127.0.0.1",
        registry=registry,
        self_metrics=sm,
        settle_seconds=3600,
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
        yield api, handle, sm, stop
    finally:
        stop.set()
        thread.join(30)
        api.close()
    assert not errors, errors
    assert not thread.is_alive()


def test_kopf_events_feed_the_store_and_server_follows_operator(
    kopf_operator: tuple[FakeKubeAPI, KopfMetrics, SelfMetrics, threading.Event],
) -> None:
    api, handle, sm, stop = kopf_operator
    server = handle.server
    assert server is not None
    port = server.port

    # the initial listing (kopf event type None) lands in the store
    wait_until(
        lambda: replicas_by_name(port) == {"listed": 2.0},
        what=f"initial list {api.requests} {api.unknown}",
    )
    assert scrape(port, "/readyz")[0] == 503  # no watch event yet, settle time not over

    api.put(widget("new", replicas=5))
    wait_until(lambda: replicas_by_name(port) == {"listed": 2.0, "new": 5.0}, what="ADDED")
    assert scrape(port, "/readyz")[0] == 200  # a watch event proves the listing is over

    api.put(widget("listed", replicas=7))
    wait_until(lambda: replicas_by_name(port) == {"listed": 7.0, "new": 5.0}, what="MODIFIED")

    api.remove(widget("new"))
    wait_until(lambda: replicas_by_name(port) == {"listed": 7.0}, what="DELETED")
    assert len(handle.stores[0]) == 1

    assert sm.value(WATCH_EVENTS, "Widget", "ADDED") == 1
    assert sm.value(WATCH_EVENTS, "Widget", "MODIFIED") == 1
    assert sm.value(WATCH_EVENTS, "Widget", "DELETED") == 1
    # kopf's own list and watch, no second watch of ours
    watches = [r for r in api.requests if r.startswith("/apis/example.com/v1/widgets?watch")]
    assert len(watches) == 1, api.requests

    # the cleanup handler stops the server with the operator
    stop.set()
    wait_until(lambda: handle.server is None, what="cleanup")
    with pytest.raises(OSError):
        scrape(port)


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
