"""A real Prometheus scrapes the server (it negotiates OpenMetrics) and stores what we expect."""

from __future__ import annotations

from prom_helpers import (
    query,
    running_prometheus,
    target_metadata,
    values_by,
    wait_for_query,
)
from store_fakes import FakeCollector, WidgetGenerator, widget

from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.server import start_metrics_server
from scaffold_metrics.runtime.store import MetricsStore


def test_prometheus_scrapes_store_and_self_metrics() -> None:
    sm = SelfMetrics()
    store = MetricsStore(WidgetGenerator(), self_metrics=sm)
    store.upsert(widget("a", replicas=3))
    store.upsert(widget("b", namespace="other", replicas=5))
    hostile = 'h"} 9\n# HELP widget_spec_replicas x\nwidget_spec_replicas{name="forged"} 1'
    store.upsert(widget(hostile, namespace="other", replicas=1))
    sm.record_list("Widget", "other", ok=True)
    sm.record_list("Widget", "other", ok=False)
    server = start_metrics_server([FakeCollector(store)], port=0, host="127.0.0.1", self_metrics=sm)
    try:
        with running_prometheus([f"127.0.0.1:{server.port}"]) as prom:
            wait_for_query(prom, "up", lambda r: [float(x["value"][1]) for x in r] == [1.0])
            replicas = values_by(query(prom, "widget_spec_replicas"), "name")
            assert replicas == {"a": 3.0, "b": 5.0, hostile: 1.0}
            info = query(prom, "widget_info")
            assert sorted(r["metric"]["name"] for r in info) == sorted(["a", "b", hostile])
            objects = query(prom, 'operator_metrics_objects{kind="Widget"}')
            assert values_by(objects, "namespace") == {"default": 1.0, "other": 2.0}
            lists = query(prom, "operator_metrics_list_failures_total")
            assert [(r["metric"]["namespace"], r["value"][1]) for r in lists] == [("other", "1")]
            assert query(prom, 'widget_spec_replicas{name="forged"}') == []

            # the next scrapes follow the store
            store.upsert(widget("a", replicas=4))
            store.delete(widget("b", namespace="other"))
            wait_for_query(
                prom,
                "widget_spec_replicas",
                lambda r: values_by(r, "name") == {"a": 4.0, hostile: 1.0},
            )
            # Prometheus negotiated OpenMetrics (it asks for it first): the info type survived
            metadata = target_metadata(prom)
            assert metadata["widget"]["type"] == "info"
            assert metadata["widget_spec_replicas"]["type"] == "gauge"
            assert metadata["operator_metrics_list_requests"]["type"] == "counter"
    finally:
        server.stop()
