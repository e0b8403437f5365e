"""End to end: the example operator's generated entry (`python main.py`), started against a
Kubernetes API (the test double, or a real control plane under KUBEBUILDER_ASSETS), serves
`memcached_info` for the custom resources there, follows updates and deletions, and a real
Prometheus scrapes it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kube_fixtures
import pytest
from kube_fixtures import MEMCACHED, ApiBackend, make_obj
from prom_helpers import free_port, promtool_check, query, running_prometheus, wait_for_query
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "memcached-operator"

control_plane = kube_fixtures.control_plane
kube = kube_fixtures.kube


def kubeconfig_for(api_client: Any) -> dict[str, Any]:
    """A kubeconfig reaching the same server, with the same credentials, as `api_client`."""
    cfg = api_client.configuration
    cluster: dict[str, Any] = {"server": cfg.host}
    if cfg.host.startswith("https") and not cfg.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {}
    token = (cfg.api_key or {}).get("BearerToken")
    if token:
        user["token"] = token
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        "current-context": "test",
    }


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def info_series(body: bytes) -> set[tuple[str, str]]:
    """(namespace, name) of every `memcached_info` sample, read with a real parser."""
    promtool_check(body)
    found = set()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "memcached_info":
                assert sample.value == 1
                found.add((sample.labels["namespace"], sample.labels["memcached"]))
    return found


@pytest.fixture
def entry(tmp_path: Path, kube: ApiBackend) -> Iterator[tuple[str, ApiBackend]]:
    """The example's `python main.py`, running in a copy of the example against `kube`."""
    project = tmp_path / "memcached-operator"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps(kubeconfig_for(kube.api_client())))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")},
        "KUBECONFIG": str(config),
        "METRICS_PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("WATCH_NAMESPACE", None)
    log = (tmp_path / "entry.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "main.py"], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is None and fetch(url + "/readyz")[0] == 200, 30, "readyz")
        yield url, kube
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log.close()
        assert code == 0, (tmp_path / "entry.log").read_text()


def test_generated_entry_serves_follows_and_is_scraped_by_prometheus(
    entry: tuple[str, ApiBackend],
) -> None:
    url, kube = entry
    kube.create(make_obj(MEMCACHED, "example-memcached", "default"))
    kube.create(make_obj(MEMCACHED, "cache-b", "team-b", size=2))
    expected = {("default", "example-memcached"), ("team-b", "cache-b")}
    wait_until(lambda: info_series(fetch(url + "/metrics")[1]) == expected, what="two objects")
    body = fetch(url + "/metrics")[1].decode()
    assert 'memcached_info{namespace="default",memcached="example-memcached"} 1' in body
    assert body.count("# TYPE memcached_info ") == 1

    with running_prometheus([url.removeprefix("http://")]) as prom:
        wait_for_query(prom, "count(memcached_info)", lambda r: _scalar(r) == 2.0)
        result = query(prom, "memcached_info")
        assert {(s["metric"]["namespace"], s["metric"]["memcached"]) for s in result} == expected

        kube.delete(make_obj(MEMCACHED, "cache-b", "team-b"))
        kube.create(make_obj(MEMCACHED, "cache-c", "default", size=3))
        expected = {("default", "example-memcached"), ("default", "cache-c")}
        wait_until(lambda: info_series(fetch(url + "/metrics")[1]) == expected, what="delete")
        wait_for_query(
            prom,
            "memcached_info",
            lambda r: {(s["metric"]["namespace"], s["metric"]["memcached"]) for s in r} == expected,
        )
        size_c = 'memcached_spec_size{memcached="cache-c"}'
        wait_for_query(prom, size_c, lambda r: _scalar(r) == 3.0)
        kube.update(make_obj(MEMCACHED, "cache-c", "default", size=1))
        wait_for_query(prom, size_c, lambda r: _scalar(r) == 1.0)
        wait_for_query(prom, 'operator_metrics_watch_events_total{type="MODIFIED"}', bool)


def _scalar(result: list[dict[str, Any]]) -> float | None:
    return float(result[0]["value"][1]) if result else None


def test_generated_entry_without_any_cluster_config_exits_2(tmp_path: Path) -> None:
    project = tmp_path / "memcached-operator"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")},
        "KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(
        [sys.executable, "main.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: no Kubernetes configuration")
    assert "Traceback" not in run.stderr
