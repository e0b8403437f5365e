"""The /metrics server under abuse: request bounds, deadlines, a connection cap, shared bodies."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from store_fakes import FakeCollector, WidgetGenerator, widget

from scaffold_metrics.runtime.httpproto import ServerLimits
from scaffold_metrics.runtime.selfmetrics import SelfMetrics
from scaffold_metrics.runtime.server import MetricsServer, start_metrics_server
from scaffold_metrics.runtime.store import MetricsStore


def _store(objects: int = 10) -> MetricsStore:
    store = MetricsStore(WidgetGenerator(), self_metrics=SelfMetrics())
    for i in range(objects):
        store.upsert(widget(f"w{i}", replicas=i))
    return store


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    srv = start_metrics_server([FakeCollector(_store())], port=0, host="127.0.0.1")
    try:
        yield srv
    finally:
        srv.stop()


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` (from a thread, as a real client would), return everything the server
    sends until it closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server stopped reading: it answered
                conn.sendall(data)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        out = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                raise AssertionError(f"connection left open; got {out[:200]!r}") from None
            if not chunk:
                return out
            out += chunk


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_request_line_too_long_is_414(server: MetricsServer) -> None:
    response = raw_exchange(server.port, b"GET /metrics?" + b"x" * 9000 + b" HTTP/1.1\r\n\r\n")
    assert status_of(response) == 414


@pytest.mark.parametrize(
    "headers",
    [
        b"".join(b"X-H%d: v\r\n" % i for i in range(101)),  # too many
        b"X-Big: " + b"v" * 20_000 + b"\r\n",  # one header past the total
        b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 65_000) for i in range(99)),  # 6.4 MB of headers
    ],
    ids=["101-headers", "one-20k-header", "99-headers-of-65k"],
)
def test_oversized_headers_are_431(server: MetricsServer, headers: bytes) -> None:
    response = raw_exchange(
        server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
    )
    assert status_of(response) == 431


def test_tls_hello_on_the_plain_port_is_refused_at_once(server: MetricsServer) -> None:
    hello = bytes.fromhex("16030100f4010000f00303") + b"\x00" * 200  # a TLS ClientHello start
    start = time.monotonic()
    response = raw_exchange(server.port, hello, timeout=3)
    assert status_of(response) == 400
    assert time.monotonic() - start < 1


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /metrics\r\n\r\n", b"GET / HTTP/2.0\r\n\r\n", b"GET /metrics HTTP/1.1\r\n bad\r\n\r\n"],
)
def test_malformed_requests_get_an_error_status(
    server: MetricsServer, request_bytes: bytes
) -> None:
    assert status_of(raw_exchange(server.port, request_bytes)) in (400, 505)


def test_methods_and_request_bodies(server: MetricsServer) -> None:
    response = raw_exchange(server.port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(response) == 405
    assert b"Allow: GET, HEAD" in response
    body_request = b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
    assert status_of(raw_exchange(server.port, body_request)) == 400


def test_pipelined_requests_and_http10(server: MetricsServer) -> None:
    two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n"
    response = raw_exchange(server.port, two)
    assert response.count(b"HTTP/1.1 200 OK") == 1
    assert response.count(b"HTTP/1.1 404 Not Found") == 1
    assert status_of(raw_exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")) == 200


def test_a_trickled_request_is_cut_at_the_head_deadline() -> None:
    """One byte every 0.2 s used to keep a thread forever (the timeout was between reads)."""
    limits = ServerLimits(head_timeout=1.0)
    srv = start_metrics_server([FakeCollector(_store())], port=0, host="127.0.0.1", limits=limits)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as conn:
            start = time.monotonic()
            closed_after = None
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    closed_after = time.monotonic() - start
                    break
                time.sleep(0.2)
                if time.monotonic() - start > 4:
                    break
            reply = conn.recv(1000)
            closed_after = closed_after or time.monotonic() - start
        assert reply.startswith(b"HTTP/1.1 408 "), reply
        assert closed_after < 3
    finally:
        srv.stop()


def test_idle_keepalive_connections_are_closed() -> None:
    srv = start_metrics_server(
        [FakeCollector(_store())], port=0, host="127.0.0.1", limits=ServerLimits(idle_timeout=0.5)
    )
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            assert conn.recv(1000).startswith(b"HTTP/1.1 200 ")
            start = time.monotonic()
            assert conn.recv(1000) == b""  # closed by the server, not by our timeout
            assert 0.3 < time.monotonic() - start < 3
        _wait_for(lambda: srv.open_connections == 0)
    finally:
        srv.stop()


def test_default_head_deadline_is_documented_value() -> None:
    assert ServerLimits().head_timeout == 10.0
    assert ServerLimits().max_connections == 512


def test_connections_past_the_cap_get_503_and_the_cap_frees_up() -> None:
    limits = ServerLimits(max_connections=4)
    srv = start_metrics_server([FakeCollector(_store())], port=0, host="127.0.0.1", limits=limits)
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(4)]
    try:
        _wait_for(lambda: srv.open_connections == 4)
        start = time.monotonic()
        response = raw_exchange(srv.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert status_of(response) == 503
        assert time.monotonic() - start < 1
        held.pop().close()
        _wait_for(lambda: srv.open_connections == 3)
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        conn.request("GET", "/metrics")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for s in held:
            s.close()
        srv.stop()


def test_a_client_that_never_reads_is_cut_at_the_write_deadline() -> None:
    limits = ServerLimits(write_timeout=1.0)
    srv = start_metrics_server(
        [FakeCollector(_HugeStore())], port=0, host="127.0.0.1", limits=limits
    )
    try:
        conn = socket.socket()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.connect(("127.0.0.1", srv.port))
        conn.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
        _wait_for(lambda: srv.open_connections == 1)
        _wait_for(lambda: srv.open_connections == 0, timeout=5)
        conn.close()
    finally:
        srv.stop()


class _HugeStore(MetricsStore):
    """A store with a 24 MB body: more than the kernel buffers of a loopback connection."""

    def __init__(self) -> None:
        super().__init__(WidgetGenerator(), self_metrics=SelfMetrics())
        self._lines = b"".join(
            b'widget_info{namespace="default",name="w%d"} 1\n' % i for i in range(600_000)
        )

    def family_chunks(self) -> Any:
        return [(self.families[0], [self._lines]), (self.families[1], [])]


class _SlowStore(MetricsStore):
    """A store whose scrape view takes a while, counting how often it is taken."""

    def __init__(self) -> None:
        super().__init__(WidgetGenerator(), self_metrics=SelfMetrics())
        self.views = 0
        self.upsert(widget("a"))

    def family_chunks(self) -> Any:
        self.views += 1
        time.sleep(0.3)
        return super().family_chunks()


def test_concurrent_scrapes_share_one_render() -> None:
    store = _SlowStore()
    srv = start_metrics_server([FakeCollector(store)], port=0, host="127.0.0.1")
    bodies: list[bytes] = []

    def scrape() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        assert resp.status == 200
        bodies.append(resp.read())
        conn.close()

    try:
        threads = [threading.Thread(target=scrape) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
    assert len(bodies) == 20 and len(set(bodies)) == 1
    # 20 scrapes within ~0.3 s: one render in flight, then at most one more for late arrivals
    assert store.views <= 3, f"{store.views} renders for 20 concurrent scrapes"


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)
