"""The generated ServiceMonitor, scraped as the Prometheus Operator would configure it: the
target gets a `namespace` label (the operator pod's), `honor_labels` comes from the generated
endpoint. With `honorLabels: true` the series keep the custom resource's namespace; the control
run without it shows what the ServiceMonitor prevents (`exported_namespace`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prom_helpers import query, running_prometheus, wait_for_query
from ruamel.yaml import YAML
from scaffold_helpers import imported_package, run_cli
from user_repos import CRD_PATH, kustomize_operator

from scaffold_metrics.runtime import MetricsStore, start_metrics_server


class _FedCollector:
    """A collector whose store the test fills (the list/watch is tested elsewhere)."""

    def __init__(self, store: MetricsStore) -> None:
        self.store = store
        self.has_synced = True

    def start(self) -> None:
        """Nothing to start: the test fills the store."""

    def stop(self) -> None:
        """Nothing to stop."""


def _operator_relabelling(monitor: dict[str, Any], honor: bool | None = None) -> dict[str, Any]:
    """The scrape job the Prometheus Operator makes of the monitor's endpoint (the parts that
    decide the labels); `honor` overrides `honorLabels` for the control run."""
    (endpoint,) = monitor["spec"]["endpoints"]
    return {
        "honor_labels": endpoint.get("honorLabels", False) if honor is None else honor,
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        ],
    }


@pytest.mark.parametrize("honor", [None, False], ids=["generated", "control-without-honor"])
def test_series_keep_the_custom_resources_namespace(tmp_path: Path, honor: bool | None) -> None:
    root = kustomize_operator(tmp_path / "backup-operator")
    result = run_cli("init", "--crd", root / CRD_PATH, "--project", root, "--service-monitor")
    assert result.exit_code == 0, result.stderr
    monitor_file = root / "config/manager/backup-operator-metrics-servicemonitor.yaml"
    monitor = YAML(typ="safe").load(monitor_file.read_text())
    with imported_package(root) as package:
        (generator,) = package.GENERATORS
        store = MetricsStore(generator())
    store.upsert({"metadata": {"name": "cache", "namespace": "team-a", "uid": "u1"}})
    server = start_metrics_server([_FedCollector(store)], port=0, host="127.0.0.1")
    pod_labels = {
        "__meta_kubernetes_namespace": "backup-system",
        "__meta_kubernetes_service_name": "backup-operator-metrics",
    }
    try:
        with running_prometheus(
            [f"127.0.0.1:{server.port}"],
            scrape_options=_operator_relabelling(monitor, honor),
            target_labels=pod_labels,
        ) as prom:
            (series,) = wait_for_query(prom, "memcached_info")
            labels = series["metric"]
            if honor is None:
                assert labels["namespace"] == "team-a" and "exported_namespace" not in labels
                assert query(prom, 'memcached_info{namespace="team-a"}')
            else:
                assert labels["namespace"] == "backup-system"
                assert labels["exported_namespace"] == "team-a"
    finally:
        server.stop()
