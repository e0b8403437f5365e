"""Real Prometheus tooling for tests: `promtool check metrics` and a throwaway Prometheus server.

Parsers in Python can be lenient where Prometheus is not, so every exposition a test produces is
also checked by `promtool`, and the end-to-end tests let a real Prometheus scrape the endpoint
and query what it stored. Both skip (with the reason) when the binaries are missing; CI installs
them (Debian package `prometheus`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"


def _require(binary: str) -> None:
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.skip(f"{os.path.basename(binary)} not installed (apt-get install prometheus)")


def promtool_check(text: bytes) -> None:
    """Fail the test unless `promtool check metrics` accepts `text` (format 0.0.4) cleanly.

    promtool reads only the text format, so pass it text 0.0.4 bodies, not OpenMetrics.
    """
    _require(PROMTOOL)
    proc = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=60
    )
    if proc.returncode != 0 or proc.stdout.strip() or proc.stderr.strip():
        raise AssertionError(
            "promtool check metrics failed (rc={}):\n{}{}\n--- input ---\n{}".format(
                proc.returncode,
                proc.stdout.decode(errors="replace"),
                proc.stderr.decode(errors="replace"),
                text.decode(errors="replace")[:4000],
            )
        )


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def running_prometheus(
    targets: Sequence[str],
    *,
    scrape_interval: str = "1s",
    metrics_path: str = "/metrics",
    startup_timeout: float = 60.0,
    scrape_options: Mapping[str, Any] | None = None,
    target_labels: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run a real Prometheus scraping `targets` ("host:port"); yield its base URL.

    `scrape_options` are added to the scrape job as they are (`scheme`, `tls_config`,
    `basic_auth`, `honor_labels`, `relabel_configs`, ...) and `target_labels` are the static
    targets' labels, to mimic what service discovery gives.

    Storage lives in a temporary directory removed afterwards; the process is terminated (then
    killed) on exit, and its log is attached to the failure if it does not start.
    """
    _require(PROMETHEUS)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="prom-test-") as tmp:
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            json.dump(  # JSON is YAML; no YAML library needed here
                {
                    "global": {"scrape_interval": scrape_interval, "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "operator-metrics",
                            "metrics_path": metrics_path,
                            "static_configs": [
                                {"targets": list(targets), "labels": target_labels or {}}
                            ],
                            **(scrape_options or {}),
                        }
                    ],
                },
                f,
            )
        log_path = os.path.join(tmp, "prometheus.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"prometheus exited early:\n{_read(log_path)}")
                try:
                    with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"prometheus not ready:\n{_read(log_path)}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _read(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-4000:]


def query(base_url: str, promql: str) -> list[dict[str, Any]]:
    """Instant query; the `result` list of a vector answer (each has `metric` and `value`)."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = _get_json(url)
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_for_query(
    base_url: str,
    promql: str,
    predicate: Callable[[list[dict[str, Any]]], bool] = bool,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Poll `promql` until `predicate(result)` holds; return that result or fail with the last."""
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = query(base_url, promql)
        if predicate(result):
            return result
        time.sleep(0.25)
    targets = _get_json(f"{base_url}/api/v1/targets")
    raise AssertionError(f"query {promql!r} never matched; last result {result}; targets {targets}")


def target_metadata(base_url: str) -> dict[str, dict[str, Any]]:
    """Metric metadata Prometheus parsed from its targets: family name -> {type, help, ...}.

    After an OpenMetrics scrape an info family appears under its bare name with type "info";
    after a text 0.0.4 scrape it would be `<name>_info` with type "gauge".
    """
    answer = _get_json(f"{base_url}/api/v1/targets/metadata")
    assert answer["status"] == "success", answer
    return {m["metric"]: m for m in answer["data"]}


def values_by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    """Map one label's value to the sample value, for easy assertions on a query result."""
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}
