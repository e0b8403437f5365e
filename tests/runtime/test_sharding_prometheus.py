"""A real Prometheus scraping three shards (three servers, as three pods of the StatefulSet)
stores each custom resource exactly once, and sees which shard each target is."""

from __future__ import annotations

from prom_helpers import query, running_prometheus, values_by, wait_for_query
from test_sharding_collectors import WIDGETS, collector, double, widget  # noqa: F401

from scaffold_metrics.runtime.server import start_metrics_server
from scaffold_metrics.runtime.sharding import ShardSelector

OBJECTS = 400


def test_prometheus_sees_each_object_once_across_three_shards(double) -> None:  # noqa: F811
    for i in range(OBJECTS):
        double.create(widget(i))
    shards = [collector(double, ShardSelector(n, 3)) for n in range(3)]
    servers = []
    try:
        for n, c in enumerate(shards):
            c.store.self_metrics.record_sharding(n, 3)
            servers.append(
                start_metrics_server(
                    [c], port=0, host="127.0.0.1", self_metrics=c.store.self_metrics
                )
            )
        for c in shards:
            assert c.wait_for_sync(30)
        targets = [f"127.0.0.1:{s.port}" for s in servers]
        with running_prometheus(targets) as prom:
            wait_for_query(
                prom, "up", lambda r: len(r) == 3 and all(x["value"][1] == "1" for x in r)
            )
            wait_for_query(
                prom, "count(widget_info)", lambda r: bool(r) and r[0]["value"][1] == str(OBJECTS)
            )
            assert query(prom, "count by (namespace, name) (widget_info) > 1") == []
            per_target = values_by(query(prom, "count by (instance) (widget_info)"), "instance")
            assert sorted(per_target) == sorted(targets) and all(
                v > 50 for v in per_target.values()
            )
            ordinals = values_by(query(prom, "operator_metrics_shard_ordinal"), "instance")
            assert ordinals == {t: float(n) for n, t in enumerate(targets)}
            totals = query(prom, "operator_metrics_total_shards")
            assert [float(r["value"][1]) for r in totals] == [3.0, 3.0, 3.0]
            kept = values_by(
                query(prom, 'operator_metrics_shard_objects{ownership="kept"}'), "instance"
            )
            assert kept == per_target
            skipped = query(prom, 'sum(operator_metrics_shard_objects{ownership="skipped"})')
            assert float(skipped[0]["value"][1]) == 2 * OBJECTS
    finally:
        for s in servers:
            s.stop()
        for c in shards:
            c.stop()
