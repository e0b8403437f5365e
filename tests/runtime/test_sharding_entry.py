"""The entry's sharding settings: environment and flags, checked before anything starts, and
automatic sharding from the pod's StatefulSet through the API."""

from __future__ import annotations

import threading
import time

import pytest
from store_fakes import WidgetGenerator
from test_sharding_collectors import double, pod, statefulset  # noqa: F401

from scaffold_metrics.runtime import entry
from scaffold_metrics.runtime.entry import (
    MetricsSetupError,
    ShardingSettings,
    build_collectors,
    metrics_settings,
    register_kopf,
    sharding_settings,
)
from scaffold_metrics.runtime.selfmetrics import SHARD_ORDINAL, TOTAL_SHARDS, SelfMetrics


def test_no_sharding_settings_is_no_sharding() -> None:
    assert sharding_settings({}) is None
    assert metrics_settings(8389, environ={"METRICS_SHARD": " "}).sharding is None


def test_fixed_and_automatic_sharding_from_the_environment_and_flags() -> None:
    env = {"METRICS_SHARD": "2", "METRICS_TOTAL_SHARDS": "7"}
    assert sharding_settings(env) == ShardingSettings(shard=2, total=7)
    assert sharding_settings(env, ["--shard", "1", "--total-shards=3"]) == ShardingSettings(1, 3)
    auto = {"METRICS_POD_NAME": "app-metrics-4", "METRICS_POD_NAMESPACE": "ops"}
    assert sharding_settings(auto) == ShardingSettings(pod="app-metrics-4", pod_namespace="ops")
    assert sharding_settings({}, ["--pod", "m-0", "--pod-namespace", "ops"]) == ShardingSettings(
        pod="m-0", pod_namespace="ops"
    )


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({"METRICS_SHARD": "-1", "METRICS_TOTAL_SHARDS": "2"}, [], "METRICS_SHARD='-1' is not a"),
        ({"METRICS_SHARD": "0", "METRICS_TOTAL_SHARDS": "0"}, [], "not a number of shards"),
        ({"METRICS_SHARD": "0"}, [], "METRICS_SHARD='0' without METRICS_TOTAL_SHARDS"),
        ({}, ["--shard", "5", "--total-shards", "5"], "--shard '5' is not a shard of 5"),
        ({}, ["--shard"], "--shard needs a value"),
        ({}, ["--replicas", "3"], "unknown argument '--replicas'"),
        (
            {"METRICS_POD_NAME": "m-0", "METRICS_POD_NAMESPACE": "ops", "METRICS_SHARD": "0"},
            [],
            "are both set: keep one",
        ),
        ({"METRICS_POD_NAME": "M_0", "METRICS_POD_NAMESPACE": "ops"}, [], "is not a pod name"),
        ({"METRICS_POD_NAME": "m-0", "METRICS_POD_NAMESPACE": "Ops"}, [], "not a namespace name"),
    ],
)
def test_sharding_settings_that_cannot_be_right(
    env: dict[str, str], argv: list[str], message: str
) -> None:
    with pytest.raises(MetricsSetupError, match=message.replace("(", r"\(")):
        sharding_settings(env, argv)


def test_automatic_sharding_finds_the_statefulset_through_the_api(
    double, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    registry = SelfMetrics()  # not the process-wide one: other tests scrape that
    monkeypatch.setattr(entry, "DEFAULT_SELF_METRICS", registry)
    double.create(statefulset(5))
    pod(double, 3)
    collectors = build_collectors(
        [WidgetGenerator],
        (),
        double.api_client(),
        sharding=ShardingSettings(pod="metrics-3", pod_namespace="ops"),
    )
    selector = collectors[0].selector
    assert selector is not None and selector.state == (3, 5)
    assert registry.value(SHARD_ORDINAL) == 3
    assert registry.value(TOTAL_SHARDS) == 5
    double.update(statefulset(4))  # followed from here on, in place
    deadline = time.monotonic() + 10
    while selector.total != 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert selector.state == (3, 4)
    assert any(
        r.query.get("fieldSelector") == "metadata.name=metrics" and r.verb == "watch"
        for r in double.requests
    )
    # it follows the StatefulSet while the collectors run, and ends after they stopped
    for c in collectors:
        c.start()
    assert collectors[0].wait_for_sync(10)
    following = [t for t in threading.enumerate() if t.name == "shards-metrics"]
    assert following and following[0].is_alive()
    for c in collectors:
        c.stop()
    double.drop_connections()
    following[0].join(10)
    assert not following[0].is_alive()


def test_kopf_feeding_the_metrics_cannot_shard(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METRICS_SHARD", "0")
    monkeypatch.setenv("METRICS_TOTAL_SHARDS", "2")
    with pytest.raises(SystemExit) as exit_info:
        register_kopf([WidgetGenerator], 8389)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sharding is not available when kopf's own watch feeds") and (
        err.count("\n") == 1
    )


def test_automatic_sharding_needs_a_pod_of_a_statefulset(double) -> None:  # noqa: F811
    client = double.api_client()
    with pytest.raises(MetricsSetupError, match="cannot read pod ops/metrics-0 to find its"):
        build_collectors(
            [WidgetGenerator], (), client, sharding=ShardingSettings(0, 1, "metrics-0", "ops")
        )
    double.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "loner-0", "namespace": "ops"},
            "spec": {"containers": []},
        }
    )
    with pytest.raises(MetricsSetupError, match="is not controlled by a StatefulSet"):
        build_collectors(
            [WidgetGenerator], (), client, sharding=ShardingSettings(0, 1, "loner-0", "ops")
        )
