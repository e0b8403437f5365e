"""The /metrics server over real HTTP: negotiation, gzip, HEAD, probes, merging, concurrency."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from prom_helpers import promtool_check
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)
from prometheus_client.parser import text_string_to_metric_families
from store_fakes import FakeCollector, WidgetGenerator, widget

from scaffold_metrics.runtime.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE
from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.server import (
    MetricsServer,
    accepts_gzip,
    start_metrics_server,
    wants_openmetrics,
)
from scaffold_metrics.runtime.store import MetricsStore

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def widget_server() -> Iterator[tuple[MetricsServer, FakeCollector, SelfMetrics]]:
    sm = SelfMetrics()
    store = MetricsStore(WidgetGenerator(), self_metrics=sm)
    store.upsert(widget("a", replicas=3))
    store.upsert(widget("b", namespace="other", replicas="bad"))
    sm.record_list("Widget", None, ok=True)
    sm.record_watch("Widget", "other", ok=False)
    sm.record_event("Widget", "ADDED")
    sm.record_sync("Widget", None, 1700000000.5)
    collector = FakeCollector(store)
    server = start_metrics_server([collector], port=0, host="127.0.0.1", self_metrics=sm)
    try:
        yield server, collector, sm
    finally:
        server.stop()


def request(
    server: MetricsServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_text_format_by_default(
    widget_server: tuple[MetricsServer, FakeCollector, SelfMetrics],
) -> None:
    server, collector, _ = widget_server
    assert collector.started == 1
    status, headers, body = request(server, "/metrics")
    assert status == 200
    assert headers["content-type"] == TEXT_CONTENT_TYPE
    assert "content-encoding" not in headers
    promtool_check(body)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    # text 0.0.4 has no info type: the info family is a gauge named widget_info
    assert fams["widget_info"].type == "gauge"
    assert {s.labels["name"] for s in fams["widget_info"].samples} == {"a", "b"}
    assert [s.value for s in fams["widget_spec_replicas"].samples] == [3]
    objects = fams["operator_metrics_objects"].samples
    by_namespace = {s.labels["namespace"]: s.value for s in objects}
    assert by_namespace == {"default": 1, "other": 1}
    assert {s.labels["kind"] for s in objects} == {"Widget"}
    errors = fams["operator_metrics_generator_errors"].samples
    assert [(s.labels, s.value) for s in errors] == [({"kind": "Widget"}, 1)]
    lists = fams["operator_metrics_list_requests"].samples
    assert [(s.labels, s.value) for s in lists] == [({"kind": "Widget", "namespace": ""}, 1)]
    watch_fail = fams["operator_metrics_watch_failures"].samples
    assert [s.value for s in watch_fail] == [1]
    sync = fams["operator_metrics_last_sync_timestamp_seconds"].samples
    assert [s.value for s in sync] == [1700000000.5]
    # one header per family, no family interleaved with another
    names_in_order = [
        line.split()[2] for line in body.decode().splitlines() if line.startswith("# TYPE")
    ]
    assert len(names_in_order) == len(set(names_in_order)) == len(fams)


def test_openmetrics_when_prometheus_asks(
    widget_server: tuple[MetricsServer, FakeCollector, SelfMetrics],
) -> None:
    server, _, _ = widget_server
    status, headers, body = request(server, "/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert status == 200
    assert headers["content-type"] == OPENMETRICS_CONTENT_TYPE
    assert body.endswith(b"# EOF\n")
    fams = {f.name: f for f in om_families(body.decode())}  # strict parser: fails on bad OM
    assert fams["widget"].type == "info"
    assert {s.labels["name"] for s in fams["widget"].samples} == {"a", "b"}
    assert fams["operator_metrics_list_requests"].type == "counter"
    assert (
        fams["widget"].documentation
        == 'Information about a Widget.\nA second "line" with \\ in HELP.'
    )


def test_gzip_when_allowed(widget_server: tuple[MetricsServer, FakeCollector, SelfMetrics]) -> None:
    server, _, _ = widget_server
    _, _, plain = request(server, "/metrics")
    status, headers, body = request(server, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(body)
    assert gzip.decompress(body) == plain
    _, headers, _ = request(server, "/metrics", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in headers


def test_head_probes_and_404(
    widget_server: tuple[MetricsServer, FakeCollector, SelfMetrics],
) -> None:
    server, collector, _ = widget_server
    _, get_headers, get_body = request(server, "/metrics")
    status, headers, body = request(server, "/metrics", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) == len(get_body) == int(get_headers["content-length"])
    assert request(server, "/healthz")[0] == 200
    assert request(server, "/healthz", method="HEAD")[0] == 200
    assert request(server, "/readyz")[0] == 200
    collector.has_synced = False
    assert request(server, "/readyz")[0] == 503
    assert request(server, "/readyz", method="HEAD")[0] == 503
    assert request(server, "/healthz")[0] == 200
    assert request(server, "/nope")[0] == 404
    assert request(server, "/nope", method="HEAD")[0] == 404
    assert request(server, "/metrics?x=1")[0] == 200


def test_shared_store_is_scraped_once_and_same_family_names_merge() -> None:
    sm = SelfMetrics()
    shared = MetricsStore(WidgetGenerator(), self_metrics=sm)
    shared.upsert(widget("a1", namespace="a"))
    shared.upsert(widget("b1", namespace="b"))
    other = MetricsStore(WidgetGenerator(), self_metrics=sm)  # same family names, another store
    other.upsert(widget("c1", namespace="c"))
    collectors = [FakeCollector(shared), FakeCollector(shared), FakeCollector(other)]
    server = start_metrics_server(collectors, port=0, host="127.0.0.1", self_metrics=sm)
    try:
        assert [c.started for c in collectors] == [1, 1, 1]
        _, _, body = request(server, "/metrics")
        promtool_check(body)
        fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
        assert sorted(s.labels["name"] for s in fams["widget_info"].samples) == ["a1", "b1", "c1"]
        assert body.count(b"# TYPE widget_info ") == 1
        objects = {s.labels["namespace"]: s.value for s in fams["operator_metrics_objects"].samples}
        assert objects == {"a": 1, "b": 1, "c": 1}
    finally:
        server.stop()
    assert [c.stopped for c in collectors] == [1, 1, 1]
    server.stop()  # idempotent
    assert [c.stopped for c in collectors] == [1, 1, 1]


def test_concurrent_scrapes_during_updates() -> None:
    sm = SelfMetrics()
    store = MetricsStore(WidgetGenerator(), self_metrics=sm)
    server = start_metrics_server([FakeCollector(store)], port=0, host="127.0.0.1", self_metrics=sm)
    stop = threading.Event()
    failures: list[str] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            store.replace([widget(f"w{j}", replicas=i) for j in range(50)], "default")

    def scraper(om: bool) -> None:
        headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"} if om else {}
        for _ in range(15):
            status, _, body = request(server, "/metrics", headers=headers)
            try:
                assert status == 200
                if om:
                    fams = {f.name: f for f in om_families(gzip.decompress(body).decode())}
                    values = {s.value for s in fams["widget_spec_replicas"].samples}
                    assert len(fams["widget"].samples) in (0, 50)
                else:
                    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
                    values = {s.value for s in fams["widget_spec_replicas"].samples}
                assert len(values) <= 1, "a scrape saw half of a replace"
            except Exception as exc:
                failures.append(repr(exc))

    w = threading.Thread(target=writer)
    w.start()
    scrapers = [threading.Thread(target=scraper, args=(i % 2 == 0,)) for i in range(12)]
    try:
        for t in scrapers:
            t.start()
        for t in scrapers:
            t.join()
    finally:
        stop.set()
        w.join()
        server.stop()
    assert not failures, failures[:3]


def test_busy_port_fails_before_collectors_start() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        collector = FakeCollector(MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics()))
        with pytest.raises(OSError):
            start_metrics_server([collector], port=s.getsockname()[1], host="127.0.0.1")
        assert collector.started == 0


def test_url_and_wildcard_host() -> None:
    server = start_metrics_server([], port=0)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert request(server, "/readyz")[0] == 200  # no collectors: nothing to wait for
    finally:
        server.stop()


def test_starts_and_stops_inside_a_running_event_loop() -> None:
    """An asyncio program (or kopf) may start the server from a coroutine."""

    async def main() -> int:
        server = start_metrics_server([], port=0, host="127.0.0.1")
        try:
            loop = asyncio.get_running_loop()
            return (await loop.run_in_executor(None, request, server, "/healthz"))[0]
        finally:
            server.stop()

    assert asyncio.run(main()) == 200


def test_ipv6_loopback_host() -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server = start_metrics_server([], port=0, host="::1")
    try:
        assert server.url == f"http://[::1]:{server.port}"
        conn = http.client.HTTPConnection("::1", server.port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/plain;version=0.0.4", False),
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text", True),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", True),
        ("application/openmetrics-text;version=1.0.0;q=0.2,text/plain;q=0.9", False),
        ("application/openmetrics-text;version=2.0.0", False),
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text;q=junk", False),
    ],
)
def test_wants_openmetrics(accept: str | None, expected: bool) -> None:
    assert wants_openmetrics(accept) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("identity", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("*", True),
        ("*;q=0.1, gzip;q=0", False),
    ],
)
def test_accepts_gzip(value: str | None, expected: bool) -> None:
    assert accepts_gzip(value) is expected


def test_serve_metrics_stops_collectors_on_sigterm(tmp_path: object) -> None:
    script = textwrap.dedent("""
        import sys
        from scaffold_metrics.runtime.server import serve_metrics
        from scaffold_metrics.runtime.store import MetricsStore
        from store_fakes import FakeCollector, WidgetGenerator

        class Loud(FakeCollector):
            def start(self):
                print("started", flush=True)
            def stop(self):
                print("stopped", flush=True)

        serve_metrics([Loud(MetricsStore(WidgetGenerator()))], port=int(sys.argv[1]),
                      host="127.0.0.1")
        print("returned", flush=True)
        """)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [ROOT, here, os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                assert conn.getresponse().status == 200
                conn.close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == b"stopped\nreturned\n"


def test_sigterm_while_collectors_start_stops_cleanly() -> None:
    """A SIGTERM that lands while the collectors start (before serving) must not kill the
    process with the default action: the handlers are installed before anything starts."""
    script = textwrap.dedent("""
        import os, signal
        from scaffold_metrics.runtime.server import serve_metrics
        from scaffold_metrics.runtime.store import MetricsStore
        from store_fakes import FakeCollector, WidgetGenerator

        class SignalsWhileStarting(FakeCollector):
            def start(self):
                os.kill(os.getpid(), signal.SIGTERM)
                print("started", flush=True)
            def stop(self):
                print("stopped", flush=True)

        serve_metrics([SignalsWhileStarting(MetricsStore(WidgetGenerator()))], port=0,
                      host="127.0.0.1")
        print("returned", flush=True)
        """)
    here = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, here])}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=env, cwd=ROOT, timeout=30
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode())
    assert proc.stdout == b"started\nstopped\nreturned\n"


def test_scraper_hanging_up_early_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    for i in range(40_000):
        store.upsert(widget(f"w-{i}", replicas=i))
    server = start_metrics_server([FakeCollector(store)], port=0, host="127.0.0.1")
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port)) as conn:
                conn.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                conn.recv(100)
                conn.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
        time.sleep(0.5)
        ok = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        ok.request("GET", "/healthz")
        assert ok.getresponse().status == 200
        ok.close()
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err
